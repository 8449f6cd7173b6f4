"""The panel's own thread: the event loop hands frames over and never waits for a bus.

The latest frame wins (a slow bus skips pictures the mirror showed only briefly, and catches up with
the newest). Every `refresh_s` the chip configuration and the whole current frame go out again, so a
chip that reset (a brown-out, the LED supply coming up after the Pi, a glitch on a long cable) heals
by itself, even under a held death picture.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from display.adapters.panels.base import ChipPanel
from display.core.frame import Frame

log = logging.getLogger(__name__)


class PanelError(RuntimeError):
    """Sends to the panel failed (the driver logged the first cause)."""


class PanelDriver:
    def __init__(
        self, panel: ChipPanel, refresh_s: float = 2.0, name: str = "", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.panel = panel
        self.segments = panel.segments
        self.refresh_s = refresh_s
        self.name = name or type(panel).__name__
        self.clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._frame: Frame | None = None
        self._closing = False
        # counters (read by tests, the benchmark, and show())
        self.frames_sent = 0
        self.refreshes = 0
        self.failures = 0
        self.refresh_seconds = 0.0  # time spent in refreshes: their cost
        self._reported = 0
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="panel", daemon=True)
        self._thread.start()

    # -- the event loop's side
    def show(self, frame: Frame) -> None:
        """Hand the frame over; raise if sends failed since the last call (the runtime counts it)."""
        with self._lock:
            self._frame = frame
        self._wake.set()
        failed = self.failures - self._reported
        if failed:
            self._reported += failed
            raise PanelError(f"{failed} send(s) to the panel failed")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread; it leaves the wall dark and releases the bus."""
        with self._lock:
            self._closing = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the panel thread did not stop within %.0f s (a hung bus?)", timeout)

    # -- the panel thread
    def _attempt(self, action: Callable, *args) -> bool:
        try:
            action(*args)
        except Exception:
            self.failures += 1
            if not self._failing:
                self._failing = True
                log.exception("%s: sending to the panel failed (retried at each frame and refresh)", self.name)
            return False
        if self._failing:
            self._failing = False
            log.info("%s: the panel answers again (%d failed sends so far)", self.name, self.failures)
        return True

    def _run(self) -> None:
        self._attempt(self.panel.start)
        shown: Frame | None = None
        due = self.clock() + self.refresh_s
        while True:
            timeout = max(0.0, due - self.clock()) if self.refresh_s > 0 else None
            self._wake.wait(timeout)
            self._wake.clear()
            with self._lock:
                frame, closing = self._frame, self._closing
            if closing:
                break
            if self.refresh_s > 0 and self.clock() >= due:
                t0 = time.perf_counter()
                if self._attempt(self.panel.refresh, frame):
                    shown = frame
                self.refresh_seconds += time.perf_counter() - t0
                self.refreshes += 1
                due = self.clock() + self.refresh_s
            elif frame is not None and frame is not shown:
                if self._attempt(self.panel.show, frame):
                    shown = frame
                    self.frames_sent += 1
        self._attempt(self.panel.close)
