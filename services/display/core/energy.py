"""What lighting the wall costs: lit segments × time shown × current × supply voltage × duty. Pure.

The display knows every frame it shows, so it counts the segments each frame lights and how long the
frame stayed up (segment-seconds). A segment driven at ``segment_ma`` from a ``supply_v`` supply draws
``segment_ma / 1000 × supply_v`` watts while it is driven; ``duty`` is the share of the time it is driven
(a multiplexed chip lights one digit of its eight at a time; PWM dimming lowers it further). The drivers'
quiescent current and the controller's own power are left out: this is the light, estimated.
"""

from __future__ import annotations

from collections.abc import Iterable

# Digits multiplexed per chip (HT16K33: 8 commons; MAX6954 as this project wires it: 8 digits per chip).
MULTIPLEXED_DIGITS = 8
DIMMING_STEPS = 16


def lit_segments(masks: Iterable[int]) -> int:
    """Segments lit in a frame (its 17-bit masks: sixteen segments and the decimal point)."""
    return sum(int(m).bit_count() for m in masks)


def panel_duty(panel: str, brightness: float) -> float:
    """The share of time a lit segment is driven on ``panel`` at ``brightness`` (0..1).

    shift16 (STP16/TLC5926 class): static constant-current drive, brightness fixed by the current-set
    resistor: 1. HT16K33 and MAX6954: eight digits multiplexed (1/8), times the 16-step dimming
    (n/16, the panels' own rounding). Without a panel (the mirror alone) the wall is taken as static."""
    if panel in ("ht16k33", "max6954"):
        step = max(0, min(DIMMING_STEPS - 1, round(brightness * (DIMMING_STEPS - 1))))
        return (step + 1) / DIMMING_STEPS / MULTIPLEXED_DIGITS
    return 1.0


def light_watts(lit: int, segment_ma: float, supply_v: float, duty: float) -> float:
    """Power of ``lit`` segments."""
    return lit * segment_ma / 1000.0 * supply_v * duty


def light_joules(segment_seconds: float, segment_ma: float, supply_v: float, duty: float) -> float:
    """Energy of ``segment_seconds`` (one segment lit for one second is one segment-second)."""
    return segment_seconds * segment_ma / 1000.0 * supply_v * duty


class LightMeter:
    """Counts segment-seconds: each frame's lit segments for as long as it stays up. Times come from the
    caller (a monotonic clock), so a known sequence of frames gives a known count."""

    def __init__(self, now: float) -> None:
        self._lit = 0
        self._since = now
        self._done = 0.0  # segment-seconds of frames already replaced

    def show(self, lit: int, now: float) -> None:
        """A frame with ``lit`` segments goes up at ``now``."""
        self._done += self._lit * max(0.0, now - self._since)
        self._lit, self._since = lit, now

    def restart(self, now: float) -> None:
        """Count from ``now`` on (a new life); the frame up now goes on counting."""
        self._done, self._since = 0.0, now

    def segment_seconds(self, now: float) -> float:
        return self._done + self._lit * max(0.0, now - self._since)

    @property
    def lit(self) -> int:
        return self._lit
