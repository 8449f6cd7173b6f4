"""The display's app factory: the runtime, the mirror, the chronicle, /health and /metrics."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from display.adapters.panels import open_panel, wall_segments
from display.adapters.upstream import Upstream
from display.core.blocklist import Censor, parse_blocklist
from display.core.font import Font
from display.life import LifeSubscriber
from display.metrics import CONTENT_TYPE, display_metrics
from display.runtime import Display
from display.settings import DisplaySettings
from display.supervisor import Supervisor
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
    except Exception:
        log.exception("cannot open the chronicle at %s: running without it", path)
        return None


def wall_font(app: FastAPI, settings: DisplaySettings) -> Font:
    """The font the wall draws with (its panel's segments); before the display starts, the settings' one."""
    display = getattr(app.state, "display", None)
    return display.wall.font if display is not None else Font(wall_segments(settings), settings.letter_case)


def create_app(
    settings: DisplaySettings | None = None,
    *,
    panel: Any = AUTO,
    chronicle: Any = AUTO,
    subscribers: Iterable[LifeSubscriber] = (),
    start_upstream: bool = True,
) -> FastAPI:
    """panel / chronicle: AUTO builds them from the settings, None leaves them out, or pass your own."""
    settings = settings or DisplaySettings()
    chronicle_wanted = chronicle is not None
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
        # the wall's glyphs: only the segments its panel can light, so the mirror shows the same
        font = Font(getattr(panel, "segments", None) or wall_segments(settings), settings.letter_case)
        display = Display(settings, hub, panel=panel, subscribers=subs, censor=censor, font=font)
        app.state.display = display
        upstream = Upstream(
            settings.mind_url,
            display,
            read_timeout=settings.read_timeout_s,
            connect_timeout=settings.connect_timeout_s,
            initial_delay=settings.reconnect_initial_s,
            max_delay=settings.reconnect_max_s,
            max_line_bytes=settings.max_line_bytes,
            health_interval=settings.health_interval_s,
        )
        app.state.upstream = upstream
        supervisor = Supervisor()
        app.state.supervisor = supervisor
        supervisor.start("pace", display.pace)
        if start_upstream:
            supervisor.start("upstream", upstream.run)
        log.info(
            "display up: %dx%d cells, mind at %s, pacing %s",
            settings.rows,
            settings.cols,
            settings.mind_url,
            "on" if settings.pacing else "off",
        )
        try:
            yield
        finally:
            await supervisor.stop()
            display.stop()
            hub.close()
            if panel is not None:
                with contextlib.suppress(Exception):
                    panel.close()
            if chronicle is not None:
                chronicle.close()

    app = FastAPI(title="Latent Reflection display", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.hub = hub
    app.state.chronicle = chronicle
    app.include_router(mirror_router(hub, ping_s=settings.ping_s))
    if chronicle is not None:
        from display.chronicle import chronicle_router

        app.include_router(chronicle_router(chronicle, send_timeout_s=settings.export_send_timeout_s))
        from display.replay import replay_router

        app.include_router(replay_router(chronicle, settings, lambda: wall_font(app, settings)))

    def problems() -> list[str]:
        """What keeps the display from doing its work; the mind being away is not one of them."""
        found = []
        supervisor: Supervisor = app.state.supervisor
        upstream: Upstream = app.state.upstream
        if start_upstream and (supervisor.failing("upstream") or upstream.failing):
            found.append("the loop following the mind is failing")
        if supervisor.failing("pace"):
            found.append("the loop pacing the wall is failing")
        if chronicle_wanted and chronicle is None:
            found.append("the chronicle could not be opened")
        elif chronicle is not None and chronicle.failing:
            found.append("the chronicle is not recording")
        return found

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 when the display does its work, 503 (degraded) when a loop or the chronicle has failed."""
        display: Display | None = getattr(app.state, "display", None)
        if display is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        found = problems()
        return JSONResponse(
            {
                "status": "degraded" if found else "ok",
                "problems": found,
                "mind_connected": display.upstream_connected,
                "mind_state": display.mind_state,
                "life": display.life,
                "life_number": display.lives_total or None,
                "wall": display.wall.state,
                "viewers": len(hub.viewers),
                "panel": getattr(display.panel, "name", type(display.panel).__name__)
                if display.panel is not None
                else None,
                "chronicle": chronicle is not None,
            },
            status_code=503 if found else 200,
        )

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(
            display_metrics(app.state.display, app.state.upstream, app.state.supervisor, chronicle),
            media_type=CONTENT_TYPE,
        )

    return app
