"""Life subscribers: whatever wants to hear the mind's lives as the display sees them.

The upstream client fans every event out to each subscriber. All methods are synchronous and must be
fast: they are called on the event loop, one after another, for every token.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class LifeSubscriber(Protocol):
    """Receives one life's events in order: a birth, its tokens and vitals, then (maybe) a death."""

    def on_birth(self, birth: dict) -> None:
        """A `birth` event's data (see docs/stream-contract.md); a new life begins."""

    def on_token(self, token: dict) -> None:
        """A `token` event's data: `{"life", "seq", "text"}`."""

    def on_vitals(self, vitals: dict) -> None:
        """A `vitals` event's data."""

    def on_death(self, life: str | None) -> None:
        """The stream ended or broke after a birth; `life` is the id of the life that ended (None if unknown)."""
