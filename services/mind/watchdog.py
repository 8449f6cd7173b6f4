"""Watchdogs of a thinking mind: a source that hangs, and a life that stalls at its memory limit.

Both measure the source's own progress, never the pace of the stream: the thinker pauses on purpose
between calls into the source (the breath, MIND_TOKENS_PER_S), and a pause is no sign of trouble. So
every call into the source is timed (``WatchedSource``), and only time spent inside the source counts:

- **hung**: one call has not returned for ``hung_s`` seconds of the watchdog's watching. The mind
  announces ``failed: hung`` and exits with 75 (Docker restarts it). A frozen process (SIGSTOP,
  ``docker pause``, a suspended host) freezes the watchdog too: when it wakes up far too late it times
  the running call from then on, so a thaw is not taken for a hang.
- **stall**: over the last ``stall_s`` seconds, all of these held: the mind's memory (page cache left
  out) was at least ``stall_memory_fraction`` of its limit; the source was at work for at least half of
  that time and made less than ``stall_rate_fraction`` of the best speed it has shown in this life
  (tokens per second of work); and the kernel was pressing the cgroup against its limit (its limit
  hits or its refaults rose, or v2's PSI ``full avg10`` reached ``STALL_PRESSURE_FULL`` %). That is a life the kernel
  should have killed but keeps alive by evicting its code pages, crawling. The mind announces
  ``oom: stall`` and kills itself as the kernel would (SIGKILL, 137).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mind.cgroup import CgroupMemory, MemoryReading, Pressure
from mind.death import Death
from mind.sizes import format_size
from mind.sources import ContextInfo, TokenSource

if TYPE_CHECKING:
    from mind.settings import MindSettings

log = logging.getLogger(__name__)

STALL_PRESSURE_FULL = 10.0  # % of the last 10 s in which all the cgroup's tasks waited for memory
MIN_CALLS_FOR_SPEED = 8  # a window's speed counts towards the best once it holds this many calls
FROZEN_GAP_S = 10.0  # a look this much later than the last one means the whole process was frozen
# A stall window is one the source spent working (a source crawling slower than the breath is never
# paused); a window with pauses in it is a mind that still keeps up.
STALL_BUSY_SHARE = 0.9


@dataclass(frozen=True)
class Progress:
    """The source's work over a window: calls that returned in it, time spent inside the source in it
    (a call still running counts as far as it has got), and how long the running call has run (0: none)."""

    calls: int
    busy_s: float
    in_call_s: float

    @property
    def rate(self) -> float | None:
        """Calls per second of work, or None if the source did no work in the window."""
        return self.calls / self.busy_s if self.busy_s > 0 else None


class WatchedSource:
    """``source``, with every call that makes thought (``next_piece``, ``sense``) timed."""

    def __init__(self, source: TokenSource, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self._clock = clock
        self._lock = threading.Lock()
        self._calls: deque[tuple[float, float]] = deque(maxlen=8192)  # (start, end)
        self._busy_since: float | None = None

    @property
    def name(self) -> str:
        return self.source.name

    def load(self) -> None:
        self.source.load()  # not watched: loading is not thinking

    def next_piece(self) -> bytes:
        return self._timed(self.source.next_piece)

    def sense(self, text: str) -> int:
        return self._timed(self.source.sense, text)

    @property
    def can_sense(self) -> bool:
        """Whether the source takes readings into its context (a fake one may not)."""
        return hasattr(self.source, "sense")

    def info(self) -> ContextInfo:
        return self.source.info()

    def close(self) -> None:
        self.source.close()

    def __getattr__(self, name: str) -> Any:  # anything else a source offers (PreloadedSource.loaded, ...)
        return getattr(self.source, name)

    def _timed(self, call: Callable[..., Any], *args: Any) -> Any:
        start = self._clock()
        self._busy_since = start
        try:
            return call(*args)
        finally:
            end = self._clock()
            with self._lock:
                self._calls.append((start, end))
                self._busy_since = None

    def progress(self, window_s: float, now: float | None = None) -> Progress:
        now = self._clock() if now is None else now
        since = now - window_s
        with self._lock:
            calls = [c for c in self._calls if c[1] >= since]
            running = self._busy_since
        busy = sum(end - max(start, since) for start, end in calls)
        in_call = 0.0
        if running is not None:
            in_call = max(0.0, now - running)
            busy += now - max(running, since)
        return Progress(len(calls), max(0.0, busy), in_call)


@dataclass(frozen=True)
class WatchSettings:
    """The watchdogs' thresholds (MIND_HUNG_S, MIND_STALL_S, ...); 0 seconds turns a watchdog off."""

    hung_s: float = 120.0
    stall_s: float = 30.0
    stall_memory_fraction: float = 0.9
    stall_rate_fraction: float = 0.1

    @classmethod
    def from_settings(cls, s: MindSettings) -> WatchSettings:
        return cls(s.hung_s, s.stall_s, s.stall_memory_fraction, s.stall_rate_fraction)

    @property
    def interval_s(self) -> float:
        """How often to look: a tenth of the shortest watch, at most a second."""
        shortest = min((s for s in (self.hung_s, self.stall_s) if s > 0), default=10.0)
        return max(0.05, min(1.0, shortest / 10))


@dataclass(frozen=True)
class Verdict:
    death: Death
    why: str  # for the log only: never on the stream


class Watchdog:
    """Looks at the source's progress and the cgroup every ``interval_s`` while ``thinking()``; the first
    verdict goes to ``on_verdict`` (which ends the life) and the watch ends."""

    def __init__(
        self,
        source: WatchedSource,
        memory: CgroupMemory,
        settings: WatchSettings,
        *,
        thinking: Callable[[], bool],
        on_verdict: Callable[[Verdict], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.memory = memory
        self.settings = settings
        self._thinking = thinking
        self._on_verdict = on_verdict
        self._clock = clock
        self._watching_since: float | None = None
        self._awake_since: float | None = None  # since the last freeze (or the first look)
        self._last_look: float | None = None
        self._counts: deque[tuple[float, Pressure]] = deque()  # the cgroup's counters over the stall window
        self.best_rate: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.settings.hung_s <= 0 and self.settings.stall_s <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="mind-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.interval_s):
            if not self._thinking():
                continue
            verdict = self.check()
            if verdict is not None:
                log.error("%s", verdict.why)
                self._on_verdict(verdict)
                return

    def check(self, now: float | None = None) -> Verdict | None:
        """One look: a verdict if the life must end now, else None."""
        s = self.settings
        now = self._clock() if now is None else now
        if self._watching_since is None:
            self._watching_since = self._awake_since = now
        elif now - self._last_look > max(FROZEN_GAP_S, 10 * s.interval_s):
            log.warning(
                "the watchdog looked %.0f s late: the mind was frozen (SIGSTOP, docker pause, a suspended host?) "
                "or starved of CPU; a call in progress is timed from now",
                now - self._last_look,
            )
            self._awake_since = now
        self._last_look = now
        window = s.stall_s if s.stall_s > 0 else s.hung_s
        progress = self.source.progress(window, now)
        stuck = min(progress.in_call_s, now - self._awake_since)
        if s.hung_s > 0 and stuck >= s.hung_s:
            return Verdict(
                Death.hung(),
                f"hung: no token for {stuck:.0f} s (one call into the source has not returned; "
                f"MIND_HUNG_S={s.hung_s:g}): /health answers 503 and the mind exits with "
                f"{Death.hung().exit_code} for Docker to restart it",
            )
        if s.stall_s <= 0:
            return None
        if progress.calls >= MIN_CALLS_FOR_SPEED and progress.rate is not None:
            self.best_rate = max(self.best_rate or 0.0, progress.rate)
        reading = self.memory.read()
        pressure = self.memory.pressure()
        pressed = self._in_window(now, pressure)
        if now - self._watching_since < s.stall_s:
            return None  # not a whole window seen yet
        why = stalled(progress, self.best_rate, reading, pressed, s)
        return None if why is None else Verdict(Death.stall(), why)

    def _in_window(self, now: float, pressure: Pressure) -> Pressure:
        """The counters' growth over the stall window (None where the kernel does not count), PSI as read."""
        self._counts.append((now, pressure))
        while len(self._counts) > 1 and self._counts[1][0] <= now - self.settings.stall_s:
            self._counts.popleft()
        first = self._counts[0][1]

        def growth(new: int | None, old: int | None) -> int | None:
            return None if new is None or old is None else new - old

        return replace(
            pressure,
            limit_hits=growth(pressure.limit_hits, first.limit_hits),
            refaults=growth(pressure.refaults, first.refaults),
        )


def stalled(
    progress: Progress, best_rate: float | None, reading: MemoryReading, pressed: Pressure, s: WatchSettings
) -> str | None:
    """Why the life is stalled at its limit (a line for the log), or None if it is not. ``pressed`` holds
    how much the cgroup's counters grew over the window. Pure."""
    if reading.limit_bytes is None or reading.memory_bytes is None:
        return None
    if reading.memory_bytes < s.stall_memory_fraction * reading.limit_bytes:
        return None
    if progress.busy_s < STALL_BUSY_SHARE * s.stall_s:
        return None  # the thinker paused in this window: the source keeps up
    rate = progress.rate or 0.0
    if best_rate is None:
        if progress.calls > 0:
            return None  # no speed known yet to compare with, and it does make progress
    elif rate >= s.stall_rate_fraction * best_rate:
        return None
    evidence = []
    if pressed.limit_hits:
        evidence.append(f"the cgroup met its limit {pressed.limit_hits} times")
    if pressed.refaults:
        evidence.append(f"{pressed.refaults} pages were evicted and read back in")
    if (pressed.full_avg10 or 0.0) >= STALL_PRESSURE_FULL:
        evidence.append(f"memory pressure full {pressed.full_avg10:.0f} % (avg10)")
    if not evidence:
        return None  # slow, but the kernel is not fighting the limit
    share = reading.memory_bytes / reading.limit_bytes
    best = "none yet" if best_rate is None else f"{best_rate:.1f}"
    return (
        f"stalled at its limit: memory {format_size(reading.memory_bytes)} of {format_size(reading.limit_bytes)} "
        f"({share:.0%}); in the last {s.stall_s:g} s the source worked {progress.busy_s:.1f} s for "
        f"{progress.calls} tokens ({rate:.2f} tokens/s of work, its best in this life {best}); meanwhile "
        f"{', '.join(evidence)}. Ending as the kernel would: SIGKILL, exit {Death.stall().exit_code}"
    )
