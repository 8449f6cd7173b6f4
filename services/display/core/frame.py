"""The frame: every cell's segment mask, computed once and shown by every sink (panel, mirror)."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Frame:
    """One picture of the wall: `masks[row * cols + col]` is that cell's 17-bit segment mask."""

    seq: int
    rows: int
    cols: int
    masks: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.masks) != self.rows * self.cols:
            raise ValueError(f"{len(self.masks)} masks for a {self.rows}x{self.cols} grid")

    def to_json(self) -> str:
        return json.dumps(
            {"seq": self.seq, "rows": self.rows, "cols": self.cols, "masks": list(self.masks)},
            separators=(",", ":"),
        )


def blank(rows: int, cols: int, seq: int = 0) -> Frame:
    return Frame(seq=seq, rows=rows, cols=cols, masks=(0,) * (rows * cols))
