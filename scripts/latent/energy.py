"""Measure what this host draws, where it has a sensor: the measured side of the energy ledger.

    latent energy               measure for 10 s and print watts and joules, naming the sensor
    latent energy --seconds 60  measure longer (a whole life: as long as it lives)

Sensors, in order: Intel/AMD RAPL (``/sys/class/powercap/intel-rapl:N/energy_uj``, the CPU packages:
the processor, not the whole board; readable by root only since Linux 5.10) and an INA219-class current
sensor with its kernel driver (``/sys/class/hwmon/hwmonN`` named ina219, ina226, ina260 ...:
``power1_input`` in µW, or bus voltage × current), the plainest way to measure a Pi's supply or the
wall's. Without either it says so: the mirror's figures are then the estimates of the mind's power model
and the display's lit segments (README, "Energy"). No Docker, no network.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from latent import CliError

HWMON_SENSORS = ("ina209", "ina219", "ina220", "ina226", "ina230", "ina231", "ina238", "ina260")


@dataclass(frozen=True)
class Sensor:
    """One way to measure: ``kind`` ('rapl' or 'hwmon'), what it covers, and where it reads."""

    kind: str
    name: str
    paths: tuple[Path, ...]


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def find_rapl(sys_root: Path) -> Sensor | None:
    """The top-level RAPL domains (the packages; their subdomains are parts of them)."""
    base = sys_root / "class" / "powercap"
    domains = sorted(p for p in base.glob("intel-rapl:*") if p.name.count(":") == 1 and (p / "energy_uj").exists())
    if not domains:
        return None
    names = [(d / "name").read_text().strip() if (d / "name").exists() else d.name for d in domains]
    return Sensor("rapl", "RAPL " + ", ".join(names), tuple(domains))


def find_hwmon(sys_root: Path) -> Sensor | None:
    for d in sorted((sys_root / "class" / "hwmon").glob("hwmon*")):
        try:
            name = (d / "name").read_text().strip()
        except OSError:
            continue
        if name in HWMON_SENSORS and (
            (d / "power1_input").exists() or ((d / "in1_input").exists() and (d / "curr1_input").exists())
        ):
            return Sensor("hwmon", f"{name.upper()} ({d.name})", (d,))
    return None


def find_sensor(sys_root: Path) -> Sensor | None:
    return find_rapl(sys_root) or find_hwmon(sys_root)


def rapl_joules(before: int, after: int, max_range_uj: int | None) -> float:
    """Joules between two ``energy_uj`` readings; the counter wraps at ``max_energy_range_uj``."""
    delta = after - before
    if delta < 0 and max_range_uj:
        delta += max_range_uj
    return max(0, delta) / 1e6


def hwmon_watts(d: Path) -> float | None:
    """The sensor's power now: ``power1_input`` (µW), else bus ``in1_input`` (mV) × ``curr1_input`` (mA)."""
    uw = _read_int(d / "power1_input")
    if uw is not None:
        return uw / 1e6
    mv, ma = _read_int(d / "in1_input"), _read_int(d / "curr1_input")
    return None if mv is None or ma is None else mv * ma / 1e6


def integrate(samples: Sequence[tuple[float, float]]) -> float:
    """Joules from ``(time, watts)`` samples (trapezoids between them)."""
    return sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(samples, samples[1:], strict=False))


def measure(
    sensor: Sensor,
    seconds: float,
    interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[float, float]:
    """(joules, seconds) measured by ``sensor`` over about ``seconds``."""
    start = clock()
    if sensor.kind == "rapl":
        try:
            before = [int((d / "energy_uj").read_text()) for d in sensor.paths]
        except PermissionError:
            raise CliError("RAPL is here but its counters are readable by root only: run with sudo") from None
        sleep(seconds)
        after = [int((d / "energy_uj").read_text()) for d in sensor.paths]
        elapsed = clock() - start
        ranges = [_read_int(d / "max_energy_range_uj") for d in sensor.paths]
        return sum(rapl_joules(b, a, r) for b, a, r in zip(before, after, ranges, strict=True)), elapsed
    samples: list[tuple[float, float]] = []
    while True:
        watts = hwmon_watts(sensor.paths[0])
        if watts is None:
            raise CliError(f"the {sensor.name} stopped answering: is its driver still bound?")
        now = clock()
        samples.append((now, watts))
        if now - start >= seconds:
            break
        sleep(min(interval, max(0.0, seconds - (now - start))))
    return integrate(samples), samples[-1][0] - samples[0][0]


def parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="how long to measure (default 10)")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between INA219 samples (default 0.5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--sys-root", type=Path, default=Path("/sys"), help=argparse.SUPPRESS)  # for tests
    return p


def main(argv: Sequence[str] | None = None, prog: str = "latent energy") -> int:
    args = parser(prog).parse_args(argv)
    if args.seconds <= 0 or args.interval <= 0:
        print(f"{prog}: --seconds and --interval must be above 0", file=sys.stderr)
        return 2
    sensor = find_sensor(args.sys_root)
    if sensor is None:
        message = (
            "no power sensor on this host (no RAPL in /sys/class/powercap, no INA219-class sensor in "
            "/sys/class/hwmon): the mirror's joules are estimates (README, 'Energy')."
        )
        print(json.dumps({"measured": False, "sensor": None}) if args.json else message)
        return 1
    try:
        joules, elapsed = measure(sensor, args.seconds, args.interval)
    except CliError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    watts = joules / elapsed if elapsed > 0 else 0.0
    if args.json:
        print(
            json.dumps(
                {
                    "measured": True,
                    "sensor": sensor.name,
                    "kind": sensor.kind,
                    "seconds": round(elapsed, 3),
                    "joules": round(joules, 3),
                    "watts": round(watts, 3),
                }
            )
        )
    else:
        what = "the CPU packages, not the whole board" if sensor.kind == "rapl" else "what flows through the sensor"
        print(f"measured by {sensor.name} ({what}): {watts:.2f} W on average over {elapsed:.1f} s, {joules:.1f} J")
    return 0
