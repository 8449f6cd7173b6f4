#!/usr/bin/env python3
"""The display's steady cost: one life streaming, the wall's typewriter at its pace, one mirror viewer.

    .venv/bin/python scripts/bench_display_steady.py [--seconds 60] [--rate 8] [--services DIR]

Runs `python -m mind` with its scripted source (MIND_SOURCE=scripted: the transcript frame thought
word by word, --rate tokens per second; 8 is faster than the wall shows, so the typewriter runs at
its own pace as it does behind a real model) and `python -m display` (no panel, pacing on, its
defaults otherwise), both on 127.0.0.1, and one viewer of the mirror's frame stream. After a
warm-up it samples the display process every second: CPU time (user + system, as % of one core)
and resident memory (VmRSS). The mind is not counted. --services runs another tree of the services
(e.g. an export of another branch). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not healthy within {timeout_s} s")


class Viewer(threading.Thread):
    """One mirror viewer: reads /frames and counts the frames."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.frames = 0
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url + "/frames", timeout=httpx.Timeout(30)) as response:
                for line in response.iter_lines():
                    if line.startswith("event: frame"):
                        self.frames += 1
                    if self.stop.is_set():
                        return
        except httpx.HTTPError:
            if not self.stop.is_set():  # the display went away while measured: say so
                raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="sampling window")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=8.0, help="the scripted mind's tokens per second")
    parser.add_argument("--services", type=Path, default=ROOT / "services", help="the services tree to run")
    args = parser.parse_args()

    base = {**{k: v for k, v in os.environ.items() if not k.startswith(("MIND_", "DISPLAY_"))}}
    base["PYTHONPATH"] = str(args.services.resolve())
    mind_port, display_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        mind = subprocess.Popen(
            [sys.executable, "-m", "mind"],
            env={
                **base,
                "MIND_SOURCE": "scripted",
                "MIND_SCRIPTED_RATE": str(args.rate),
                "MIND_TOKENS_PER_S": "0",  # the scripted rate sets the pace, not the breath
                "MIND_HOST": "127.0.0.1",
                "MIND_PORT": str(mind_port),
                "MIND_STATE_DIR": tmp,
                "MIND_LOG_LEVEL": "warning",
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        display = subprocess.Popen(
            [sys.executable, "-m", "display"],
            env={
                **base,
                "DISPLAY_MIND_URL": f"http://127.0.0.1:{mind_port}",
                "DISPLAY_HOST": "127.0.0.1",
                "DISPLAY_PORT": str(display_port),
                "DISPLAY_PANEL": "none",
                "DISPLAY_DATA_DIR": tmp,
                "DISPLAY_LOG_LEVEL": "WARNING",
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{display_port}"
            wait_healthy(f"http://127.0.0.1:{mind_port}", mind)
            wait_healthy(url, display)
            viewer = Viewer(url)
            viewer.start()
            time.sleep(args.warmup)
            c0, f0, t0 = cpu_seconds(display.pid), viewer.frames, time.monotonic()
            rss = []
            while time.monotonic() - t0 < args.seconds:
                time.sleep(1.0)
                rss.append(rss_bytes(display.pid))
            elapsed = time.monotonic() - t0
            cpu = (cpu_seconds(display.pid) - c0) / elapsed
            frames_per_s = (viewer.frames - f0) / elapsed
            viewer.stop.set()
        finally:
            for proc in (display, mind):
                proc.terminate()
            for proc in (display, mind):
                proc.wait(10)
    print(
        json.dumps(
            {
                "seconds": round(elapsed, 1),
                "mind_tokens_per_s": args.rate,
                "mirror_frames_per_s": round(frames_per_s, 1),
                "display_cpu_pct_of_one_core": round(cpu * 100, 2),
                "display_rss_mib_median": round(statistics.median(rss) / 2**20, 1),
                "display_rss_mib_max": round(max(rss) / 2**20, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
