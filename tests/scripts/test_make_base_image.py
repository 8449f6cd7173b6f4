"""scripts/make-base-image's clean-up, without debootstrap: it once ended a successful run with
umount's exit code 32 (set -e inside the EXIT trap), and CI's first image build failed on it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cleanup_function() -> str:
    text = (ROOT / "scripts" / "make-base-image").read_text()
    match = re.search(r"^cleanup\(\) \{\n.*?^\}\n", text, re.S | re.M)
    assert match, "make-base-image has no cleanup() function"
    assert "trap cleanup EXIT" in text
    return match.group(0)


def run_with_cleanup(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    script = (
        f'set -euo pipefail\nwork={tmp_path / "work"}\nmkdir -p "$work/rootfs/proc"\n'
        f"{cleanup_function()}trap cleanup EXIT\n{body}\n"
    )
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)


def test_a_run_that_succeeded_exits_zero_and_leaves_nothing_behind(tmp_path):
    r = run_with_cleanup(tmp_path, "echo made both images")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "work").exists()


def test_a_failing_run_keeps_its_own_exit_code(tmp_path):
    r = run_with_cleanup(tmp_path, "false")
    assert r.returncode == 1, r.stderr
    assert not (tmp_path / "work").exists()


@pytest.mark.skipif(
    subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0",
    reason="mounting /proc needs root",
)
def test_a_mounted_proc_is_unmounted_before_anything_is_removed(tmp_path):
    r = run_with_cleanup(tmp_path, 'mount --bind /proc "$work/rootfs/proc"')
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "work").exists()
    assert str(tmp_path) not in Path("/proc/self/mounts").read_text()
