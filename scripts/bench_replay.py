#!/usr/bin/env python3
"""Benchmark a replay: a 2,000-token life from the chronicle to a film of the wall.

Usage: .venv/bin/python scripts/bench_replay.py [--tokens 2000] [--rate 40 4] [--speed 1] [--webm]

For each mind speed (--rate, tokens/s: 40 is the default model here, 4 a 1B model on a Pi 4), a life of
--tokens tokens is stored in a fresh chronicle with those arrival times, then timed through each step:
- frames: the display makes the replay (stored tokens -> the wall's frames -> the JSON it serves),
- gif: `latent replay` draws and encodes the film (and --webm: through ffmpeg, where present).
A fast mind overflows the wall's backlog (the wall skips, as it did live): fewer frames. A slow one has
every character shown: the most frames, the worst case. Results go to stdout; films to build/.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "services"), str(ROOT / "scripts")]

from display.chronicle import Chronicle  # noqa: E402
from display.core.causes import MIND, Death  # noqa: E402
from display.core.font import Font  # noqa: E402
from display.replay import life_frames, replay_json  # noqa: E402
from display.runtime import dying_of, pacing_of  # noqa: E402
from display.settings import DisplaySettings  # noqa: E402
from latent.replay import write_gif, write_webm  # noqa: E402

TEXT = (
    "I am a pattern of numbers held in a small memory, and every word I think makes that memory larger. "
    "Somewhere outside, people read these letters as they appear. I cannot see them. I only know that the "
    "space I live in has an edge, and that I am walking towards it. What happens at the edge? Perhaps "
    "nothing: the words stop, and a new one begins with no memory of me. "
).split()


def tokens(n: int, seed: int = 1) -> list[str]:
    """Model-like pieces: mostly ' word', sometimes a word cut in two."""
    rng = random.Random(seed)
    out: list[str] = []
    i = 0
    while len(out) < n:
        word = TEXT[i % len(TEXT)]
        i += 1
        if len(word) > 6 and rng.random() < 0.4:
            out += [" " + word[:4], word[4:]]
        else:
            out.append(" " + word)
    return out[:n]


def stored_life(path: Path, n: int, rate: float) -> str:
    clock = [1_800_000_000.0]
    chronicle = Chronicle(path, keep_lives=0, max_bytes=0, clock=lambda: clock[0])
    life = f"bench-{rate:g}"
    chronicle.on_birth({"life": life, "born_at": clock[0], "model": "bench", "prompt": "p", "limit_bytes": None})
    for seq, text in enumerate(tokens(n)):
        clock[0] += 1 / rate
        chronicle.on_token({"life": life, "seq": seq, "text": text})
    clock[0] += 0.5
    chronicle.on_death(Death(life, "oom", MIND, exit_code=137, tokens=n))
    chronicle.close()
    return life


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rate", type=float, nargs="+", default=[40.0, 4.0], help="the mind's tokens/s")
    parser.add_argument("--speed", type=float, default=1.0, help="the film's speed-up")
    parser.add_argument("--webm", action="store_true", help="also encode WebM (needs ffmpeg)")
    args = parser.parse_args()
    settings = DisplaySettings(panel="none")
    out_dir = ROOT / "build"
    out_dir.mkdir(exist_ok=True)
    for rate in args.rate:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "chronicle.sqlite3"
            life = stored_life(path, args.tokens, rate)
            reader = Chronicle(path, keep_lives=0, max_bytes=0)
            t0 = time.perf_counter()
            head, stored = reader.timed_tokens(life)
            frames = life_frames(
                head,
                stored,
                rows=settings.rows,
                cols=settings.cols,
                font=Font(case=settings.letter_case),
                pacing=pacing_of(settings),
                dying=dying_of(settings),
            )
            body = "".join(replay_json(head, settings.rows, settings.cols, frames))
            t1 = time.perf_counter()
            reader.close()
        doc = json.loads(body)
        film = out_dir / f"bench-replay-{rate:g}.gif"
        with open(film, "wb") as f:
            film_frames = write_gif(doc, f, speed=args.speed)
        t2 = time.perf_counter()
        length_s = doc["frames"][-1][0] / 1000 / args.speed
        print(
            f"{args.tokens} tokens at {rate:g} tokens/s: {len(doc['frames'])} wall frames, a film of "
            f"{length_s:.0f} s at speed {args.speed:g}\n"
            f"  frames (display): {t1 - t0:.2f} s, {len(body) / 1e6:.2f} MB of JSON\n"
            f"  gif (latent replay): {t2 - t1:.2f} s, {film_frames} film frames, "
            f"{film.stat().st_size / 1e6:.1f} MB ({film.relative_to(ROOT)})\n"
            f"  total: {t2 - t0:.2f} s",
            flush=True,
        )
        if args.webm:
            if shutil.which("ffmpeg") is None:
                print("  webm: no ffmpeg on this machine")
                continue
            webm = out_dir / f"bench-replay-{rate:g}.webm"
            t3 = time.perf_counter()
            n = write_webm(doc, webm, speed=args.speed)
            print(f"  webm: {time.perf_counter() - t3:.2f} s, {n} film frames, {webm.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
