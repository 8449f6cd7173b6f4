"""One life of the mind: its id, its source, its thinker, its broadcaster, and its vitals."""

from __future__ import annotations

import logging
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from typing import TYPE_CHECKING

from mind.broadcast import Broadcaster
from mind.cgroup import CgroupCpu, CgroupMemory, rss_bytes
from mind.death import FLUSH_S, GRACE_S, STOPPED, Death
from mind.energy import board_joules, cpu_joules
from mind.lifespan import Costs, predict_tokens_left
from mind.senses import sense_line
from mind.sources import TokenSource
from mind.thinker import Thinker
from mind.watchdog import Verdict, Watchdog, WatchedSource, WatchSettings

if TYPE_CHECKING:
    from mind.settings import MindSettings

log = logging.getLogger(__name__)

NO_COSTS = {f.name: None for f in fields(Costs)}  # what /vitals says while the costs are unknown


class Mind:
    """One life: its id, its source, its thinker and its broadcaster."""

    def __init__(
        self,
        settings: MindSettings,
        source: TokenSource,
        memory: CgroupMemory,
        on_fatal: Callable[[int], None],
        cpu: CgroupCpu | None = None,
    ) -> None:
        self.settings = settings
        self.cpu = cpu or CgroupCpu(settings.cgroup_root)
        self.board = settings.power_model()
        self.life = secrets.token_hex(8)
        self.born_at = time.time()
        # The deaths the mind can see are announced before the process ends (``on_fatal`` ends it); the
        # thinker's failures come through _thinker_failed, and every call into the source is timed for
        # the watchdog.
        self.end_process, on_fatal = on_fatal, self._thinker_failed
        self.death: Death | None = None
        self._death_lock = threading.Lock()
        source = self.watched = WatchedSource(source)
        self.watchdog = Watchdog(
            self.watched,
            memory,
            WatchSettings.from_settings(settings),
            thinking=lambda: self.state == "thinking",
            on_verdict=self._watchdog_verdict,
        )
        self.memory = memory
        self.source = source
        self.broadcaster = Broadcaster(self.life, settings.replay_events)
        self.birth = getattr(source, "birth", None)  # mind.frames.Birth: the frame drawn, the life counted
        counter = self.birth.counter if self.birth is not None else None
        self.thinker = Thinker(
            source,
            self.broadcaster,
            birth_data=self.birth_data,
            on_fatal=on_fatal,
            tokens_per_s=settings.tokens_per_s,
            sense=self.sense_data if settings.senses != "off" else None,
            record=counter.record if counter is not None else None,
        )

    def birth_data(self) -> dict:
        """The contract's birth fields: what this life is (its frame as filled, model, sampler, seed)."""
        frame = getattr(self.source, "frame", None)  # mind.frames.FilledFrame, from a model source
        sampling = getattr(self.source, "sampling", None)
        sampler = asdict(sampling) if sampling is not None else None
        return {
            "life": self.life,
            "born_at": self.born_at,
            "model": self.source.name,
            "prompt": self.birth.frame.name if self.birth is not None else self.settings.prompt,
            "limit_bytes": self.memory.read().limit_bytes,
            "life_number": self.birth.life_number if self.birth is not None else None,
            "frame": self.birth.frame.name if self.birth is not None else None,
            "frame_sha256": frame.sha256 if frame is not None else None,
            "frame_text": frame.text if frame is not None else None,
            "sampler": {k: v for k, v in sampler.items() if k != "seed"} if sampler else None,
            "seed": sampler["seed"] if sampler else None,
            "senses": self.settings.senses,
            "tokens_per_s_limit": self.settings.tokens_per_s or None,
        }

    def sense_data(self) -> dict:
        """The readings the system writes into the context at a paragraph end: the vitals of this moment,
        said in words (mind.senses)."""
        v = self.vitals()
        data = {
            "life": self.life,
            "tokens": v["tokens"],
            "words": v["words"],
            "age_s": round(time.time() - self.born_at, 1),
            "memory_bytes": v["memory_bytes"],
            "limit_bytes": v["limit_bytes"],
        }
        if self.settings.senses == "gauge+past" and self.birth is not None:
            data["life_number"] = self.birth.life_number
            data["lifespans"] = list(self.birth.counter.lifespans) if self.birth.counter else []
        return data | {"text": sense_line(data)}

    def vitals(self) -> dict:
        """The contract's vitals fields (docs/stream-contract.md)."""
        return self._vitals(self._context(self.thinker.state), self.memory.read())

    def _context(self, state: str):
        """The source's context while thinking, else None: judged on one reading of the state, as the
        state moves on beside the request (a thinking state with no context misleads a reader)."""
        return self.source.info() if state == "thinking" else None

    def _vitals(self, ctx, reading) -> dict:
        tokens = self.thinker.tokens
        tokens_left = None
        if ctx is not None and reading.limit_bytes is not None and ctx.costs is not None:
            # the readings fill the context too: the positions left are shared in the same proportion
            sensed = self.thinker.sense_tokens
            left = predict_tokens_left(ctx.costs, ctx.plan(), reading.limit_bytes, tokens + sensed)
            tokens_left = left if left is None or not sensed else int(left * tokens / (tokens + sensed))
        return {
            "life": self.life,
            "born_at": self.born_at,
            "tokens": tokens,
            "tokens_per_s": round(self.thinker.tokens_per_s(), 3),
            "n_ctx": ctx.n_ctx if ctx else None,
            "n_ctx_train": ctx.n_ctx_train if ctx else None,
            "memory_bytes": reading.memory_bytes if reading.memory_bytes is not None else rss_bytes(),
            "peak_memory_bytes": reading.peak_bytes,
            "limit_bytes": reading.limit_bytes,
            "limit_in_force": reading.limit_in_force,
            "tokens_left": tokens_left,
            "shifting": ctx.shifting if ctx else False,
            "words": self.thinker.words.count,
            "senses": self.thinker.senses,
            "stops_refused": getattr(self.source, "stops_refused", None),
            **self.energy(),
        }

    def energy(self) -> dict:
        """The contract's energy fields: this life's CPU seconds and their joules by the board's power model."""
        seconds = self.cpu.life_seconds()
        return {
            "cpu_seconds": round(seconds, 3),
            "cpu_joules": round(cpu_joules(seconds, self.board), 3),
            "energy_model": self.board.name,
        }

    def vitals_detail(self) -> dict:
        """/vitals: the contract's fields plus what helps a person (or a test) see inside, among them
        every cost the death prediction uses (scripts/lifespan predicts from a saved copy)."""
        state = self.state
        ctx = self._context(state)
        reading = self.memory.read()  # one read of the cgroup for the whole answer
        out = self._vitals(ctx, reading)
        out |= {
            "state": state,
            "cgroup_version": reading.version,
            "oom_kills": reading.oom_kills,
            "subscribers": self.broadcaster.subscribers,
            "subscribers_dropped": self.broadcaster.dropped,
            "cpu_source": self.cpu.source,
            "board_idle_w": self.board.idle_w,
            "board_core_w": round(self.board.core_w, 4),
            "board_joules": round(board_joules(out["cpu_seconds"], time.time() - self.born_at, self.board), 3),
            # the prediction in minutes at the breath's pace (None at full speed: then it is the machine's)
            "minutes_left": round(out["tokens_left"] / self.settings.tokens_per_s / 60, 1)
            if out["tokens_left"] is not None and self.settings.tokens_per_s > 0
            else None,
            "tokens_per_s_limit": self.settings.tokens_per_s or None,
        }
        if ctx is not None:
            out |= {
                "n_past": ctx.n_past,
                "prompt_tokens": ctx.prompt_tokens,
                "growth_step": ctx.growth_step,
                **(asdict(ctx.costs) if ctx.costs is not None else NO_COSTS),
                "kv_measured": ctx.kv_measured,
                "model_bytes": ctx.model_bytes,
                "growth_peaks": [list(p) for p in ctx.growth_peaks],
                "growths": ctx.growths,
                "last_growth_pause_s": ctx.last_growth_pause_s,
                "max_growth_pause_s": ctx.max_growth_pause_s,
            }
        return out

    # -- death (mind.death) ------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """loading, thinking, failed, or dying (a death announced, the process about to end)."""
        return "dying" if self.death is not None else self.thinker.state

    def die(self, death: Death) -> bool:
        """Announce ``death`` on the stream: the life's last event, carrying the tokens published before
        it. Only the first death counts: False if another was announced already (or none can be: before
        birth no subscriber has seen this life)."""
        with self._death_lock:
            if self.death is not None or not self.broadcaster.born:
                return False
            self.death = death
        self.broadcaster.seal("death", lambda tokens: death.data(self.life, tokens))
        log.log(
            logging.INFO if death.cause == STOPPED else logging.ERROR,
            "life %s ends: %s (%s) after %d tokens; exit status %d",
            self.life,
            death.cause,
            death.reason,
            self.broadcaster.tokens,
            death.exit_code,
        )
        return True

    def end(self, death: Death) -> None:
        """From a thread other than the event loop's: announce ``death``, give the subscribers GRACE_S to
        receive it, then end the process with its status. Nothing if another death came first."""
        if self.die(death):
            if self.broadcaster.drain(GRACE_S):
                time.sleep(FLUSH_S)
            self.end_process(death.exit_code)

    def _thinker_failed(self, code: int) -> None:
        if not self.broadcaster.born:
            self.end_process(code)  # never born: nothing to announce
            return
        self.end(Death.failed(code, sys.exc_info()[1]))  # the thinker calls this from its except block

    def _watchdog_verdict(self, verdict: Verdict) -> None:
        self.end(verdict.death)
