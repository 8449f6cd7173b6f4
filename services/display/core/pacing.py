"""Typewriter pacing: release the backlog at a readable pace, faster as it grows, never without bound."""

from __future__ import annotations

from collections import deque

from display.core.font import ELLIPSIS

SENTENCE_ENDS = frozenset(".!?")


class Typewriter:
    """A bounded backlog of cell keys released over time. Pure: the caller passes `now` in.

    Pace: `rate` keys/s with an empty backlog, rising linearly to `max_rate` when the backlog holds
    `backlog_full` keys; a pause of `sentence_pause` s after a sentence end (shrinking as the backlog
    grows). When the backlog exceeds `max_backlog`, its oldest part is dropped at a word boundary and
    an ellipsis cell marks the gap, so the wall shows that something was skipped.
    With `enabled=False` everything is released at once (for latency measurements and tests).
    """

    def __init__(
        self,
        rate: float = 16.0,
        max_rate: float = 30.0,
        backlog_full: int = 96,
        sentence_pause: float = 0.4,
        max_backlog: int = 1000,
        enabled: bool = True,
    ) -> None:
        if rate <= 0 or max_rate < rate:
            raise ValueError("need 0 < rate <= max_rate")
        self.rate = rate
        self.max_rate = max_rate
        self.backlog_full = max(1, backlog_full)
        self.sentence_pause = sentence_pause
        self.max_backlog = max(8, max_backlog)
        self.enabled = enabled
        self.backlog: deque[str] = deque()
        self.next_at = float("-inf")
        self.dropped = 0  # keys dropped over the bound, in total

    def clear(self) -> None:
        self.backlog.clear()
        self.next_at = float("-inf")

    def __len__(self) -> int:
        return len(self.backlog)

    def push(self, keys: str) -> int:
        """Queue keys; returns how many were dropped to keep the backlog bounded."""
        self.backlog.extend(keys)
        if len(self.backlog) <= self.max_backlog:
            return 0
        keep = list(self.backlog)[-(self.max_backlog // 2) :]
        # start the kept part at a word, so the wall shows "... word" and not half a word
        for i, key in enumerate(keep):
            if key == " ":
                keep = keep[i + 1 :]
                break
        dropped = len(self.backlog) - len(keep)
        self.backlog.clear()
        self.backlog.extend((ELLIPSIS, " "))
        self.backlog.extend(keep)
        self.dropped += dropped
        return dropped

    def current_rate(self) -> float:
        fill = min(1.0, len(self.backlog) / self.backlog_full)
        return self.rate + (self.max_rate - self.rate) * fill

    def release(self, now: float) -> tuple[str, float | None]:
        """The keys due at `now`, and the seconds until the next one is due (None: backlog empty)."""
        if not self.enabled:
            out = "".join(self.backlog)
            self.backlog.clear()
            return out, None
        out: list[str] = []
        while self.backlog and now >= self.next_at:
            key = self.backlog.popleft()
            out.append(key)
            rate = self.current_rate()
            interval = 1.0 / rate
            if key in SENTENCE_ENDS and (not self.backlog or self.backlog[0] == " "):
                slack = (self.max_rate - rate) / (self.max_rate - self.rate) if self.max_rate > self.rate else 1.0
                interval += self.sentence_pause * slack
            # keep the cadence when woken a little late, but never bank up a burst after idling
            base = self.next_at if self.next_at >= now - interval else now
            self.next_at = base + interval
        wait = max(0.0, self.next_at - now) if self.backlog else None
        return "".join(out), wait
