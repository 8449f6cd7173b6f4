"""The display's heart: upstream events in, one frame out to every sink; lives out to subscribers."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Callable, Iterable

from display.core.blocklist import Censor
from display.core.font import to_cells
from display.core.frame import Frame
from display.core.pacing import Typewriter
from display.core.wall import Wall
from display.life import LifeSubscriber
from display.settings import DisplaySettings
from display.web.hub import Hub

log = logging.getLogger(__name__)

DEATH_STEPS_PER_S = 12  # frames per second of the death animation
# the vitals the mirror shows; only numbers (or null) are passed on, so viewers get small, safe status
VITALS_SHOWN = ("tokens", "tokens_per_s", "n_ctx", "n_ctx_train", "memory_bytes", "peak_memory_bytes",
                "limit_bytes", "tokens_left")


def _number(value) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class Display:
    """Implements the upstream handler; owns the wall, pacing, censor, status and counters."""

    def __init__(self, settings: DisplaySettings, hub: Hub, panel=None, subscribers: Iterable[LifeSubscriber] = (),
                 censor: Censor | None = None, clock: Callable[[], float] = time.monotonic,
                 wallclock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.hub = hub
        self.panel = panel
        self.subscribers: list[LifeSubscriber] = list(subscribers)
        self.censor = censor or Censor()
        self.clock = clock
        self.wallclock = wallclock
        self.wall = Wall(settings.rows, settings.cols)
        self.typewriter = Typewriter(
            rate=settings.pacing_rate, max_rate=max(settings.pacing_rate, settings.pacing_max_rate),
            backlog_full=settings.pacing_backlog_full, sentence_pause=settings.sentence_pause_s,
            max_backlog=settings.max_backlog, enabled=settings.pacing,
        )
        self._wake = asyncio.Event()
        self._death_task: asyncio.Task | None = None
        # the current life as the display sees it
        self.life: str | None = None
        self.birth_data: dict | None = None
        self.vitals: dict | None = None
        self.tokens = 0
        self.last_death: dict | None = None
        # counters for /metrics
        self.upstream_connected = False
        self.lives_total = 0
        self.frames_total = 0
        self.tokens_total = 0
        self.malformed_total = 0
        self.unknown_events_total = 0
        self.disconnects_total = 0
        self.panel_errors_total = 0
        self._malformed_logged = 0
        self._panel_error_logged = False
        self._waiting_logged = False
        self._birth_pending = False  # a birth waiting for the death picture to finish
        self.publish(self.wall.frame)
        self.publish_status()

    # ---------------------------------------------------------------- sinks
    def publish(self, frame: Frame) -> None:
        """One frame, every sink: the panel and the mirror get the very same masks."""
        self.frames_total += 1
        if self.panel is not None:
            try:
                self.panel.show(frame)
            except Exception:  # noqa: BLE001 - a flaky bus must not take the mirror down
                self.panel_errors_total += 1
                if not self._panel_error_logged:
                    log.exception("panel write failed (logged once; counted in display_panel_errors_total)")
                    self._panel_error_logged = True
        self.hub.publish_frame(frame)

    def status(self) -> dict:
        return {
            "now": self.wallclock(),
            "connected": self.upstream_connected,
            "alive": self.wall.state == "alive",
            "life": self.life,
            "life_number": self.lives_total or None,
            "born_at": _number((self.birth_data or {}).get("born_at")),
            "tokens": self.tokens,
            "vitals": {k: _number(self.vitals.get(k)) for k in VITALS_SHOWN} if self.vitals else None,
            "last_death": self.last_death,
        }

    def publish_status(self) -> None:
        self.hub.publish_status(self.status())

    def _notify(self, method: str, arg) -> None:
        for sub in self.subscribers:
            try:
                getattr(sub, method)(arg)
            except Exception:  # noqa: BLE001 - one broken subscriber must not stop the wall
                log.exception("life subscriber %r failed in %s", sub, method)

    # ---------------------------------------------------------------- upstream handler
    def connected(self) -> None:
        self.upstream_connected = True
        log.info("connected to the mind")
        self.publish_status()

    def malformed(self, reason: str) -> None:
        self.malformed_total += 1
        if self._malformed_logged < 10 or self.malformed_total % 1000 == 0:
            self._malformed_logged += 1
            log.warning("skipped a malformed upstream event (%s); %d so far", reason, self.malformed_total)

    def event(self, name: str, data: dict, event_id: str | None) -> None:
        if name == "token":
            self._token(data)
        elif name == "birth":
            self._birth(data)
        elif name == "vitals":
            self._vitals(data)
        else:
            self.unknown_events_total += 1
            log.debug("ignored unknown upstream event %r", name)

    def _birth(self, data: dict) -> None:
        life = data.get("life")
        if not isinstance(life, str):
            self.malformed("birth without a life id")
            return
        if life == self.life:
            if self.wall.state != "alive" and not self._birth_pending:
                self._revive()
            return  # the same life again: not a new one
        self.life = life
        self.birth_data = data
        self.vitals = None
        self.tokens = 0
        self.lives_total += 1
        self.censor.reset()
        self.typewriter.clear()
        log.info("birth: life #%d (%s)", self.lives_total, life)
        self._notify("on_birth", data)
        if self._death_task is not None and not self._death_task.done():
            # a quick resurrection must not cut the death short: the new life shows when it is over
            self._birth_pending = True
        else:
            self._show_birth()
        self.publish_status()

    def _show_birth(self) -> None:
        self._birth_pending = False
        self.publish(self.wall.birth())
        self._wake.set()  # text that arrived meanwhile waits in the typewriter
        self.publish_status()

    def _revive(self) -> None:
        # the stream broke but the same life went on (a network blip, a mind frozen then thawed)
        log.info("life %s resumed after a broken stream", self.life)
        self._cancel_death()
        self.publish(self.wall.revive())
        self.publish_status()

    def _token(self, data: dict) -> None:
        text = data.get("text")
        if not isinstance(text, str) or data.get("life") != self.life or self.life is None:
            self.malformed("token without text, or of no current life")
            return
        if self.wall.state != "alive" and not self._birth_pending:
            self._revive()
        self.tokens += 1
        self.tokens_total += 1
        if self.censor.enabled:
            text = self.censor.feed(text)
            data = {**data, "text": text}
        self._notify("on_token", data)
        keys = to_cells(text)
        if not keys:
            return
        if self.typewriter.enabled or self.wall.state != "alive":
            self.typewriter.push(keys)
            self._wake.set()
        else:
            frame = self.wall.write(keys)
            if frame is not None:
                self.publish(frame)

    def _vitals(self, data: dict) -> None:
        if data.get("life") != self.life:
            return
        self.vitals = data
        self._notify("on_vitals", data)
        self.publish_status()

    def broken(self, reason: str) -> None:
        was_connected, self.upstream_connected = self.upstream_connected, False
        if was_connected:
            self.disconnects_total += 1
            self._waiting_logged = False
            log.warning("mind stream lost: %s", reason)
        elif not self._waiting_logged:
            self._waiting_logged = True  # once per outage, not once per retry
            log.info("waiting for the mind at %s (%s); retrying with backoff", self.settings.mind_url, reason)
        if self.life is not None and (self.wall.state == "alive" or self._birth_pending):
            self._death(reason)
        elif was_connected:
            self.publish_status()

    def _death(self, reason: str) -> None:
        born = (self.birth_data or {}).get("born_at")
        now = self.wallclock()
        v = self.vitals or {}
        self.last_death = {
            "life": self.life,
            "life_number": self.lives_total,
            "born_at": _number(born),
            "died_at": now,
            "age_s": (now - born) if _number(born) is not None else None,
            "tokens": _number(v.get("tokens", self.tokens)),
            "memory_bytes": _number(v.get("memory_bytes")),
            "peak_memory_bytes": _number(v.get("peak_memory_bytes")),
            "limit_bytes": _number(v.get("limit_bytes")),
            "reason": reason,
        }
        log.info("death of life #%d (%s): %s", self.lives_total, self.life, reason)
        self.censor.flush()
        self.typewriter.clear()
        self._notify("on_death", self.life)
        self._cancel_death()
        self._birth_pending = False  # a life that died before the wall could show it
        self._death_task = asyncio.get_running_loop().create_task(self._die())
        self.publish_status()

    def _cancel_death(self) -> None:
        if self._death_task is not None and not self._death_task.done():
            self._death_task.cancel()
        self._death_task = None

    async def _die(self) -> None:
        duration = self.settings.death_duration_s
        steps = max(1, round(duration * DEATH_STEPS_PER_S))
        for frame in self.wall.death_frames(self.settings.death_style, steps, random.Random()):
            self.publish(frame)
            await asyncio.sleep(duration / steps)
        if self._birth_pending:
            self._show_birth()

    # ---------------------------------------------------------------- pacing loop
    async def pace(self) -> None:
        while True:
            keys, wait = ("", None) if self.wall.state != "alive" else self.typewriter.release(self.clock())
            if keys:
                frame = self.wall.write(keys)
                if frame is not None:
                    self.publish(frame)
            self._wake.clear()
            if wait is None:
                await self._wake.wait()
            else:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                except TimeoutError:
                    pass

    def stop(self) -> None:
        """At shutdown: no death animation outlives the app."""
        self._cancel_death()

    def backlog(self) -> int:
        return len(self.typewriter)

    def metrics(self) -> str:
        lines = []

        def metric(name: str, kind: str, help_: str, value: float) -> None:
            lines.extend((f"# HELP {name} {help_}", f"# TYPE {name} {kind}", f"{name} {value}"))

        metric("display_frames_total", "counter", "Frames computed and sent to every sink.", self.frames_total)
        metric("display_viewers", "gauge", "Mirror viewers connected now.", len(self.hub.viewers))
        metric("display_viewers_dropped_total", "counter", "Mirror viewers dropped for falling behind.", self.hub.dropped_viewers)
        metric("display_viewers_aborted_total", "counter", "Dropped viewers whose connection was cut because it stopped draining.", self.hub.aborted_viewers)
        metric("display_lives_total", "counter", "Births seen since the display started.", self.lives_total)
        metric("display_upstream_connected", "gauge", "1 while the mind's stream is open.", int(self.upstream_connected))
        metric("display_upstream_disconnects_total", "counter", "Times the mind's stream ended or broke.", self.disconnects_total)
        metric("display_tokens_total", "counter", "Tokens received from the mind.", self.tokens_total)
        metric("display_backlog_chars", "gauge", "Characters waiting for the typewriter.", self.backlog())
        metric("display_backlog_dropped_chars_total", "counter", "Characters dropped over the backlog bound (shown as an ellipsis).", self.typewriter.dropped)
        metric("display_malformed_events_total", "counter", "Upstream events skipped as malformed.", self.malformed_total)
        metric("display_unknown_events_total", "counter", "Upstream events of unknown type, ignored.", self.unknown_events_total)
        metric("display_masked_words_total", "counter", "Words masked by the blocklist.", self.censor.masked)
        metric("display_panel_errors_total", "counter", "Failed panel writes.", self.panel_errors_total)
        return "\n".join(lines) + "\n"
