"""The mirror's routes: the page, and the frame stream it draws from (GET only: the mirror is read-only)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sse_starlette import EventSourceResponse

from display.web.hub import Hub


def mirror_router(hub: Hub, ping_s: float = 15.0) -> APIRouter:
    router = APIRouter()
    page = resources.files("display.web").joinpath("mirror.html").read_text(encoding="utf-8")

    @router.get("/", response_class=HTMLResponse)
    async def mirror_page() -> HTMLResponse:
        return HTMLResponse(page)

    @router.get("/frames")
    async def frames(request: Request):
        viewer = hub.join()
        if viewer is None:
            return JSONResponse({"error": "too many viewers"}, status_code=503)

        async def stream():
            try:
                while True:
                    msg = await viewer.queue.get()
                    if msg is None:  # dropped for being too slow: end the stream, the browser reconnects
                        return
                    yield msg
            finally:
                hub.leave(viewer)

        # send_timeout: a viewer whose socket stops draining is cut loose instead of holding a task
        return EventSourceResponse(stream(), ping=ping_s, send_timeout=10.0,
                                   headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return router
