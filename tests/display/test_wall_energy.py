"""The energy ledger, display side: lit segments per frame × time shown × current × voltage × duty, the
contract's energy fields, what the mirror's status says, and what the chronicle keeps per life and token."""

import sqlite3

import pytest

from display.chronicle import Chronicle, render
from display.core import contract
from display.core.energy import LightMeter, light_joules, light_watts, lit_segments, panel_duty
from display.core.font import Font, mask
from display.core.frame import Frame
from display.runtime import Display
from display.web.hub import Hub
from display_helpers import Recorder, birth, display_settings

DP = 1 << 16


# --- lit segments and segment-seconds, pure ------------------------------------------------------


def test_lit_segments_count_every_set_bit_of_every_mask_decimal_point_included():
    assert lit_segments([0, 0b1, 0b1111, 0xFFFF, 0xFFFF | DP]) == 0 + 1 + 4 + 16 + 17
    # the letters of a frame: "I" lights the two verticals and the top and bottom bars (A, B, E, F, M, S)
    assert lit_segments([Font(case="upper").mask("I")]) == 6
    assert lit_segments([mask("I"), mask(" "), mask("I")]) == 12


def test_a_known_frame_sequence_gives_its_segment_seconds_and_joules():
    meter = LightMeter(now=100.0)
    # (time the frame goes up, segments it lights): 10 segments for 2 s, 30 for 0.5 s, dark for 5 s, 4 for 1.5 s
    for at, lit in [(100.0, 10), (102.0, 30), (102.5, 0), (107.5, 4)]:
        meter.show(lit, at)
    assert meter.segment_seconds(109.0) == pytest.approx(10 * 2 + 30 * 0.5 + 0 * 5 + 4 * 1.5)  # 41
    # 41 segment-seconds at 10 mA from 5 V, static drive: 41 × 0.05 W s = 2.05 J
    assert light_joules(meter.segment_seconds(109.0), 10.0, 5.0, 1.0) == pytest.approx(2.05)
    assert light_joules(41.0, 20.0, 5.0, 1 / 8) == pytest.approx(41 * 0.1 / 8)
    assert light_watts(96 * 8, 10.0, 5.0, 1.0) == pytest.approx(38.4)  # a full wall of eight-segment letters


def test_a_restart_counts_the_new_life_from_then_and_the_frame_up_goes_on_counting():
    meter = LightMeter(now=0.0)
    meter.show(20, 0.0)
    meter.restart(10.0)
    assert meter.segment_seconds(10.0) == 0.0
    assert meter.segment_seconds(12.0) == pytest.approx(40.0) and meter.lit == 20


def test_the_duty_follows_the_panel_and_its_brightness():
    assert panel_duty("shift16", 0.2) == 1.0  # static drive, brightness set by a resistor
    assert panel_duty("none", 1.0) == 1.0
    assert panel_duty("ht16k33", 1.0) == pytest.approx(1 / 8)
    assert panel_duty("max6954", 0.0) == pytest.approx(1 / 16 / 8)  # the dimmest step is still 1/16
    assert panel_duty("ht16k33", 0.5) == pytest.approx(9 / 16 / 8)  # round(7.5) = 8: the ninth step


def test_the_settings_give_the_duty_unless_one_is_set(tmp_path):
    assert display_settings(tmp_path, "http://x", panel="ht16k33").light_duty() == pytest.approx(1 / 8)
    assert display_settings(tmp_path, "http://x", panel="ht16k33", segment_duty=0.25).light_duty() == 0.25
    assert display_settings(tmp_path, "http://x", segment_duty="").segment_duty is None  # compose's unset ""


# --- the contract ----------------------------------------------------------------------------------


def vitals(**more) -> dict:
    return {"life": "aa11", "tokens": 10, **more}


def test_vitals_carry_cpu_seconds_joules_and_the_power_model():
    clean = contract.vitals(vitals(cpu_seconds=12.5, cpu_joules=11.5625, energy_model="pi4"))
    assert (clean["cpu_seconds"], clean["cpu_joules"], clean["energy_model"]) == (12.5, 11.5625, "pi4")
    old = contract.vitals(vitals())  # a mind from before the ledger
    assert (old["cpu_seconds"], old["cpu_joules"], old["energy_model"]) == (None, None, None)


@pytest.mark.parametrize(
    "bad",
    [
        {"cpu_seconds": -1},
        {"cpu_joules": float("inf")},
        {"cpu_joules": "12"},
        {"cpu_seconds": True},
        {"energy_model": "<b>pi4</b>"},
        {"energy_model": "x" * 33},
        {"energy_model": 4},
    ],
)
def test_energy_fields_out_of_the_contract_make_the_event_malformed(bad):
    with pytest.raises(contract.Malformed):
        contract.vitals(vitals(**bad))


# --- the display: status for the mirror, vitals for the chronicle -------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def a_display(tmp_path, **settings):
    clock, recorder = Clock(), Recorder()
    d = Display(
        display_settings(tmp_path, "http://127.0.0.1:9", **settings),
        Hub(),
        subscribers=[recorder],
        clock=clock,
        wallclock=lambda: 1_700_000_000.0,
    )
    return d, clock, recorder


def test_the_status_tells_the_lives_joules_thinking_and_lighting_estimated_and_no_co2_unset(tmp_path):
    d, clock, recorder = a_display(tmp_path, segment_ma=10.0, supply_v=5.0)
    assert d.status()["energy"] is None  # no life yet
    d.event("birth", birth("aa11"), "aa11:0")
    lit_at_birth = d.light.lit
    clock.now += 4.0
    frame = Frame(seq=999, rows=6, cols=16, masks=(0xFFFF,) * 10 + (0,) * 86)  # 160 segments
    d.publish(frame)
    clock.now += 2.0
    d.event("vitals", vitals(cpu_seconds=40.0, cpu_joules=37.0, energy_model="pi4"), "aa11:1")
    expected = (lit_at_birth * 4.0 + 160 * 2.0) * 0.01 * 5.0
    energy = d.status()["energy"]
    assert energy["thinking_j"] == 37.0 and energy["cpu_seconds"] == 40.0 and energy["energy_model"] == "pi4"
    assert energy["lighting_j"] == pytest.approx(expected, abs=1e-3)
    assert energy["measured"] is False and energy["co2_g"] is None and energy["lit_segments"] == 160
    # the chronicle's copy of the vitals carries the lighting as of then
    [sent] = [v for kind, v in recorder.calls if kind == "vitals"]
    assert sent["light_joules"] == pytest.approx(expected, abs=1e-3) and sent["cpu_joules"] == 37.0


def test_co2_is_shown_only_with_a_grid_factor_and_a_new_life_starts_its_lighting_at_zero(tmp_path):
    d, clock, _ = a_display(tmp_path, grid_g_per_kwh=360.0)
    d.event("birth", birth("aa11"), "aa11:0")
    clock.now += 10.0
    d.event("vitals", vitals(cpu_joules=3.6e6 / 1000), "aa11:1")  # a thousandth of a kWh: 0.36 g
    energy = d.status()["energy"]
    assert energy["co2_g"] == pytest.approx((3600 + energy["lighting_j"]) / 3.6e6 * 360, abs=1e-4)
    d.event("birth", birth("bb22"), "bb22:0")
    assert d.status()["energy"]["lighting_j"] == 0.0 and d.status()["energy"]["thinking_j"] is None


# --- the chronicle ----------------------------------------------------------------------------------


def test_the_chronicle_keeps_each_lives_energy_and_says_it_per_token(tmp_path):
    c = Chronicle(tmp_path / "chronicle.db", keep_lives=100, max_bytes=0)
    c.on_birth(birth("aa11"))
    for seq in range(4):
        c.on_token({"life": "aa11", "seq": seq, "text": f" w{seq}"})
    c.on_vitals({**vitals(cpu_seconds=9.0, cpu_joules=8.0, energy_model="pi4"), "light_joules": 2.0})
    c.on_vitals({**vitals(), "light_joules": 4.0})  # a vitals event without the mind's numbers keeps them
    [life] = c.lives()
    assert (life["cpu_seconds"], life["thinking_joules"], life["lighting_joules"]) == (9.0, 8.0, 4.0)
    assert life["joules_per_token"] == pytest.approx((8.0 + 4.0) / 4)
    text = render.describe(life)
    assert "energy, estimated: thinking 8.00 J (9 CPU s), lighting 4.00 J; 3.000 J per token" in text
    c.close()


def test_a_chronicle_of_version_2_gains_the_energy_columns_and_its_lives_have_none(tmp_path):
    path = tmp_path / "chronicle.db"
    c = Chronicle(path, keep_lives=100, max_bytes=0)
    c.on_birth(birth("old"))
    c.close()
    with sqlite3.connect(path) as db:  # as version 2 left it: no energy columns
        for column in ("cpu_seconds", "cpu_joules", "light_joules"):
            db.execute(f"ALTER TABLE lives DROP COLUMN {column}")
        db.execute("PRAGMA user_version = 2")
    c = Chronicle(path, keep_lives=100, max_bytes=0)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3
        names = {r[1] for r in db.execute("PRAGMA table_info(lives)")}
    assert {"cpu_seconds", "cpu_joules", "light_joules"} <= names
    [old] = c.lives()
    assert (old["thinking_joules"], old["lighting_joules"], old["joules_per_token"]) == (None, None, None)
    assert "energy" not in render.describe(old)
    c.on_vitals({**vitals(cpu_joules=1.5), "life": "old", "light_joules": 0.5, "tokens": 0})
    assert c.lives()[0]["thinking_joules"] == 1.5 and c.lives()[0]["joules_per_token"] is None  # no tokens
    c.close()


def test_energy_a_hand_stored_badly_is_repaired_to_nothing(tmp_path):
    path = tmp_path / "chronicle.db"
    c = Chronicle(path, keep_lives=100, max_bytes=0)
    c.on_birth(birth("aa11"))
    c.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE lives SET cpu_joules = 'lots', light_joules = X'00', cpu_seconds = 1e300")
    c = Chronicle(path, keep_lives=100, max_bytes=0)
    [life] = c.lives()
    assert (life["cpu_seconds"], life["thinking_joules"], life["lighting_joules"]) == (None, None, None)
    c.close()
