"""The mirror's routes: the page, and the frame stream it draws from (GET only: the mirror is read-only)."""

from __future__ import annotations

from importlib import resources

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sse_starlette import EventSourceResponse

from display.web.hub import Hub, Viewer


class ViewerResponse(EventSourceResponse):
    """An SSE response the hub can abort: cheaper than a per-send timeout, which costs a cancel
    scope for every frame and every viewer."""

    def __init__(self, viewer: Viewer, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.viewer = viewer

    async def _send_with_timeout(self, send, message) -> None:
        # Overrides sse-starlette 3.7's per-send wrapper, which opens an anyio cancel scope for every
        # frame and every viewer (half the CPU of 50 viewers); the hub aborts stuck viewers instead.
        await send(message)

    async def __call__(self, scope, receive, send) -> None:
        with anyio.CancelScope() as cancel_scope:
            self.viewer.cancel = cancel_scope.cancel
            await super().__call__(scope, receive, send)


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

        return ViewerResponse(
            viewer, stream(), ping=ping_s, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    return router
