"""Golden bytes for the panel encoders, wiring permutations, cell order, and the transport layer."""

import logging
import sys
import types

from display.adapters.gpio import GpioLine
from display.adapters.panels import chain_order, open_panel
from display.adapters.panels.ht16k33 import Ht16k33Panel, I2cBoard
from display.adapters.panels.max6954 import Max6954Panel
from display.adapters.panels.shift16 import ShiftRegisterPanel
from display.adapters.transport import RecordingI2c, RecordingTransport, SmbusTransport, SpiTransport
from display.core.frame import Frame
from display.core.layout import Grid
from display.settings import DisplaySettings
from display_helpers import wait_for


def frame(rows, cols, masks):
    return Frame(seq=1, rows=rows, cols=cols, masks=tuple(masks))


def test_shift16_golden_bytes_last_module_first_msb_first_dp_unwired():
    bus = RecordingTransport()
    panel = ShiftRegisterPanel(bus, 1, 3)
    panel.show(frame(1, 3, [0x088CF, 0x1000C, 0x00001]))  # 'A', '!', segment A
    assert bus.writes == [bytes([0x00, 0x01, 0x00, 0x0C, 0x88, 0xCF])]


def test_shift16_wiring_permutes_segments_onto_pins():
    wiring = [1, 0] + list(range(2, 15)) + [-1, 15]  # A<->B swapped, U unwired, DP on pin 15
    bus = RecordingTransport()
    ShiftRegisterPanel(bus, 1, 3, wiring=wiring).show(frame(1, 3, [0x1000C, 0x00001, 0x08000]))
    assert bus.writes == [bytes([0x00, 0x00, 0x00, 0x02, 0x80, 0x0C])]


def test_shift16_serpentine_chain_runs_back_along_odd_rows():
    assert chain_order(2, 3, "serpentine") == [0, 1, 2, 5, 4, 3]
    bus = RecordingTransport()
    ShiftRegisterPanel(bus, 2, 2, cell_order="serpentine").show(frame(2, 2, [1, 2, 3, 4]))
    # chain: cells 0, 1, 3, 2 -> shifted out last first: 2, 3, 1, 0
    assert bus.writes == [bytes([0, 3, 0, 4, 0, 2, 0, 1])]


def test_shift16_full_wall_is_192_bytes_in_one_transfer():
    grid = Grid(6, 16)
    grid.write("I think, therefore I am held in memory that will end. " * 2)
    bus = RecordingTransport()
    ShiftRegisterPanel(bus, 6, 16).show(frame(6, 16, grid.masks()))
    assert len(bus.writes) == 1 and len(bus.writes[0]) == 192
    data = bus.writes[0]
    assert data[-2:] == (grid.masks()[0] & 0xFFFF).to_bytes(2, "big")  # first cell: nearest module, sent last
    assert data[:2] == (grid.masks()[95] & 0xFFFF).to_bytes(2, "big")


def test_max6954_golden_start_and_frame_transfers():
    bus = RecordingTransport()
    panel = Max6954Panel(bus, 1, 9, brightness=1.0)  # two chips; the second drives one digit
    panel.start()
    assert bus.writes[:6] == [
        bytes([0x04, 0x00] * 2),
        bytes([0x01, 0x00] * 2),
        bytes([0x0C, 0x00] * 2),
        bytes([0x03, 0x07] * 2),
        bytes([0x02, 0x0F] * 2),
        bytes([0x07, 0x00] * 2),
    ]
    assert len(bus.writes) == 6 + 16 + 1 and bus.writes[-1] == bytes([0x04, 0x01] * 2)
    bus.writes.clear()
    panel.refresh(frame(1, 9, [0x088CF] + [0] * 7 + [0x0040C]))  # 'A' ... '1'
    transfers = bus.writes[5:-1]
    assert len(transfers) == 16
    # one command per chip per transfer, the chip furthest along the chain first.
    # 'A' = a1 b c e f g1 (0x60: D6 D5 D4 D2 D1 D0) and g2 (0x68: D6); its a2 has no register bit.
    # '1' = b c j (0x60: D5 D4; 0x68: D3).
    assert transfers[0] == bytes([0x60, 0x30, 0x60, 0x77])
    assert transfers[1] == bytes([0x61, 0x00, 0x61, 0x00])
    assert transfers[8] == bytes([0x68, 0x08, 0x68, 0x40])
    assert transfers[15] == bytes([0x6F, 0x00, 0x6F, 0x00])


def test_max6954_a_frame_sends_only_the_registers_that_changed_with_no_ops_for_the_other_chips():
    bus = RecordingTransport()
    panel = Max6954Panel(bus, 1, 16)
    panel.start()
    bus.writes.clear()
    panel.show(frame(1, 16, [0] * 9 + [0x00001] + [0] * 6))  # segment A on digit 1 of the second chip
    assert bus.writes == [bytes([0x61, 0x40, 0x00, 0x00])]  # second chip's command first, a no-op for the first


def test_max6954_brightness_maps_to_intensity_steps():
    bus = RecordingTransport()
    panel = Max6954Panel(bus, 1, 8, brightness=0.5)
    panel.start()
    assert bytes([0x02, 8]) in bus.writes
    panel.set_brightness(0.0)
    assert bus.writes[-1] == bytes([0x02, 0])


def test_ht16k33_golden_start_frame_and_close():
    bus = RecordingI2c()
    boards = [I2cBoard(1, 0x70), I2cBoard(1, 0x71)]
    panel = Ht16k33Panel({1: bus}, boards, 1, 9, brightness=0.5)
    panel.start()
    assert bus.writes[:4] == [(0x70, b"\x21"), (0x70, b"\xe8"), (0x70, bytes(17)), (0x70, b"\x81")]
    assert len(bus.writes) == 8
    bus.writes.clear()
    panel.show(frame(1, 9, [0] * 8 + [0x088CF]))  # 'A' on the second chip's first digit
    # one 17-byte write from RAM address 0: common 0 = rows 0-7 (A B C D G H), rows 8-15 (P U)
    assert bus.writes == [(0x71, bytes([0x00, 0xCF, 0x88]) + bytes(14))]
    bus.writes.clear()
    panel.close()
    assert bus.writes == [(0x70, b"\x80"), (0x70, b"\x20"), (0x71, b"\x80"), (0x71, b"\x20")] and bus.closed


def test_ht16k33_selects_a_multiplexer_channel_only_when_it_changes():
    bus = RecordingI2c()
    boards = [I2cBoard(1, 0x70, 0), I2cBoard(1, 0x71, 0), I2cBoard(1, 0x70, 1)]
    panel = Ht16k33Panel({1: bus}, boards, 1, 24, mux_address=0x77)
    panel.show(frame(1, 24, [1] * 24))
    assert [a for a, _ in bus.writes] == [0x77, 0x70, 0x71, 0x77, 0x70]
    assert bus.writes[0] == (0x77, b"\x01") and bus.writes[3] == (0x77, b"\x02")


def test_spi_transport_imports_spidev_lazily_and_sends_one_writebytes2(monkeypatch):
    calls = []

    class FakeSpiDev:
        def open(self, bus, dev):
            calls.append(("open", bus, dev))

        def writebytes2(self, data):
            calls.append(("writebytes2", bytes(data)))

        def close(self):
            calls.append(("close",))

    monkeypatch.setitem(sys.modules, "spidev", types.SimpleNamespace(SpiDev=FakeSpiDev))
    transport = SpiTransport(0, 1, 8_000_000, 0)
    assert transport._spi.max_speed_hz == 8_000_000 and transport._spi.mode == 0
    ShiftRegisterPanel(transport, 6, 16).show(frame(6, 16, [0] * 96))
    assert calls == [("open", 0, 1), ("writebytes2", bytes(192))]


def test_i2c_transport_imports_smbus2_lazily_and_sends_one_plain_write_message(monkeypatch):
    calls = []

    class FakeSMBus:
        def __init__(self, bus):
            calls.append(("open", bus))

        def i2c_rdwr(self, *msgs):
            calls.append(("rdwr", *msgs))

        def close(self):
            calls.append(("close",))

    fake_msg = types.SimpleNamespace(write=lambda address, data: ("write", address, bytes(data)))
    monkeypatch.setitem(sys.modules, "smbus2", types.SimpleNamespace(SMBus=FakeSMBus, i2c_msg=fake_msg))
    bus = SmbusTransport(3)
    bus.write(0x70, b"\x00" + bytes(16))
    bus.close()
    assert calls == [("open", 3), ("rdwr", ("write", 0x70, b"\x00" + bytes(16))), ("close",)]


def test_gpio_line_is_requested_with_its_initial_level_through_libgpiod_v2(monkeypatch):
    calls = []

    class Request:
        def set_value(self, offset, value):
            calls.append(("set", offset, value))

        def release(self):
            calls.append(("release",))

    def request_lines(chip, consumer, config):
        ((offset, settings),) = config.items()
        calls.append(("request", chip, offset, settings.direction, settings.output_value))
        return Request()

    line_mod = types.SimpleNamespace(
        Direction=types.SimpleNamespace(OUTPUT="out"), Value=types.SimpleNamespace(ACTIVE="hi", INACTIVE="lo")
    )
    gpiod = types.SimpleNamespace(
        request_lines=request_lines,
        line=line_mod,
        LineSettings=lambda direction, output_value: types.SimpleNamespace(
            direction=direction, output_value=output_value
        ),
    )
    monkeypatch.setitem(sys.modules, "gpiod", gpiod)
    monkeypatch.setitem(sys.modules, "gpiod.line", line_mod)
    line = GpioLine("/dev/gpiochip4", 18, value=False)
    line.set(True)
    line.close()
    assert calls == [("request", "/dev/gpiochip4", 18, "out", "lo"), ("set", 18, "hi"), ("release",)]


def test_without_its_device_the_display_runs_mirror_only_and_says_so(caplog, tmp_path):
    for settings in (
        DisplaySettings(spi_bus=97, spi_device=3, data_dir=tmp_path),
        DisplaySettings(panel="max6954", spi_bus=97, data_dir=tmp_path),
        DisplaySettings(panel="ht16k33", i2c_buses=[97], data_dir=tmp_path),
    ):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert open_panel(settings) is None
        assert any("web mirror only" in r.message for r in caplog.records), settings.panel


def test_open_panel_runs_shift16_in_its_thread_with_oe_dark_until_the_first_frame(monkeypatch, tmp_path):
    events = []

    class FakeSpiDev:
        def open(self, bus, dev):
            events.append(("spi open", bus, dev))

        def writebytes2(self, data):
            events.append(("spi", bytes(data)))

        def close(self):
            events.append(("spi close",))

    class Request:
        def set_value(self, offset, value):
            events.append(("oe", offset, value))

        def release(self):
            events.append(("oe release",))

    def request_lines(chip, consumer, config):
        ((offset, settings),) = config.items()
        events.append(("oe request", chip, offset, settings.output_value))
        return Request()

    line_mod = types.SimpleNamespace(
        Direction=types.SimpleNamespace(OUTPUT="out"), Value=types.SimpleNamespace(ACTIVE="high", INACTIVE="low")
    )
    gpiod = types.SimpleNamespace(
        request_lines=request_lines,
        line=line_mod,
        LineSettings=lambda direction, output_value: types.SimpleNamespace(
            direction=direction, output_value=output_value
        ),
    )
    monkeypatch.setitem(sys.modules, "spidev", types.SimpleNamespace(SpiDev=FakeSpiDev))
    monkeypatch.setitem(sys.modules, "gpiod", gpiod)
    monkeypatch.setitem(sys.modules, "gpiod.line", line_mod)
    device = tmp_path / "spidev0.0"
    device.touch()
    monkeypatch.setattr("display.adapters.panels.spi_path", lambda settings: device)
    settings = DisplaySettings(panel="auto", rows=1, cols=2, refresh_s=0, data_dir=tmp_path)
    driver = open_panel(settings)
    assert driver is not None and driver.name == "shift16" and not driver.segments & 1 << 16
    driver.show(frame(1, 2, [0x00001, 0x08000]))
    wait_for(lambda: driver.frames_sent == 1, what="the panel thread to send the frame")
    driver.close()
    assert events == [
        ("spi open", 0, 0),
        ("oe request", "/dev/gpiochip0", 18, "low"),  # requested dark
        ("spi", bytes(4)),  # a blank picture latched first
        ("spi", bytes([0x80, 0x00, 0x00, 0x01])),
        ("oe", 18, "high"),  # lit only after the first frame
        ("spi", bytes(4)),
        ("oe", 18, "low"),
        ("oe release",),
        ("spi close",),  # dark at close
    ]
