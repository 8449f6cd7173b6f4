"""Memory sizes as people write them for Docker: ``700m``, ``1g``, ``1.5g``, ``480MiB``. Stdlib-only.

Units are binary (k = 1024), as Docker reads them; decimals are allowed. A bare number is refused:
Docker would read ``700`` as 700 bytes, which nobody means for a memory limit.

    python -m mind.sizes 1.5g      prints 1536m (the size in a form every Docker and Compose reads);
                                   exit status 2 and the reason on stderr if it is not a size
"""

from __future__ import annotations

import re
import sys

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(i?b)?|(b))?\s*$", re.IGNORECASE)
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "b": 1}
MiB = 1 << 20
EXAMPLES = "examples: 700m, 1g, 1.5g, 480MiB"


class SizeError(ValueError):
    """Not a memory size; the message says why, with examples."""


def parse_size(text: str) -> int:
    """Bytes in a memory size (``700m``, ``1g``, ``1.5g``, ``480MiB``, ``512k``, ``524288000b``)."""
    m = _SIZE.match(text or "")
    if not m:
        raise SizeError(f"not a memory size: {text!r} ({EXAMPLES})")
    number, unit = m.group(1), m.group(2) or m.group(4)
    if unit is None:
        raise SizeError(
            f"not a memory size: {text!r} has no unit (Docker would read it as {number} bytes); "
            f"write {number}m for {number} MiB ({EXAMPLES})"
        )
    value = float(number) * _UNITS[unit.lower()]
    if value < 1:
        raise SizeError(f"a memory size must be positive: {text!r}")
    return int(value)


def parse_sizes(text: str) -> list[int]:
    """A comma-separated list of memory sizes (``450m,500m,550m``)."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise SizeError(f"no memory sizes in {text!r} (example: 450m,500m,550m)")
    return [parse_size(p) for p in parts]


def format_size(n: float | None) -> str:
    """A size for people: ``700.0 MiB``, ``1.50 GiB``; ``-`` for None."""
    if n is None:
        return "-"
    if n >= 1 << 30:
        return f"{n / (1 << 30):.2f} GiB"
    return f"{n / MiB:.1f} MiB"


def docker_size(n: int) -> str:
    """``n`` bytes as Docker and both Compose versions read it: in the largest of g, m, k, b that
    divides it (1.5g is ``1536m``)."""
    for suffix in ("g", "m", "k"):
        if n % _UNITS[suffix] == 0:
            return f"{n // _UNITS[suffix]}{suffix}"
    return f"{n}b"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m mind.sizes SIZE", file=sys.stderr)
        return 2
    try:
        print(docker_size(parse_size(argv[0])))
    except SizeError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
