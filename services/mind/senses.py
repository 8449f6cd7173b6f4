"""The readings the system (never the model) writes into the mind's context at paragraph ends:
memory used of the limit, words thought, age; with MIND_SENSES=gauge+past also the life number and
how many tokens the last lives lasted. Numbers only, no past thought. Pure."""

from __future__ import annotations

MIB = 1 << 20


def age_words(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def sense_line(data: dict) -> str:
    """``[memory 212 MB of 700 MB; 318 words; alive 1 min 14 s]`` and a blank line, from the numbers
    in ``data`` (the fields of a sense event)."""
    parts = []
    if data.get("life_number") is not None:
        parts.append(f"life {data['life_number']}")
    memory, limit = data.get("memory_bytes"), data.get("limit_bytes")
    if memory is not None:
        used = f"memory {memory // MIB} MB"
        parts.append(f"{used} of {limit // MIB} MB" if limit else f"{used}, no limit")
    parts.append(f"{data['words']} words")
    parts.append(f"alive {age_words(data['age_s'])}")
    spans = data.get("lifespans")
    if spans:
        parts.append("last lives " + ", ".join(str(n) for n in spans) + " tokens")
    elif "lifespans" in data:
        parts.append("no life before this one counted")
    return "[" + "; ".join(parts) + "]\n\n"
