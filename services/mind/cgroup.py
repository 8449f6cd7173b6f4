"""Reads the mind's own memory cgroup (v2 or v1). The only place that knows cgroup file names."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

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

    version: Optional[int]
    memory_bytes: Optional[int]
    peak_bytes: Optional[int]
    limit_bytes: Optional[int]
    oom_kills: Optional[int]

    @property
    def limit_in_force(self) -> bool:
        return self.limit_bytes is not None


def _read_int(path: Path) -> Optional[int]:
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


def rss_bytes() -> Optional[int]:
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


class CgroupMemory:
    """Finds the process's memory cgroup once, then reads it on demand (cheap file reads)."""

    def __init__(self, root: str | Path = "/sys/fs/cgroup", proc_cgroup: Optional[str] = None) -> None:
        self.root = Path(root)
        if proc_cgroup is None:
            try:
                proc_cgroup = Path("/proc/self/cgroup").read_text()
            except OSError:
                proc_cgroup = ""
        self.version, self.dir = self._locate(_own_paths(proc_cgroup))
        self._max_seen = 0

    def _locate(self, paths: dict[str, str]) -> tuple[Optional[int], Optional[Path]]:
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
        memory = None if usage is None else usage - stat.get("total_inactive_file", 0) - stat.get("total_active_file", 0)
        oom = _read_keyed(d / "memory.oom_control").get("oom_kill")
        return MemoryReading(1, memory, _read_int(d / "memory.max_usage_in_bytes"), limit, oom)

    def _read_v2(self, d: Path) -> MemoryReading:
        usage = _read_int(d / "memory.current")
        stat = _read_keyed(d / "memory.stat")
        memory = None if usage is None else usage - stat.get("file", 0)
        # The limit in force is the smallest one on the way up to the root.
        limit: Optional[int] = None
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
