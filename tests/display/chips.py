"""Chip emulators written from the datasheets, and the physical wall they sit on.

Each emulator takes the bytes a panel sends (SPI transfers framed by chip-select, or I2C write
transactions) and keeps the chip's state as the datasheet describes it; `Wall*.lit()` then reads
back which segments each cell lights, through the boards' physical wiring. A test compares that with
the frame's masks: equal means the wall shows exactly what the mirror shows.

Power-up contents are random where the datasheet leaves them undefined, so a panel that forgets to
set something is caught.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

DP = 16
SEGMENT_NAMES = "ABCDEFGHKMNPRSTU"  # bit i -> name; bit 16 is DP


def mask_of(segments: Sequence[int]) -> int:
    m = 0
    for s in segments:
        m |= 1 << s
    return m


@dataclass
class Board:
    """The physical truth of a wall: the cell each module sits at along the chain (or per chip, in
    chip order), and which module segment each chip output drives (None = not connected)."""

    cells: list[int]
    outputs: dict[int, int]  # chip output (pin / register bit / row) -> segment bit 0..16

    def mask(self, word: int) -> int:
        return mask_of(seg for pin, seg in self.outputs.items() if word >> pin & 1)


# --------------------------------------------------------------------------------- shift16
class ShiftChain:
    """N chained 16-bit shift registers with output latches (TLC5926 / STP16 class).

    On each rising clock the bit on SDI enters bit 0 and every bit moves one place towards bit 15,
    whose old value leaves on SDO into the next chip's SDI. LE high makes the latch transparent; it is
    driven by the SPI chip-select, so it is low during a transfer (the outputs hold) and high after
    (the new contents show). OUTn sinks current when latch bit n is 1 and /OE is low.
    """

    def __init__(self, chips: int, rng: random.Random, lit_level: bool | None = True) -> None:
        self.regs = [rng.getrandbits(16) for _ in range(chips)]
        self.latches = list(self.regs)  # chip-select idles high: LE transparent at power-up
        # /OE as the GPIO sees it: None = the line is not driven (its resistor keeps the LEDs dark)
        self.lit_level = lit_level
        self.line: bool | None = None
        self.transfers = 0

    def transfer(self, data: bytes) -> None:
        for byte in data:
            for i in range(7, -1, -1):  # SPI mode 0, MSB first
                carry = byte >> i & 1
                for c in range(len(self.regs)):
                    out = self.regs[c] >> 15 & 1
                    self.regs[c] = (self.regs[c] << 1 | carry) & 0xFFFF
                    carry = out
        self.latches = list(self.regs)  # chip-select rises: LE high
        self.transfers += 1

    def outputs(self) -> list[int]:
        if self.lit_level is None:  # /OE tied low: always lit
            return list(self.latches)
        on = self.line is not None and self.line == self.lit_level
        return list(self.latches) if on else [0] * len(self.latches)


class EmulatedSpi:
    """A transport into an emulated chain: one write = one chip-select frame."""

    def __init__(self, chain) -> None:
        self.chain = chain
        self.closed = False
        self.fail_next = 0

    def write(self, data: bytes) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("emulated bus error")
        self.chain.transfer(bytes(data))

    def close(self) -> None:
        self.closed = True


class EmulatedLine:
    """A GPIO line wired to the chain's /OE circuit; requested with its initial level."""

    def __init__(self, chain: ShiftChain, value: bool) -> None:
        self.chain = chain
        chain.line = bool(value)
        self.closed = False

    def set(self, value: bool) -> None:
        self.chain.line = bool(value)

    def close(self) -> None:
        self.closed = True
        # released: the kernel leaves the level as it was last set


# --------------------------------------------------------------------------------- MAX6954
MAX_LOW = ("g1", "f", "e", "d1", "c", "b", "a1", "d2")  # 0x20/0x40/0x60 + d, D0..D7
MAX_HIGH = ("m", "l", "k", "j", "i", "h", "g2", "dp")  # 0x28/0x48/0x68 + d, D0..D7
DECODE, INTENSITY, SCAN, CONFIG, TEST, DIGIT_TYPE = 0x01, 0x02, 0x03, 0x04, 0x07, 0x0C
# AN3212 Table 1: how a 16-segment digit's segments are named, onto the module's segments
AN3212 = {
    "a1": 0,
    "a2": 1,
    "b": 2,
    "c": 3,
    "d1": 4,
    "d2": 5,
    "e": 6,
    "f": 7,
    "h": 8,
    "i": 9,
    "j": 10,
    "g2": 11,
    "k": 12,
    "l": 13,
    "m": 14,
    "g1": 15,
    "dp": DP,
}


class Max6954:
    """One MAX6954 as its datasheet describes the serial interface and the 16-segment digits.

    A command is 16 bits: D15 R/W, D14-D8 register address, D7-D0 data. Digit registers: plane P0 at
    0x20-0x2F, plane P1 at 0x40-0x4F, both planes at 0x60-0x6F; digit d of a 16-segment pair uses
    0x20+d and 0x28+d. Power-up: shutdown, display test off; the other registers and the digit RAM are
    random here, so a panel that relies on a power-up default is caught.
    """

    def __init__(self, rng: random.Random) -> None:
        self.reg = {
            DECODE: rng.getrandbits(8),
            INTENSITY: rng.getrandbits(4),
            SCAN: rng.getrandbits(3),
            CONFIG: 0x00,
            TEST: 0x00,
            DIGIT_TYPE: rng.getrandbits(8),
        }
        self.p0 = [rng.getrandbits(8) for _ in range(16)]
        self.p1 = [rng.getrandbits(8) for _ in range(16)]
        self.commands = 0

    def execute(self, word: int) -> None:
        if word >> 15:
            return  # a read: nothing changes
        addr, data = word >> 8 & 0x7F, word & 0xFF
        if addr == 0x00:
            return  # no-op: this chip was not addressed
        self.commands += 1
        if 0x60 <= addr <= 0x6F:
            self.p0[addr - 0x60] = self.p1[addr - 0x60] = data
        elif 0x20 <= addr <= 0x2F:
            self.p0[addr - 0x20] = data
        elif 0x40 <= addr <= 0x4F:
            self.p1[addr - 0x40] = data
        elif addr in self.reg:
            self.reg[addr] = data
        else:
            raise AssertionError(f"register 0x{addr:02X} is not modelled")

    def digit(self, d: int) -> set[str]:
        """Maxim segment names lit in digit d (0..7)."""
        if self.reg[TEST] & 1:
            return set(MAX_LOW + MAX_HIGH) | {"a2"}  # display test: every LED, even in shutdown
        if not self.reg[CONFIG] & 1:
            return set()  # shutdown
        if self.reg[CONFIG] & 0x04:
            raise AssertionError("blinking is not modelled")
        if self.reg[DECODE] >> d & 1:
            raise AssertionError("font decoding is not modelled: the panel must switch it off")
        if self.reg[DIGIT_TYPE] >> d & 1:
            raise AssertionError("digit configured as 14-segment")
        if d > self.reg[SCAN] & 0x07:
            return set()  # beyond the scan limit
        low, high = self.p0[d], self.p0[8 + d]
        # no-decode 16-segment: 16 register bits, 17 segments; a2 has no bit and stays dark
        return {n for i, n in enumerate(MAX_LOW) if low >> i & 1} | {n for i, n in enumerate(MAX_HIGH) if high >> i & 1}


class Max6954Chain:
    """Chips daisy-chained DIN -> DOUT on one chip-select: each is a 16-bit shift register; when
    chip-select rises every chip executes the 16 bits it holds."""

    def __init__(self, chips: int, rng: random.Random) -> None:
        self.chips = [Max6954(rng) for _ in range(chips)]
        self.shift = [rng.getrandbits(16) for _ in range(chips)]
        self.transfers = 0

    def transfer(self, data: bytes) -> None:
        if len(data) % 2:
            raise AssertionError("a MAX6954 transfer is a whole number of 16-bit commands")
        for byte in data:
            for i in range(7, -1, -1):
                carry = byte >> i & 1
                for c in range(len(self.shift)):
                    out = self.shift[c] >> 15 & 1
                    self.shift[c] = (self.shift[c] << 1 | carry) & 0xFFFF
                    carry = out
        for chip, word in zip(self.chips, self.shift, strict=False):
            chip.execute(word)
        self.transfers += 1

    def power_cycle(self, rng: random.Random, chip: int | None = None) -> None:
        for i in range(len(self.chips)) if chip is None else [chip]:
            self.chips[i] = Max6954(rng)


# --------------------------------------------------------------------------------- HT16K33
class Ht16k33:
    """One HT16K33 as its datasheet describes the I2C commands and the display RAM.

    A write's first byte is a command: 0x0A address pointer A (display data follows, the pointer
    counting up and wrapping from 0x0F to 0x00), 0x2S system setup (S: oscillator), 0x8B display setup
    (bit 0 display on, bits 2-1 blinking), 0xEP dimming, 0xAx row/int set. RAM byte 2c holds rows 0-7
    of common c, byte 2c+1 rows 8-15. Power-up: oscillator off, display off; RAM random here.
    """

    def __init__(self, rng: random.Random) -> None:
        self.ram = [rng.getrandbits(8) for _ in range(16)]
        self.oscillator = False
        self.display = False
        self.blink = 0
        self.dimming = 15
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        cmd, rest = data[0], data[1:]
        kind = cmd & 0xF0
        if kind == 0x00:
            pointer = cmd & 0x0F
            for b in rest:
                self.ram[pointer] = b
                pointer = (pointer + 1) & 0x0F
            return
        if rest:
            raise AssertionError(f"command 0x{cmd:02X} takes no data bytes")
        if kind == 0x20:
            self.oscillator = bool(cmd & 1)
        elif kind == 0x80:
            self.display, self.blink = bool(cmd & 1), cmd >> 1 & 3
        elif kind == 0xE0:
            self.dimming = cmd & 0x0F
        elif kind == 0xA0:
            pass  # ROW/INT pin: irrelevant to the picture
        else:
            raise AssertionError(f"command 0x{cmd:02X} is not modelled")

    def common(self, c: int) -> int:
        """The 16 row bits lit on common c."""
        if not (self.oscillator and self.display) or self.blink:
            return 0
        return self.ram[2 * c] | self.ram[2 * c + 1] << 8


@dataclass
class EmulatedI2cBus:
    """One I2C bus: chips at addresses, and optionally a TCA9548A multiplexer whose control byte
    (bit n = channel n) connects the chips behind its channels. A write to an address nobody answers
    is a NACK (OSError); two devices answering one address is a bus conflict."""

    devices: dict[int, Ht16k33] = field(default_factory=dict)
    mux_address: int | None = None
    channels: dict[int, dict[int, Ht16k33]] = field(default_factory=dict)
    enabled: set[int] = field(default_factory=set)
    closed: bool = False
    fail_next: int = 0

    def write(self, address: int, data: bytes) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("emulated NACK")
        answering = [self.devices[address]] if address in self.devices else []
        answering += [chips[address] for ch, chips in self.channels.items() if ch in self.enabled and address in chips]
        if address == self.mux_address:
            if answering:
                raise AssertionError(f"0x{address:02X}: the multiplexer and a chip answer the same address")
            if len(data) != 1:
                raise AssertionError("a TCA9548A control write is one byte")
            self.enabled = {ch for ch in range(8) if data[0] >> ch & 1}
            return
        if not answering:
            raise OSError(f"no device answers at 0x{address:02X}")
        if len(answering) > 1:
            raise AssertionError(f"0x{address:02X}: {len(answering)} chips answer at once")
        answering[0].write(bytes(data))

    def close(self) -> None:
        self.closed = True


# --------------------------------------------------------------------------------- reading the wall
def lit_shift16(chain: ShiftChain, board: Board, cells: int) -> list[int]:
    """Per cell, the segments lit: register i (from the controller) sits at board.cells[i]."""
    out = [0] * cells
    for i, word in enumerate(chain.outputs()):
        out[board.cells[i]] = board.mask(word)
    return out


def lit_max6954(chain: Max6954Chain, cells_per_chip: list[list[int]], names: dict[str, int], cells: int) -> list[int]:
    """Per cell, the segments lit: digit j of chip k sits at cells_per_chip[k][j]; `names` maps Maxim's
    segment names onto the module's segments (AN3212 for a board built from the application note)."""
    out = [0] * cells
    for chip, chip_cells in zip(chain.chips, cells_per_chip, strict=False):
        for d, cell in enumerate(chip_cells):
            out[cell] = mask_of(names[n] for n in chip.digit(d) if n in names)
    return out


def lit_ht16k33(chips: list[Ht16k33], cells_per_chip: list[list[int]], rows: dict[int, int], cells: int) -> list[int]:
    """Per cell, the segments lit: common j of chip k sits at cells_per_chip[k][j]; `rows` maps the
    chip's rows onto the module's segments."""
    out = [0] * cells
    for chip, chip_cells in zip(chips, cells_per_chip, strict=False):
        for c, cell in enumerate(chip_cells):
            word = chip.common(c)
            out[cell] = mask_of(seg for row, seg in rows.items() if word >> row & 1)
    return out
