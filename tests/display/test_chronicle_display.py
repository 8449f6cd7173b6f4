"""The chronicle inside the real display app, fed by a scripted fake mind: deaths, restarts, the web view."""

from __future__ import annotations

import httpx

from display.app import create_app
from display_helpers import FakeMind, birth, display_settings, hold, serve, sse, wait_for

LIMIT = 10_000_000


def scripted(lives: list[tuple[str, int, int | None, bool]]):
    """One connection per entry: ``(life, tokens, memory at the last vitals, stream ends after)``."""
    script = iter(lives)

    async def scenario(writer, headers):
        life, tokens, memory, ends = next(script)
        writer.write(sse("birth", {**birth(life), "limit_bytes": LIMIT}, f"{life}:0"))
        for seq in range(tokens):
            writer.write(sse("token", {"life": life, "seq": seq, "text": f"{life}-{seq} "}, f"{life}:{seq + 1}"))
        if memory is not None:
            writer.write(
                sse(
                    "vitals",
                    {
                        "life": life,
                        "tokens": tokens,
                        "memory_bytes": memory,
                        "peak_memory_bytes": memory,
                        "limit_bytes": LIMIT,
                        "tokens_left": None,
                    },
                    f"{life}:{tokens + 1}",
                )
            )
        await writer.drain()
        if not ends:
            await hold(writer)

    return scenario


def lives(url: str) -> list[dict]:
    return httpx.get(url + "/chronicle/lives").json()


def test_the_display_chronicles_a_death_at_the_limit_and_the_next_life(tmp_path):
    script = [("dies", 5, int(0.95 * LIMIT), True), ("next", 3, int(0.2 * LIMIT), False)]
    with FakeMind(scripted(script)) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=None)
        with serve(app) as url:
            wait_for(lambda: len(lives(url)) == 2 and lives(url)[1]["tokens"] == 3, what="two lives chronicled")
            dead, alive = lives(url)
            assert (dead["life"], dead["alive"], dead["cause"], dead["tokens"]) == ("dies", False, "probable oom", 5)
            assert dead["peak_memory_bytes"] == int(0.95 * LIMIT) and dead["limit_bytes"] == LIMIT
            assert alive["alive"] and alive["life"] == "next"
            text = httpx.get(url + "/chronicle/lives/dies").json()["text"]
            assert text == "".join(f"dies-{seq} " for seq in range(5))
            assert "dies-4" in httpx.get(url + "/chronicle/export.txt").text


def test_a_display_restart_continues_the_life_or_closes_it_if_the_mind_died_meanwhile(tmp_path):
    script = [
        ("one", 4, int(0.3 * LIMIT), False),  # first display process
        ("one", 6, int(0.3 * LIMIT), False),  # restarted display: the same life, replayed and longer
        ("two", 2, None, False),
    ]  # restarted again: the mind died meanwhile
    with FakeMind(scripted(script)) as mind:
        for expected in (["one"], ["one"], ["one", "two"]):
            app = create_app(display_settings(tmp_path, mind.url), panel=None)
            with serve(app) as url:
                wait_for(
                    lambda url=url, expected=expected: (
                        [s["life"] for s in lives(url)] == expected and lives(url)[-1]["tokens"] > 1
                    ),
                    what=f"lives {expected}",
                )
                if expected == ["one"]:
                    [one] = lives(url)
                    assert one["alive"] and one["number"] == 1
    chronicle = create_app(display_settings(tmp_path, "http://127.0.0.1:9"), panel=None).state.chronicle
    one, two = chronicle.lives()
    assert (one["tokens"], one["alive"], one["cause"]) == (6, False, "unknown")
    assert two["alive"] and two["number"] == 2
    assert chronicle.life("one")["text"] == "".join(f"one-{seq} " for seq in range(6))
    chronicle.close()


def test_a_broken_stream_then_the_same_life_is_one_life_in_the_chronicle(tmp_path):
    async def scenario(writer, headers):
        if "last-event-id" not in headers:  # the first connection: birth, three tokens, then a break
            writer.write(sse("birth", {**birth("blip"), "limit_bytes": LIMIT}, "blip:0"))
            for seq in range(3):
                writer.write(sse("token", {"life": "blip", "seq": seq, "text": f"t{seq} "}, f"blip:{seq + 1}"))
            await writer.drain()
            return
        for seq in range(3, 6):  # resumed with Last-Event-ID: the same life goes on, no second birth
            writer.write(sse("token", {"life": "blip", "seq": seq, "text": f"t{seq} "}, f"blip:{seq + 1}"))
        await writer.drain()
        await hold(writer)

    with FakeMind(scenario) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=None)
        with serve(app) as url:
            wait_for(lambda: lives(url) and lives(url)[0]["tokens"] == 6, what="the resumed life's tokens")
            [life] = lives(url)
            assert life["alive"] and life["died_at"] is None and life["cause"] is None
            assert httpx.get(url + "/chronicle/lives/blip").json()["text"] == "t0 t1 t2 t3 t4 t5 "
            assert mind.connections[1]["last-event-id"] == "blip:3"
