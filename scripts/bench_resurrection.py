#!/usr/bin/env python3
"""Measure a resurrection: from the kernel's OOM kill to the next life's first token on the mirror.

    .venv/bin/python scripts/bench_resurrection.py [--deaths 5] [--headroom-mib 24] [--no-build]

Runs the real stack (images from scripts/build-images) as its own compose project, sets the mind's
limit just above its measured base memory so that lives are short, and for each death splits the
time into:
  docker_delay   `die` event -> `start` event: Docker's restart policy
  process_start  `start` -> the mind's "loading model" log line: Python, imports, uvicorn
  model_load     "loading model" -> "model loaded"
  prompt_read    "model loaded" -> "prompt read" (the prompt frame through the model)
  to_mirror      "prompt read" -> the new life's first token in the display's chronicle (first
                 sampled token, SSE to the display, the display's reconnection, its record)
"ours" is everything but model_load and prompt_read. Prints one JSON line per death and a summary.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from tests.integration.stack import EventLog, Stack, build_images, wait_for  # noqa: E402

LINES = {
    "load_start": re.compile(r"loading model "),
    "loaded": re.compile(r"model loaded in "),
    "prompt_read": re.compile(r"prompt read: "),
}


def log_times(container, since: float) -> dict[str, list[float]]:
    """Times of the mind's milestone log lines, from Docker's own timestamps."""
    out: dict[str, list[float]] = {k: [] for k in LINES}
    raw = container.logs(timestamps=True, since=int(since)).decode("utf-8", "replace")
    for line in raw.splitlines():
        stamp, _, text = line.partition(" ")
        for key, pattern in LINES.items():
            if pattern.search(text):
                # RFC 3339 with nanoseconds: keep microseconds for datetime
                head, frac = stamp.rstrip("Z").split(".")
                out[key].append(datetime.fromisoformat(f"{head}.{frac[:6]}+00:00").timestamp())
    return out


def first_token_at(stack: Stack, life_number: int, timeout_s: float) -> float:
    """When the chronicle first holds a token of life `life_number` (polled every 20 ms)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            lives = stack.lives()
        except Exception:  # noqa: BLE001 - the display may be busy; poll again
            lives = []
        if len(lives) >= life_number and lives[life_number - 1]["tokens"] > 0:
            return time.time()
        time.sleep(0.02)
    raise TimeoutError(f"life {life_number} thought nothing within {timeout_s}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deaths", type=int, default=5)
    parser.add_argument("--headroom-mib", type=int, default=24, help="limit above the measured base memory")
    parser.add_argument("--no-build", action="store_true",
                        help="run the images as they are (to compare two builds tagged in turn as :latest)")
    args = parser.parse_args()

    if not args.no_build:
        build_images()
    client = docker.from_env()
    stack = Stack(f"lrbench{os.getpid()}", {"MIND_MEMORY_LIMIT": str(1024 * 2**20), "MIND_N_THREADS": "1"})
    stack.up()
    try:
        mind = stack.container("mind")
        events = EventLog(client, mind.id)
        t0 = time.time() - 5
        events.start(since=t0)
        stack.wait_http("/health", 120)
        stack.set_mind_limit(stack.measured_costs()["base_bytes"] + args.headroom_mib * 2**20)
        rows = []
        for i in range(args.deaths):
            wait_for(lambda: len(events.deaths()) > i, 600, f"death {i + 1}", every=0.05)
            oom, die = events.deaths()[i]
            # the chronicle numbers lives from 1: death i+1 is followed by life i+2
            mirror_at = first_token_at(stack, i + 2, 120)
            start = events.first_after("start", die.at)
            logs = log_times(mind, die.at - 1)
            after = lambda key: next(t for t in logs[key] if t >= start.at)  # noqa: E731
            row = {
                "death": i + 1,
                "docker_delay": start.at - die.at,
                "process_start": after("load_start") - start.at,
                "model_load": after("loaded") - after("load_start"),
                "prompt_read": after("prompt_read") - after("loaded"),
                "to_mirror": mirror_at - after("prompt_read"),
                "total": mirror_at - die.at,
            }
            row["ours"] = row["total"] - row["model_load"] - row["prompt_read"]
            rows.append(row)
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
        summary = {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0] if k != "death"}
        print(json.dumps({"median": summary, "deaths": len(rows)}))
    finally:
        stack.down()


if __name__ == "__main__":
    main()
