"""What every panel shares: the chain through the cells, and the wiring of segments onto chip pins.

A chip panel knows one chip's protocol and gets its transport in the constructor. It declares
`segments`, the mask of segments its wiring can light; the core builds the wall's font from that, so
the frame (and the mirror) holds only what the wall can show.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from display.core.frame import Frame

SEGMENT_COUNT = 17  # A..U, DP
PINS = 16  # every chip here has 16 outputs (or register bits) per module


class ChipPanel(Protocol):
    segments: int

    def start(self) -> None:
        """Power-up: configure the chips with a blank picture; the wall stays dark."""

    def show(self, frame: Frame) -> None:
        """Send what changed since the last show or refresh."""

    def refresh(self, frame: Frame | None) -> None:
        """Send the configuration and the whole frame again (a reset chip heals)."""

    def close(self) -> None:
        """Leave the wall dark and release the bus."""


def chain_order(rows: int, cols: int, order: str) -> list[int]:
    """Cell index of each module along the chain, starting at the module nearest the controller."""
    cells = []
    for r in range(rows):
        cs = range(cols)
        if order == "serpentine" and r % 2 == 1:
            cs = reversed(cs)
        cells.extend(r * cols + c for c in cs)
    return cells


def chunks(items: Sequence[int], size: int) -> list[list[int]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class Wiring:
    """Segment bit -> output pin (-1 = not connected), as lookup tables so a mask converts in three steps."""

    def __init__(self, pins: Sequence[int]) -> None:
        if len(pins) != SEGMENT_COUNT:
            raise ValueError("wiring needs 17 entries (A..U, DP)")
        used = [p for p in pins if p >= 0]
        if len(set(used)) != len(used) or any(p >= PINS for p in used):
            raise ValueError("wiring pins must be distinct and in 0..15 (or -1)")
        self.pins = tuple(pins)
        self.segments = sum(1 << s for s, p in enumerate(pins) if p >= 0)

        def word(bits: int, base: int, count: int) -> int:
            w = 0
            for b in range(count):
                pin = pins[base + b]
                if bits >> b & 1 and pin >= 0:
                    w |= 1 << pin
            return w

        self._low = [word(v, 0, 8) for v in range(256)]
        self._high = [word(v, 8, 8) for v in range(256)]
        self._dp = word(1, 16, 1)

    def word(self, mask: int) -> int:
        """The 16 output pins that light `mask` (segments with no pin are dropped)."""
        w = self._low[mask & 0xFF] | self._high[mask >> 8 & 0xFF]
        return w | self._dp if mask >> 16 & 1 else w


def segments_of(pins: Sequence[int]) -> int:
    return Wiring(pins).segments
