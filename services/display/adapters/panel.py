"""Panels know a chip protocol; they get a transport and show Frames. Encoders work per board.

Two chips: chained 16-bit constant-current shift registers (STP16/TLC5926 class; one module per
16 bits, the whole wall in one transfer, latched on chip-select) and the MAX6954 (8 sixteen-segment
digits per chip, chips daisy-chained, one 16-bit command per chip per transfer).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol, Sequence

from display.adapters.transport import SpiTransport, Transport
from display.core.frame import Frame

log = logging.getLogger(__name__)

IDENTITY_WIRING: tuple[int, ...] = tuple(range(16)) + (-1,)


class Panel(Protocol):
    def show(self, frame: Frame) -> None: ...

    def close(self) -> None: ...


def chain_order(rows: int, cols: int, order: str) -> list[int]:
    """Cell index of each module along the chain, starting at the module nearest the controller."""
    cells = []
    for r in range(rows):
        cs = range(cols)
        if order == "serpentine" and r % 2 == 1:
            cs = reversed(cs)
        cells.extend(r * cols + c for c in cs)
    return cells


class Wiring:
    """Segment bit -> output pin, as three lookup tables so a mask converts in three steps."""

    def __init__(self, wiring: Sequence[int] = IDENTITY_WIRING) -> None:
        if len(wiring) != 17:
            raise ValueError("wiring needs 17 entries (A..U, DP)")

        def word(bits: int, base: int, count: int) -> int:
            w = 0
            for b in range(count):
                pin = wiring[base + b]
                if bits >> b & 1 and pin >= 0:
                    w |= 1 << pin
            return w

        self._low = [word(v, 0, 8) for v in range(256)]
        self._high = [word(v, 8, 8) for v in range(256)]
        self._dp = word(1, 16, 1)

    def word(self, mask: int) -> int:
        w = self._low[mask & 0xFF] | self._high[mask >> 8 & 0xFF]
        return w | self._dp if mask >> 16 & 1 else w


class ShiftRegisterBoard:
    """Encodes one board's modules (in chain order) into the bytes to shift through it."""

    def __init__(self, wiring: Wiring) -> None:
        self.wiring = wiring

    def encode(self, masks: Sequence[int]) -> bytes:
        # the first bits shifted in travel furthest: the last module's word goes first, MSB first
        out = bytearray()
        word = self.wiring.word
        for m in reversed(masks):
            w = word(m)
            out.append(w >> 8)
            out.append(w & 0xFF)
        return bytes(out)


class ShiftRegisterPanel:
    """The whole wall in one transfer: 2 bytes per module, 192 bytes for 96 cells."""

    def __init__(self, transport: Transport, rows: int, cols: int, wiring: Sequence[int] = IDENTITY_WIRING,
                 cell_order: str = "rows", modules_per_board: int = 8) -> None:
        self.transport = transport
        self.chain = chain_order(rows, cols, cell_order)
        self.per_board = modules_per_board
        self.board = ShiftRegisterBoard(Wiring(wiring))

    def encode(self, frame: Frame) -> bytes:
        masks = frame.masks
        chained = [masks[i] for i in self.chain]
        boards = [chained[i : i + self.per_board] for i in range(0, len(chained), self.per_board)]
        return b"".join(self.board.encode(group) for group in reversed(boards))

    def show(self, frame: Frame) -> None:
        self.transport.write(self.encode(frame))

    def close(self) -> None:
        self.transport.write(bytes(2 * len(self.chain)))  # leave the wall dark
        self.transport.close()


# MAX6954 registers (datasheet, Table "Register Address Map")
MAX6954_NOOP = 0x00
MAX6954_DECODE = 0x01
MAX6954_INTENSITY = 0x02
MAX6954_SCAN_LIMIT = 0x03
MAX6954_CONFIG = 0x04
MAX6954_TEST = 0x07
MAX6954_DIGIT_TYPE = 0x0C
MAX6954_DIGITS_BOTH_PLANES = 0x60  # 0x60+d: digit d low segments, 0x68+d: high segments (16-seg digit)


class Max6954Board:
    """One MAX6954 with up to 8 sixteen-segment digits: 16 (register, data) writes per picture.

    The chip has 16 segment outputs per 16-segment digit; the wiring maps the 17 mask bits onto its 16
    register bits (DP is unconnected by default). Check the wiring against the board's schematic.
    """

    DIGITS = 8

    def __init__(self, wiring: Wiring) -> None:
        self.wiring = wiring

    def encode(self, masks: Sequence[int]) -> list[tuple[int, int]]:
        words = [self.wiring.word(m) for m in masks] + [0] * (self.DIGITS - len(masks))
        low = [(MAX6954_DIGITS_BOTH_PLANES + d, w & 0xFF) for d, w in enumerate(words)]
        high = [(MAX6954_DIGITS_BOTH_PLANES + 8 + d, w >> 8 & 0xFF) for d, w in enumerate(words)]
        return low + high


class Max6954Panel:
    """Chips daisy-chained on one chip-select: each transfer carries one command per chip."""

    def __init__(self, transport: Transport, rows: int, cols: int, wiring: Sequence[int] = IDENTITY_WIRING,
                 cell_order: str = "rows", brightness: float = 1.0) -> None:
        self.transport = transport
        self.chain = chain_order(rows, cols, cell_order)
        self.board = Max6954Board(Wiring(wiring))
        self.chips = -(-len(self.chain) // Max6954Board.DIGITS)
        for reg, value in self.init_commands(brightness):
            self.transport.write(self._all(reg, value))

    @staticmethod
    def intensity(brightness: float) -> int:
        return max(0, min(15, round(brightness * 15)))

    def init_commands(self, brightness: float) -> list[tuple[int, int]]:
        return [
            (MAX6954_CONFIG, 0x00),  # shutdown while configuring
            (MAX6954_DECODE, 0x00),  # no font decoding: we send raw segments
            (MAX6954_DIGIT_TYPE, 0x00),  # 16-segment digits
            (MAX6954_SCAN_LIMIT, 0x07),  # scan all 8 digits
            (MAX6954_INTENSITY, self.intensity(brightness)),
            (MAX6954_TEST, 0x00),
            (MAX6954_CONFIG, 0x01),  # normal operation, global intensity
        ]

    def _all(self, reg: int, value: int) -> bytes:
        return bytes((reg, value)) * self.chips

    def set_brightness(self, brightness: float) -> None:
        self.transport.write(self._all(MAX6954_INTENSITY, self.intensity(brightness)))

    def encode(self, frame: Frame) -> list[bytes]:
        masks = frame.masks
        chained = [masks[i] for i in self.chain]
        per_chip = [self.board.encode(chained[i : i + 8]) for i in range(0, len(chained), 8)]
        # the first 16 bits shifted in end up in the chip furthest along the chain
        return [b"".join(bytes(cmds[k]) for cmds in reversed(per_chip)) for k in range(16)]

    def show(self, frame: Frame) -> None:
        for transfer in self.encode(frame):
            self.transport.write(transfer)

    def close(self) -> None:
        self.transport.write(self._all(MAX6954_CONFIG, 0x00))  # shutdown: the wall goes dark
        self.transport.close()


def open_panel(settings) -> Panel | None:
    """The configured SPI panel, or None (web mirror only) when there is no SPI device."""
    if settings.panel == "none":
        log.info("panel disabled by settings: web mirror only")
        return None
    dev = Path(f"/dev/spidev{settings.spi_bus}.{settings.spi_device}")
    if not dev.exists():
        log.warning("no SPI device %s: running with the web mirror only", dev)
        return None
    try:
        transport = SpiTransport(settings.spi_bus, settings.spi_device, settings.spi_speed_hz, settings.spi_mode)
    except Exception:  # noqa: BLE001 - a missing module or a permission error both mean "no panel"
        log.exception("cannot open %s: running with the web mirror only", dev)
        return None
    if settings.panel == "max6954":
        panel: Panel = Max6954Panel(transport, settings.rows, settings.cols, settings.wiring,
                                    settings.cell_order, settings.brightness)
    else:
        panel = ShiftRegisterPanel(transport, settings.rows, settings.cols, settings.wiring,
                                   settings.cell_order, settings.modules_per_board)
    log.info("panel %s on %s", settings.panel if settings.panel != "auto" else "shift16", dev)
    return panel
