"""The mind's HTTP surface: SSE stream of thoughts, health, vitals, Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from sse_starlette import EventSourceResponse

from mind.birth import make_memory_probe, make_source
from mind.cgroup import NO_LIMIT_HELP, CgroupMemory
from mind.death import end_process
from mind.life import Mind
from mind.metrics import metrics_text
from mind.settings import MindSettings
from mind.sources import TokenSource

log = logging.getLogger(__name__)


def _default_on_fatal(code: int) -> None:
    end_process(code)


def create_app(
    settings: MindSettings | None = None,
    source: TokenSource | None = None,
    *,
    memory: CgroupMemory | None = None,
    on_fatal: Callable[[int], None] | None = None,
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
        mind.watchdog.start()

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
            mind.watchdog.stop()
            mind.thinker.stop()

    app = FastAPI(title="mind", lifespan=lifespan)
    app.state.mind = mind

    @app.get("/health")
    async def health() -> Response:
        state = mind.state
        return JSONResponse({"state": state, "life": mind.life}, status_code=200 if state == "thinking" else 503)

    @app.get("/vitals")
    async def vitals() -> dict:
        return mind.vitals_detail()

    @app.get("/metrics")
    async def metrics() -> Response:
        return PlainTextResponse(metrics_text(mind), media_type="text/plain; version=0.0.4")

    @app.get("/stream")
    async def stream(request: Request) -> EventSourceResponse:
        last = request.headers.get("last-event-id")
        return EventSourceResponse(
            mind.broadcaster.stream(last),
            ping=settings.ping_s,
            send_timeout=settings.send_timeout_s,
        )

    return app
