"""Test pictures for bringing a new wall up (scripts/wall-test): pure, a list of steps.

Each step is one picture and the caption that says what it should look like. The wall and the mirror
show the same picture; where they differ, the wiring or the chain order is wrong, and the steps are
chosen so that what differs tells which:

- all: every segment the panel can light, on every cell (dead segments, the power supply);
- segments: one chip output at a time on every cell, its segment named and drawn on the mirror
  (the wiring: which output drives which segment);
- cells: every cell shows its column, then its row (the order of cells along the chain);
- chain: one cell at a time, along the chain from the controller (a break or a swap in the chain).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

from display.core.font import Font

SEGMENT_LETTERS = "ABCDEFGHKMNPRSTU"  # bit i; bit 16 is DP
DIGITS = string.digits + string.ascii_uppercase  # one glyph per value up to 35


def segment_name(bit: int) -> str:
    return "DP" if bit == 16 else SEGMENT_LETTERS[bit]


def segment_bit(name: str) -> int:
    name = name.strip().upper()
    if name == "DP":
        return 16
    if len(name) == 1 and name in SEGMENT_LETTERS:
        return SEGMENT_LETTERS.index(name)
    raise ValueError(f"not a segment: {name!r} (A..H, K, M, N, P, R..U, DP)")


@dataclass(frozen=True)
class Step:
    mode: str
    caption: str
    masks: tuple[int, ...]
    pin: int | None = None  # segments: the chip output lit in this step


def all_on(rows: int, cols: int, segments: int) -> list[Step]:
    return [Step("all", "every segment the panel can light, on every cell", (segments,) * (rows * cols))]


def each_segment(rows: int, cols: int, wiring: Sequence[int]) -> list[Step]:
    """One chip output at a time (in output order), lighting the segment the wiring puts there."""
    by_pin = sorted((pin, seg) for seg, pin in enumerate(wiring) if pin >= 0)
    return [
        Step("segments", f"output {pin}: segment {segment_name(seg)}", (1 << seg,) * (rows * cols), pin)
        for pin, seg in by_pin
    ]


def cell_labels(rows: int, cols: int, font: Font) -> list[Step]:
    """Every cell shows its column (0-9, then A-Z), then its row: together, its index row * cols + col."""
    if max(rows, cols) > len(DIGITS):
        raise ValueError(f"at most {len(DIGITS)} rows and columns can be labelled")
    columns = tuple(font.mask(DIGITS[i % cols]) for i in range(rows * cols))
    rows_ = tuple(font.mask(DIGITS[i // cols]) for i in range(rows * cols))
    return [Step("cells", "every cell shows its column", columns), Step("cells", "every cell shows its row", rows_)]


def chain_walk(rows: int, cols: int, chain: Sequence[int], segments: int, per_board: int) -> list[Step]:
    """One cell at a time, in chain order from the module nearest the controller."""
    steps = []
    for k, cell in enumerate(chain):
        masks = [0] * (rows * cols)
        masks[cell] = segments
        caption = (
            f"chain position {k} (board {k // per_board}, module {k % per_board}): "
            f"row {cell // cols}, column {cell % cols}"
        )
        steps.append(Step("chain", caption, tuple(masks)))
    return steps


def wiring_from_answers(wiring: Sequence[int], answers: dict[int, int | None]) -> list[int]:
    """The wiring a maker's answers describe: `answers[pin]` is the segment seen lit when that output
    was on (None: nothing lit). Outputs not asked keep their segment; a segment no output lights is -1."""
    by_pin = {pin: seg for seg, pin in enumerate(wiring) if pin >= 0}
    by_pin.update(answers)
    new = [-1] * 17
    for pin, seg in sorted(by_pin.items()):
        if seg is None:
            continue
        if new[seg] != -1:
            raise ValueError(f"segment {segment_name(seg)} was seen on outputs {new[seg]} and {pin}")
        new[seg] = pin
    return new
