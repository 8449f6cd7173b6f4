"""HT16K33 (I2C): 16 rows x 8 commons per chip = 8 sixteen-segment digits, no decimal point.

Digit j is common j; its 16 segments are rows 0..15, which the wiring maps from A..U (pins = rows).
Display RAM holds two bytes per common (rows 0-7, then 8-15), written in one 17-byte transaction from
address 0x00. Commands are single bytes: 0x21 oscillator on, 0x81 display on (no blinking),
0xE0|level the 16 dimming steps, 0x80 display off, 0x20 standby. A chip has eight addresses
(0x70-0x77), so twelve boards take two buses or a TCA9548A multiplexer (one byte, 1 << channel,
selects its channel). A frame rewrites only the chips whose picture changed; a refresh rewrites all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from display.adapters.panels.base import Wiring, chain_order, chunks
from display.adapters.transport import I2cBus
from display.core.frame import Frame

OSCILLATOR_ON = 0x21
STANDBY = 0x20
DISPLAY_ON = 0x81
DISPLAY_OFF = 0x80
DIMMING = 0xE0
RAM = 0x00

DEFAULT_WIRING: tuple[int, ...] = tuple(range(16)) + (-1,)  # A..U on rows 0..15; no DP on this chip


@dataclass(frozen=True)
class I2cBoard:
    bus: int
    address: int
    channel: int | None = None  # multiplexer channel, when behind one


def plan_boards(
    count: int,
    buses: Sequence[int],
    addresses: Sequence[int],
    mux_address: int | None = None,
    mux_channels: Sequence[int] = (),
) -> list[I2cBoard]:
    """Where each board (in chain order) sits: bus by bus, channel by channel, address by address."""
    channels: Sequence[int | None] = list(mux_channels) if mux_address is not None else [None]
    slots = [I2cBoard(b, a, ch) for b in buses for ch in channels for a in addresses]
    if len(slots) < count:
        raise ValueError(
            f"{count} HT16K33 boards need {count} addresses; buses {list(buses)}"
            f"{f', mux channels {list(mux_channels)}' if mux_address is not None else ''} and "
            f"{len(addresses)} addresses give {len(slots)}"
        )
    return slots[:count]


class Ht16k33Panel:
    DIGITS = 8

    def __init__(
        self,
        buses: dict[int, I2cBus],
        boards: Sequence[I2cBoard],
        rows: int,
        cols: int,
        wiring: Sequence[int] | None = None,
        cell_order: str = "rows",
        brightness: float = 1.0,
        digits_per_chip: int = 8,
        mux_address: int | None = None,
    ) -> None:
        if not 1 <= digits_per_chip <= self.DIGITS:
            raise ValueError("an HT16K33 drives 1 to 8 sixteen-segment digits")
        self.buses = buses
        self.chips_cells = chunks(chain_order(rows, cols, cell_order), digits_per_chip)
        if len(boards) < len(self.chips_cells):
            raise ValueError(f"{len(self.chips_cells)} boards needed, {len(boards)} addresses given")
        self.boards = list(boards)[: len(self.chips_cells)]
        if any(b.channel is not None for b in self.boards) and mux_address is None:
            raise ValueError("boards on multiplexer channels need the multiplexer's address")
        self.mux_address = mux_address
        self.wiring = Wiring(DEFAULT_WIRING if wiring is None else wiring)
        self.segments = self.wiring.segments
        self.brightness = brightness
        self._selected: dict[int, int | None] = {}  # bus -> multiplexer channel selected now
        self._sent: list[bytes | None] = [None] * len(self.boards)  # display RAM last written per chip

    @staticmethod
    def dimming(brightness: float) -> int:
        return max(0, min(15, round(brightness * 15)))  # 1/16 .. 16/16 duty

    def ram(self, frame: Frame | None, chip: int) -> bytes:
        """The 16 bytes of one chip's display RAM: per common, rows 0-7 then rows 8-15."""
        out = bytearray(16)
        if frame is not None:
            word = self.wiring.word
            for j, cell in enumerate(self.chips_cells[chip]):
                w = word(frame.masks[cell])
                out[2 * j] = w & 0xFF
                out[2 * j + 1] = w >> 8
        return bytes(out)

    def _write(self, board: I2cBoard, data: bytes) -> None:
        bus = self.buses[board.bus]
        if board.channel is not None and self._selected.get(board.bus) != board.channel:
            self._selected[board.bus] = None  # unknown until the select went out
            bus.write(self.mux_address, bytes([1 << board.channel]))
            self._selected[board.bus] = board.channel
        bus.write(board.address, data)

    def _configure(self, frame: Frame | None) -> None:
        self._selected.clear()  # a multiplexer that reset selects nothing
        for i, board in enumerate(self.boards):
            self._sent[i] = None
            ram = self.ram(frame, i)
            self._write(board, bytes([OSCILLATOR_ON]))
            self._write(board, bytes([DIMMING | self.dimming(self.brightness)]))
            self._write(board, bytes([RAM]) + ram)  # the picture before the display goes on
            self._write(board, bytes([DISPLAY_ON]))
            self._sent[i] = ram

    def start(self) -> None:
        self._configure(None)

    def show(self, frame: Frame) -> None:
        for i, board in enumerate(self.boards):
            ram = self.ram(frame, i)
            if ram != self._sent[i]:
                self._sent[i] = None
                self._write(board, bytes([RAM]) + ram)
                self._sent[i] = ram

    def refresh(self, frame: Frame | None) -> None:
        self._configure(frame)

    def set_brightness(self, brightness: float) -> None:
        self.brightness = brightness
        for board in self.boards:
            self._write(board, bytes([DIMMING | self.dimming(brightness)]))

    def close(self) -> None:
        failed = []
        for board in self.boards:
            try:  # one chip that does not answer must not leave the others lit
                self._write(board, bytes([DISPLAY_OFF]))
                self._write(board, bytes([STANDBY]))
            except OSError:
                failed.append(board)
        for bus in self.buses.values():
            bus.close()
        if failed:
            raise OSError(f"could not switch off {len(failed)} HT16K33 chip(s): {failed}")
