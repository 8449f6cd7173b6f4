"""The wall over time, as a pure function: keys in at their times, frames out at theirs.

The live display feeds a Reel as events come and publishes what it returns; a replay of a past life
feeds one the chronicle's tokens at the times the display received them. Both get the same masks in
the same order, because a frame's time is when its key was due, not when a loop woke up to show it: a
late wake-up changes when a frame is shown, never which frames there are.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from display.core.font import FULL, Font, to_cells
from display.core.frame import Frame
from display.core.pacing import Typewriter
from display.core.wall import DeathStyle, Wall

DEATH_STEPS_PER_S = 12  # frames per second of the death animation

Timed = tuple[float, Frame]  # (seconds on the caller's clock, frame)


@dataclass(frozen=True, slots=True)
class Pacing:
    """The typewriter's settings (see Typewriter)."""

    rate: float = 16.0
    max_rate: float = 30.0
    backlog_full: int = 96
    sentence_pause: float = 0.4
    max_backlog: int = 1000
    enabled: bool = True

    def typewriter(self) -> Typewriter:
        return Typewriter(
            rate=self.rate,
            max_rate=max(self.rate, self.max_rate),
            backlog_full=self.backlog_full,
            sentence_pause=self.sentence_pause,
            max_backlog=self.max_backlog,
            enabled=self.enabled,
        )


@dataclass(frozen=True, slots=True)
class Dying:
    """How the wall shows a death (the display's settings)."""

    style: DeathStyle = "fade"
    duration_s: float = 2.0

    @property
    def steps(self) -> int:
        return max(1, round(self.duration_s * DEATH_STEPS_PER_S))


def death_rng(life: str) -> random.Random:
    """The fade's order of segments, drawn from the life's id: a replay dies as the wall did."""
    return random.Random(life)


class Reel:
    """A wall and its typewriter, advanced by the caller's clock (no clock of its own)."""

    def __init__(self, wall: Wall, typewriter: Typewriter) -> None:
        self.wall = wall
        self.typewriter = typewriter
        self.now = float("-inf")  # the latest time seen: keys are never due before it

    def _tick(self, now: float) -> None:
        self.now = max(self.now, now)

    def birth(self, now: float) -> Frame:
        self._tick(now)
        return self.wall.birth()

    def push(self, keys: str, now: float) -> list[Timed]:
        """Keys arriving at `now`: first the frames of keys due before them, then any due at once."""
        out = self.advance(now)
        self.typewriter.push(keys)
        out += self.advance(now)
        return out

    def advance(self, now: float) -> list[Timed]:
        """The frames of every key due by `now`, one per key that changes the picture, each at its time."""
        out: list[Timed] = []
        tw = self.typewriter
        if self.wall.state != "alive" or not tw.backlog:
            self._tick(now)
            return out
        if not tw.enabled:  # no pacing: everything waiting goes up at once, in one frame
            self._tick(now)
            keys, _ = tw.release(now)
            frame = self.wall.write(keys)
            return [(self.now, frame)] if frame is not None else out
        while tw.backlog:
            due = max(tw.next_at, self.now)
            if due > now:
                break
            self.now = due
            keys, _ = tw.release(due)
            for key in keys:
                frame = self.wall.write(key)
                if frame is not None:
                    out.append((due, frame))
        self._tick(now)
        return out

    def wait(self) -> float | None:
        """Seconds after `now` until the next key is due; None when nothing waits to be shown."""
        if self.wall.state != "alive" or not self.typewriter.backlog:
            return None
        return max(0.0, self.typewriter.next_at - self.now)

    def death(self, now: float, dying: Dying, rng: random.Random) -> Iterator[Timed]:
        """The death picture from `now`: what was not yet shown is dropped; the last frame stays."""
        self._tick(now)
        self.typewriter.clear()
        step = dying.duration_s / dying.steps
        for k, frame in enumerate(self.wall.death_frames(dying.style, dying.steps, rng)):
            yield now + k * step, frame


def replay(
    tokens: Iterable[tuple[float, str]],
    *,
    born: float,
    rows: int,
    cols: int,
    font: Font = FULL,
    pacing: Pacing = Pacing(),
    death_at: float | None = None,
    dying: Dying = Dying(),
    life: str = "",
) -> Iterator[Timed]:
    """A life's frames from its tokens `(arrival time, text)` in order, as the live display made them:
    the birth frame at `born`, the text at its pace, then (if it died) the death picture at `death_at`.
    A life without a death plays its backlog out. Lazy: a long life is never all in memory."""
    reel = Reel(Wall(rows, cols, font), pacing.typewriter())
    yield born, reel.birth(born)
    for at, text in tokens:
        keys = to_cells(text)
        if keys:
            yield from reel.push(keys, at)
    if death_at is None:
        yield from reel.advance(float("inf"))
    else:
        yield from reel.advance(death_at)
        yield from reel.death(death_at, dying, death_rng(life))
