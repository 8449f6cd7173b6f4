"""Life subscribers: whatever wants to hear the mind's lives as the display sees them.

The display fans every event out to each subscriber. All methods are synchronous and must be fast:
they are called on the event loop, one after another, for every token. The display alone decides
what a life is doing (born, resumed after a broken stream, dead); subscribers are told, they never
work it out again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from display.core.causes import Death

log = logging.getLogger(__name__)


@runtime_checkable
class LifeSubscriber(Protocol):
    """Receives one life's events in order: a birth, its tokens and vitals, then (maybe) a death."""

    def on_birth(self, birth: dict) -> None:
        """A `birth` event's data (see docs/stream-contract.md); a new life begins."""

    def on_token(self, token: dict) -> None:
        """A `token` event's data: `{"life", "seq", "text"}`, its text masked if the blocklist is on.

        With `"tail": True` the text is the end of token `seq` that the blocklist held back (it waits
        for a word to end) and released at a death or a resume: it goes after that token's text."""

    def on_vitals(self, vitals: dict) -> None:
        """A `vitals` event's data."""

    def on_death(self, death: Death) -> None:
        """The life ended: announced by the mind (a `death` event), or its stream ended or broke. The cause
        says how it is known. Told again, with a stronger cause, if the mind's word comes after the break."""

    def on_resume(self, life: str) -> None:
        """The life told dead by `on_death` goes on: its stream broke, but the same life came back."""

    # Optional (a subscriber without them is not told): ``on_sense(sense)``, a `sense` event's data (the
    # system's readings, not the model's words); ``on_trim(life, chars, seq)``, the wall skipped ``chars``
    # characters of the text up to token ``seq`` (its backlog overflowed).


class LifeFanout:
    """Every subscriber hears every call; one that raises is logged and counted, never stops the others."""

    def __init__(self, subscribers: Iterable[LifeSubscriber] = ()) -> None:
        self.subscribers: list[LifeSubscriber] = list(subscribers)
        self.errors = 0

    def _each(self, call: Callable[[LifeSubscriber], None]) -> None:
        for sub in self.subscribers:
            try:
                call(sub)
            except Exception:  # one broken subscriber must not stop the wall
                self.errors += 1
                if self.errors <= 10 or self.errors % 1000 == 0:
                    log.exception("life subscriber %r failed (%d failures so far)", sub, self.errors)

    def on_birth(self, birth: dict) -> None:
        self._each(lambda sub: sub.on_birth(birth))

    def on_token(self, token: dict) -> None:
        self._each(lambda sub: sub.on_token(token))

    def on_vitals(self, vitals: dict) -> None:
        self._each(lambda sub: sub.on_vitals(vitals))

    def on_death(self, death: Death) -> None:
        self._each(lambda sub: sub.on_death(death))

    def on_resume(self, life: str) -> None:
        self._each(lambda sub: sub.on_resume(life))

    def on_sense(self, sense: dict) -> None:
        self._each(lambda sub: sub.on_sense(sense) if hasattr(sub, "on_sense") else None)

    def on_trim(self, life: str, chars: int, seq: int | None) -> None:
        self._each(lambda sub: sub.on_trim(life, chars, seq) if hasattr(sub, "on_trim") else None)
