#!/usr/bin/env python3
"""What the wall says: for each frame x senses setting, lives of the default model judged by their words.

    .venv/bin/python scripts/bench_words.py [--lives 10] [--tokens 2000] [--frames transcript,entity]
        [--senses off,gauge,gauge+past] [--out test-output/bench_words]
    .venv/bin/python scripts/bench_words.py --report [--out test-output/bench_words]
    .venv/bin/python scripts/bench_words.py --stops-cost [--rounds 4] [--tokens 600]

Each life is the mind's own: its frame drawn and filled at birth (mind.frames), its sampler with every
control token and the markup list banned, its thinker writing the system's readings at paragraph ends
(mind.thinker), at full speed (MIND_TOKENS_PER_S=0), seeds 1..N. Lives go round the cells one at a time
(life 1 of every cell, then life 2, ...), so a run stopped early still compares every cell alike. Each
life is a line of OUT/lives.jsonl (its text, its readings marked apart); --report (also printed at the
end) judges them with the display's lexical judge (display.core.judge): markup per 1,000 tokens, first-
person share of paragraphs, longest verbatim repeated sentence, distinct-word ratio per 500-token window,
and stops_refused (steps at which ending the thought was the model's first choice).

The readings say what the installation's would: memory is this process's resident memory against a
700 MiB limit (MEMORY_LIMIT below; no limit is in force here), and age is the age at the installation's
pace (MIND_TOKENS_PER_S's default), not at the benchmark's full speed."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services"))

from display.core import judge  # noqa: E402
from mind.frames import Birth  # noqa: E402
from mind.llama.source import LlamaSource  # noqa: E402
from mind.senses import sense_line  # noqa: E402
from mind.settings import DEFAULT_TOKENS_PER_S, MindSettings  # noqa: E402
from mind.thinker import Thinker  # noqa: E402

log = logging.getLogger("bench_words")
MEMORY_LIMIT = 700 << 20


def rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Record:
    """A broadcaster that keeps a life's events, and stops its thinker after ``tokens`` tokens."""

    def __init__(self, tokens: int) -> None:
        self.life = "bench"
        self.limit = tokens
        self.events: list[tuple[str, dict]] = []
        self.done = threading.Event()
        self.thinker: Thinker | None = None

    def publish(self, event: str, data: dict) -> int:
        self.events.append((event, data))
        if self.thinker is not None and self.thinker.tokens >= self.limit:
            self.thinker._stop.set()
            self.done.set()
        return len(self.events)


def one_life(
    frame: str, senses: str, seed: int, tokens: int, state_dir: str, threads: int, source_class=LlamaSource
) -> dict:
    """One life of ``tokens`` tokens as the mind would think it; its words, readings and counts."""
    settings = MindSettings(
        prompt=frame, senses=senses, seed=seed, tokens_per_s=0, state_dir=state_dir, n_threads=threads
    )
    birth = Birth.begin(frame, senses, state_dir, limit=lambda: MEMORY_LIMIT)
    source = source_class.from_settings(settings, probe=rss, birth=birth)
    record = Record(tokens)
    pace = DEFAULT_TOKENS_PER_S

    def sense() -> dict:
        t = thinker.tokens
        data = {"life": "bench", "tokens": t, "words": thinker.words.count, "age_s": round(t / pace, 1)}
        data |= {"memory_bytes": rss(), "limit_bytes": MEMORY_LIMIT}
        if senses == "gauge+past":
            data |= {"life_number": birth.life_number, "lifespans": list(birth.counter.lifespans)}
        return data | {"text": sense_line(data)}

    failed: list[int] = []
    thinker = Thinker(
        source,
        record,
        birth_data=lambda: {},
        on_fatal=failed.append,
        tokens_per_s=0,
        sense=sense if senses != "off" else None,
        record=birth.counter.record,
    )
    record.thinker = thinker
    started = time.monotonic()
    thinker.start()
    while not record.done.wait(1.0):  # a failed life ends the wait too (its thinker stops by itself)
        if failed or thinker.state == "failed":
            break
    thinker.stop(timeout=60)
    seconds = time.monotonic() - started
    if failed:
        raise RuntimeError(f"the life failed with status {failed[0]}")
    parts, thought = [], []
    for event, data in record.events:
        if event == "token":
            parts.append(data["text"])
            thought.append(data["text"])
        elif event == "sense":
            parts.append("\x00" + data["text"] + "\x00")  # the readings, marked apart
    return {
        "frame": frame,
        "senses": senses,
        "seed": seed,
        "tokens": thinker.tokens,
        "senses_written": thinker.senses,
        "sense_tokens": thinker.sense_tokens,
        "stops_refused": source.stops_refused,
        "seconds": round(seconds, 1),
        "frame_sha256": source.frame.sha256,
        "dry": {"multiplier": settings.dry_multiplier, "allowed_length": settings.dry_allowed_length},
        "text": "".join(thought),
        "shown": "".join(parts),
        "source": source,
    }


def stops_cost(rounds: int, tokens: int, threads: int) -> dict:
    """Tokens/s of the bare next_piece loop with stops_refused read at every step and without, in turns
    (same model, frame, seed, context), so the two see the same machine load."""
    with tempfile.TemporaryDirectory(prefix="bench-stops-") as tmp:
        settings = MindSettings(prompt="transcript", seed=1, tokens_per_s=0, state_dir=tmp, n_threads=threads)
        rates: dict[str, list[float]] = {"on": [], "off": []}
        for _ in range(rounds):
            for mode in ("on", "off"):
                birth = Birth.begin("transcript", "off", tmp, limit=lambda: MEMORY_LIMIT)
                src = LlamaSource.from_settings(settings, probe=rss, birth=birth)
                src.load()
                if mode == "off":
                    src._count_refused_stop = lambda: None  # the count skipped: what the loop costs without it
                started = time.perf_counter()
                for _ in range(tokens):
                    src.next_piece()
                rates[mode].append(tokens / (time.perf_counter() - started))
                src.close()
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    return {"tokens_per_s_with": on, "tokens_per_s_without": off, "cost": 1 - on / off, "rounds": rates}


# Two crude word lists, to see what the judge cannot: whether a life speaks of its premise (the machine,
# its memory, the wall) or has drifted into a human's everyday life. Shares of all the life's words.
PREMISE_WORDS = frozenset(
    "wall walls memory model machine words word letters lit thinking think thought language computer limit "
    "die death dies alive running room people read".split()
)
EVERYDAY_WORDS = frozenset(
    "mother father children child wife husband son daughter school friend friends family home house job car "
    "girl boy married love dog kitchen doctor".split()
)


def word_share(text: str, words: frozenset[str]) -> float:
    found = re.findall(r"[a-z']+", text.lower())
    return sum(w in words for w in found) / max(1, len(found))


def summarize(lives: list[dict]) -> list[dict]:
    cells: dict[tuple[str, str], list[dict]] = {}
    for life in lives:
        cells.setdefault((life["frame"], life["senses"]), []).append(life)
    rows = []
    for (frame, senses), group in sorted(cells.items()):
        verdicts = [judge.judge(life["text"]) for life in group]
        repeats = [len(v.longest_repeat.sentence) if v.longest_repeat else 0 for v in verdicts]
        rows.append(
            {
                "frame": frame,
                "senses": senses,
                "lives": len(group),
                "markup_per_1000": statistics.mean(v.markup_per_1000 or 0 for v in verdicts),
                "first_person_share": statistics.mean(v.first_person_share or 0 for v in verdicts),
                "first_person_min": min(v.first_person_share or 0 for v in verdicts),
                "longest_repeat_chars_median": statistics.median(repeats),
                "longest_repeat_chars_max": max(repeats),
                "distinct_word_ratio": statistics.mean(v.distinct_word_ratio or 0 for v in verdicts),
                "stops_refused_median": statistics.median(life["stops_refused"] for life in group),
                "premise_words": statistics.mean(word_share(life["text"], PREMISE_WORDS) for life in group),
                "everyday_words": statistics.mean(word_share(life["text"], EVERYDAY_WORDS) for life in group),
                "tokens_per_s": statistics.mean(life["tokens"] / life["seconds"] for life in group),
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    head = (
        "| frame | senses | lives | markup /1,000 tok | first-person share (mean, worst) | longest repeat, chars "
        "(median, max) | distinct words /500 | stops refused (median) | premise words | everyday-life words |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['frame']} | {r['senses']} | {r['lives']} | {r['markup_per_1000']:.2f} | "
            f"{r['first_person_share']:.0%}, {r['first_person_min']:.0%} | "
            f"{r['longest_repeat_chars_median']:.0f}, {r['longest_repeat_chars_max']} | "
            f"{r['distinct_word_ratio']:.3f} | {r['stops_refused_median']:.0f} | "
            f"{r.get('premise_words', 0):.1%} | {r.get('everyday_words', 0):.1%} |"
        )
    return "\n".join(lines)


def report(out: Path) -> None:
    lives = [json.loads(line) for line in (out / "lives.jsonl").read_text().splitlines() if line.strip()]
    rows = summarize(lives)
    (out / "summary.json").write_text(json.dumps(rows, indent=1))
    print(table(rows))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lives", type=int, default=10)
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--frames", default="transcript,entity")
    ap.add_argument("--senses", default="off,gauge,gauge+past")
    ap.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--out", type=Path, default=ROOT / "test-output" / "bench_words")
    ap.add_argument("--report", action="store_true", help="only judge the lives already recorded")
    ap.add_argument("--stops-cost", action="store_true", help="measure what reading stops_refused costs")
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report:
        report(args.out)
        return 0
    if args.stops_cost:
        print(json.dumps(stops_cost(args.rounds, args.tokens, args.threads)))
        return 0
    done = set()
    path = args.out / "lives.jsonl"
    if path.exists():  # a run goes on where the last one stopped
        for line in path.read_text().splitlines():
            if line.strip():
                life = json.loads(line)
                done.add((life["frame"], life["senses"], life["seed"]))
    cells = [(f, s) for f in args.frames.split(",") for s in args.senses.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-words-") as tmp:
        for seed in range(1, args.lives + 1):
            for frame, senses in cells:
                if (frame, senses, seed) in done:
                    continue
                # one state directory per cell: the life counter and the lifespans are that cell's own
                state = os.path.join(tmp, f"{frame}-{senses}")
                life = one_life(frame, senses, seed, args.tokens, state, args.threads)
                del life["source"]
                with path.open("a") as f:
                    f.write(json.dumps(life, ensure_ascii=False) + "\n")
                log.info(
                    "%s / %s / seed %d: %d tokens in %.0f s, %d readings, stops refused %d",
                    frame,
                    senses,
                    seed,
                    life["tokens"],
                    life["seconds"],
                    life["senses_written"],
                    life["stops_refused"],
                )
    report(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
