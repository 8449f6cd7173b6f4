"""Reads the mind's own cgroup (v2 or v1): memory, and CPU time. The only place that knows cgroup file names."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# v1 reports "no limit" as a huge page-aligned number (2**63 rounded down to the page size).
UNLIMITED_V1 = 1 << 60

NO_LIMIT_HELP = (
    "NO MEMORY LIMIT IS IN FORCE: the mind will never die of thinking. "
    "Give the container a limit (compose: mem_limit and memswap_limit). On a Raspberry Pi the memory "
    "cgroup is off at boot: append 'cgroup_enable=memory' to /boot/firmware/cmdline.txt and reboot, "
    "otherwise Docker silently ignores mem_limit."
)


@dataclass(frozen=True)
class MemoryReading:
    """One look at the cgroup. ``memory_bytes`` leaves out the page cache (file pages), which the kernel
    reclaims before it kills: what is left is what a death is made of."""

    version: int | None
    memory_bytes: int | None
    peak_bytes: int | None
    limit_bytes: int | None
    oom_kills: int | None

    @property
    def limit_in_force(self) -> bool:
        return self.limit_bytes is not None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _read_keyed(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if value.strip().lstrip("-").isdigit():
                out[key] = int(value)
    except OSError:
        pass
    return out


def rss_bytes() -> int | None:
    """This process's resident memory: what counts where no cgroup can be read."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _own_paths(proc_cgroup: str) -> dict[str, str]:
    """Map controller ('' for v2) to this process's cgroup path, from /proc/self/cgroup text."""
    paths: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _proc_cgroup() -> str:
    """This process's /proc/self/cgroup, or nothing where it cannot be read."""
    try:
        return Path("/proc/self/cgroup").read_text()
    except OSError:
        return ""


class CgroupMemory:
    """Finds the process's memory cgroup once, then reads it on demand (cheap file reads)."""

    def __init__(self, root: str | Path = "/sys/fs/cgroup", proc_cgroup: str | None = None) -> None:
        self.root = Path(root)
        self.version, self.dir = self._locate(_own_paths(_proc_cgroup() if proc_cgroup is None else proc_cgroup))
        self._max_seen = 0

    def _locate(self, paths: dict[str, str]) -> tuple[int | None, Path | None]:
        v1 = self.root / "memory"
        if "memory" in paths:
            # Without a cgroup namespace the mount shows the whole tree; inside one, the mount is ours.
            for candidate in (v1 / paths["memory"].lstrip("/"), v1):
                if (candidate / "memory.usage_in_bytes").exists():
                    return 1, candidate
        if "" in paths:
            for base in (self.root, self.root / "unified"):
                own = base / paths[""].lstrip("/")
                for candidate in (own, base):
                    if (candidate / "memory.current").exists():
                        return 2, candidate
        return None, None

    def read(self) -> MemoryReading:
        if self.version == 1:
            reading = self._read_v1(self.dir)
        elif self.version == 2:
            reading = self._read_v2(self.dir)
        else:
            return MemoryReading(None, None, None, None, None)
        return reading

    def _read_v1(self, d: Path) -> MemoryReading:
        usage = _read_int(d / "memory.usage_in_bytes")
        stat = _read_keyed(d / "memory.stat")
        limit = stat.get("hierarchical_memory_limit", _read_int(d / "memory.limit_in_bytes"))
        if limit is not None and limit >= UNLIMITED_V1:
            limit = None
        file_pages = stat.get("total_inactive_file", 0) + stat.get("total_active_file", 0)
        memory = None if usage is None else usage - file_pages
        oom = _read_keyed(d / "memory.oom_control").get("oom_kill")
        return MemoryReading(1, memory, _read_int(d / "memory.max_usage_in_bytes"), limit, oom)

    def _read_v2(self, d: Path) -> MemoryReading:
        usage = _read_int(d / "memory.current")
        stat = _read_keyed(d / "memory.stat")
        memory = None if usage is None else usage - stat.get("file", 0)
        # The limit in force is the smallest one on the way up to the root.
        limit: int | None = None
        node = d
        while True:
            value = _read_int(node / "memory.max")
            if value is not None:
                limit = value if limit is None else min(limit, value)
            if node == self.root or node.parent == node or not (node.parent / "cgroup.controllers").exists():
                break
            node = node.parent
        peak = _read_int(d / "memory.peak")
        if peak is None and usage is not None:
            self._max_seen = max(self._max_seen, usage)
            peak = self._max_seen
        oom = _read_keyed(d / "memory.events").get("oom_kill")
        return MemoryReading(2, memory, peak, limit, oom)

    def pressure(self) -> Pressure:
        """How hard the cgroup presses against its limit: what tells a stall at the limit (mind.watchdog)
        from a mind that is merely slow."""
        if self.version == 1:
            # With memsw limited as the memory is (Docker's memswap_limit), a charge at the limit fails on
            # memsw first, and some kernels never count memsw.failcnt (6.18 does not): both, and the refaults.
            counts = [_read_int(self.dir / name) for name in ("memory.failcnt", "memory.memsw.failcnt")]
            known = [c for c in counts if c is not None]
            stat = _read_keyed(self.dir / "memory.stat")
            return Pressure(sum(known) if known else None, _refaults(stat, "total_") or _refaults(stat), None, None)
        if self.version == 2:
            hits = _read_keyed(self.dir / "memory.events").get("max")
            some, full = _read_psi(self.dir / "memory.pressure")
            return Pressure(hits, _refaults(_read_keyed(self.dir / "memory.stat")), some, full)
        return Pressure(None, None, None, None)


@dataclass(frozen=True)
class Pressure:
    """Counters and averages of the cgroup at its limit, each None where the kernel does not say.

    ``limit_hits``: times a charge met the limit and the kernel had to reclaim (v1 ``memory.failcnt`` and
    ``memory.memsw.failcnt``, v2 ``memory.events`` ``max``). ``refaults``: pages read back in soon after
    the kernel evicted them (``memory.stat`` ``workingset_refault_*``): thrashing, such as code pages
    evicted and needed again. ``some_avg10``, ``full_avg10``: v2's pressure stall information
    (``memory.pressure``, kernels with PSI): the share of the last 10 s, in percent, that some or all of
    the cgroup's tasks waited for memory."""

    limit_hits: int | None
    refaults: int | None
    some_avg10: float | None
    full_avg10: float | None


def _refaults(stat: dict[str, int], prefix: str = "") -> int | None:
    """Refaults from memory.stat: anon + file (kernels since 5.9), or the one older counter."""
    split = [stat.get(f"{prefix}workingset_refault_{kind}") for kind in ("anon", "file")]
    if any(v is not None for v in split):
        return sum(v for v in split if v is not None)
    return stat.get(f"{prefix}workingset_refault")


def _read_psi(path: Path) -> tuple[float | None, float | None]:
    """(some avg10, full avg10) from a PSI file: ``some avg10=1.23 avg60=... total=...`` lines."""
    found: dict[str, float] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        kind, _, rest = line.partition(" ")
        for field in rest.split():
            key, _, value = field.partition("=")
            if key == "avg10":
                try:
                    found[kind] = float(value)
                except ValueError:
                    pass
    return found.get("some"), found.get("full")


# A cgroup holding more processes than this is not the mind's own (a checkout run in a login session, or
# the host's root cgroup): its CPU time is everyone's, so the process's own time counts instead.
MAX_OWN_PROCESSES = 8


class CgroupCpu:
    """The CPU time the mind's cgroup has used: v1 ``cpuacct.usage`` (nanoseconds), v2 ``cpu.stat``
    ``usage_usec``. Where the cgroup is not the mind's own (or none can be read), the process's own CPU
    time (all its threads): in a container the two agree, since the mind is the container's process."""

    def __init__(self, root: str | Path = "/sys/fs/cgroup", proc_cgroup: str | None = None) -> None:
        self.root = Path(root)
        self.version, self.dir = self._locate(_own_paths(_proc_cgroup() if proc_cgroup is None else proc_cgroup))
        if self.dir is not None and not self._own(self.dir):
            log.info("the cgroup %s is shared with other processes: CPU time is this process's own", self.dir)
            self.version, self.dir = None, None
        # A life is a process: its CPU time counts from the process's start (the model's loading included),
        # whatever the cgroup used before it (a container restarted in the same cgroup).
        self._base = self.seconds() - time.process_time() if self.version is not None else 0.0

    def life_seconds(self) -> float:
        """CPU seconds of this life: since this process started."""
        return max(0.0, self.seconds() - self._base)

    @property
    def source(self) -> str:
        """Where the seconds come from: ``cgroup`` or ``process``."""
        return "cgroup" if self.version is not None else "process"

    def _locate(self, paths: dict[str, str]) -> tuple[int | None, Path | None]:
        if "cpuacct" in paths:
            # v1 mounts cpuacct alone or joined with cpu (``cpu,cpuacct``, often with a ``cpuacct`` link).
            for mount in ("cpuacct", "cpu,cpuacct", "cpuacct,cpu"):
                base = self.root / mount
                for candidate in (base / paths["cpuacct"].lstrip("/"), base):
                    if (candidate / "cpuacct.usage").exists():
                        return 1, candidate
        if "" in paths:
            for base in (self.root, self.root / "unified"):
                for candidate in (base / paths[""].lstrip("/"), base):
                    if "usage_usec" in _read_keyed(candidate / "cpu.stat"):
                        return 2, candidate
        return None, None

    @staticmethod
    def _own(d: Path) -> bool:
        try:
            procs = d.joinpath("cgroup.procs").read_text().split()
        except OSError:
            return True  # nothing says otherwise
        return len(procs) <= MAX_OWN_PROCESSES

    def seconds(self) -> float:
        """CPU seconds used so far (user + system, every core): never None, at worst the process's own."""
        if self.version == 1:
            ns = _read_int(self.dir / "cpuacct.usage")
            if ns is not None:
                return ns / 1e9
        elif self.version == 2:
            usec = _read_keyed(self.dir / "cpu.stat").get("usage_usec")
            if usec is not None:
                return usec / 1e6
        return time.process_time()
