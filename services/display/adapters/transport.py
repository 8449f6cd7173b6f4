"""Transports only move bytes. SPI: one `write(data)` is one chip-select-framed transfer. I2C: one
`write(address, data)` is one write transaction to that address. The bus modules are imported lazily."""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class I2cBus(Protocol):
    def write(self, address: int, data: bytes) -> None: ...

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


class SmbusTransport:
    """One I2C bus through smbus2 (imported lazily): each write is one plain I2C write message, so a
    17-byte display RAM write goes out as START, address, 17 bytes, STOP."""

    def __init__(self, bus: int) -> None:
        from smbus2 import SMBus, i2c_msg  # lazily: absent or useless off a Pi

        self._bus = SMBus(bus)
        self._msg = i2c_msg
        self.name = f"/dev/i2c-{bus}"

    def write(self, address: int, data: bytes) -> None:
        self._bus.i2c_rdwr(self._msg.write(address, data))

    def close(self) -> None:
        self._bus.close()


class RecordingTransport:
    """A fake SPI bus that keeps every transfer, for tests and for running without hardware."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True


class RecordingI2c:
    """A fake I2C bus that keeps every (address, bytes) write."""

    def __init__(self) -> None:
        self.writes: list[tuple[int, bytes]] = []
        self.closed = False

    def write(self, address: int, data: bytes) -> None:
        self.writes.append((address, bytes(data)))

    def close(self) -> None:
        self.closed = True
