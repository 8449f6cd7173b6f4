"""CPU time from a real cgroup: a real process, in a child cpuacct cgroup (v1 here) or a delegated v2 subtree,
reads what the kernel counts for it. Marked `cgroup` (needs root, or a delegated v2 subtree)."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from mind_helpers import CGROUP_V2_PARENT_ENV

V1_CPUACCT = Path("/sys/fs/cgroup/cpuacct")
SERVICES = Path(__file__).resolve().parents[2] / "services"


def _parent() -> tuple[int, Path] | None:
    if (V1_CPUACCT / "cpuacct.usage").exists() and os.access(V1_CPUACCT, os.W_OK):
        return 1, V1_CPUACCT
    for candidate in filter(None, (os.environ.get(CGROUP_V2_PARENT_ENV), "/sys/fs/cgroup")):
        p = Path(candidate)
        if (p / "cgroup.controllers").exists() and os.access(p / "cgroup.subtree_control", os.W_OK):
            return 2, p
    return None


pytestmark = [
    pytest.mark.cgroup,
    pytest.mark.skipif(_parent() is None, reason="cannot make a child cpu cgroup (needs root, or a delegated v2 tree)"),
]

# The child burns CPU for a fixed share of its own time, then reads its cgroup the way the mind does.
BURN = """
import sys, time
sys.path.insert(0, sys.argv[1])
from mind.cgroup import CgroupCpu
end = time.process_time() + 0.6
while time.process_time() < end:
    pass
cpu = CgroupCpu()
print(cpu.version, cpu.source, cpu.seconds(), cpu.life_seconds(), time.process_time())
"""


def test_a_process_in_its_own_cgroup_reads_the_cpu_time_the_kernel_counted():
    version, parent = _parent()
    cg = parent / f"energy-test-{os.getpid()}-{secrets.token_hex(3)}"
    cg.mkdir()
    try:
        join = "tasks" if version == 1 else "cgroup.procs"
        r = subprocess.run(
            ["sh", "-c", f'echo $$ > {cg}/{join} && exec "$@"', "sh", sys.executable, "-c", BURN, str(SERVICES)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        v, source, seconds, life, own = r.stdout.split()
        assert (int(v), source) == (version, "cgroup")
        seconds, life, own = float(seconds), float(life), float(own)
        assert seconds >= 0.6  # at least what it burnt, counted by the kernel for the cgroup
        assert seconds == pytest.approx(own, abs=0.1)  # the cgroup holds this one process
        assert life == pytest.approx(own, abs=0.1)
        # the kernel's counter, read from outside after the process is gone, agrees
        if version == 1:
            counted = int((cg / "cpuacct.usage").read_text()) / 1e9
        else:
            counted = dict(line.split() for line in (cg / "cpu.stat").read_text().splitlines())["usage_usec"]
            counted = int(counted) / 1e6
        assert counted >= seconds
    finally:
        cg.rmdir()
