"""The mirror's words about the mind are true: "loading its model" exactly while the mind says so on its
/health, "waiting for the mind" while it is away or says nothing, "mind connected" while a life shows."""

import asyncio
import json
import threading

import httpx

from display.adapters.upstream import Upstream
from display.app import create_app
from display.runtime import Display
from display.web.hub import Hub
from display_helpers import FakeMind, birth, display_settings, free_port, hold, serve, sse, wait_for
from mind.app import create_app as create_mind
from mind.settings import MindSettings
from mind.sources import ScriptedSource


def test_a_real_mind_loading_its_model_is_shown_loading_then_thinking(tmp_path):
    script = tmp_path / "script.txt"
    script.write_text("I think in words, and the words go out to a wall.\n", encoding="utf-8")
    release = threading.Event()

    class SlowSource(ScriptedSource):
        def load(self):  # the model's load: the mind's stream is open, its /health says "loading"
            release.wait(30)
            super().load()

    settings = MindSettings(source="scripted", scripted_rate=50.0, vitals_interval_s=0.2, ping_s=0.5)
    mind = create_mind(settings, SlowSource(script, rate=50.0), on_fatal=lambda code: None)
    with serve(mind) as mind_url:
        app = create_app(display_settings(tmp_path, mind_url, health_interval_s=0.1), panel=None, chronicle=None)
        with serve(app) as url:
            display = app.state.display
            wait_for(lambda: display.mind_state == "loading", what="the mind's word: loading")
            status = display.status()
            assert (status["connected"], status["alive"], status["mind"]) == (True, False, "loading")
            health = httpx.get(url + "/health").json()
            assert (health["mind_connected"], health["mind_state"]) == (True, "loading")

            release.set()
            wait_for(lambda: display.wall.state == "alive", what="the birth")
            assert display.status()["mind"] == "thinking"
            assert httpx.get(url + "/health").json()["mind_state"] == "thinking"


def test_the_display_asks_the_mind_only_while_no_life_shows(tmp_path):
    phase = {"born": False}

    async def scenario(writer, headers):
        while not phase["born"]:  # loading: pings only
            writer.write(b": ping\n\n")
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.write(sse("birth", birth("h1"), "h1:0"))
        await hold(writer)

    def health():
        return {"state": "thinking" if phase["born"] else "loading", "life": "h1"}

    with FakeMind(scenario, health=health) as mind:
        app = create_app(display_settings(tmp_path, mind.url, health_interval_s=0.05), panel=None, chronicle=None)
        with serve(app):
            display = app.state.display
            wait_for(lambda: display.mind_state == "loading", what="loading")
            assert mind.health_asks >= 1
            phase["born"] = True
            wait_for(lambda: display.wall.state == "alive", what="the birth")
            asks = mind.health_asks
            threading.Event().wait(0.5)  # ten intervals
            assert mind.health_asks <= asks + 1  # at most one question already under way
            assert display.mind_state == "thinking"


def test_a_mind_without_health_or_with_a_wrong_answer_is_waited_for_not_called_connected(tmp_path):
    answers = iter([None, {"state": "bored"}, {"no": "state"}])

    def health():
        return next(answers, None)

    with FakeMind(lambda w, h: hold(w), health=health) as mind:
        app = create_app(display_settings(tmp_path, mind.url, health_interval_s=0.05), panel=None, chronicle=None)
        with serve(app):
            display = app.state.display
            wait_for(lambda: mind.health_asks >= 4, what="a few questions")
            assert display.upstream_connected and display.mind_state is None


def test_over_long_or_endless_health_answers_are_no_answer():
    async def main():
        async def serve_health(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 503 Busy\r\nContent-Type: application/json\r\n\r\n")
            writer.write(b'{"state": "loading", "pad": "' + b"x" * 10_000)  # never ends
            await writer.drain()
            await asyncio.sleep(30)

        port = free_port()
        server = await asyncio.start_server(serve_health, "127.0.0.1", port)
        upstream = Upstream(f"http://127.0.0.1:{port}", handler=None, connect_timeout=0.2)
        async with httpx.AsyncClient() as client:
            got = await asyncio.wait_for(upstream.ask_health(client), 5)
        server.close()
        return got

    assert asyncio.run(main()) is None


def test_the_mind_state_follows_the_stream_and_stale_answers_are_ignored(tmp_path):
    async def main():
        hub = Hub()
        display = Display(display_settings(tmp_path, "http://127.0.0.1:9"), hub)
        assert not display.needs_health()  # no stream: nothing to ask
        display.connected()
        assert display.needs_health() and display.mind_state is None
        display.health("loading")
        assert display.status()["mind"] == "loading"
        assert json.loads(hub.status_msg.split(b"data: ")[1])["mind"] == "loading"  # the mirror was told
        display.event("birth", birth("s1"), "s1:0")
        assert display.mind_state == "thinking" and not display.needs_health()
        display.health("loading")  # asked before the birth, answered after it: not news
        assert display.mind_state == "thinking"
        display.event("death", {"life": "s1", "cause": "oom", "exit_code": 137, "reason": "limit", "tokens": 3}, "s1:9")
        assert display.mind_state == "dying"
        assert display.status()["alive"] is False  # at once, before the death's first picture: no age ticks on
        display.broken("stream ended")
        assert display.mind_state is None and not display.needs_health()
        display.stop()

    asyncio.run(main())


def series(text: str) -> dict[str, str]:
    """Prometheus text: every sample's name (with labels) to its value; each HELP/TYPE pair checked."""
    samples = {}
    typed = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            assert name.split("{")[0] in typed, f"{name} has no TYPE line before it"
            float(value)  # a number, or NaN
            samples[name] = value
    return samples


def test_one_scrape_of_the_display_carries_the_minds_vitals_and_no_series_per_life(tmp_path):
    lives = iter(["m1", "m2"])

    async def scenario(writer, headers):
        life = next(lives, "m2")
        writer.write(sse("birth", {**birth(life, born_at=1_700_000_000.0)}, f"{life}:0"))
        vitals = {
            "life": life,
            "tokens": 120 if life == "m1" else 7,
            "tokens_per_s": 4.0,
            "n_ctx": 512,
            "memory_bytes": 300 << 20,
            "peak_memory_bytes": 310 << 20,
            "limit_bytes": 512 << 20,
            "tokens_left": 2000,
        }
        writer.write(sse("vitals", vitals, f"{life}:1"))
        await writer.drain()
        if life == "m1":
            await asyncio.sleep(0.3)
            return  # a death
        await hold(writer)

    with FakeMind(scenario) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=None, chronicle=None)
        with serve(app) as url:
            display = app.state.display
            wait_for(lambda: display.vitals and display.vitals["life"] == "m1", what="the first life's vitals")
            first = series(httpx.get(url + "/metrics").text)
            assert first["display_mind_memory_bytes"] == str(300 << 20)
            assert first["display_mind_memory_peak_bytes"] == str(310 << 20)
            assert first["display_mind_memory_limit_bytes"] == str(512 << 20)
            assert first["display_mind_tokens"] == "120"
            assert first["display_mind_tokens_left"] == "2000"
            assert first["display_mind_tokens_per_second"] == "4.0"
            assert first["display_mind_alive"] == "1"
            assert first['display_mind_state{state="thinking"}'] == "1"
            assert first['display_mind_state{state="loading"}'] == "0"
            wait_for(lambda: display.life == "m2" and display.vitals, what="the second life's vitals")
            text = httpx.get(url + "/metrics").text
            second = series(text)
            assert second["display_mind_tokens"] == "7"
            assert set(second) == set(first)  # the same series, life after life
            assert "m1" not in text and "m2" not in text


def test_before_any_vitals_the_minds_numbers_are_nan_not_zero(tmp_path):
    app = create_app(display_settings(tmp_path, "http://127.0.0.1:9"), panel=None, chronicle=None)
    with serve(app) as url:
        samples = series(httpx.get(url + "/metrics").text)
    assert samples["display_mind_memory_bytes"] == "NaN" and samples["display_mind_tokens_left"] == "NaN"
    assert samples["display_mind_alive"] == "0"
    assert all(samples[f'display_mind_state{{state="{s}"}}'] == "0" for s in ("loading", "thinking", "dying"))
