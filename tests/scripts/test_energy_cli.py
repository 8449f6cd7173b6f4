"""latent energy measures where the host has a sensor (RAPL, an INA219-class hwmon) and says so, and says
plainly when it has none: sysfs trees laid out as the kernel makes them, in a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from latent import energy
from latent.cli import main as latent_main


def write(path, **files):
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text)


def rapl(sys_root, package: int, energy_uj: int, max_range: int = 262143328850):
    d = sys_root / "class" / "powercap" / f"intel-rapl:{package}"
    write(d, name=f"package-{package}\n", energy_uj=f"{energy_uj}\n", max_energy_range_uj=f"{max_range}\n")
    write(d.parent / f"intel-rapl:{package}:0", name="core\n", energy_uj="5\n")  # a part of the package
    return d


class Ticking:
    """A clock and a sleep that advance together; ``on_sleep`` moves the sensors meanwhile."""

    def __init__(self, on_sleep=lambda dt: None) -> None:
        self.now, self.on_sleep = 0.0, on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, dt: float) -> None:
        self.now += dt
        self.on_sleep(dt)


def test_rapl_packages_are_found_and_their_subdomains_left_out(tmp_path):
    rapl(tmp_path, 0, 1000)
    rapl(tmp_path, 1, 2000)
    sensor = energy.find_sensor(tmp_path)
    assert sensor.kind == "rapl" and sensor.name == "RAPL package-0, package-1" and len(sensor.paths) == 2


def test_rapl_joules_over_an_interval_and_across_the_counters_wrap():
    assert energy.rapl_joules(1_000_000, 13_500_000, 262143328850) == 12.5
    assert energy.rapl_joules(262143328850 - 500_000, 1_500_000, 262143328850) == 2.0  # wrapped


def test_measuring_with_rapl_reads_the_counters_before_and_after(tmp_path):
    d0, d1 = rapl(tmp_path, 0, 10_000_000), rapl(tmp_path, 1, 0)

    def burn(dt):  # package 0 draws 6 W, package 1 draws 1.5 W
        (d0 / "energy_uj").write_text(str(10_000_000 + int(6e6 * dt)))
        (d1 / "energy_uj").write_text(str(int(1.5e6 * dt)))

    t = Ticking(burn)
    joules, seconds = energy.measure(energy.find_sensor(tmp_path), 4.0, clock=t.clock, sleep=t.sleep)
    assert (joules, seconds) == (pytest.approx(30.0), 4.0)


def test_an_ina219_is_read_from_power_or_from_voltage_times_current_and_integrated(tmp_path):
    hw = tmp_path / "class" / "hwmon"
    write(hw / "hwmon0", name="cpu_thermal\n", temp1_input="45000\n")
    write(hw / "hwmon1", name="ina219\n", in1_input="5100\n", curr1_input="1000\n")  # 5.1 V × 1 A
    sensor = energy.find_sensor(tmp_path)
    assert (sensor.kind, sensor.name) == ("hwmon", "INA219 (hwmon1)")
    assert energy.hwmon_watts(hw / "hwmon1") == pytest.approx(5.1)
    (hw / "hwmon1" / "power1_input").write_text("6000000\n")  # µW: preferred where the driver gives it
    assert energy.hwmon_watts(hw / "hwmon1") == 6.0

    watts = iter([2.0, 4.0, 4.0, 2.0, 2.0])

    def step(dt):
        (hw / "hwmon1" / "power1_input").write_text(f"{int(next(watts) * 1e6)}\n")

    (hw / "hwmon1" / "power1_input").write_text("2000000\n")
    t = Ticking(step)
    joules, seconds = energy.measure(sensor, 2.0, interval=0.5, clock=t.clock, sleep=t.sleep)
    # samples at 0, .5, 1, 1.5, 2 s of 2, 2, 4, 4, 2 W: trapezoids 1 + 1.5 + 2 + 1.5
    assert (joules, seconds) == (pytest.approx(6.0), 2.0)


def test_integrate_is_the_trapezoid_sum():
    assert energy.integrate([(0.0, 1.0), (2.0, 3.0), (3.0, 3.0)]) == 7.0
    assert energy.integrate([(0.0, 5.0)]) == 0.0


def test_without_a_sensor_it_says_the_figures_are_estimates_and_exits_1(tmp_path, capsys):
    assert latent_main(["energy", "--sys-root", str(tmp_path), "--seconds", "0.01"]) == 1
    out = capsys.readouterr().out
    assert "no power sensor on this host" in out and "estimates" in out
    assert latent_main(["energy", "--sys-root", str(tmp_path), "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {"measured": False, "sensor": None}


def test_with_a_sensor_it_says_what_measured_and_how_much(tmp_path, capsys):
    write(tmp_path / "class" / "hwmon" / "hwmon3", name="ina260\n", power1_input="3300000\n")
    assert latent_main(["energy", "--sys-root", str(tmp_path), "--seconds", "0.2", "--interval", "0.05"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("measured by INA260 (hwmon3)") and "3.30 W on average" in out
    assert latent_main(["energy", "--sys-root", str(tmp_path), "--seconds", "0.1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["measured"] is True and result["watts"] == pytest.approx(3.3) and result["kind"] == "hwmon"


def test_rapl_readable_by_root_only_is_a_plain_sentence(tmp_path, capsys, monkeypatch):
    rapl(tmp_path, 0, 1)

    def refuse(self, *a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(type(tmp_path), "read_text", refuse, raising=True)
    monkeypatch.setattr(energy, "find_sensor", lambda root: energy.Sensor("rapl", "RAPL package-0", (tmp_path,)))
    assert latent_main(["energy", "--sys-root", str(tmp_path), "--seconds", "0.01"]) == 2
    err = capsys.readouterr().err
    assert "readable by root only" in err and "Traceback" not in err


def test_this_hosts_own_sysfs_is_read_by_default(capsys):
    # the default --sys-root is /sys: this project's machines have no RAPL and no INA219 (they say so)
    sensor = energy.find_sensor(Path("/sys"))
    code = latent_main(["energy", "--seconds", "0.3", "--json"])
    out = capsys.readouterr().out
    if sensor is None:
        assert (code, json.loads(out)) == (1, {"measured": False, "sensor": None})
    else:
        assert code in (0, 2)  # measured, or RAPL readable by root only
        assert code == 2 or json.loads(out)["sensor"] == sensor.name
