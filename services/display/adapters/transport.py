"""Transports only move bytes: one `write(data)` is one chip-select-framed SPI transfer."""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class SpiTransport:
    """spidev, imported only when a real bus is opened so everything else runs without it."""

    def __init__(self, bus: int, device: int, speed_hz: int, mode: int) -> None:
        import spidev  # lazily: absent or useless off a Pi

        self._spi = spidev.SpiDev()
        self._spi.open(bus, device)
        self._spi.max_speed_hz = speed_hz
        self._spi.mode = mode
        self.name = f"/dev/spidev{bus}.{device}"

    def write(self, data: bytes) -> None:
        self._spi.writebytes2(data)

    def close(self) -> None:
        self._spi.close()


class RecordingTransport:
    """A fake bus that keeps every transfer, for tests and for running without hardware."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True
