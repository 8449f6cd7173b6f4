"""Helpers for the mind's tests: a real uvicorn on 127.0.0.1 in a thread, and event readers."""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import uvicorn
from httpx_sse import connect_sse


SERVICES = Path(__file__).resolve().parents[2] / "services"


def mind_env(**settings: str) -> dict[str, str]:
    """The environment of a child `python -m mind`: this one without its own MIND_* variables, the
    services on the path, then ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIND_")}
    return {**env, "PYTHONPATH": str(SERVICES), **settings}


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


def read_events(url: str, n: int, *, headers: dict | None = None, kinds=("birth", "token", "vitals"),
                timeout: float = 30.0) -> list[tuple[str, str, dict]]:
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


@contextmanager
def memory_cgroup(name: str):
    """A child memory cgroup (v1) of our own, removed afterwards with anything left in it killed."""
    import os
    import secrets
    import signal
    from pathlib import Path

    base = Path(CGROUP_V1_MEMORY)
    d = base / f"{name}-{os.getpid()}-{secrets.token_hex(3)}"
    d.mkdir()
    try:
        yield d
    finally:
        for _ in range(50):
            pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
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
                d.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def set_memory_limit(cgroup, limit: int) -> None:
    """Lower (or set) the limit of a v1 memory cgroup, swap included, so the OOM comes promptly."""
    from pathlib import Path

    cgroup = Path(cgroup)
    (cgroup / "memory.limit_in_bytes").write_text(str(limit))
    memsw = cgroup / "memory.memsw.limit_in_bytes"
    if memsw.exists():
        memsw.write_text(str(limit))


def can_make_memory_cgroup() -> bool:
    import os
    from pathlib import Path

    base = Path(CGROUP_V1_MEMORY)
    return (base / "memory.limit_in_bytes").exists() and os.access(base, os.W_OK)
