"""MAX6954 (SPI): up to 8 sixteen-segment digits per chip, chips daisy-chained on one chip-select.

Every transfer carries one 16-bit command per chip (R/W bit, 7-bit register address, data byte); the
first command shifted in ends in the chip furthest along the chain, and a chip with nothing to do gets
a no-op (register 0x00). Decode is off: each digit is two registers, 0x60+d and 0x68+d (both planes),
whose bits drive the segments as Maxim's application note 3212 (Table 1) wires a 16-segment digit:

    0x60+d: D0 g1, D1 f, D2 e, D3 d1, D4 c, D5 b, D6 a1, D7 d2
    0x68+d: D0 m,  D1 l, D2 k, D3 j,  D4 i, D5 h, D6 g2, D7 dp

Sixteen bits for seventeen segments: with decode off there is no bit for a2, the right half of the
top bar, so the panel declares it cannot light segment B (every top bar shows its left half only).
Pins in the wiring are these register bits: 0..7 the bits of 0x60+d, 8..15 those of 0x68+d.
The chips power up in shutdown; `refresh` re-sends the configuration without passing through it.
"""

from __future__ import annotations

from collections.abc import Sequence

from display.adapters.panels.base import Wiring, chain_order, chunks
from display.adapters.transport import Transport
from display.core.frame import Frame

# registers (datasheet, register address map)
NOOP = 0x00
DECODE = 0x01
INTENSITY = 0x02
SCAN_LIMIT = 0x03
CONFIG = 0x04
TEST = 0x07
DIGIT_TYPE = 0x0C
DIGIT_LOW = 0x60  # +d: both planes, segments g1 f e d1 c b a1 d2
DIGIT_HIGH = 0x68  # +d: both planes, segments m l k j i h g2 dp
CONFIG_SHUTDOWN = 0x00
CONFIG_NORMAL = 0x01  # running, global intensity, no blinking

# Segment (A..U, DP; A/B top halves, C/D right, E/F bottom halves, G/H left, K M N upper inner,
# P right middle, R S T lower inner, U left middle) -> register bit, for the AN3212 wiring:
# a1=A a2=B b=C c=D d1=E d2=F e=G f=H h=K i=M j=N g2=P k=R l=S m=T g1=U dp=DP.
DEFAULT_WIRING: tuple[int, ...] = (6, -1, 5, 4, 3, 7, 2, 1, 13, 12, 11, 14, 10, 9, 8, 0, 15)


class Max6954Panel:
    DIGITS = 8

    def __init__(
        self,
        transport: Transport,
        rows: int,
        cols: int,
        wiring: Sequence[int] | None = None,
        cell_order: str = "rows",
        brightness: float = 1.0,
        digits_per_chip: int = 8,
    ) -> None:
        if not 1 <= digits_per_chip <= self.DIGITS:
            raise ValueError("a MAX6954 drives 1 to 8 sixteen-segment digits")
        self.transport = transport
        self.digits = digits_per_chip
        self.chips_cells = chunks(chain_order(rows, cols, cell_order), digits_per_chip)
        self.chips = len(self.chips_cells)
        self.wiring = Wiring(DEFAULT_WIRING if wiring is None else wiring)
        self.segments = self.wiring.segments
        self.brightness = brightness
        self._sent: list[list[int]] | None = None  # per chip, the 16 register values last sent

    @staticmethod
    def intensity(brightness: float) -> int:
        return max(0, min(15, round(brightness * 15)))  # 1/16 .. 16/16 duty

    def _all(self, reg: int, value: int) -> bytes:
        return bytes((reg, value)) * self.chips

    def _transfer(self, commands: list[tuple[int, int]]) -> bytes:
        # commands[i] is for chip i (0 = nearest the controller); the furthest chip's goes first
        return b"".join(bytes(c) for c in reversed(commands))

    def setup_commands(self) -> list[tuple[int, int]]:
        return [
            (DECODE, 0x00),  # no font: raw segments
            (DIGIT_TYPE, 0x00),  # 16-segment digits
            (SCAN_LIMIT, self.digits - 1),
            (INTENSITY, self.intensity(self.brightness)),
            (TEST, 0x00),
        ]

    def registers(self, frame: Frame | None) -> list[list[int]]:
        """Per chip, the 16 digit register values (0x60..0x67, then 0x68..0x6F) that show `frame`."""
        out = []
        word = self.wiring.word
        for cells in self.chips_cells:
            words = [word(frame.masks[c]) if frame is not None else 0 for c in cells]
            words += [0] * (self.DIGITS - len(words))
            out.append([w & 0xFF for w in words] + [w >> 8 for w in words])
        return out

    def encode(self, frame: Frame | None, since: list[list[int]] | None = None) -> list[bytes]:
        """The transfers that show `frame`: one per digit register, a no-op for a chip whose register
        already holds that value (`since`: what was last sent), none where no chip changes."""
        return self._transfers(self.registers(frame), since)

    def _transfers(self, regs: list[list[int]], since: list[list[int]] | None) -> list[bytes]:
        transfers = []
        for k in range(16):
            reg = (DIGIT_LOW + k) if k < 8 else (DIGIT_HIGH + k - 8)
            cmds = [
                (NOOP, 0) if since is not None and since[i][k] == chip[k] else (reg, chip[k])
                for i, chip in enumerate(regs)
            ]
            if any(c[0] != NOOP for c in cmds):
                transfers.append(self._transfer(cmds))
        return transfers

    def _send(self, frame: Frame | None, since: list[list[int]] | None) -> None:
        regs = self.registers(frame)
        self._sent = None  # unknown until every transfer went out
        for transfer in self._transfers(regs, since):
            self.transport.write(transfer)
        self._sent = regs

    def set_brightness(self, brightness: float) -> None:
        self.brightness = brightness
        self.transport.write(self._all(INTENSITY, self.intensity(brightness)))

    def start(self) -> None:
        self.transport.write(self._all(CONFIG, CONFIG_SHUTDOWN))  # they power up in it; make sure
        for reg, value in self.setup_commands():
            self.transport.write(self._all(reg, value))
        self._send(None, None)
        self.transport.write(self._all(CONFIG, CONFIG_NORMAL))

    def show(self, frame: Frame) -> None:
        self._send(frame, self._sent)

    def refresh(self, frame: Frame | None) -> None:
        # digits before leaving shutdown: a chip that reset shows nothing random on the way back
        for reg, value in self.setup_commands():
            self.transport.write(self._all(reg, value))
        self._send(frame, None)
        self.transport.write(self._all(CONFIG, CONFIG_NORMAL))

    def close(self) -> None:
        try:
            self.transport.write(self._all(CONFIG, CONFIG_SHUTDOWN))  # the wall goes dark
        finally:
            self.transport.close()
