"""The energy ledger, mind side: CPU seconds from the cgroup (fixture files, v1 and v2) and the power model."""

import math
import time

import pytest

from mind import energy
from mind.cgroup import MAX_OWN_PROCESSES, CgroupCpu
from mind.energy import PI4, PI5, Board, board, board_joules, co2_grams, cpu_joules


def write(path, **files):
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name.replace("__", ".")).write_text(text)


# --- CPU seconds from the cgroup ----------------------------------------------------------------


def test_v1_reads_cpuacct_usage_in_nanoseconds_from_the_own_cgroup(tmp_path):
    write(tmp_path / "cpuacct" / "docker" / "abc", cpuacct__usage="2500000000\n", cgroup__procs="1\n")
    cpu = CgroupCpu(tmp_path, proc_cgroup="3:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n")
    assert (cpu.version, cpu.source, cpu.seconds()) == (1, "cgroup", 2.5)


def test_v1_finds_the_joined_cpu_cpuacct_mount_and_a_namespaced_root(tmp_path):
    write(tmp_path / "cpu,cpuacct", cpuacct__usage="1000000000\n", cgroup__procs="1\n7\n")
    cpu = CgroupCpu(tmp_path, proc_cgroup="3:cpu,cpuacct:/docker/abc\n")  # inside a namespace: the mount is ours
    assert (cpu.version, cpu.seconds()) == (1, 1.0)


def test_v2_reads_usage_usec_from_cpu_stat(tmp_path):
    write(tmp_path, cgroup__controllers="cpu memory\n")
    write(
        tmp_path / "system.slice" / "mind",
        cpu__stat="usage_usec 7250000\nuser_usec 7000000\nsystem_usec 250000\n",
        cgroup__procs="42\n",
    )
    cpu = CgroupCpu(tmp_path, proc_cgroup="0::/system.slice/mind\n")
    assert (cpu.version, cpu.source, cpu.seconds()) == (2, "cgroup", 7.25)


def test_a_cgroup_shared_with_many_processes_is_not_the_minds_own_so_the_process_time_counts(tmp_path):
    # a checkout run in a login session: the session's cgroup holds everyone's CPU time
    procs = "".join(f"{pid}\n" for pid in range(MAX_OWN_PROCESSES + 1))
    write(tmp_path, cpu__stat="usage_usec 999000000000\n", cgroup__procs=procs)
    cpu = CgroupCpu(tmp_path, proc_cgroup="0::/\n")
    assert (cpu.version, cpu.source) == (None, "process")
    assert cpu.seconds() == pytest.approx(time.process_time(), abs=0.5)
    assert cpu.seconds() < 999


def test_no_cgroup_at_all_counts_the_process_time(tmp_path):
    cpu = CgroupCpu(tmp_path, proc_cgroup="")
    assert cpu.source == "process" and 0 < cpu.seconds() < 10_000


def test_a_life_counts_from_its_process_start_not_what_the_cgroup_used_before(tmp_path):
    d = tmp_path / "cpuacct" / "mind"
    write(d, cpuacct__usage=str(100 * 10**9), cgroup__procs="1\n")  # a restarted container's earlier lives
    cpu = CgroupCpu(tmp_path, proc_cgroup="2:cpuacct:/mind\n")
    before = time.process_time()
    assert cpu.life_seconds() == pytest.approx(before, abs=0.05)  # what this process used so far
    (d / "cpuacct.usage").write_text(str(103 * 10**9))  # three seconds of thought later
    assert cpu.life_seconds() == pytest.approx(before + 3, abs=0.05)


def test_this_machine_s_mind_reads_some_cpu_time():
    cpu = CgroupCpu()
    t0 = cpu.life_seconds()
    end = time.process_time() + 0.2
    while time.process_time() < end:
        pass
    assert cpu.life_seconds() - t0 >= 0.15


# --- the power model ------------------------------------------------------------------------------


def test_the_pi_models_are_the_published_numbers():
    assert (PI4.idle_w, PI4.watts(4)) == (2.7, pytest.approx(6.4))  # pidramble: idle, stress --cpu 4
    assert (PI5.idle_w, PI5.watts(4)) == (4.0, pytest.approx(11.9))  # RPi docs 800 mA; Geerling LLM peak
    assert PI4.core_w == pytest.approx(0.925) and PI5.core_w == pytest.approx(1.975)


def test_watts_rise_per_busy_core_and_stop_at_the_boards_cores():
    b = Board("t", idle_w=2.0, core_w=1.0, cores=4, source="test")
    assert [b.watts(n) for n in (0, 1, 2.5, 4, 9, -1)] == [2.0, 3.0, 4.5, 6.0, 6.0, 2.0]


def test_cpu_seconds_become_joules_at_the_watts_of_one_busy_core():
    assert cpu_joules(100.0, PI4) == pytest.approx(92.5)
    assert cpu_joules(-5.0, PI4) == 0.0
    # an hour of one busy core on a Pi 5, plus its idle draw for that hour
    assert board_joules(3600.0, 3600.0, PI5) == pytest.approx(3600 * (4.0 + 1.975))


def test_co2_only_from_a_grid_factor():
    assert co2_grams(3.6e6, 400.0) == pytest.approx(400.0)  # one kWh on a 400 g/kWh grid
    assert co2_grams(1000.0, 0.0) == 0.0


def test_a_board_is_named_adjusted_or_custom():
    assert board("pi5") is PI5
    adjusted = board("pi4", core_w=1.2)
    assert (adjusted.idle_w, adjusted.core_w, adjusted.name) == (2.7, 1.2, "pi4")
    custom = board("custom", idle_w=1.5, core_w=0.5)
    assert (custom.name, custom.watts(2)) == ("custom", 2.5)
    with pytest.raises(ValueError):
        board("custom", idle_w=1.5)
    assert set(energy.BOARDS) == {"pi4", "pi5"}


def test_the_settings_name_the_board_and_refuse_a_custom_one_without_numbers():
    from pydantic import ValidationError

    from mind.settings import MindSettings

    assert MindSettings().power_model() is PI4
    assert MindSettings(board="pi5", board_core_w=2.5).power_model().core_w == 2.5
    assert math.isclose(MindSettings(board="custom", board_idle_w=3, board_core_w=1).power_model().watts(1), 4)
    with pytest.raises(ValidationError, match="MIND_BOARD_IDLE_W"):
        MindSettings(board="custom")
