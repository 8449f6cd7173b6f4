#!/usr/bin/env python3
"""Benchmark the chronicle's write path: cost of on_token, bytes written per token, file size.

Usage: .venv/bin/python scripts/bench_chronicle.py [--tokens 20000] [--rate 40] [--paced 600] [--judge 5000]
       [--dir /tmp]

- burst: --tokens tokens as fast as possible (the cost per token when the display catches up).
- paced: --paced tokens at --rate tokens/s (the mind's pace), with the background checkpointer.
  Latency percentiles show what the event loop pays per token, including checkpoint stalls.
- WAL bytes per token: frames appended per token (what the SD card is written per token before
  checkpoints), measured with the writer's own checkpoints off for that run.
- judge: one finished life of --judge tokens (the transcript frame's words, over and over) judged by
  display.core.judge, as the background thread does once a life is over.
Results are printed to stdout. Run it on the target (a Pi's SD card) for the numbers that matter.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

from display.chronicle import Chronicle
from display.core.causes import VITALS, Death

FRAME = Path(__file__).resolve().parents[1] / "services" / "mind" / "prompts" / "transcript.txt"


def born(chronicle: Chronicle, life: str) -> None:
    chronicle.on_birth({"life": life, "born_at": time.time(), "model": "bench", "prompt": "p", "limit_bytes": 1 << 29})


def summary(name: str, lat: list[float]) -> str:
    lat = sorted(lat)
    n = len(lat)
    return (
        f"{name}: {n} tokens, mean {sum(lat) / n * 1e6:.0f} us, median {lat[n // 2] * 1e6:.0f} us, "
        f"p99 {lat[int(n * 0.99)] * 1e6:.0f} us, max {lat[-1] * 1e3:.1f} ms"
    )


def timed_tokens(chronicle: Chronicle, life: str, n: int, rate: float | None = None) -> list[float]:
    """Seconds each of `n` on_token calls took, as fast as possible or at `rate` tokens/s."""
    lat = []
    for seq in range(n):
        t = time.perf_counter()
        chronicle.on_token({"life": life, "seq": seq, "text": " word"})
        lat.append(time.perf_counter() - t)
        if rate:
            time.sleep(max(0.0, 1 / rate - (time.perf_counter() - t)))
    return lat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20000, help="tokens in the burst run")
    parser.add_argument("--rate", type=float, default=40.0, help="tokens/s in the paced run")
    parser.add_argument("--paced", type=int, default=600, help="tokens in the paced run")
    parser.add_argument("--judge", type=int, default=5000, help="tokens of the life judged")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the database (default: a temp dir)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(dir=args.dir))

    burst = Chronicle(base / "burst.db", keep_lives=100, max_bytes=0)
    born(burst, "burst")
    lat = timed_tokens(burst, "burst", args.tokens)
    burst.close()
    print(summary("burst", lat))
    print(f"file after close: {(base / 'burst.db').stat().st_size / args.tokens:.1f} bytes per token")

    wal = Chronicle(base / "wal.db", keep_lives=100, max_bytes=0)
    born(wal, "wal")
    wal._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal._conn.execute("PRAGMA wal_autocheckpoint = 0")
    wal._stop.set()  # no background checkpoints either: the WAL keeps every frame
    for seq in range(2000):
        wal.on_token({"life": "wal", "seq": seq, "text": " word"})
    print(f"WAL appended: {(base / 'wal.db-wal').stat().st_size / 2000:.0f} bytes per token")
    wal.close()

    paced = Chronicle(base / "paced.db", keep_lives=100, max_bytes=0)
    born(paced, "paced")
    lat = timed_tokens(paced, "paced", args.paced, args.rate)
    paced.close()
    print(summary(f"paced at {args.rate:g}/s", lat))

    judged = Chronicle(base / "judge.db", keep_lives=100, max_bytes=0)
    born(judged, "judged")
    words = FRAME.read_text().split(" ")
    for seq in range(args.judge):
        judged.on_token({"life": "judged", "seq": seq, "text": words[seq % len(words)] + " "})
    judged.on_death(Death("judged", "unknown", VITALS))
    t = time.perf_counter()
    judged._judged(judged.lives()[0]["number"])  # what the background thread does for it (but the write)
    print(f"judge: a life of {args.judge} tokens judged in {(time.perf_counter() - t) * 1e3:.0f} ms")
    judged.close()


if __name__ == "__main__":
    main()
