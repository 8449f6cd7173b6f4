"""The upstream client: follows the mind's SSE stream forever, reconnecting with backoff.

httpx-sse has no reconnection and no bound on line length, so this owns both: a retry loop that
resumes with Last-Event-ID, and a bounded parser (display.core.sse). A stream that stays silent
longer than the read timeout (no event, no ping: a frozen mind) counts as broken.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Protocol

import httpx

from display.core.sse import SSEParser

log = logging.getLogger(__name__)


class UpstreamHandler(Protocol):
    def connected(self) -> None: ...

    def event(self, name: str, data: dict, event_id: str | None) -> None: ...

    def broken(self, reason: str) -> None: ...

    def malformed(self, reason: str) -> None: ...


class Upstream:
    def __init__(self, url: str, handler: UpstreamHandler, *, read_timeout: float = 45.0,
                 connect_timeout: float = 2.0, initial_delay: float = 0.1, max_delay: float = 2.0,
                 max_line_bytes: int = 65536) -> None:
        self.url = url.rstrip("/") + "/stream"
        self.handler = handler
        self.timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=5.0, pool=5.0)
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.max_line_bytes = max_line_bytes
        self.last_event_id: str | None = None
        self.connects = 0

    async def run(self) -> None:
        delay = self.initial_delay
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            while True:
                got_events, reason = await self._follow(client)
                self.handler.broken(reason)
                if got_events:
                    delay = self.initial_delay
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay)

    async def _follow(self, client: httpx.AsyncClient) -> tuple[bool, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        got_events = False
        try:
            async with client.stream("GET", self.url, headers=headers) as response:
                if response.status_code != 200:
                    return False, f"status {response.status_code}"
                self.connects += 1
                self.handler.connected()
                parser = SSEParser(max_line_bytes=self.max_line_bytes, max_event_bytes=4 * self.max_line_bytes)
                async for chunk in response.aiter_raw():
                    for ev in parser.feed(chunk):
                        got_events = True
                        self._dispatch(ev)
            return got_events, "stream ended"
        except httpx.ReadTimeout:
            return got_events, f"stream silent for {self.timeout.read:g} s"
        except (httpx.HTTPError, OSError) as exc:
            return got_events, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    def _dispatch(self, ev) -> None:
        if ev.malformed:
            self.handler.malformed(f"{ev.event} event over-long or not UTF-8")
            return
        try:
            data = json.loads(ev.data)
        except ValueError:
            self.handler.malformed(f"{ev.event} event with bad JSON")
            return
        if not isinstance(data, dict):
            self.handler.malformed(f"{ev.event} event whose data is not an object")
            return
        if ev.id:
            self.last_event_id = ev.id
        self.handler.event(ev.event, data, ev.id)
