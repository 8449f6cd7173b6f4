"""Scripted lives written through the chronicle's own API (births, tokens, vitals, deaths), for the
tests of the per-frame table, the filters and the page at 1, 10 and 1,000 lives."""

from __future__ import annotations

import time

from display.chronicle import Chronicle
from display.core.causes import PROBABLE_OOM, VITALS, Death

MiB = 2**20
SHA = {"transcript": "a1" * 32, "entity": "e2" * 32}


def scripted_birth(life: str, frame: str | None, model: str, limit_mib: int | None, born_at: float) -> dict:
    birth = {
        "life": life,
        "born_at": born_at,
        "model": model,
        "prompt": "You are.",
        "limit_bytes": None if limit_mib is None else limit_mib * MiB,
    }
    if frame is not None:
        birth |= {
            "frame": frame,
            "frame_sha256": SHA[frame],
            "frame_text": f"The {frame} frame, filled for {life}.",
            "sampler": {"temperature": 0.8, "min_p": 0.05, "repeat_penalty": 1.1},
            "seed": 7,
        }
    return birth


def live(
    chronicle: Chronicle,
    life: str,
    words: list[str],
    minutes: float,
    frame: str | None = "transcript",
    model: str = "gemma-3-270m",
    limit_mib: int | None = 480,
    stops_refused: int | None = None,
    alive: bool = False,
) -> None:
    """One life of ``minutes`` that thinks ``words`` (one token each), then dies (unless ``alive``)."""
    chronicle.on_birth(scripted_birth(life, frame, model, limit_mib, time.time() - minutes * 60))
    for seq, word in enumerate(words):
        chronicle.on_token({"life": life, "seq": seq, "text": word})
    vitals = {"life": life, "tokens": len(words), "memory_bytes": 100 * MiB, "stops_refused": stops_refused}
    chronicle.on_vitals(vitals)
    if not alive:
        chronicle.on_death(Death(life, PROBABLE_OOM, VITALS))


def many_lives(chronicle: Chronicle, n: int, alive_last: bool = True) -> None:
    """``n`` short lives over two frames and two limits, the last one still alive."""
    for i in range(1, n + 1):
        frame = "transcript" if i % 3 else "entity"
        live(
            chronicle,
            f"l{i:04d}",
            ["I ", "am ", f"life {i}. "],
            minutes=1 + i % 7,
            frame=frame,
            limit_mib=480 if i % 2 else 700,
            alive=alive_last and i == n,
        )
