"""Helpers for the mind's tests: a real uvicorn on 127.0.0.1 in a thread, and event readers."""
from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import httpx
import uvicorn
from httpx_sse import connect_sse


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


