"""images/heartbeat: the long, silent compiles (llama.cpp in the mind's image and in scripts/setup) say every
few seconds that they are still going and how far, and show the compiler's output only when they fail."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT = ROOT / "images" / "heartbeat"
# a build that prints ninja-like steps, slowly
BUILD = 'echo "-- configuring"; echo "[1/3] cc a.c"; sleep 2.3; echo "[2/3] cc b.c"; sleep 1.2; echo "[3/3] ld"'


def heartbeat(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(HEARTBEAT), "-i", "1", *cmd], capture_output=True, text=True, timeout=60)


def test_a_slow_build_says_it_is_alive_with_the_time_and_the_step():
    r = heartbeat("compiling", "sh", "-c", BUILD)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    beats = [ln for ln in lines if re.fullmatch(r"compiling: 0 min 0\d s, step \[\d/3\]", ln)]
    steps = [int(b[-4]) for b in beats]
    assert len(beats) >= 2 and steps == sorted(steps) and steps[0] == 1 and steps[-1] >= 2
    assert re.fullmatch(r"compiling: done in 0 min 0[3-5] s", lines[-1])
    assert "cc a.c" not in r.stdout  # the compiler's chatter stays in the log


def test_a_failed_build_shows_the_end_of_its_output_and_its_status():
    r = heartbeat("compiling", "sh", "-c", 'echo "[1/2] cc a.c"; echo "a.c:1: error: nope" >&2; exit 7')
    assert r.returncode == 7
    assert "compiling failed (exit 7)" in r.stdout and "a.c:1: error: nope" in r.stdout


def test_the_image_and_setup_compile_llama_cpp_through_it():
    dockerfile = (ROOT / "images" / "mind" / "Dockerfile").read_text()
    assert "COPY images/heartbeat /usr/local/bin/heartbeat" in dockerfile
    assert re.search(r"heartbeat \"[^\"]+\" /opt/venv/bin/pip install -v llama-cpp-python", dockerfile)
    assert "!images/heartbeat" in (ROOT / ".dockerignore").read_text().splitlines()  # in the build context
    assert re.search(
        r"images/heartbeat \"[^\"]+\" \\\n\s+\.venv/bin/pip wheel", (ROOT / "scripts" / "setup").read_text()
    )
