"""The display's heart: upstream events in, one frame out to every sink; lives out to subscribers."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable

from display.core import contract
from display.core.blocklist import Censor
from display.core.causes import MIND, VITALS, Death, infer_cause
from display.core.energy import LightMeter, light_joules, lit_segments
from display.core.font import Font, to_cells
from display.core.frame import Frame
from display.core.reel import Dying, Pacing, Reel, death_rng
from display.core.wall import Wall
from display.life import LifeFanout, LifeSubscriber
from display.settings import DisplaySettings
from display.web.hub import Hub

log = logging.getLogger(__name__)

# the vitals the mirror shows (checked numbers or null: display.core.contract)
VITALS_SHOWN = (
    "tokens",
    "tokens_per_s",
    "n_ctx",
    "n_ctx_train",
    "memory_bytes",
    "peak_memory_bytes",
    "limit_bytes",
    "tokens_left",
    "stops_refused",
    "words",
)


def pacing_of(settings: DisplaySettings) -> Pacing:
    return Pacing(
        rate=settings.pacing_rate,
        max_rate=settings.pacing_max_rate,
        backlog_full=settings.pacing_backlog_full,
        sentence_pause=settings.sentence_pause_s,
        max_backlog=settings.max_backlog,
        enabled=settings.pacing,
    )


def dying_of(settings: DisplaySettings) -> Dying:
    return Dying(settings.death_style, settings.death_duration_s)


class Display:
    """Implements the upstream handler; owns the wall, pacing, censor, status and counters."""

    def __init__(
        self,
        settings: DisplaySettings,
        hub: Hub,
        panel=None,
        subscribers: Iterable[LifeSubscriber] = (),
        censor: Censor | None = None,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        font: Font | None = None,
    ) -> None:
        self.settings = settings
        self.hub = hub
        self.panel = panel
        self.lives = LifeFanout(subscribers)
        self.subscribers = self.lives.subscribers
        self.censor = censor or Censor()
        self.clock = clock
        self.wallclock = wallclock
        self.light = LightMeter(clock())  # segment-seconds of the current life (the lighting estimate)
        self.light_duty = settings.light_duty()
        self.wall = Wall(settings.rows, settings.cols, font or Font(case=settings.letter_case))
        self.typewriter = pacing_of(settings).typewriter()
        # the wall and its typewriter over time: the same Reel a replay of a past life uses
        self.reel = Reel(self.wall, self.typewriter)
        self._wake = asyncio.Event()
        self._death_task: asyncio.Task | None = None
        # the current life as the display sees it
        self.life: str | None = None
        self.birth_data: dict | None = None
        self.vitals: dict | None = None
        self.tokens = 0
        self.last_seq: int | None = None  # the highest token seq of the current life
        self._announced_dead: str | None = None  # the life whose death the mind announced
        self.last_death: dict | None = None
        # what the mind says it does (its /health "state", or the stream's word); None: not known
        self.mind_state: str | None = None
        self.sense: dict | None = None  # the current life's last readings
        self.trimmed = 0  # characters of the current life the wall skipped (its backlog overflowed)
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
        self.light.show(lit_segments(frame.masks), self.clock())
        if self.panel is not None:
            try:
                self.panel.show(frame)
            except Exception:
                self.panel_errors_total += 1
                if not self._panel_error_logged:
                    log.exception("panel write failed (logged once; counted in display_panel_errors_total)")
                    self._panel_error_logged = True
        self.hub.publish_frame(frame)

    def status(self) -> dict:
        """What the mirror shows beside the wall: only checked numbers, ids and words."""
        return {
            "now": self.wallclock(),
            "connected": self.upstream_connected,
            "mind": self.mind_state,
            # a death is decided before its first picture leaves the wall "alive": it is not alive then
            "alive": self.wall.state == "alive" and (self._death_task is None or self._death_task.done()),
            "life": self.life,
            "life_number": self.lives_total or None,
            "born_at": (self.birth_data or {}).get("born_at"),
            "frame": (self.birth_data or {}).get("frame"),  # the prompt frame this life was drawn
            "tokens": self.tokens,
            "vitals": {k: self.vitals.get(k) for k in VITALS_SHOWN} if self.vitals else None,
            "last_death": self.last_death,
            "energy": self.energy(),
            "sense": self.sense["text"].strip() if self.sense else None,
            "trimmed": self.trimmed,
        }

    def lighting_joules(self) -> float:
        """The current life's lighting so far, estimated from the frames shown (display.core.energy)."""
        s = self.settings
        return light_joules(self.light.segment_seconds(self.clock()), s.segment_ma, s.supply_v, self.light_duty)

    def energy(self) -> dict | None:
        """The current life's joules thinking (the mind's CPU, by its power model) and lighting (this wall's
        frames): both estimated, and CO2 only where a grid factor is configured."""
        if self.life is None:
            return None
        v = self.vitals or {}
        lighting = self.lighting_joules()
        thinking = v.get("cpu_joules")
        out = {
            "thinking_j": thinking,
            "cpu_seconds": v.get("cpu_seconds"),
            "energy_model": v.get("energy_model"),
            "lighting_j": round(lighting, 3),
            "lit_segments": self.light.lit,
            "measured": False,  # estimates: a host that can measure says so with `latent energy`
            "co2_g": None,
        }
        if self.settings.grid_g_per_kwh is not None:
            out["co2_g"] = round(((thinking or 0.0) + lighting) / 3.6e6 * self.settings.grid_g_per_kwh, 4)
        return out

    def publish_status(self) -> None:
        self.hub.publish_status(self.status())

    # ---------------------------------------------------------------- upstream handler
    def connected(self) -> None:
        self.upstream_connected = True
        self.mind_state = None  # until its first word or its /health says
        log.info("connected to the mind")
        self.publish_status()

    def needs_health(self) -> bool:
        """The stream is open and shows no life: a mind loading its model looks just like this."""
        return self.upstream_connected and self.wall.state != "alive" and not self._birth_pending

    def health(self, state: str | None) -> None:
        if not self.needs_health() or state == self.mind_state:
            return  # an answer overtaken by the stream (a birth meanwhile) is not news
        if state == "loading" and self.mind_state != "loading":
            log.info("the mind is loading its model")
        self.mind_state = state
        self.publish_status()

    def malformed(self, reason: str) -> None:
        self.malformed_total += 1
        if self._malformed_logged < 10 or self.malformed_total % 1000 == 0:
            self._malformed_logged += 1
            log.warning("skipped a malformed upstream event (%s); %d so far", reason, self.malformed_total)

    def event(self, name: str, data: dict, event_id: str | None) -> None:
        parse = contract.PARSERS.get(name)
        if parse is None:
            self.unknown_events_total += 1
            log.debug("ignored unknown upstream event %r", name)
            return
        try:
            clean = parse(data)
        except contract.Malformed as exc:
            self.malformed(f"{name}: {exc}")
            return
        if name == "token":
            self._token(clean)
        elif name == "birth":
            self._birth(clean)
        elif name == "vitals":
            self._vitals(clean)
        elif name == "sense":
            self._sense(clean)
        else:
            self._announced_death(clean)

    def _birth(self, data: dict) -> None:
        life = data["life"]
        if life == self.life:
            if life == self._announced_dead:
                self.malformed("birth of a life that announced its death")
            elif self.wall.state != "alive" and not self._birth_pending:
                self._revive()
            return  # the same life again: not a new one
        self._release_held()  # anything the blocklist still holds belongs to the life before
        self.life = life
        self.birth_data = data
        self.vitals = None
        self.sense = None
        self.trimmed = 0
        self.tokens = 0
        self.last_seq = None
        self._announced_dead = None
        self.lives_total += 1
        self.light.restart(self.clock())
        self.mind_state = "thinking"
        self.censor.reset()
        self.typewriter.clear()
        log.info("birth: life #%d (%s)", self.lives_total, life)
        self.lives.on_birth(data)
        if self._death_task is not None and not self._death_task.done():
            # a quick resurrection must not cut the death short: the new life shows when it is over
            self._birth_pending = True
        else:
            self._show_birth()
        self.publish_status()

    def _show_birth(self) -> None:
        self._birth_pending = False
        self.publish(self.reel.birth(self.clock()))
        self._wake.set()  # text that arrived meanwhile waits in the typewriter
        self.publish_status()

    def _revive(self) -> None:
        # The stream broke but the same life went on (a network blip, a mind frozen then thawed): the
        # one place that decides a life resumed; subscribers are told, they do not work it out again.
        log.info("life %s resumed after a broken stream", self.life)
        self._release_held()
        self.lives.on_resume(self.life)
        self.mind_state = "thinking"
        self._cancel_death()
        self.publish(self.wall.revive())
        self.publish_status()

    def _token(self, data: dict) -> None:
        if data["life"] != self.life or self.life is None:
            self.malformed("token of no current life")
            return
        if self.life == self._announced_dead:
            self.malformed("token of a life that announced its death")
            return
        if self.wall.state != "alive" and not self._birth_pending:
            self._revive()
        self.tokens += 1
        self.tokens_total += 1
        self.last_seq = data["seq"] if self.last_seq is None else max(self.last_seq, data["seq"])
        text = data["text"]
        if self.censor.enabled:
            text = self.censor.feed(text)
            data = {**data, "text": text}
        self.lives.on_token(data)
        self._show(to_cells(text))

    def _sense(self, data: dict) -> None:
        """The system's readings: on the mirror in their own colour, on the wall if the setting says so,
        to the chronicle flagged as readings (never mixed into the thought)."""
        if data["life"] != self.life or self.life == self._announced_dead:
            return
        self.sense = data
        self.lives.on_sense(data)
        if self.settings.senses_on_wall:
            self._show(to_cells(data["text"]))
        self.publish_status()

    def _show(self, keys: str) -> None:
        if not keys:
            return
        dropped = self.typewriter.dropped
        for _, frame in self.reel.push(keys, self.clock()):
            self.publish(frame)
        dropped = self.typewriter.dropped - dropped
        if dropped and self.life is not None:
            # the wall skipped text it could not show in time: the chronicle marks it
            self.trimmed += dropped
            self.lives.on_trim(self.life, dropped, self.last_seq)
        self._wake.set()

    def _release_held(self) -> None:
        """The word the blocklist holds back (it waits for the word's end) goes out now: to the wall
        like any text, and to subscribers as the tail of the last token."""
        held = self.censor.flush()
        if not held or self.life is None or self.last_seq is None:
            return
        self.lives.on_token({"life": self.life, "seq": self.last_seq, "text": held, "tail": True})
        self._show(to_cells(held))

    def _vitals(self, data: dict) -> None:
        if data["life"] != self.life:
            return
        self.vitals = data
        # subscribers (the chronicle) keep the lighting with the mind's own numbers
        self.lives.on_vitals({**data, "light_joules": round(self.lighting_joules(), 3)})
        self.publish_status()

    def _announced_death(self, data: dict) -> None:
        life = data["life"]
        if life != self.life:
            self.malformed("death of a life not shown")
            return
        death = Death(
            life, data["cause"], MIND, exit_code=data["exit_code"], detail=data["reason"], tokens=data["tokens"]
        )
        self._announced_dead = life
        self.mind_state = "dying"
        if self.wall.state == "alive" or self._birth_pending:
            self._death(f"announced by the mind: {death.words()}", death)
        else:
            # already shown dead (its stream broke first): the mind's word replaces the inference
            self.lives.on_death(death)
            if self.last_death is not None and self.last_death["life"] == life:
                self.last_death["cause"] = death.words()
            self.publish_status()

    def broken(self, reason: str) -> None:
        was_connected, self.upstream_connected = self.upstream_connected, False
        self.mind_state = None
        if was_connected:
            self.disconnects_total += 1
            self._waiting_logged = False
            log.warning("mind stream lost: %s", reason)
        elif not self._waiting_logged:
            self._waiting_logged = True  # once per outage, not once per retry
            log.info("waiting for the mind at %s (%s); retrying with backoff", self.settings.mind_url, reason)
        if self.life is not None and (self.wall.state == "alive" or self._birth_pending):
            self._death(reason, self._inferred_death())
        elif was_connected:
            self.publish_status()

    def _inferred_death(self) -> Death:
        """An unannounced end: the cause its last vitals support (never more than a probable OOM)."""
        v = self.vitals or {}
        limit = v.get("limit_bytes") or (self.birth_data or {}).get("limit_bytes")
        tokens_after = 0
        if v.get("tokens") is not None and self.last_seq is not None:
            tokens_after = self.last_seq + 1 - v["tokens"]
        cause = infer_cause(v.get("memory_bytes"), limit, v.get("tokens_left"), tokens_after)
        return Death(self.life, cause, VITALS)

    def _death(self, reason: str, death: Death) -> None:
        born = (self.birth_data or {}).get("born_at")
        now = self.wallclock()
        v = self.vitals or {}
        self.last_death = {
            "life": self.life,
            "life_number": self.lives_total,
            "born_at": born,
            "died_at": now,
            "age_s": (now - born) if born is not None else None,
            "tokens": v.get("tokens") if v.get("tokens") is not None else self.tokens,
            "memory_bytes": v.get("memory_bytes"),
            "peak_memory_bytes": v.get("peak_memory_bytes"),
            "limit_bytes": v.get("limit_bytes"),
            "cause": death.words(),  # words only: the reason (an exception's text, maybe) stays in the log
        }
        log.info("death of life #%d (%s): %s; cause %s", self.lives_total, self.life, reason, death.words())
        for _, frame in self.reel.advance(self.clock()):  # what was due before the death, as a replay shows it
            self.publish(frame)
        self._release_held()
        self.typewriter.clear()
        self.lives.on_death(death)
        self._cancel_death()
        self._birth_pending = False  # a life that died before the wall could show it
        self._death_task = asyncio.get_running_loop().create_task(self._die(death_rng(self.life)))
        self.publish_status()

    def _cancel_death(self) -> None:
        if self._death_task is not None and not self._death_task.done():
            self._death_task.cancel()
        self._death_task = None

    async def _die(self, rng: random.Random) -> None:
        for at, frame in self.reel.death(self.clock(), dying_of(self.settings), rng):
            await asyncio.sleep(max(0.0, at - self.clock()))
            self.publish(frame)
        await asyncio.sleep(max(0.0, self.settings.death_duration_s / dying_of(self.settings).steps))
        if self._birth_pending:
            self._show_birth()

    # ---------------------------------------------------------------- pacing loop
    async def pace(self) -> None:
        while True:
            for _, frame in self.reel.advance(self.clock()):
                self.publish(frame)
            wait = self.reel.wait()
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
