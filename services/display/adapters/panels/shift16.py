"""Chained 16-bit constant-current shift registers (STP16 / TLC5926 class), one per module.

The whole wall is one SPI transfer, 2 bytes per module, last module first, MSB first: the first bit
shifted in travels furthest and ends on OUT15 of the last register. Chip-select drives LE, so the new
picture appears when chip-select rises. At power-up the latches hold noise: /OE, driven through a GPIO
line, keeps the LEDs dark until the first frame is latched, and darkens them again at shutdown.
Brightness is fixed by the drivers' current-set resistor (R-EXT).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from display.adapters.gpio import OutputLine
from display.adapters.panels.base import Wiring, chain_order
from display.adapters.transport import Transport
from display.core.frame import Frame

log = logging.getLogger(__name__)

# A..U on outputs 0..15; DP has no output left: 16 outputs, 17 segments
DEFAULT_WIRING: tuple[int, ...] = tuple(range(16)) + (-1,)


class ShiftRegisterPanel:
    def __init__(
        self,
        transport: Transport,
        rows: int,
        cols: int,
        wiring: Sequence[int] | None = None,
        cell_order: str = "rows",
        modules_per_board: int = 8,
        output_enable: OutputLine | None = None,
        lit_level: bool = True,
    ) -> None:
        self.transport = transport
        self.chain = chain_order(rows, cols, cell_order)
        self.per_board = modules_per_board
        self.wiring = Wiring(DEFAULT_WIRING if wiring is None else wiring)
        self.segments = self.wiring.segments
        self.output_enable = output_enable
        self.lit_level = lit_level
        self._lit = False

    def encode(self, frame: Frame) -> bytes:
        # last module first; each 16-bit word MSB first
        masks = frame.masks
        word = self.wiring.word
        out = bytearray()
        for cell in reversed(self.chain):
            w = word(masks[cell])
            out.append(w >> 8)
            out.append(w & 0xFF)
        return bytes(out)

    def _blank(self) -> bytes:
        return bytes(2 * len(self.chain))

    def _light(self, on: bool) -> None:
        if self.output_enable is not None:
            self.output_enable.set(self.lit_level if on else not self.lit_level)
        self._lit = on

    def start(self) -> None:
        # the line was requested dark; latch a blank picture before anything may light
        self.transport.write(self._blank())

    def show(self, frame: Frame) -> None:
        self.transport.write(self.encode(frame))
        if not self._lit:
            self._light(True)  # only after the first real picture is latched

    def refresh(self, frame: Frame | None) -> None:
        if frame is None:
            self.transport.write(self._blank())
            return
        self.transport.write(self.encode(frame))
        self._light(True)  # /OE is the registers' only configuration: set it again as well

    def close(self) -> None:
        try:
            self.transport.write(self._blank())
            self._light(False)
        finally:
            if self.output_enable is not None:
                self.output_enable.close()
            self.transport.close()
