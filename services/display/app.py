"""The display's app factory: the runtime, the mirror, the chronicle, /health and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager
from typing import Any, Iterable

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from display.adapters.panel import open_panel
from display.adapters.upstream import Upstream
from display.core.blocklist import Censor, parse_blocklist
from display.life import LifeSubscriber
from display.runtime import Display
from display.settings import DisplaySettings
from display.web.hub import Hub
from display.web.mirror import mirror_router

log = logging.getLogger(__name__)

AUTO: Any = object()  # "build it from the settings" (tests pass None or a fake instead)


def load_censor(settings: DisplaySettings) -> Censor:
    if settings.blocklist_path is None:
        return Censor()
    censor = Censor(parse_blocklist(settings.blocklist_path.read_text(encoding="utf-8")))
    log.info("blocklist %s: %d words, %d prefixes", settings.blocklist_path, len(censor.words), len(censor.prefixes))
    return censor


def open_chronicle(settings: DisplaySettings):
    from display.chronicle import Chronicle

    path = settings.data_dir / "chronicle.sqlite3"
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return Chronicle(path, keep_lives=settings.chronicle_keep_lives, max_bytes=settings.chronicle_max_bytes)
    except Exception:  # noqa: BLE001 - the wall must run even if the volume is missing or read-only
        log.exception("cannot open the chronicle at %s: running without it", path)
        return None


def create_app(settings: DisplaySettings | None = None, *, panel: Any = AUTO, chronicle: Any = AUTO,
               subscribers: Iterable[LifeSubscriber] = (), start_upstream: bool = True) -> FastAPI:
    """panel / chronicle: AUTO builds them from the settings, None leaves them out, or pass your own."""
    settings = settings or DisplaySettings()
    if chronicle is AUTO:
        chronicle = open_chronicle(settings)
    censor = load_censor(settings)
    hub = Hub(queue_size=settings.viewer_queue, max_viewers=settings.max_viewers)
    subs = list(subscribers) + ([chronicle] if chronicle is not None else [])

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        nonlocal panel
        if panel is AUTO:
            panel = open_panel(settings)
        display = Display(settings, hub, panel=panel, subscribers=subs, censor=censor)
        app.state.display = display
        upstream = Upstream(settings.mind_url, display, read_timeout=settings.read_timeout_s,
                            connect_timeout=settings.connect_timeout_s, initial_delay=settings.reconnect_initial_s,
                            max_delay=settings.reconnect_max_s, max_line_bytes=settings.max_line_bytes)
        app.state.upstream = upstream
        tasks = [asyncio.create_task(display.pace(), name="pace")]
        if start_upstream:
            tasks.append(asyncio.create_task(upstream.run(), name="upstream"))
        log.info("display up: %dx%d cells, mind at %s, pacing %s", settings.rows, settings.cols,
                 settings.mind_url, "on" if settings.pacing else "off")
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            display.stop()
            hub.close()
            if panel is not None:
                with contextlib.suppress(Exception):
                    panel.close()
            if chronicle is not None:
                chronicle.close()

    app = FastAPI(title="Latent Reflection display", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.settings = settings
    app.state.hub = hub
    app.state.chronicle = chronicle
    app.include_router(mirror_router(hub, ping_s=settings.ping_s))
    if chronicle is not None:
        from display.chronicle import chronicle_router

        app.include_router(chronicle_router(chronicle))

    @app.get("/health")
    async def health() -> JSONResponse:
        display: Display | None = getattr(app.state, "display", None)
        if display is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({
            "status": "ok",
            "mind_connected": display.upstream_connected,
            "life": display.life,
            "life_number": display.lives_total or None,
            "wall": display.wall.state,
            "viewers": len(hub.viewers),
            "panel": type(display.panel).__name__ if display.panel is not None else None,
            "chronicle": chronicle is not None,
        })

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(app.state.display.metrics(), media_type="text/plain; version=0.0.4")

    return app
