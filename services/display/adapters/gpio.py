"""One GPIO output line, through libgpiod v2's Python bindings (`gpiod`, imported lazily).

It needs only the GPIO character device (/dev/gpiochipN): no root, no /sys, so it works in the
display's non-root container with the device passed through, on a Pi 4 and a Pi 5 alike.
"""

from __future__ import annotations

from typing import Protocol


class OutputLine(Protocol):
    def set(self, value: bool) -> None: ...

    def close(self) -> None: ...


class GpioLine:
    """An output line requested with its initial level, so it never glitches on the way."""

    def __init__(self, chip: str, offset: int, value: bool, consumer: str = "latent-reflection") -> None:
        import gpiod  # lazily: absent or useless off a Pi
        from gpiod.line import Direction, Value

        self._levels = (Value.INACTIVE, Value.ACTIVE)
        self._offset = offset
        settings = gpiod.LineSettings(direction=Direction.OUTPUT, output_value=self._levels[value])
        self._request = gpiod.request_lines(chip, consumer=consumer, config={offset: settings})
        self.name = f"{chip} line {offset}"

    def set(self, value: bool) -> None:
        self._request.set_value(self._offset, self._levels[value])

    def close(self) -> None:
        self._request.release()


class RecordingLine:
    """A fake line that keeps every level it was set to (the first is its initial level)."""

    def __init__(self, value: bool = False) -> None:
        self.levels: list[bool] = [value]
        self.closed = False

    @property
    def value(self) -> bool:
        return self.levels[-1]

    def set(self, value: bool) -> None:
        self.levels.append(bool(value))

    def close(self) -> None:
        self.closed = True
