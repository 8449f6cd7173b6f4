"""The wall as a state machine: waiting -> alive (a life's text) -> dying (death state) -> waiting."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Literal

from display.core.font import FULL, Font
from display.core.frame import Frame
from display.core.layout import Grid

DeathStyle = Literal["fade", "flatline"]


class Wall:
    """Owns the grid and the frame sequence number; every change yields one new Frame."""

    def __init__(self, rows: int, cols: int, font: Font = FULL) -> None:
        self.grid = Grid(rows, cols, font)
        self.font = font
        self.rows = rows
        self.cols = cols
        self.seq = 0
        self.state: Literal["waiting", "alive", "dying", "dead"] = "waiting"
        self._override: tuple[int, ...] | None = None  # the death picture, when shown
        self.frame = self._make(self.grid.masks())

    def _make(self, masks: tuple[int, ...]) -> Frame:
        self.seq += 1
        self.frame = Frame(seq=self.seq, rows=self.rows, cols=self.cols, masks=masks)
        return self.frame

    def birth(self) -> Frame:
        self.grid.clear()
        self._override = None
        self.state = "alive"
        return self._make(self.grid.masks())

    def write(self, keys: str) -> Frame | None:
        """Lay out keys; returns the new frame, or None if nothing visible changed."""
        if not keys:
            return None
        self.grid.write(keys)
        if self._override is not None:
            return None  # a resumed life writes on, but the death picture stays until it is done
        masks = self.grid.masks()
        if masks == self.frame.masks:
            return None
        return self._make(masks)

    def revive(self) -> Frame:
        """The stream came back within the same life: show its text again."""
        self._override = None
        self.state = "alive"
        return self._make(self.grid.masks())

    def death_frames(self, style: DeathStyle, steps: int, rng: random.Random | None = None) -> Iterator[Frame]:
        """The death state, as `steps` frames to show at a steady pace; the last one stays up."""
        self.state = "dying"
        rng = rng or random.Random()
        if style == "flatline":
            yield from self._flatline(steps)
        else:
            yield from self._fade(steps, rng)
        self.state = "dead"

    def _fade(self, steps: int, rng: random.Random) -> Iterator[Frame]:
        # segments go out one by one in random order: the thought dissolves rather than blinks off
        masks = list(self.frame.masks)
        lit = [(i, 1 << b) for i, m in enumerate(masks) for b in range(17) if m >> b & 1]
        rng.shuffle(lit)
        steps = max(1, steps)
        per = -(-len(lit) // steps) if lit else 0
        for s in range(steps):
            for i, bit in lit[s * per : (s + 1) * per]:
                masks[i] &= ~bit
            self._override = tuple(masks)
            yield self._make(self._override)
        self._override = (0,) * (self.rows * self.cols)
        yield self._make(self._override)

    def _flatline(self, steps: int) -> Iterator[Frame]:
        # the line is drawn across the middle row from left to right, then holds
        middle = (self.rows - 1) // 2
        flat = self.font.mask("-")  # U and P: one middle bar per cell makes a line across the wall
        steps = max(1, min(steps, self.cols))
        for s in range(1, steps + 1):
            upto = round(self.cols * s / steps)
            masks = [0] * (self.rows * self.cols)
            for c in range(upto):
                masks[middle * self.cols + c] = flat
            self._override = tuple(masks)
            yield self._make(self._override)
