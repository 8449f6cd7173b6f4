"""The chronicle's read-only web view: a page, JSON of the lives, and streamed exports.

Handlers are plain functions: FastAPI runs them in worker threads, so SQLite reads never stall the
event loop that feeds the wall. Exports stream a batch of tokens at a time.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, StreamingResponse

from display.chronicle import render
from display.chronicle.store import Chronicle


def chronicle_router(chronicle: Chronicle) -> APIRouter:
    router = APIRouter(tags=["chronicle"])

    @router.get("/chronicle", response_class=HTMLResponse)
    def chronicle_page(life: str | None = None) -> HTMLResponse:
        selected = chronicle.life(life) if life else None
        if life and selected is None:
            raise HTTPException(status_code=404, detail="no such life in the chronicle")
        return HTMLResponse(render.page(chronicle.lives(), selected))

    @router.get("/chronicle/lives")
    def chronicle_lives() -> list[dict]:
        return chronicle.lives()

    @router.get("/chronicle/lives/{life}")
    def chronicle_life(life: str) -> dict:
        found = chronicle.life(life)
        if found is None:
            raise HTTPException(status_code=404, detail="no such life in the chronicle")
        return found

    @router.get("/chronicle/export.jsonl")
    def chronicle_export_jsonl() -> StreamingResponse:
        return StreamingResponse(
            _encoded(chronicle.export_jsonl()), media_type="application/x-ndjson",
            headers={"Content-Disposition": 'attachment; filename="chronicle.jsonl"'},
        )

    @router.get("/chronicle/export.txt")
    def chronicle_export_text() -> StreamingResponse:
        return StreamingResponse(
            _encoded(chronicle.export_text()), media_type="text/plain; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="chronicle.txt"'},
        )

    return router


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
