"""Helpers for the mind's tests: a real uvicorn on 127.0.0.1 in a thread, and event readers."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from httpx_sse import connect_sse

SERVICES = Path(__file__).resolve().parents[2] / "services"


def mind_env(**settings: str) -> dict[str, str]:
    """The environment of a child `python -m mind`: this one without its own MIND_* variables, the
    services on the path, thinking at full speed (the breath off: MIND_TOKENS_PER_S=0), then ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIND_")}
    return {**env, "PYTHONPATH": str(SERVICES), "MIND_TOKENS_PER_S": "0", **settings}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(app) -> Iterator[str]:
    """Run ``app`` on a real uvicorn (endless SSE streams need a real socket) and yield its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def read_events(
    url: str, n: int, *, headers: dict | None = None, kinds=("birth", "token", "vitals"), timeout: float = 30.0
) -> list[tuple[str, str, dict]]:
    """The first ``n`` events of the given kinds from /stream, as (event, id, data)."""
    out = []
    with httpx.Client(timeout=timeout) as client:
        with connect_sse(client, "GET", url + "/stream", headers=headers or {}) as source:
            for sse in source.iter_sse():
                if sse.event in kinds:
                    out.append((sse.event, sse.id, json.loads(sse.data)))
                    if len(out) >= n:
                        break
    return out


CGROUP_V1_MEMORY = "/sys/fs/cgroup/memory"
CGROUP_ROOT = "/sys/fs/cgroup"
# A cgroup v2 subtree delegated to the tests (writable, the memory controller available in it), for a
# v2 host where they do not run as root, e.g. a `systemd-run --user --scope -p Delegate=yes` shell's own
# cgroup directory. As root on a v2 host the root cgroup is used.
CGROUP_V2_PARENT_ENV = "LATENT_TEST_CGROUP"


class MemoryCgroup:
    """A memory cgroup of the tests' own, v1 or v2: a limit with no swap, a command that runs inside it,
    and the kernel's counters."""

    def __init__(self, path: Path, version: int) -> None:
        self.path, self.version = Path(path), version

    def __str__(self) -> str:
        return str(self.path)

    def set_limit(self, limit: int) -> None:
        """Set (or lower) the limit, swap included, so the OOM comes promptly."""
        if self.version == 1:
            (self.path / "memory.limit_in_bytes").write_text(str(limit))
            memsw = self.path / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                memsw.write_text(str(limit))
        else:
            (self.path / "memory.max").write_text(str(limit))
            swap = self.path / "memory.swap.max"
            if swap.exists():
                swap.write_text("0")

    def join(self, cmd: list[str]) -> list[str]:
        """``cmd`` joining this cgroup before exec, so every byte of its life is charged here."""
        return ["sh", "-c", f'echo $$ > {self.path}/cgroup.procs && exec "$@"', "sh", *cmd]

    def _keyed(self, name: str) -> dict[str, int]:
        pairs = (line.split() for line in (self.path / name).read_text().splitlines())
        return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].isdigit()}

    def oom_kills(self) -> int:
        """Processes the kernel's OOM killer killed in this cgroup."""
        return self._keyed("memory.oom_control" if self.version == 1 else "memory.events").get("oom_kill", 0)

    def limit_hits(self) -> int:
        """Times a charge met the limit (v1: memory and memsw failcnt; v2: memory.events max)."""
        if self.version == 2:
            return self._keyed("memory.events").get("max", 0)
        names = ("memory.failcnt", "memory.memsw.failcnt")
        return sum(int((self.path / n).read_text()) for n in names if (self.path / n).exists())

    def refaults(self) -> int:
        """Pages read back in soon after the kernel evicted them (memory.stat workingset_refault_*)."""
        stat = self._keyed("memory.stat")
        prefix = "total_" if self.version == 1 else ""
        return sum(stat.get(f"{prefix}workingset_refault_{kind}", 0) for kind in ("anon", "file"))

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except FileNotFoundError:  # removed already
            return []


def _v2_parent() -> Path | None:
    """Where a v2 memory cgroup can be made: the delegated subtree, else the root (as root)."""
    candidates = [Path(os.environ[CGROUP_V2_PARENT_ENV])] if os.environ.get(CGROUP_V2_PARENT_ENV) else []
    candidates.append(Path(CGROUP_ROOT))
    for parent in candidates:
        try:
            if "memory" in (parent / "cgroup.controllers").read_text().split() and os.access(
                parent / "cgroup.subtree_control", os.W_OK
            ):
                return parent
        except OSError:
            continue
    return None


def memory_cgroup_version() -> int | None:
    """1 or 2: the cgroup version in which these tests can make a memory cgroup here; None if they cannot."""
    v1 = Path(CGROUP_V1_MEMORY)
    if (v1 / "memory.limit_in_bytes").exists() and os.access(v1, os.W_OK):
        return 1
    return 2 if _v2_parent() is not None else None


def can_make_memory_cgroup() -> bool:
    return memory_cgroup_version() is not None


@contextmanager
def memory_cgroup(name: str) -> Iterator[MemoryCgroup]:
    """A child memory cgroup of our own (v1, or v2 where the host has only that), removed afterwards with
    anything left in it killed."""
    import secrets
    import signal

    version = memory_cgroup_version()
    if version is None:
        raise RuntimeError("cannot make a memory cgroup here (needs root, or a delegated v2 subtree)")
    if version == 1:
        parent = Path(CGROUP_V1_MEMORY)
    else:
        parent = _v2_parent()
        control = parent / "cgroup.subtree_control"
        if "memory" not in control.read_text().split():
            control.write_text("+memory")  # children get the controller; refused in a cgroup with processes
    cg = MemoryCgroup(parent / f"{name}-{os.getpid()}-{secrets.token_hex(3)}", version)
    cg.path.mkdir()
    try:
        yield cg
    finally:
        for _ in range(50):
            pids = cg.pids()
            if not pids:
                break
            for pid in pids:  # only processes this test started live here
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        for _ in range(50):
            try:
                cg.path.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def set_memory_limit(cgroup: MemoryCgroup, limit: int) -> None:
    cgroup.set_limit(limit)
