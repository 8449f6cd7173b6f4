"""Fan-out of frames to mirror viewers: bounded queues, slow viewers are dropped, never waited for."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from display.core.frame import Frame

log = logging.getLogger(__name__)


def sse_bytes(event: str, data: str, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


STUCK_GRACE_S = 5.0  # a dropped viewer whose stream has not ended by then is cut off


class Viewer:
    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=size)
        self.dropped = False
        self.ended = False  # its stream has finished
        self.cancel: Callable[[], None] | None = None  # aborts the response (set by the route)


class Hub:
    """Each message is encoded once and shared by every viewer."""

    def __init__(self, queue_size: int = 64, max_viewers: int = 500) -> None:
        self.queue_size = queue_size
        self.max_viewers = max_viewers
        self.viewers: set[Viewer] = set()
        self.frame_msg: bytes | None = None
        self.status_msg: bytes | None = None
        self.dropped_viewers = 0
        self.aborted_viewers = 0
        self.viewers_total = 0

    def join(self) -> Viewer | None:
        if len(self.viewers) >= self.max_viewers:
            return None
        viewer = Viewer(self.queue_size)
        # the snapshot: what the wall shows now, then every frame after it
        for msg in (self.status_msg, self.frame_msg):
            if msg is not None:
                viewer.queue.put_nowait(msg)
        self.viewers.add(viewer)
        self.viewers_total += 1
        return viewer

    def leave(self, viewer: Viewer) -> None:
        viewer.ended = True
        self.viewers.discard(viewer)

    def _send(self, msg: bytes) -> None:
        for viewer in list(self.viewers):
            try:
                viewer.queue.put_nowait(msg)
            except asyncio.QueueFull:
                self._drop(viewer)
                self.dropped_viewers += 1
                log.info("mirror viewer dropped: %d frames behind", self.queue_size)

    def _drop(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)
        viewer.dropped = True
        # make room for the end marker so its stream closes at once
        while not viewer.queue.empty():
            viewer.queue.get_nowait()
        viewer.queue.put_nowait(None)
        if viewer.cancel is not None:
            # a viewer whose socket stopped draining is stuck in a send and never sees the None
            asyncio.get_running_loop().call_later(STUCK_GRACE_S, self._abort, viewer)

    def _abort(self, viewer: Viewer) -> None:
        if not viewer.ended and viewer.cancel is not None:
            self.aborted_viewers += 1
            log.info("mirror viewer aborted: its connection stopped draining")
            viewer.cancel()

    def publish_frame(self, frame: Frame) -> None:
        self.frame_msg = sse_bytes("frame", frame.to_json(), str(frame.seq))
        self._send(self.frame_msg)

    def publish_status(self, status: dict) -> None:
        self.status_msg = sse_bytes("status", json.dumps(status, separators=(",", ":")))
        self._send(self.status_msg)

    def close(self) -> None:
        for viewer in list(self.viewers):
            self._drop(viewer)
