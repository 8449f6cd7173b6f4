"""Helpers for the display's tests: a real uvicorn in a thread, a scriptable fake mind, SSE readers."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from display.settings import DisplaySettings

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
NO_CHROMIUM = (
    f"needs Debian's chromium and chromedriver ({CHROMIUM}, {CHROMEDRIVER}): apt-get install chromium chromium-driver"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")


@contextmanager
def serve(app, port: int | None = None) -> Iterator[str]:
    """Run `app` on a real uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=1
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def display_settings(tmp_path, mind_url: str, **overrides) -> DisplaySettings:
    base = dict(
        mind_url=mind_url,
        data_dir=tmp_path,
        pacing=False,
        panel="none",
        reconnect_initial_s=0.05,
        reconnect_max_s=0.2,
        read_timeout_s=5.0,
        death_duration_s=0.2,
    )
    base.update(overrides)
    return DisplaySettings(**base)


def sse(event: str, data, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{head}event: {event}\ndata: {payload}\n\n".encode()


def birth(life: str, born_at: float | None = None) -> dict:
    return {"life": life, "born_at": born_at or time.time(), "model": "fake", "prompt": "p", "limit_bytes": None}


Scenario = Callable[[asyncio.StreamWriter, dict], Awaitable[None]]


async def hold(writer: asyncio.StreamWriter) -> None:
    """Keep the stream open with pings until the test ends."""
    while True:
        writer.write(b": ping\n\n")
        await writer.drain()
        await asyncio.sleep(0.2)


def steady_life(life: str, interval: float | Callable[[], float]) -> Scenario:
    """Birth, then one token (" word0", " word1", …) every ``interval`` seconds for ever; ``interval``
    may be a function, read before every pause."""
    pause = interval if callable(interval) else (lambda: interval)

    async def scenario(writer: asyncio.StreamWriter, headers: dict) -> None:
        writer.write(sse("birth", birth(life), f"{life}:0"))
        i = 0
        while True:
            writer.write(sse("token", {"life": life, "seq": i, "text": f"word{i} "}, f"{life}:{i + 1}"))
            await writer.drain()
            i += 1
            await asyncio.sleep(pause())

    return scenario


class FakeMind:
    """A raw HTTP/1.1 SSE server on 127.0.0.1 whose every connection runs `scenario(writer, headers)`.

    Raw sockets, so a test can send anything: bad JSON, a 10 MB line, invalid UTF-8, half an event.
    """

    def __init__(
        self,
        scenario: Scenario,
        status: Callable[[dict], int] | None = None,
        health: Callable[[], dict | None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.status = status  # the HTTP status to answer a request with (its headers in); 200 by default
        self.health = health  # GET /health's JSON body (503 unless its state is thinking); None: 404
        self.health_asks = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections: list[dict] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            lines = request.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            headers[":path"] = lines[0].split(" ")[1]
            if headers[":path"] == "/health":
                await self._health(writer)
                return
            self.connections.append(headers)
            status = self.status(headers) if self.status else 200
            if status != 200:
                writer.write(f"HTTP/1.1 {status} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
                await writer.drain()
                return
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                b"Connection: close\r\n\r\n"
            )
            await writer.drain()
            await self.scenario(writer, headers)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _health(self, writer: asyncio.StreamWriter) -> None:
        self.health_asks += 1
        body = self.health() if self.health else None
        if body is None:
            head, payload = "404 Not Found", b""
        else:
            head = "200 OK" if body.get("state") == "thinking" else "503 Service Unavailable"
            payload = json.dumps(body).encode()
        writer.write(
            f"HTTP/1.1 {head}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            f"Connection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()

    def __enter__(self) -> FakeMind:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._handle, "127.0.0.1", self.port), self._loop)
        self._server = fut.result(5)
        return self

    def __exit__(self, *exc) -> None:
        async def stop():
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def read_frames(url: str, until: Callable[[dict], bool], timeout: float = 10.0) -> dict:
    """Follow GET /frames until a frame satisfies `until`; returns that frame."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=httpx.Timeout(timeout, read=timeout)) as client:
        with client.stream("GET", url + "/frames") as response:
            event = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "frame":
                    frame = json.loads(line[6:])
                    if until(frame):
                        return frame
                if time.monotonic() > deadline:
                    break
    raise AssertionError("no matching frame on /frames")


class Recorder:
    """A life subscriber that remembers every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.deaths: list = []

    def on_birth(self, birth: dict) -> None:
        self.calls.append(("birth", birth))

    def on_token(self, token: dict) -> None:
        self.calls.append(("token", token))

    def on_vitals(self, vitals: dict) -> None:
        self.calls.append(("vitals", vitals))

    def on_death(self, death) -> None:
        self.calls.append(("death", death.life))
        self.deaths.append(death)

    def on_resume(self, life: str) -> None:
        self.calls.append(("resume", life))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.calls]

    def text(self) -> str:
        """The life's text as recorded: a tail goes after the text of its token, as in the chronicle."""
        return "".join(t["text"] for k, t in self.calls if k == "token")


def has_chromium() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def chromium_driver(width: int = 1280, height: int = 800, page_load_timeout: float = 30):
    """Debian's chromium, headless, driven by selenium (imported only here: the browser tests and
    scripts/pictures.py need it, nothing else does)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(page_load_timeout)
    return driver


@contextmanager
def chromium(width: int = 1280, height: int = 800, page_load_timeout: float = 30) -> Iterator:
    """A browser test's chromium: the test skips where there is none (and fails under CI=true)."""
    import pytest

    if not has_chromium():
        pytest.skip(NO_CHROMIUM)
    driver = chromium_driver(width, height, page_load_timeout)
    try:
        yield driver
    finally:
        driver.quit()


# A chronicle file as version 1 of the display wrote it (the upgrade tests start from it).
CHRONICLE_V1_SCHEMA = """
CREATE TABLE lives (number INTEGER PRIMARY KEY AUTOINCREMENT, life TEXT NOT NULL UNIQUE, born_at REAL NOT NULL,
    died_at REAL, last_event_at REAL NOT NULL, model TEXT, prompt TEXT, limit_bytes INTEGER, peak_memory_bytes INTEGER,
    tokens INTEGER NOT NULL DEFAULT 0, max_seq INTEGER NOT NULL DEFAULT -1, last_memory_bytes INTEGER,
    last_tokens_left INTEGER, last_vitals_tokens INTEGER, cause TEXT, cause_source TEXT);
CREATE TABLE tokens (number INTEGER NOT NULL, seq INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (number, seq))
    WITHOUT ROWID;
PRAGMA user_version = 1;
"""
