"""Every panel against a chip emulator written from its datasheet: what the wall lights is the frame.

The frames are made with the font the display derives from the panel's segments (as app.py does), so
the masks the mirror draws are the masks compared here, cell by cell, for every glyph.
"""

from __future__ import annotations

import random

import pytest

from chips import (
    AN3212,
    DP,
    MAX_HIGH,
    MAX_LOW,
    Board,
    EmulatedI2cBus,
    EmulatedLine,
    EmulatedSpi,
    Ht16k33,
    Max6954Chain,
    ShiftChain,
    lit_ht16k33,
    lit_max6954,
    lit_shift16,
)
from display.adapters.panels import PanelDriver, PanelError, build_panel, wall_segments
from display.adapters.panels.ht16k33 import plan_boards
from display.app import create_app
from display.core.font import ALL_SEGMENTS, ELLIPSIS, ESZETT, REPLACEMENT, Font
from display.core.frame import Frame
from display.settings import DisplaySettings
from display_helpers import FakeMind, birth, display_settings, hold, read_frames, serve, sse, wait_for

ROWS, COLS = 6, 16
CELLS = ROWS * COLS
KEYS = [chr(c) for c in range(32, 127)] + [REPLACEMENT, ELLIPSIS, ESZETT]
B_SEGMENT = 1 << 1


def physical_chain(order: str) -> list[int]:
    """Where each module sits along the chain, as the maker built it (written apart from the code)."""
    return [r * COLS + (c if order == "rows" or r % 2 == 0 else COLS - 1 - c) for r in range(ROWS) for c in range(COLS)]


def per_chip(cells: list[int], n: int = 8) -> list[list[int]]:
    return [cells[i : i + n] for i in range(0, len(cells), n)]


def glyph_frames(font: Font) -> list[Frame]:
    """Every glyph of the font, each at several cells, over as many frames as it takes."""
    keys = KEYS * 2
    frames = []
    for seq, i in enumerate(range(0, len(keys), CELLS), 1):
        chunk = keys[i : i + CELLS]
        chunk += [" "] * (CELLS - len(chunk))
        frames.append(Frame(seq, ROWS, COLS, tuple(font.mask(k) for k in chunk)))
    return frames


def settings(**kw) -> DisplaySettings:
    return DisplaySettings(rows=ROWS, cols=COLS, **kw)


def a_permuted_board(rng: random.Random) -> tuple[dict[int, int], list[int]]:
    """A board whose 16 outputs drive the segments in a shuffled order, with DP on one of them and
    segment R left unconnected; returns (output -> segment) and the DISPLAY_WIRING that describes it."""
    segments = [s for s in range(17) if s != 12]
    rng.shuffle(segments)
    outputs = dict(enumerate(segments))
    wiring = [-1] * 17
    for pin, seg in outputs.items():
        wiring[seg] = pin
    return outputs, wiring


IDENTITY16 = {pin: pin for pin in range(16)}  # A..U on outputs 0..15, no DP


# ------------------------------------------------------------------------------------------ shift16
@pytest.mark.parametrize("order", ["rows", "serpentine"])
@pytest.mark.parametrize("board", ["identity", "permuted"])
@pytest.mark.parametrize("case", ["upper", "as-written"])
def test_shift16_lights_every_glyph_exactly_as_the_frame_draws_it(order, board, case):
    rng = random.Random(f"{order}{board}{case}")
    outputs, wiring = (IDENTITY16, None) if board == "identity" else a_permuted_board(rng)
    chain = ShiftChain(CELLS, rng)
    s = settings(panel="shift16", cell_order=order, wiring=wiring)
    panel = build_panel(s, "shift16", spi=EmulatedSpi(chain), output_enable=EmulatedLine(chain, False))
    assert panel.segments == wall_segments(s)
    font = Font(panel.segments, case)
    wall = Board(physical_chain(order), outputs)
    panel.start()
    for frame in glyph_frames(font):
        panel.show(frame)
        assert lit_shift16(chain, wall, CELLS) == list(frame.masks)
    if board == "identity":
        assert not font.segments & (1 << DP) and font.mask(".") == 1 << 4  # no DP: '.' is drawn with E
    else:
        assert font.segments & (1 << DP) and not font.segments & (1 << 12)


def test_shift16_a_font_with_the_dot_would_lose_it_on_the_wall():
    # why the font follows the panel: shift16 has 16 outputs for 17 segments
    chain = ShiftChain(CELLS, random.Random(1))
    panel = build_panel(
        settings(panel="shift16"), "shift16", spi=EmulatedSpi(chain), output_enable=EmulatedLine(chain, False)
    )
    full = Frame(1, ROWS, COLS, tuple(Font(ALL_SEGMENTS).mask(k) for k in ".!?" * 32))
    panel.show(full)
    assert lit_shift16(chain, Board(physical_chain("rows"), IDENTITY16), CELLS) != list(full.masks)


def test_shift16_a_wrong_cell_order_setting_is_seen_by_the_emulator():
    chain = ShiftChain(CELLS, random.Random(2))
    panel = build_panel(
        settings(panel="shift16", cell_order="rows"),
        "shift16",
        spi=EmulatedSpi(chain),
        output_enable=EmulatedLine(chain, False),
    )
    frame = glyph_frames(Font(panel.segments))[0]
    panel.show(frame)
    assert lit_shift16(chain, Board(physical_chain("serpentine"), IDENTITY16), CELLS) != list(frame.masks)


@pytest.mark.parametrize("lit_level", [True, False])
def test_shift16_wall_is_dark_from_power_up_until_the_first_frame_and_after_shutdown(lit_level):
    rng = random.Random(3)
    chain = ShiftChain(CELLS, rng, lit_level=lit_level)
    assert any(chain.latches)  # power-up noise sits in the latches...
    assert not any(chain.outputs())  # ...but /OE, not driven yet, is held dark by its resistor
    line = EmulatedLine(chain, not lit_level)  # requested dark, as open_panel does
    panel = build_panel(
        settings(panel="shift16", oe_lit_level="high" if lit_level else "low"),
        "shift16",
        spi=EmulatedSpi(chain),
        output_enable=line,
    )
    panel.start()
    assert not any(chain.outputs())
    frame = glyph_frames(Font(panel.segments))[0]
    panel.show(frame)
    assert lit_shift16(chain, Board(physical_chain("rows"), IDENTITY16), CELLS) == list(frame.masks)
    panel.close()
    assert not any(chain.outputs()) and not any(chain.latches) and line.closed


def test_shift16_with_oe_tied_low_power_up_noise_shows_until_the_first_frame():
    # the documented fallback without a GPIO: honest about what it costs
    chain = ShiftChain(CELLS, random.Random(4), lit_level=None)
    assert any(chain.outputs())


# ------------------------------------------------------------------------------------------ MAX6954
def max6954_wiring(names: dict[str, int]) -> list[int]:
    """DISPLAY_WIRING for a board whose Maxim segment names drive `names` (register bit order from the
    emulator's datasheet tables)."""
    wiring = [-1] * 17
    for bit, name in enumerate(MAX_LOW + MAX_HIGH):
        if name in names:
            wiring[names[name]] = bit
    return wiring


@pytest.mark.parametrize("order", ["rows", "serpentine"])
@pytest.mark.parametrize("board", ["an3212", "permuted"])
def test_max6954_lights_every_glyph_exactly_as_the_frame_draws_it(order, board):
    rng = random.Random(f"max{order}{board}")
    names = dict(AN3212)
    wiring = None
    if board == "permuted":  # a maker's board: segments on other outputs
        lit_names = [n for n in MAX_LOW + MAX_HIGH]
        targets = [names[n] for n in lit_names]
        rng.shuffle(targets)
        names = dict(zip(lit_names, targets, strict=False)) | {"a2": AN3212["a2"]}
        wiring = max6954_wiring(names)
    chain = Max6954Chain(12, rng)
    s = settings(panel="max6954", cell_order=order, wiring=wiring)
    panel = build_panel(s, "max6954", spi=EmulatedSpi(chain))
    font = Font(panel.segments, "upper")
    panel.start()
    for frame in glyph_frames(font):
        panel.show(frame)
        assert lit_max6954(chain, per_chip(physical_chain(order)), names, CELLS) == list(frame.masks)
    if board == "an3212":
        # a2 has no register bit with decode off: the panel says so, and no glyph uses it
        assert panel.segments == ALL_SEGMENTS & ~B_SEGMENT
        assert all(not m & B_SEGMENT for m in font.glyphs.values())


def test_max6954_is_dark_until_started_and_after_close():
    rng = random.Random(5)
    chain = Max6954Chain(12, rng)
    names, cells = AN3212, per_chip(physical_chain("rows"))
    assert not any(lit_max6954(chain, cells, names, CELLS))  # they power up in shutdown
    panel = build_panel(settings(panel="max6954"), "max6954", spi=EmulatedSpi(chain))
    panel.start()
    assert not any(lit_max6954(chain, cells, names, CELLS))  # random digit RAM was cleared first
    frame = glyph_frames(Font(panel.segments))[0]
    panel.show(frame)
    assert lit_max6954(chain, cells, names, CELLS) == list(frame.masks)
    panel.close()
    assert not any(lit_max6954(chain, cells, names, CELLS))


def test_max6954_a_one_cell_change_addresses_one_chip_and_the_others_get_no_ops():
    chain = Max6954Chain(12, random.Random(6))
    panel = build_panel(settings(panel="max6954", brightness=0.4), "max6954", spi=EmulatedSpi(chain))
    panel.start()
    assert all(c.reg[0x02] == 6 for c in chain.chips)  # brightness 0.4 -> intensity 6 of 15
    font = Font(panel.segments)
    masks = [0] * CELLS
    masks[42] = font.mask("W")  # chip 5, digit 2
    before = [c.commands for c in chain.chips]
    panel.show(Frame(2, ROWS, COLS, tuple(masks)))
    after = [c.commands for c in chain.chips]
    assert [a - b for a, b in zip(after, before, strict=False)] == [0] * 5 + [2] + [0] * 6  # 0x62 and 0x6A only
    assert lit_max6954(chain, per_chip(physical_chain("rows")), AN3212, CELLS) == masks


# ------------------------------------------------------------------------------------------ HT16K33
def ht16k33_wall(rng: random.Random, s: DisplaySettings):
    """Chips where the settings say they are: buses of (possibly multiplexed) addresses."""
    boards = plan_boards(12, s.i2c_buses, s.i2c_addresses, s.i2c_mux_address, s.i2c_mux_channels)
    buses = {b: EmulatedI2cBus(mux_address=s.i2c_mux_address) for b in s.i2c_buses}
    chips = []
    for board in boards:
        chip = Ht16k33(rng)
        bus = buses[board.bus]
        if board.channel is None:
            bus.devices[board.address] = chip
        else:
            bus.channels.setdefault(board.channel, {})[board.address] = chip
        chips.append(chip)
    return buses, chips


HT_LAYOUTS = {
    "two buses": dict(i2c_buses=[1, 3]),
    "multiplexer": dict(i2c_mux_address=0x77, i2c_addresses=list(range(0x70, 0x76)), i2c_mux_channels=[0, 1]),
}


@pytest.mark.parametrize("order", ["rows", "serpentine"])
@pytest.mark.parametrize("layout", sorted(HT_LAYOUTS))
@pytest.mark.parametrize("board", ["identity", "permuted"])
def test_ht16k33_lights_every_glyph_exactly_as_the_frame_draws_it(order, layout, board):
    rng = random.Random(f"ht{order}{layout}{board}")
    rows, wiring = (IDENTITY16, None) if board == "identity" else a_permuted_board(rng)
    s = settings(panel="ht16k33", cell_order=order, wiring=wiring, **HT_LAYOUTS[layout])
    buses, chips = ht16k33_wall(rng, s)
    panel = build_panel(s, "ht16k33", i2c=buses)
    font = Font(panel.segments, "upper")
    panel.start()
    for frame in glyph_frames(font):
        panel.show(frame)
        assert lit_ht16k33(chips, per_chip(physical_chain(order)), rows, CELLS) == list(frame.masks)
    if layout == "two buses":
        assert [len(b.devices) for b in buses.values()] == [8, 4]


def test_ht16k33_is_dark_until_started_and_a_change_rewrites_one_chip():
    rng = random.Random(7)
    s = settings(panel="ht16k33", i2c_buses=[1, 3], brightness=0.5)
    buses, chips = ht16k33_wall(rng, s)
    cells = per_chip(physical_chain("rows"))
    assert not any(lit_ht16k33(chips, cells, IDENTITY16, CELLS))  # oscillator and display off at power-up
    panel = build_panel(s, "ht16k33", i2c=buses)
    panel.start()
    assert not any(lit_ht16k33(chips, cells, IDENTITY16, CELLS))  # random RAM cleared before display on
    assert all(c.dimming == 8 for c in chips)
    font = Font(panel.segments)
    masks = [0] * CELLS
    masks[70] = font.mask("Q")  # chip 8: the first on the second bus
    writes = [c.writes for c in chips]
    panel.show(Frame(2, ROWS, COLS, tuple(masks)))
    assert [c.writes - w for c, w in zip(chips, writes, strict=False)] == [0] * 8 + [1] + [0] * 3
    assert lit_ht16k33(chips, cells, IDENTITY16, CELLS) == masks
    panel.close()
    assert not any(lit_ht16k33(chips, cells, IDENTITY16, CELLS)) and all(b.closed for b in buses.values())


def test_ht16k33_twelve_boards_do_not_fit_one_bus_without_a_multiplexer():
    with pytest.raises(ValueError, match="12 HT16K33 boards"):
        plan_boards(12, [1], list(range(0x70, 0x78)))
    with pytest.raises(ValueError, match="multiplexer"):
        DisplaySettings(i2c_mux_address=0x70)  # it would answer together with the chip at 0x70


# ------------------------------------------------------------------------------------------ refresh
def test_refresh_heals_a_shift_chain_whose_registers_lost_their_picture():
    rng = random.Random(8)
    chain = ShiftChain(CELLS, rng)
    panel = build_panel(
        settings(panel="shift16"), "shift16", spi=EmulatedSpi(chain), output_enable=EmulatedLine(chain, False)
    )
    driver = PanelDriver(panel, refresh_s=0.05)
    wall = Board(physical_chain("rows"), IDENTITY16)
    frame = glyph_frames(Font(panel.segments))[0]
    try:
        driver.show(frame)
        wait_for(lambda: lit_shift16(chain, wall, CELLS) == list(frame.masks), timeout=5, what="the first frame")
        chain.latches = [rng.getrandbits(16) for _ in range(CELLS)]  # a brown-out scrambled the wall
        wait_for(lambda: lit_shift16(chain, wall, CELLS) == list(frame.masks), timeout=5, what="the refresh")
        assert driver.refreshes >= 1
    finally:
        driver.close()
    assert not any(chain.outputs())


def test_refresh_heals_a_max6954_that_reset_into_shutdown():
    rng = random.Random(9)
    chain = Max6954Chain(12, rng)
    panel = build_panel(settings(panel="max6954"), "max6954", spi=EmulatedSpi(chain))
    driver = PanelDriver(panel, refresh_s=0.05)
    cells = per_chip(physical_chain("rows"))
    frame = glyph_frames(Font(panel.segments))[1]
    try:
        driver.show(frame)
        wait_for(lambda: lit_max6954(chain, cells, AN3212, CELLS) == list(frame.masks), timeout=5)
        chain.power_cycle(rng, chip=4)  # one chip browned out: shutdown, random registers
        assert lit_max6954(chain, cells, AN3212, CELLS) != list(frame.masks)
        wait_for(
            lambda: lit_max6954(chain, cells, AN3212, CELLS) == list(frame.masks),
            timeout=5,
            what="the refresh to bring chip 4 back",
        )
    finally:
        driver.close()


def test_refresh_heals_an_ht16k33_and_a_multiplexer_that_reset():
    rng = random.Random(10)
    s = settings(panel="ht16k33", **HT_LAYOUTS["multiplexer"])
    buses, chips = ht16k33_wall(rng, s)
    panel = build_panel(s, "ht16k33", i2c=buses)
    driver = PanelDriver(panel, refresh_s=0.05)
    cells = per_chip(physical_chain("rows"))
    frame = glyph_frames(Font(panel.segments))[0]
    try:
        driver.show(frame)
        wait_for(lambda: lit_ht16k33(chips, cells, IDENTITY16, CELLS) == list(frame.masks), timeout=5)
        bus = buses[1]
        chip = bus.channels[1][0x72]
        bus.channels[1][0x72] = fresh = Ht16k33(rng)  # power-cycled: oscillator off, RAM random
        chips[chips.index(chip)] = fresh
        bus.enabled = set()  # the multiplexer reset too: no channel selected
        wait_for(
            lambda: lit_ht16k33(chips, cells, IDENTITY16, CELLS) == list(frame.masks),
            timeout=5,
            what="the refresh to bring the chip back",
        )
    finally:
        driver.close()


def test_the_driver_shows_the_latest_frame_and_reports_failed_sends_to_the_runtime():
    chain = ShiftChain(CELLS, random.Random(11))
    spi = EmulatedSpi(chain)
    panel = build_panel(settings(panel="shift16"), "shift16", spi=spi, output_enable=EmulatedLine(chain, False))
    driver = PanelDriver(panel, refresh_s=0)
    wall = Board(physical_chain("rows"), IDENTITY16)
    frames = glyph_frames(Font(panel.segments))
    try:
        wait_for(lambda: chain.transfers == 1, what="the blank start")
        spi.fail_next = 1
        driver.show(frames[0])  # its send fails
        wait_for(lambda: driver.failures == 1)
        with pytest.raises(PanelError):
            driver.show(frames[1])  # the next frame goes out, and the failure is reported once
        wait_for(lambda: lit_shift16(chain, wall, CELLS) == list(frames[1].masks))
        driver.show(frames[0])
        wait_for(lambda: lit_shift16(chain, wall, CELLS) == list(frames[0].masks))
    finally:
        driver.close()
    assert spi.closed


# ------------------------------------------------------------------------------------------ the app
@pytest.mark.parametrize("kind", ["shift16", "max6954", "ht16k33"])
def test_the_mirror_stream_carries_exactly_what_the_emulated_wall_lights(tmp_path, kind):
    """The display app, a life with dots, lowercase and an ellipsis, each panel on its emulator."""
    text = "wait... it goes on. Is this all? Straße, über, “quotes”… and more words to wrap around"
    rng = random.Random(kind)

    async def life(writer, headers):
        writer.write(sse("birth", birth("p1"), "p1:0"))
        writer.write(sse("token", {"life": "p1", "seq": 0, "text": text}, "p1:1"))
        await writer.drain()
        await hold(writer)

    with FakeMind(life) as mind:
        extra = {"i2c_buses": [1, 3]} if kind == "ht16k33" else {}
        s = display_settings(tmp_path, mind.url, panel=kind, refresh_s=0.2, **extra)
        if kind == "shift16":
            chain = ShiftChain(CELLS, rng)
            chip = build_panel(s, kind, spi=EmulatedSpi(chain), output_enable=EmulatedLine(chain, False))
            wall = Board(physical_chain("rows"), IDENTITY16)
            lit = lambda: lit_shift16(chain, wall, CELLS)  # noqa: E731
        elif kind == "max6954":
            chain = Max6954Chain(12, rng)
            chip = build_panel(s, kind, spi=EmulatedSpi(chain))
            lit = lambda: lit_max6954(chain, per_chip(physical_chain("rows")), AN3212, CELLS)  # noqa: E731
        else:
            buses, chips = ht16k33_wall(rng, s)
            chip = build_panel(s, kind, i2c=buses)
            lit = lambda: lit_ht16k33(chips, per_chip(physical_chain("rows")), IDENTITY16, CELLS)  # noqa: E731
        app = create_app(s, panel=PanelDriver(chip, s.refresh_s), chronicle=None)
        with serve(app) as url:
            display = app.state.display
            wait_for(lambda: display.tokens_total == 1, what="the text")
            frame = read_frames(url, lambda f: f["seq"] == display.wall.frame.seq)
            assert sum(1 for m in frame["masks"] if m) > 40
            wait_for(lambda: lit() == frame["masks"], timeout=5, what="the wall to show the mirror's frame")
            assert all(m & ~chip.segments == 0 for m in frame["masks"])  # nothing the wall cannot light
