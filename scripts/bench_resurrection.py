#!/usr/bin/env python3
"""Measure a resurrection: from the kernel's OOM kill to the next life's first token on the mirror.

    .venv/bin/python scripts/bench_resurrection.py [--deaths 5] [--warmup 2] [--headroom-mib 24] [--no-build]
    .venv/bin/python scripts/bench_resurrection.py --images latent-reflection/mind:before-cache,\
        latent-reflection/mind:latest --rounds 3 --deaths 3

Runs the real stack (images from scripts/build-images) as its own compose project, sets the mind's
limit just above its measured base memory so that lives are short, and for each death splits the
time into:
  docker_delay   `die` event -> `start` event: Docker's restart policy
  process_start  `start` -> the mind's "loading model" log line: Python, imports, uvicorn
  model_load     "loading model" -> "model loaded"
  prompt_read    "model loaded" -> "prompt read": the first context, the sampler and the prompt frame
                 (read, or restored from the frame cache)
  to_mirror      "prompt read" -> the display's count of tokens received rises (first sampled
                 token, SSE to the display, the display's reconnection); polled every 20 ms over one
                 kept-alive connection (a new connection per poll cost half a core, slowing births)
"ours" is everything but model_load and prompt_read. Where the mind's log says so (since the frame
cache), prompt_read is split further: frame (restoring and reading the frame; "restored" tokens of
it from the cache) and the rest (context and sampler).

--images compares mind images taking turns in one run: each round brings a stack up once per image
(the same display image, the same compose file with only the mind's image replaced, a new and empty
mind-state volume each time: the first life fills the frame cache, the deaths measured come after
it). Prints one JSON line per death and a median per image.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker
import httpx

from tests.integration.stack import EventLog, Stack, build_images, wait_for

LINES = {
    "load_start": re.compile(r"loading model "),
    "loaded": re.compile(r"model loaded in "),
    "prompt_read": re.compile(r"prompt read: "),
}
# since the frame cache: "prompt read: 214 tokens in 0.031 s (213 restored from the frame cache ..."
FRAME = re.compile(r"prompt read: \d+ tokens in ([\d.]+) s \((\d+) restored")
ROOT = Path(__file__).resolve().parents[1]


def log_times(container, since: float) -> tuple[dict[str, list[float]], list[tuple[float, float, int]]]:
    """Times of the mind's milestone log lines, from Docker's own timestamps; and (time, seconds,
    tokens restored) of every frame reading the log details."""
    out: dict[str, list[float]] = {k: [] for k in LINES}
    frames = []
    raw = container.logs(timestamps=True, since=int(since)).decode("utf-8", "replace")
    for line in raw.splitlines():
        stamp, _, text = line.partition(" ")
        for key, pattern in LINES.items():
            if pattern.search(text):
                # RFC 3339 with nanoseconds: keep microseconds for datetime
                head, frac = stamp.rstrip("Z").split(".")
                at = datetime.fromisoformat(f"{head}.{frac[:6]}+00:00").timestamp()
                out[key].append(at)
                if key == "prompt_read" and (m := FRAME.search(text)):
                    frames.append((at, float(m.group(1)), int(m.group(2))))
    return out, frames


class DisplayCounters:
    """The display's birth and token counters from its /metrics, over one kept-alive connection (a
    new connection per poll costs this process half a core, which a birth would compete with)."""

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=5)

    def read(self) -> tuple[float, float]:
        text = self.client.get("/metrics").text
        values = [
            re.search(rf"^{name} ([0-9.e+]+)", text, re.M) for name in ("display_lives_total", "display_tokens_total")
        ]
        if not all(values):
            raise RuntimeError("the display's /metrics has no display_lives_total / display_tokens_total")
        return float(values[0].group(1)), float(values[1].group(1))


def first_token_at(counters: DisplayCounters, timeout_s: float) -> float:
    """When the display receives the next life's first token: its token count rises after its count
    of births did (polled every 20 ms). Call it after a death, before the next birth."""
    lives_before, tokens_before = counters.read()
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            lives, tokens = counters.read()
        except httpx.HTTPError:  # the display may be busy; poll again
            lives, tokens = lives_before, tokens_before
        if lives == lives_before:
            tokens_before = tokens  # the old life's last tokens, still arriving
        elif tokens > tokens_before:
            return time.time()
        time.sleep(0.02)
    raise TimeoutError(f"no new life thought within {timeout_s}s")


def measure(client, image: str | None, deaths: int, headroom_mib: int, name: str, warmup: int = 0) -> list[dict]:
    """Bring a stack up (with ``image`` as the mind's, if given), let the mind die ``warmup`` + ``deaths``
    times, and split each resurrection; the first ``warmup`` are printed but not returned."""
    # A breath of 15 tokens/s: lives of a few hundred tokens last over 10 s, as an installation's lives do,
    # so Docker resets its restart delay (lives of 5 s at full speed made it double at every death).
    env = {"MIND_MEMORY_LIMIT": str(1024 * 2**20), "MIND_N_THREADS": "1", "MIND_TOKENS_PER_S": "15"}
    if image:
        override = ROOT / "build" / f"bench-resurrection-{re.sub(r'[^A-Za-z0-9_.-]', '_', image)}.yaml"
        override.parent.mkdir(exist_ok=True)
        override.write_text(f"services:\n  mind:\n    image: {image}\n")
        env["COMPOSE_FILE"] = os.pathsep.join([str(ROOT / "compose.yaml"), str(override)])
    stack = Stack(name, env)
    stack.up()
    rows = []
    try:
        mind = stack.container("mind")
        events = EventLog(client, mind.id)
        events.start(since=time.time() - 5)
        stack.wait_http("/health", 120)
        stack.restart_mind_with_limit(stack.measured_costs()["base_bytes"] + headroom_mib * 2**20)
        counters = DisplayCounters(stack.base)
        for i in range(warmup + deaths):
            wait_for(lambda i=i: len(events.deaths()) > i, 600, f"death {i + 1}", every=0.05)
            oom, die = events.deaths()[i]
            mirror_at = first_token_at(counters, 120)
            start = events.first_after("start", die.at)
            logs, frames = log_times(mind, die.at - 1)

            def after(key: str, logs=logs, since=start.at) -> float:
                return next(t for t in logs[key] if t >= since)

            row = {
                "image": image or "latest",
                "death": i + 1 - warmup,  # 0 and below: a warm-up death
                "docker_delay": start.at - die.at,
                "process_start": after("load_start") - start.at,
                "model_load": after("loaded") - after("load_start"),
                "prompt_read": after("prompt_read") - after("loaded"),
                "to_mirror": mirror_at - after("prompt_read"),
                "total": mirror_at - die.at,
            }
            row["ours"] = row["total"] - row["model_load"] - row["prompt_read"]
            frame = next(((s, n) for at, s, n in frames if at >= start.at), None)
            if frame is not None:
                row["frame"], row["restored"] = frame
                row["context_and_sampler"] = row["prompt_read"] - row["frame"]
            if i >= warmup:
                rows.append(row)
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    finally:
        stack.down()
    return rows


def medians(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k not in ("image", "death")]
    return {k: round(statistics.median(r[k] for r in rows if k in r), 3) for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deaths", type=int, default=5, help="deaths per stack")
    parser.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="deaths per stack before those measured: the frame states the memory limit, which the benchmark "
        "sets after the first life, so the frame cache holds the new frame only from the third life on "
        "(an installation's limit does not change between lives)",
    )
    parser.add_argument("--headroom-mib", type=int, default=24, help="limit above the measured base memory")
    parser.add_argument(
        "--no-build",
        action="store_true",
        help="run the images as they are (to compare two builds tagged in turn as :latest)",
    )
    parser.add_argument(
        "--images",
        help="comma-separated mind images to compare, taking turns (implies --no-build)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="with --images: how many turns each image takes")
    args = parser.parse_args()

    images = [i.strip() for i in args.images.split(",") if i.strip()] if args.images else [None]
    if not args.no_build and not args.images:
        build_images()
    client = docker.from_env()
    rows: dict[str | None, list[dict]] = {image: [] for image in images}
    for r in range(args.rounds):
        for n, image in enumerate(images):
            name = f"lrbench{os.getpid()}r{r}i{n}"
            rows[image] += measure(client, image, args.deaths, args.headroom_mib, name, args.warmup)
    for image, image_rows in rows.items():
        print(json.dumps({"image": image or "latest", "median": medians(image_rows), "deaths": len(image_rows)}))


if __name__ == "__main__":
    main()
