"""What a life's thinking costs in energy: a power model per board, as pure functions.

The mind knows its CPU seconds (mind.cgroup.CgroupCpu); a board's power rises roughly linearly with the
cores kept busy, so thinking costs ``cpu_seconds × watts per busy core``: the energy above what the board
draws idle anyway. The idle draw is the board's whether the mind thinks or not, so it is not counted as
thinking (``board_joules`` adds it for a whole-board figure). Every number is an estimate from published
measurements; a host that can measure (RAPL, an INA219) says so with ``latent energy``.
"""

from __future__ import annotations

from dataclasses import dataclass

J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class Board:
    """A board's power model: ``idle_w`` with nothing running, plus ``core_w`` for each fully busy core."""

    name: str
    idle_w: float
    core_w: float
    cores: int
    source: str  # where the numbers come from

    def watts(self, busy_cores: float) -> float:
        """Power with ``busy_cores`` cores busy (0..cores; more is capped: the board has no more)."""
        return self.idle_w + self.core_w * max(0.0, min(float(busy_cores), float(self.cores)))


# Pi 4 B: Jeff Geerling's measurements at the USB supply, headless, Raspberry Pi OS
# (https://www.pidramble.com/wiki/benchmarks/power-consumption): idle 540 mA (2.7 W), 400% CPU load
# (`stress --cpu 4`) 1280 mA (6.4 W). Per busy core: (6.4 - 2.7) / 4 = 0.925 W.
PI4 = Board(
    "pi4",
    idle_w=2.7,
    core_w=(6.4 - 2.7) / 4,
    cores=4,
    source="pidramble.com power-consumption benchmarks (Pi 4 B: idle 2.7 W, stress --cpu 4 6.4 W)",
)
# Pi 5: idle from Raspberry Pi's documentation ("typical bare-board active current consumption" 800 mA at
# 5 V = 4.0 W; https://www.raspberrypi.com/documentation/computers/raspberry-pi.html, "Power supply"); full
# load from Jeff Geerling's Pi 5 review, LLM inference on all four cores (llama3.2:3b on the CPU, 11.9 W
# peak; https://github.com/geerlingguy/sbc-reviews/issues/21). Per busy core: (11.9 - 4.0) / 4 ≈ 1.98 W.
PI5 = Board(
    "pi5",
    idle_w=4.0,
    core_w=(11.9 - 4.0) / 4,
    cores=4,
    source="Raspberry Pi documentation (Pi 5 bare board 800 mA) and geerlingguy/sbc-reviews#21 "
    "(llama3.2:3b on the CPU, 11.9 W)",
)
BOARDS = {b.name: b for b in (PI4, PI5)}


def board(name: str, idle_w: float | None = None, core_w: float | None = None, cores: int = 4) -> Board:
    """The named board, or ``custom`` from the given numbers; given numbers override a named board's."""
    if name == "custom":
        if idle_w is None or core_w is None:
            raise ValueError("a custom board needs its idle watts and its watts per busy core")
        return Board("custom", idle_w, core_w, cores, "your own measurements")
    base = BOARDS[name]
    if idle_w is None and core_w is None:
        return base
    return Board(
        base.name,
        base.idle_w if idle_w is None else idle_w,
        base.core_w if core_w is None else core_w,
        base.cores,
        base.source + ", adjusted by settings",
    )


def cpu_joules(cpu_seconds: float, b: Board) -> float:
    """The energy of ``cpu_seconds`` of work (one core busy for one second is one CPU second)."""
    return max(0.0, cpu_seconds) * b.core_w


def board_joules(cpu_seconds: float, wall_seconds: float, b: Board) -> float:
    """The whole board over ``wall_seconds``: its idle draw plus the work."""
    return max(0.0, wall_seconds) * b.idle_w + cpu_joules(cpu_seconds, b)


def co2_grams(joules: float, grams_per_kwh: float) -> float:
    """Grams of CO₂ for ``joules`` on a grid emitting ``grams_per_kwh``."""
    return joules / J_PER_KWH * grams_per_kwh
