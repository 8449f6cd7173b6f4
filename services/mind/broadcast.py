"""Fan-out of the mind's events to many subscribers without ever making the thinker wait.

The worker thread appends events to a bounded ring under a lock and, at most once per loop turn,
asks the event loop to wake the subscribers. Each subscriber is a cursor into the ring: memory per
subscriber is constant, and one that falls further behind than the ring holds is disconnected (it
can come back with Last-Event-ID while its events are still retained)."""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import AsyncIterator, Optional

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
        self._birth: Optional[Event] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._wake: Optional[asyncio.Event] = None
        self._wake_pending = False
        self.subscribers = 0
        self.dropped = 0

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to the event loop that serves subscribers (call from that loop)."""
        self._loop = loop
        self._wake = asyncio.Event()

    def publish(self, event: str, data: dict) -> int:
        """Thread-safe and non-blocking. ``birth`` is kept apart as id 0; other events count from 1."""
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            if event == "birth":
                n = 0
                self._birth = Event(0, event, payload)
            else:
                self._n += 1
                n = self._n
                self._ring.append(Event(n, event, payload))
            wake = self._loop is not None and not self._wake_pending
            if wake:
                self._wake_pending = True
        if wake:
            try:
                self._loop.call_soon_threadsafe(self._wake_all)
            except RuntimeError:  # loop closed: the process is shutting down
                pass
        return n

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

    def parse_last_event_id(self, last_event_id: Optional[str]) -> Optional[int]:
        """The cursor for a resuming client of this life, or None (another life, or no id)."""
        if not last_event_id:
            return None
        life, _, n = last_event_id.strip().partition(":")
        if life != self.life or not n.isdigit():
            return None
        return int(n)

    async def stream(self, last_event_id: Optional[str] = None) -> AsyncIterator[dict]:
        """One subscriber's events as sse-starlette dicts: birth first unless resuming, then retained, then live."""
        assert self._wake is not None, "attach() first"
        self.subscribers += 1
        try:
            cursor = self.parse_last_event_id(last_event_id)
            while self._birth is None:
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
                    await wake.wait()
                    continue
                for ev in events:
                    yield ev.sse(self.life)
                    cursor = ev.n
        finally:
            self.subscribers -= 1
