"""The mind's HTTP surface: SSE stream of thoughts, health, vitals, Prometheus metrics."""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from contextlib import asynccontextmanager
from typing import Callable, Optional

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from sse_starlette import EventSourceResponse

from .birth import make_memory_probe, make_source
from .broadcast import Broadcaster
from .cgroup import NO_LIMIT_HELP, CgroupMemory, rss_bytes
from .lifespan import predict_tokens_left
from .settings import MindSettings
from .sources import TokenSource
from .thinker import Thinker

log = logging.getLogger(__name__)


def _default_on_fatal(code: int) -> None:
    logging.shutdown()
    os._exit(code)


class Mind:
    """One life: its id, its source, its thinker and its broadcaster."""

    def __init__(self, settings: MindSettings, source: TokenSource, memory: CgroupMemory,
                 on_fatal: Callable[[int], None]) -> None:
        self.settings = settings
        self.life = secrets.token_hex(8)
        self.born_at = time.time()
        self.memory = memory
        self.source = source
        self.broadcaster = Broadcaster(self.life, settings.replay_events)
        self.thinker = Thinker(source, self.broadcaster, birth_data=self.birth_data, on_fatal=on_fatal)

    def birth_data(self) -> dict:
        return {
            "life": self.life, "born_at": self.born_at, "model": self.source.name,
            "prompt": self.settings.prompt, "limit_bytes": self.memory.read().limit_bytes,
        }

    def vitals(self) -> dict:
        """The contract's vitals fields (docs/stream-contract.md)."""
        reading = self.memory.read()
        ctx = self.source.info() if self.thinker.state == "thinking" else None
        tokens = self.thinker.tokens
        tokens_left = None
        if ctx is not None and reading.limit_bytes is not None and ctx.base_bytes is not None \
                and ctx.kv_bytes_per_token is not None:
            tokens_left = predict_tokens_left(
                tokens=tokens, n_ctx=ctx.n_ctx, prompt_tokens=ctx.prompt_tokens, base_bytes=ctx.base_bytes,
                kv_bytes_per_token=ctx.kv_bytes_per_token, growth_step=ctx.growth_step,
                n_ctx_train=ctx.n_ctx_train, limit_bytes=reading.limit_bytes,
                state_bytes_per_token=ctx.state_bytes_per_token,
                swa_state_bytes_per_token=ctx.swa_state_bytes_per_token, swa_window=ctx.swa_window,
                old_context_coexists=ctx.old_context_coexists, context_bytes_per_token=ctx.context_bytes_per_token,
                context_fixed_bytes=ctx.context_fixed_bytes,
            )
        return {
            "life": self.life, "born_at": self.born_at, "tokens": tokens,
            "tokens_per_s": round(self.thinker.tokens_per_s(), 3),
            "n_ctx": ctx.n_ctx if ctx else None, "n_ctx_train": ctx.n_ctx_train if ctx else None,
            "memory_bytes": reading.memory_bytes if reading.memory_bytes is not None else rss_bytes(),
            "peak_memory_bytes": reading.peak_bytes, "limit_bytes": reading.limit_bytes,
            "limit_in_force": reading.limit_in_force, "tokens_left": tokens_left,
            "shifting": ctx.shifting if ctx else False,
        }

    def vitals_detail(self) -> dict:
        """/vitals: the contract's fields plus what helps a person (or a test) see inside."""
        out = self.vitals()
        ctx = self.source.info() if self.thinker.state == "thinking" else None
        reading = self.memory.read()
        out.update({
            "state": self.thinker.state, "cgroup_version": reading.version, "oom_kills": reading.oom_kills,
            "subscribers": self.broadcaster.subscribers, "subscribers_dropped": self.broadcaster.dropped,
        })
        if ctx is not None:
            out.update({
                "n_past": ctx.n_past, "prompt_tokens": ctx.prompt_tokens, "growth_step": ctx.growth_step,
                "base_bytes": ctx.base_bytes, "kv_bytes_per_token": ctx.kv_bytes_per_token,
                "state_bytes_per_token": ctx.state_bytes_per_token,
                "swa_state_bytes_per_token": ctx.swa_state_bytes_per_token, "swa_window": ctx.swa_window,
                "kv_measured": ctx.kv_measured, "model_bytes": ctx.model_bytes,
                "old_context_coexists": ctx.old_context_coexists,
                "context_bytes_per_token": ctx.context_bytes_per_token,
                "context_fixed_bytes": ctx.context_fixed_bytes,
                "growths": ctx.growths,
                "last_growth_pause_s": ctx.last_growth_pause_s, "max_growth_pause_s": ctx.max_growth_pause_s,
            })
        return out


def _metrics_text(mind: Mind) -> str:
    v = mind.vitals_detail()
    lines = []

    def metric(name: str, kind: str, help_: str, value, labels: str = "") -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        if value is None:
            value = "NaN"
        elif isinstance(value, bool):
            value = int(value)
        lines.append(f"{name}{labels} {value}")

    metric("mind_life_info", "gauge", "The current life (label life).", 1, f'{{life="{mind.life}"}}')
    metric("mind_born_at_seconds", "gauge", "Unix time of this life's birth.", v["born_at"])
    metric("mind_thinking", "gauge", "1 while thinking, 0 while loading.", v["state"] == "thinking")
    metric("mind_tokens_total", "counter", "Tokens thought in this life.", v["tokens"])
    metric("mind_tokens_per_second", "gauge", "Recent thinking speed.", v["tokens_per_s"])
    metric("mind_context_tokens", "gauge", "Context size (n_ctx).", v["n_ctx"])
    metric("mind_context_train_tokens", "gauge", "Largest context before shifting.", v["n_ctx_train"])
    metric("mind_shifting", "gauge", "1 once old thoughts shift out of a full context.", v["shifting"])
    metric("mind_memory_bytes", "gauge", "Memory charged to the mind's cgroup, page cache excluded.", v["memory_bytes"])
    metric("mind_memory_peak_bytes", "gauge", "Peak memory of the cgroup.", v["peak_memory_bytes"])
    metric("mind_memory_limit_bytes", "gauge", "Memory limit in force (NaN: none).", v["limit_bytes"])
    metric("mind_memory_limit_in_force", "gauge", "1 if a memory limit is in force.", v["limit_in_force"])
    metric("mind_tokens_left", "gauge", "Predicted tokens before death (NaN: never).", v["tokens_left"])
    metric("mind_subscribers", "gauge", "Open /stream subscribers.", v["subscribers"])
    metric("mind_subscribers_dropped_total", "counter", "Subscribers disconnected for falling behind.",
           v["subscribers_dropped"])
    metric("mind_growth_pause_seconds_max", "gauge", "Longest pause of thinking for a context growth.",
           v.get("max_growth_pause_s"))
    return "\n".join(lines) + "\n"


def create_app(
    settings: Optional[MindSettings] = None, source: Optional[TokenSource] = None, *,
    memory: Optional[CgroupMemory] = None, on_fatal: Optional[Callable[[int], None]] = None,
) -> FastAPI:
    settings = settings or MindSettings()
    memory = memory or CgroupMemory(settings.cgroup_root)
    if source is None:
        source = make_source(settings, make_memory_probe(memory))
    mind = Mind(settings, source, memory, on_fatal or _default_on_fatal)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        reading = memory.read()
        if not reading.limit_in_force:
            log.warning("!" * 20 + " " + NO_LIMIT_HELP + " " + "!" * 20)
        else:
            log.info("memory limit in force: %d bytes (cgroup v%s)", reading.limit_bytes, reading.version)
        mind.broadcaster.attach(asyncio.get_running_loop())
        mind.thinker.start()

        async def vitals_loop() -> None:
            while True:
                await asyncio.sleep(settings.vitals_interval_s)
                if mind.thinker.state == "thinking":
                    mind.broadcaster.publish("vitals", mind.vitals())

        task = asyncio.create_task(vitals_loop())
        try:
            yield
        finally:
            task.cancel()
            mind.thinker.stop()

    app = FastAPI(title="mind", lifespan=lifespan)
    app.state.mind = mind

    @app.get("/health")
    async def health() -> Response:
        state = mind.thinker.state
        return JSONResponse({"state": state, "life": mind.life}, status_code=200 if state == "thinking" else 503)

    @app.get("/vitals")
    async def vitals() -> dict:
        return mind.vitals_detail()

    @app.get("/metrics")
    async def metrics() -> Response:
        return PlainTextResponse(_metrics_text(mind), media_type="text/plain; version=0.0.4")

    @app.get("/stream")
    async def stream(request: Request) -> EventSourceResponse:
        last = request.headers.get("last-event-id")
        return EventSourceResponse(
            mind.broadcaster.stream(last), ping=settings.ping_s, send_timeout=settings.send_timeout_s,
        )

    return app
