"""Fan-out of the mind's events to many subscribers without ever making the thinker wait.

The worker thread appends events to a bounded ring under a lock and, at most once per loop turn,
asks the event loop to wake the subscribers. Each subscriber is a cursor into the ring: memory per
subscriber is constant, and one that falls further behind than the ring holds is disconnected (it
can come back with Last-Event-ID while its events are still retained).

A life's last event (its ``death``) seals the ring: nothing published after it is sent, and every
stream ends once it has sent it."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    n: int
    event: str
    data: str  # JSON text, encoded once for every subscriber

    def sse(self, life: str) -> dict:
        return {"event": self.event, "id": f"{life}:{self.n}", "data": self.data}


class Broadcaster:
    def __init__(self, life: str, capacity: int = 2048) -> None:
        self.life = life
        self._lock = threading.Lock()
        self._ring: deque[Event] = deque(maxlen=capacity)
        self._n = 0
        self._birth: Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._wake_pending = False
        self.subscribers = 0
        self.dropped = 0
        self.tokens = 0  # token events published: the last seq + 1
        self._last: Event | None = None  # the life's last event; nothing is published after it

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to the event loop that serves subscribers (call from that loop)."""
        self._loop = loop
        self._wake = asyncio.Event()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def publish(self, event: str, data: dict) -> int | None:
        """Thread-safe and non-blocking. ``birth`` is kept apart as id 0; other events count from 1.
        Returns the event's number, or None once the life's last event is out (it is not sent)."""
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            if self._last is not None:
                return None
            if event == "token":
                self.tokens += 1
            return self._append(event, payload)

    def seal(self, event: str, data: Callable[[int], dict]) -> int | None:
        """Publish the life's last event, its data made from the tokens published before it (so no token
        can slip in between); nothing is sent after it. None if the life had its last event already."""
        with self._lock:
            if self._last is not None:
                return None
            n = self._append(event, json.dumps(data(self.tokens), ensure_ascii=False, separators=(",", ":")))
            self._last = self._ring[-1]
            return n

    @property
    def sealed(self) -> bool:
        return self._last is not None

    def _append(self, event: str, payload: str) -> int:
        """Store an event and wake the subscribers (with the lock held)."""
        if event == "birth":
            n = 0
            self._birth = Event(0, event, payload)
        else:
            self._n += 1
            n = self._n
            self._ring.append(Event(n, event, payload))
        if self._loop is not None and not self._wake_pending:
            self._wake_pending = True
            try:
                self._loop.call_soon_threadsafe(self._wake_all)
            except RuntimeError:  # loop closed: the process is shutting down
                pass
        return n

    async def drained(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until no subscriber is left: after a ``seal`` each stream ends once it
        has sent the last event. True if they all did."""
        deadline = time.monotonic() + timeout
        while self.subscribers and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return not self.subscribers

    def drain(self, timeout: float) -> bool:
        """``drained`` for a thread other than the event loop's."""
        deadline = time.monotonic() + timeout
        while self.subscribers and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self.subscribers

    def _wake_all(self) -> None:
        with self._lock:
            self._wake_pending = False
        old, self._wake = self._wake, asyncio.Event()
        old.set()

    @property
    def born(self) -> bool:
        return self._birth is not None

    def _after(self, cursor: int) -> tuple[list[Event], bool]:
        """Events with n > cursor, and whether some of them are no longer retained."""
        with self._lock:
            if not self._ring or self._ring[-1].n <= cursor:
                return [], False
            oldest = self._ring[0].n
            lost = oldest > cursor + 1
            start = max(0, cursor + 1 - oldest)
            return [self._ring[i] for i in range(start, len(self._ring))], lost

    def parse_last_event_id(self, last_event_id: str | None) -> int | None:
        """The cursor for a resuming client of this life, or None: no id, another life's, or one this life
        never sent (digits that are not ASCII, a number beyond the newest event). A client with None gets
        the birth and the retained events, never a silent wait for an event that will not come."""
        if not last_event_id:
            return None
        life, _, n = last_event_id.strip().partition(":")
        # str.isdigit() is true for "²" and "١"; int() refuses the first and reads the second as 1.
        if life != self.life or not (n.isascii() and n.isdigit()) or len(n) > 18:
            return None
        cursor = int(n)
        with self._lock:
            return cursor if cursor <= self._n else None

    async def stream(self, last_event_id: str | None = None) -> AsyncIterator[dict]:
        """One subscriber's events as sse-starlette dicts: birth first unless resuming, then retained, then live."""
        assert self._wake is not None, "attach() first"
        self.subscribers += 1
        try:
            cursor = self.parse_last_event_id(last_event_id)
            while self._birth is None:
                if self._last is not None:
                    return
                await self._wake.wait()
            if cursor is None:
                yield self._birth.sse(self.life)
                cursor = 0
            fresh = True
            while True:
                wake = self._wake
                events, lost = self._after(cursor)
                if lost and not fresh:
                    self.dropped += 1
                    log.warning("subscriber fell %d events behind; disconnecting it", events[0].n - cursor - 1)
                    return
                fresh = False
                if not events:
                    last = self._last
                    if last is not None and cursor >= last.n:
                        return  # the life's last event is sent: the stream ends with it
                    await wake.wait()
                    continue
                for ev in events:
                    yield ev.sse(self.life)
                    cursor = ev.n
        finally:
            self.subscribers -= 1
