"""A past life replayed: its stored tokens through the wall's own core (display.core.reel), as frames.

The display serves them at ``GET /chronicle/lives/{life}/replay.json`` (the mirror plays them at
``/?replay=LIFE``; ``latent replay LIFE`` renders them into a GIF or WebM). The browser and the renderer
draw segments from these masks: neither has a font, so a replay cannot drift from the wall.

Each token is paced from the time it reached the display (stored by the chronicle since schema 3); a
life stored before that is spread evenly over its lifespan. The pacing, death picture, grid and font
are the display's settings now. With a blocklist, a word held back at a death is shown in the replay
(the chronicle keeps it as the tail of its token).

The JSON: ``frames`` is a list of ``[t_ms, cell, mask, cell, mask, ...]``: the milliseconds since the
birth frame, then each cell that changed from the frame before (the first frame changes a blank wall).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator

from fastapi import APIRouter, HTTPException

from display.chronicle.router import TimedStreamingResponse
from display.core.font import Font
from display.core.reel import Dying, Pacing, Timed, replay

# A birth this long before the first token or less is the life's start; an older one (a mind that took
# long to load, or another machine's clock) is not: the replay starts at the first token.
BIRTH_SLACK_S = 60.0


def life_frames(
    head: dict,
    tokens: list[tuple[float | None, str]],
    *,
    rows: int,
    cols: int,
    font: Font,
    pacing: Pacing,
    dying: Dying,
) -> Iterator[Timed]:
    """A stored life (``Chronicle.timed_tokens``) as the wall showed it: frames with their times."""
    born = head["born_at"]
    if any(at is None for at, _ in tokens):
        # stored before arrival times were kept: evenly over the lifespan, as well as can be known
        span = max(0.0, head["lifespan_s"])
        n = max(1, len(tokens))
        timed = [(born + span * (i + 1) / (n + 1), text) for i, (_, text) in enumerate(tokens)]
    else:
        timed = [(at, text) for at, text in tokens]
    if timed and not (timed[0][0] - BIRTH_SLACK_S <= born <= timed[0][0]):
        born = timed[0][0]
    death_at = None
    if not head["alive"]:
        death_at = head.get("death_seen_at") or head.get("died_at") or (timed[-1][0] if timed else born)
        death_at = max(death_at, timed[-1][0] if timed else born)
    return replay(
        timed,
        born=born,
        rows=rows,
        cols=cols,
        font=font,
        pacing=pacing,
        death_at=death_at,
        dying=dying,
        life=head["life"],
    )


def delta_rows(frames: Iterable[Timed]) -> Iterator[list[int]]:
    """``[t_ms, cell, mask, ...]`` per frame: the cells changed from the frame before."""
    start = None
    previous: tuple[int, ...] | None = None
    for t, frame in frames:
        if start is None:
            start = t
            previous = (0,) * len(frame.masks)
        row = [round((t - start) * 1000)]
        for i, (old, new) in enumerate(zip(previous, frame.masks, strict=True)):
            if old != new:
                row += (i, new)
        previous = frame.masks
        yield row


def replay_json(head: dict, rows: int, cols: int, frames: Iterable[Timed]) -> Iterator[str]:
    """The replay document, in pieces (a long life has many frames)."""
    meta = {
        "life": head["life"],
        "number": head["number"],
        "rows": rows,
        "cols": cols,
        "tokens": head["tokens"],
        "alive": head["alive"],
        "cause_words": head.get("cause_words"),
    }
    yield json.dumps(meta)[:-1] + ', "frames": ['
    sep = ""
    for row in delta_rows(frames):
        yield sep + json.dumps(row, separators=(",", ":"))
        sep = ","
    yield "]}"


def replay_router(chronicle, settings, font_of: Callable[[], Font]) -> APIRouter:
    """``GET /chronicle/lives/{life}/replay.json``: a life's frames, made on request in a worker thread."""
    from display.runtime import dying_of, pacing_of

    router = APIRouter(tags=["chronicle"])

    @router.get("/chronicle/lives/{life}/replay.json")
    def replay_frames(life: str) -> TimedStreamingResponse:
        found = chronicle.timed_tokens(life)
        if found is None:
            raise HTTPException(status_code=404, detail="no such life in the chronicle")
        head, tokens = found
        frames = life_frames(
            head,
            tokens,
            rows=settings.rows,
            cols=settings.cols,
            font=font_of(),
            pacing=pacing_of(settings),
            dying=dying_of(settings),
        )
        return TimedStreamingResponse(
            (piece.encode() for piece in replay_json(head, settings.rows, settings.cols, frames)),
            media_type="application/json",
            send_timeout_s=settings.export_send_timeout_s,
        )

    return router
