"""The upstream client: follows the mind's SSE stream forever, reconnecting with backoff.

httpx-sse has no reconnection and no bound on line length, so this owns both: a retry loop that
resumes with Last-Event-ID, and a bounded parser (display.core.sse). A stream that stays silent
longer than the read timeout (no event, no ping: a frozen mind) counts as broken.

Nothing from the stream can end the loop: bad bytes, bad JSON (however deeply nested), an id that
cannot be sent back, an exception in the handler are each counted and skipped; an error of the loop
itself is logged, counted and the loop goes on (``failing`` until a stream is followed again). Only
cancellation, at shutdown, ends it.

A mind loading its model serves its stream but says nothing on it until the birth; so while a stream
is open and the handler wants to know (no life shows), this also asks the mind's ``/health`` what it
is doing, and passes on the word (loading, thinking, failed, dying) or None when there is no answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Protocol

import httpx

from display.core.sse import SSEEvent, SSEParser

log = logging.getLogger(__name__)

LOGGED_ERRORS = 10  # exceptions logged in full before only every 1000th is
MIND_STATES = ("loading", "thinking", "failed", "dying")  # the mind's GET /health "state"
HEALTH_MAX_BYTES = 4096  # a /health answer longer than this is not the mind's


class UpstreamHandler(Protocol):
    def connected(self) -> None: ...

    def event(self, name: str, data: dict, event_id: str | None) -> None: ...

    def broken(self, reason: str) -> None: ...

    def malformed(self, reason: str) -> None: ...

    def needs_health(self) -> bool: ...

    def health(self, state: str | None) -> None: ...


class Upstream:
    def __init__(
        self,
        url: str,
        handler: UpstreamHandler,
        *,
        read_timeout: float = 45.0,
        connect_timeout: float = 2.0,
        initial_delay: float = 0.1,
        max_delay: float = 2.0,
        max_line_bytes: int = 65536,
        health_interval: float = 1.0,
    ) -> None:
        self.url = url.rstrip("/") + "/stream"
        self.health_url = url.rstrip("/") + "/health"
        self.health_interval = health_interval
        self.health_timeout = connect_timeout + 2.0
        self.handler = handler
        self.timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=5.0, pool=5.0)
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.max_line_bytes = max_line_bytes
        self.last_event_id: str | None = None
        self.connects = 0
        self.event_errors = 0  # events whose handling raised
        self.loop_errors = 0  # rounds of the loop that raised (not the network: a bug)
        self.failing = False  # the last round raised; cleared once a stream is followed again

    async def run(self) -> None:
        delay = self.initial_delay
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            while True:
                got_events = False
                try:
                    got_events, reason = await self._follow(client)
                    self.handler.broken(reason)
                except Exception:
                    self.loop_errors += 1
                    self.failing = True
                    if self.loop_errors <= LOGGED_ERRORS or self.loop_errors % 1000 == 0:
                        log.exception("upstream loop error (%d so far); going on", self.loop_errors)
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
                if response.status_code == 400 and self.last_event_id:
                    # The mind refuses the id: forget it, or every reconnect would fail the same way.
                    log.warning(
                        "the mind refused Last-Event-ID %r (status 400); reconnecting without it", self.last_event_id
                    )
                    self.last_event_id = None
                    return False, "Last-Event-ID refused"
                if response.status_code != 200:
                    return False, f"status {response.status_code}"
                self.connects += 1
                self.handler.connected()
                self.failing = False
                watch = asyncio.create_task(self._watch_health(client))
                try:
                    parser = SSEParser(max_line_bytes=self.max_line_bytes, max_event_bytes=4 * self.max_line_bytes)
                    async for chunk in response.aiter_raw():
                        for ev in parser.feed(chunk):
                            got_events = True
                            self._dispatch(ev)
                finally:
                    watch.cancel()
            return got_events, "stream ended"
        except httpx.ReadTimeout:
            return got_events, f"stream silent for {self.timeout.read:g} s"
        except (httpx.HTTPError, OSError) as exc:
            return got_events, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    async def _watch_health(self, client: httpx.AsyncClient) -> None:
        """While the stream is open: the mind's own word on what it does, whenever the handler asks."""
        while True:
            if self.handler.needs_health():
                state = await self.ask_health(client)
                try:
                    self.handler.health(state)
                except Exception:
                    self.event_errors += 1
                    if self.event_errors <= LOGGED_ERRORS or self.event_errors % 1000 == 0:
                        log.exception("handling the mind's health failed (%d so far); skipped", self.event_errors)
            await asyncio.sleep(self.health_interval)

    async def ask_health(self, client: httpx.AsyncClient) -> str | None:
        """GET /health's "state" (it answers 503 while loading, so any status is read), or None."""

        async def read() -> bytes:
            body = b""
            async with client.stream("GET", self.health_url, headers={"Accept": "application/json"}) as response:
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) > HEALTH_MAX_BYTES:
                        raise ValueError("over-long health answer")
            return body

        try:
            data = json.loads(await asyncio.wait_for(read(), self.health_timeout))
            state = data.get("state") if isinstance(data, dict) else None
        except (httpx.HTTPError, OSError, TimeoutError, ValueError, RecursionError):
            return None
        return state if state in MIND_STATES else None

    def _dispatch(self, ev: SSEEvent) -> None:
        if ev.malformed:
            self.handler.malformed(f"{ev.event} event over-long, not UTF-8 or with a bad id")
            return
        try:
            data = json.loads(ev.data)
        except (ValueError, RecursionError):  # RecursionError: thousands of nested brackets
            self.handler.malformed(f"{ev.event} event with bad JSON")
            return
        if not isinstance(data, dict):
            self.handler.malformed(f"{ev.event} event whose data is not an object")
            return
        if ev.id:
            self.last_event_id = ev.id
        try:
            self.handler.event(ev.event, data, ev.id)
        except Exception:
            self.event_errors += 1
            if self.event_errors <= LOGGED_ERRORS or self.event_errors % 1000 == 0:
                log.exception("handling a %s event failed (%d so far); skipped", ev.event, self.event_errors)
