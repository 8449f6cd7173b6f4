"""The stream contract (docs/stream-contract.md), checked at the boundary: pure, JSON data in, clean data out.

Every field the display takes from the mind is checked here for type and range before it reaches the
wall, the chronicle or the page: ids of bounded length in safe characters, finite numbers in range,
strings that are whole UTF-8. A field the contract does not name is left out; a missing optional
field is None; anything else wrong makes the whole event ``Malformed`` (the display drops and counts it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

LIFE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}", re.ASCII)
MAX_TEXT_CHARS = 4096  # one token's text (a token is a few characters; a line is bounded at 64 KiB)
MAX_MODEL_CHARS = 512
MAX_PROMPT_CHARS = 65536
MAX_COUNT = 2**53  # tokens, seq, n_ctx: counts JSON carries exactly
MAX_BYTES = 2**60  # memory sizes
MAX_TIME = 2.0**34  # Unix seconds (the year 2514)
MAX_RATE = 1e9  # tokens per second
MAX_ENERGY = 1e12  # CPU seconds, joules: far beyond any life
MAX_ENERGY_MODEL_CHARS = 32
ENERGY_MODEL = re.compile(r"[0-9A-Za-z_.-]{1,32}", re.ASCII)
MAX_NAME_CHARS = 256  # a frame's name
MAX_SENSE_CHARS = 512  # one line of readings
MAX_LIFESPANS = 32
SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
SENSES = ("off", "gauge", "gauge+past")
SAMPLER_FIELDS = {
    "temperature": float,
    "min_p": float,
    "top_k": int,
    "repeat_penalty": float,
    "repeat_last_n": int,
    "dry_multiplier": float,
    "dry_base": float,
    "dry_allowed_length": int,
    "dry_last_n": int,
}
# The words a death event may carry: causes the mind can see, and details that say more.
DEATH_CAUSES = ("stopped", "failed", "oom")
DEATH_REASONS = ("signal", "hung", "stall", "model", "error")


class Malformed(ValueError):
    """An event that breaks the contract; its message says which field, never echoing the value."""


def _present(data: dict, key: str, required: bool) -> Any:
    value = data.get(key)
    if value is None and required:
        raise Malformed(f"{key} missing")
    return value


def _int(data: dict, key: str, hi: int, lo: int = 0, required: bool = False) -> int | None:
    value = _present(data, key, required)
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)  # JSON has one number type: 1e9 is an integer too
    if not isinstance(value, int) or isinstance(value, bool):
        raise Malformed(f"{key} not an integer")
    if not lo <= value <= hi:
        raise Malformed(f"{key} out of range")
    return value


def _number(data: dict, key: str, hi: float, required: bool = False) -> float | None:
    value = _present(data, key, required)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise Malformed(f"{key} not a number")
    if not math.isfinite(value) or not 0 <= value <= hi:
        raise Malformed(f"{key} not finite or out of range")
    return value


def _text(data: dict, key: str, max_chars: int, required: bool = False) -> str | None:
    value = _present(data, key, required)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Malformed(f"{key} not a string")
    if len(value) > max_chars:
        raise Malformed(f"{key} too long")
    try:
        value.encode("utf-8")  # JSON's \ud800 escapes make lone surrogates, which no file or page can hold
    except UnicodeEncodeError:
        raise Malformed(f"{key} not whole UTF-8") from None
    return value


def _bool(data: dict, key: str) -> bool | None:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise Malformed(f"{key} not a boolean")
    return value


def _life(data: dict) -> str:
    value = data.get("life")
    if not isinstance(value, str) or not LIFE_ID.fullmatch(value):
        raise Malformed("life not an id of 1-64 letters, digits, '-' or '_'")
    return value


def _sampler(data: dict) -> dict | None:
    """The sampler settings: the known names with numbers in range; anything else is left out."""
    value = data.get("sampler")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Malformed("sampler not an object")
    out = {}
    for key, kind in SAMPLER_FIELDS.items():
        if kind is int:
            out[key] = _int(value, key, MAX_COUNT, lo=-1)
        else:
            number = value.get(key)
            if number is not None and (
                not isinstance(number, (int, float)) or isinstance(number, bool) or not math.isfinite(number)
            ):
                raise Malformed(f"sampler.{key} not a finite number")
            out[key] = number
    return out


def birth(data: dict) -> dict:
    sha = data.get("frame_sha256")
    if sha is not None and not (isinstance(sha, str) and SHA256.fullmatch(sha)):
        raise Malformed("frame_sha256 not 64 lowercase hex digits")
    senses = data.get("senses")
    return {
        "life": _life(data),
        "born_at": _number(data, "born_at", MAX_TIME),
        "model": _text(data, "model", MAX_MODEL_CHARS),
        "prompt": _text(data, "prompt", MAX_PROMPT_CHARS),
        "limit_bytes": _int(data, "limit_bytes", MAX_BYTES),
        # optional: what the life is (#16); a mind that does not send them is as valid as before
        "life_number": _int(data, "life_number", MAX_COUNT),
        "frame": _text(data, "frame", MAX_NAME_CHARS),
        "frame_sha256": sha,
        "frame_text": _text(data, "frame_text", MAX_PROMPT_CHARS),
        "sampler": _sampler(data),
        "seed": _int(data, "seed", MAX_COUNT, lo=-1),
        "senses": senses if senses in SENSES else None,
        "tokens_per_s_limit": _number(data, "tokens_per_s_limit", MAX_RATE),
    }


def sense(data: dict) -> dict:
    """The system's readings written into the mind's context at a paragraph end (never the model's words)."""
    spans = data.get("lifespans")
    if spans is not None:
        if not isinstance(spans, list) or len(spans) > MAX_LIFESPANS:
            raise Malformed("lifespans not a short list")
        spans = [_int({"n": n}, "n", MAX_COUNT, required=True) for n in spans]
    return {
        "life": _life(data),
        "seq": _int(data, "seq", MAX_COUNT, required=True),
        "text": _text(data, "text", MAX_SENSE_CHARS, required=True),
        "tokens": _int(data, "tokens", MAX_COUNT),
        "words": _int(data, "words", MAX_COUNT),
        "age_s": _number(data, "age_s", MAX_TIME),
        "memory_bytes": _int(data, "memory_bytes", MAX_BYTES),
        "limit_bytes": _int(data, "limit_bytes", MAX_BYTES),
        "life_number": _int(data, "life_number", MAX_COUNT),
        "lifespans": spans,
        "sense_tokens": _int(data, "sense_tokens", MAX_COUNT),
    }


def token(data: dict) -> dict:
    return {
        "life": _life(data),
        "seq": _int(data, "seq", MAX_COUNT, required=True),
        "text": _text(data, "text", MAX_TEXT_CHARS, required=True),
    }


def vitals(data: dict) -> dict:
    return {
        "life": _life(data),
        "born_at": _number(data, "born_at", MAX_TIME),
        "tokens": _int(data, "tokens", MAX_COUNT),
        "tokens_per_s": _number(data, "tokens_per_s", MAX_RATE),
        "n_ctx": _int(data, "n_ctx", MAX_COUNT),
        "n_ctx_train": _int(data, "n_ctx_train", MAX_COUNT),
        "memory_bytes": _int(data, "memory_bytes", MAX_BYTES),
        "peak_memory_bytes": _int(data, "peak_memory_bytes", MAX_BYTES),
        "limit_bytes": _int(data, "limit_bytes", MAX_BYTES),
        "limit_in_force": _bool(data, "limit_in_force"),
        "tokens_left": _int(data, "tokens_left", MAX_COUNT),
        "shifting": _bool(data, "shifting"),
        "cpu_seconds": _number(data, "cpu_seconds", MAX_ENERGY),
        "cpu_joules": _number(data, "cpu_joules", MAX_ENERGY),
        "energy_model": _energy_model(data),
        "words": _int(data, "words", MAX_COUNT),
        "senses": _int(data, "senses", MAX_COUNT),
        "stops_refused": _int(data, "stops_refused", MAX_COUNT),
    }


def _energy_model(data: dict) -> str | None:
    value = _text(data, "energy_model", MAX_ENERGY_MODEL_CHARS)
    if value is not None and not ENERGY_MODEL.fullmatch(value):
        raise Malformed("energy_model not a name of letters, digits, '.', '-' or '_'")
    return value


def death(data: dict) -> dict:
    cause = data.get("cause")
    if cause not in DEATH_CAUSES:
        raise Malformed("cause not one of " + ", ".join(DEATH_CAUSES))
    reason = data.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise Malformed("reason not a string")
    return {
        "life": _life(data),
        "cause": cause,
        "exit_code": _int(data, "exit_code", 255),
        # a reason outside the vocabulary is left out, not shown: the page never repeats free text
        "reason": reason if reason in DEATH_REASONS else None,
        "tokens": _int(data, "tokens", MAX_COUNT),
    }


PARSERS: dict[str, Callable[[dict], dict]] = {
    "birth": birth,
    "token": token,
    "vitals": vitals,
    "sense": sense,
    "death": death,
}
