"""Two hundred mirror viewers at once, all served, then all gone: nothing of them stays behind."""

from __future__ import annotations

import asyncio

import httpx

from display.app import create_app
from display_helpers import FakeMind, display_settings, serve, steady_life, wait_for

VIEWERS = 200


def test_two_hundred_viewers_connect_see_frames_and_vanish_without_a_trace(tmp_path):
    async def crowd(url: str) -> list[int]:
        limits = httpx.Limits(max_connections=VIEWERS + 10)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:

            async def viewer() -> int:
                frames = 0
                async with client.stream("GET", url + "/frames") as response:
                    async for line in response.aiter_lines():
                        if line.startswith("event: frame"):
                            frames += 1
                            if frames == 3:  # a snapshot and two live frames, then it vanishes
                                return frames
                return frames

            return await asyncio.gather(*(viewer() for _ in range(VIEWERS)))

    with FakeMind(steady_life("m", 0.02)) as mind:
        app = create_app(display_settings(tmp_path, mind.url, pacing=False), panel=None, chronicle=None)
        with serve(app) as url:
            hub = app.state.hub
            seen = asyncio.run(crowd(url))
            assert seen == [3] * VIEWERS
            assert hub.viewers_total >= VIEWERS
            wait_for(lambda: len(hub.viewers) == 0, timeout=30, what="every viewer to be forgotten")
            # the mirror still serves a newcomer afterwards
            assert httpx.get(url + "/health").json()["viewers"] == 0
