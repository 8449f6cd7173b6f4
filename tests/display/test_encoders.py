"""Golden bytes for both panel encoders, wiring permutations, cell order, and the transport layer."""

import logging
import sys
import types

from display.adapters.panel import (Max6954Panel, ShiftRegisterPanel, chain_order, open_panel)
from display.adapters.transport import RecordingTransport, SpiTransport
from display.core.frame import Frame
from display.core.layout import Grid
from display.settings import DisplaySettings


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


def test_max6954_golden_init_and_frame_transfers():
    bus = RecordingTransport()
    panel = Max6954Panel(bus, 1, 9, brightness=1.0)  # two chips; the second drives one digit
    assert bus.writes == [
        bytes([0x04, 0x00] * 2), bytes([0x01, 0x00] * 2), bytes([0x0C, 0x00] * 2), bytes([0x03, 0x07] * 2),
        bytes([0x02, 0x0F] * 2), bytes([0x07, 0x00] * 2), bytes([0x04, 0x01] * 2),
    ]
    bus.writes.clear()
    panel.show(frame(1, 9, [0x088CF] + [0] * 7 + [0x0040C]))
    assert len(bus.writes) == 16
    # one command per chip per transfer, the chip furthest along the chain first
    assert bus.writes[0] == bytes([0x60, 0x0C, 0x60, 0xCF])
    assert bus.writes[1] == bytes([0x61, 0x00, 0x61, 0x00])
    assert bus.writes[8] == bytes([0x68, 0x04, 0x68, 0x88])
    assert bus.writes[15] == bytes([0x6F, 0x00, 0x6F, 0x00])


def test_max6954_brightness_maps_to_intensity_steps():
    bus = RecordingTransport()
    panel = Max6954Panel(bus, 1, 8, brightness=0.5)
    assert bytes([0x02, 8]) in bus.writes
    panel.set_brightness(0.0)
    assert bus.writes[-1] == bytes([0x02, 0])


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


def test_without_an_spi_device_the_display_runs_mirror_only_and_says_so(caplog, tmp_path):
    settings = DisplaySettings(spi_bus=97, spi_device=3, data_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        assert open_panel(settings) is None
    assert any("web mirror only" in r.message for r in caplog.records)
