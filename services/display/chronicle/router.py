"""The chronicle's read-only web view: a page, JSON of the lives, and streamed exports.

Handlers are plain functions: FastAPI runs them in worker threads, so SQLite reads never stall the
event loop that feeds the wall. Exports stream a page of tokens at a time (each page its own short
read), and a client that stops reading is cut off after ``send_timeout_s``: uvicorn would wait for it
for ever, holding a worker thread.
"""

from __future__ import annotations

import logging

import anyio
from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.types import Message, Send

from display.chronicle import render
from display.chronicle.store import Chronicle

log = logging.getLogger(__name__)


class TimedStreamingResponse(StreamingResponse):
    """A streamed body whose every send must complete within ``send_timeout_s``."""

    def __init__(self, *args, send_timeout_s: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.send_timeout_s = send_timeout_s

    async def stream_response(self, send: Send) -> None:
        async def timed(message: Message) -> None:
            with anyio.fail_after(self.send_timeout_s):
                await send(message)

        try:
            await timed({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in self.body_iterator:
                if not isinstance(chunk, bytes | memoryview):
                    chunk = chunk.encode(self.charset)
                await timed({"type": "http.response.body", "body": chunk, "more_body": True})
            await timed({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            # Returning unfinished makes the server close the connection.
            log.info("chronicle export cut off: the client read nothing for %g s", self.send_timeout_s)


def chronicle_router(chronicle: Chronicle, send_timeout_s: float = 30.0) -> APIRouter:
    router = APIRouter(tags=["chronicle"])

    @router.get("/chronicle", response_class=HTMLResponse)
    def chronicle_page(
        life: str | None = None, frame: str | None = None, model: str | None = None, limit: str | None = None
    ) -> HTMLResponse:
        selected = chronicle.life(life) if life else None
        if life and selected is None:
            raise HTTPException(status_code=404, detail="no such life in the chronicle")
        filters = _filters(frame, model, limit)
        return HTMLResponse(render.page(chronicle.lives(**_store_filters(filters)), selected, filters))

    @router.get("/chronicle/lives")
    def chronicle_lives(frame: str | None = None, model: str | None = None, limit: str | None = None) -> list[dict]:
        return chronicle.lives(**_store_filters(_filters(frame, model, limit)))

    @router.get("/chronicle/lives/{life}")
    def chronicle_life(life: str) -> dict:
        found = chronicle.life(life)
        if found is None:
            raise HTTPException(status_code=404, detail="no such life in the chronicle")
        return found

    @router.get("/chronicle/export.jsonl")
    def chronicle_export_jsonl() -> StreamingResponse:
        return TimedStreamingResponse(
            _encoded(render.export_jsonl(chronicle.lives_with_text())),
            media_type="application/x-ndjson",
            headers={"Content-Disposition": 'attachment; filename="chronicle.jsonl"'},
            send_timeout_s=send_timeout_s,
        )

    @router.get("/chronicle/export.txt")
    def chronicle_export_text() -> StreamingResponse:
        return TimedStreamingResponse(
            _encoded(render.export_text(chronicle.lives_with_text())),
            media_type="text/plain; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="chronicle.txt"'},
            send_timeout_s=send_timeout_s,
        )

    return router


MAX_LIMIT_MIB = 2**40


def _filters(frame: str | None, model: str | None, limit: str | None) -> dict:
    """The page's filters: a frame name, a model name, a memory limit in whole MiB; an empty one is none."""
    mib = None
    if limit:
        if not (limit.isascii() and limit.isdigit() and int(limit) <= MAX_LIMIT_MIB):
            raise HTTPException(status_code=400, detail="the memory limit to show is a whole number of MiB")
        mib = int(limit)
    return {"frame": frame or None, "model": model or None, "limit": mib}


def _store_filters(filters: dict) -> dict:
    return {"frame": filters["frame"], "model": filters["model"], "limit_mib": filters["limit"]}


def _encoded(pieces, flush_at: int = 64 * 1024):
    """UTF-8 bytes in blocks of about ``flush_at``: fewer, larger writes than one per piece."""
    buffer: list[str] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= flush_at:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode()
