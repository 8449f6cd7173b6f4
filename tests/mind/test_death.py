"""The deaths the mind can see (mind.death): one `death` event, the life's last, then the exit it announced.
Scripted sources on a real uvicorn (no model); SIGTERM to a real `python -m mind` is in test_main.py."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest
from httpx_sse import connect_sse

from mind.app import create_app
from mind.broadcast import Broadcaster
from mind.settings import MindSettings
from mind.sources import ScriptedSource, SourceError
from mind_helpers import serve, wait_until

DEATH_FIELDS = {"life", "cause", "exit_code", "reason", "tokens"}


def settings(**kw) -> MindSettings:
    # tokens_per_s: the breath (#10) off, so these tests take seconds
    base = dict(
        source="scripted", scripted_rate=200.0, vitals_interval_s=0.1, ping_s=1.0, n_ctx_start=32, tokens_per_s=0.0
    )
    return MindSettings(**(base | kw))


def follow(url: str, headers: dict | None = None, timeout: float = 30.0) -> list[tuple[str, str, dict]]:
    """Every event of /stream until the mind ends it, as (event, id, data)."""
    out = []
    with (
        httpx.Client(timeout=timeout) as client,
        connect_sse(client, "GET", url + "/stream", headers=headers or {}) as s,
    ):
        for sse in s.iter_sse():
            if sse.data:  # not a ping
                out.append((sse.event, sse.id, json.loads(sse.data)))
    return out


def the_death(events: list[tuple[str, str, dict]], life: str) -> dict:
    """The death, checked to be the stream's last event, with an id of its life like every event."""
    kinds = [k for k, _, _ in events]
    assert kinds.count("death") == 1 and kinds[-1] == "death", kinds[-5:]
    _, eid, death = events[-1]
    assert set(death) == DEATH_FIELDS and death["life"] == life
    assert eid.startswith(f"{life}:") and int(eid.split(":")[1]) > int(events[-2][1].split(":")[1])
    tokens = [d for k, _, d in events if k == "token"]
    assert death["tokens"] == tokens[-1]["seq"] + 1 == len(tokens)  # every token reached this follower
    return death


# -- the broadcaster: a sealed life ------------------------------------------------------------------


def drain(b: Broadcaster, last_event_id: str | None = None) -> list[dict]:
    async def run():
        b.attach(asyncio.get_running_loop())
        return [ev async for ev in b.stream(last_event_id)]

    return asyncio.run(asyncio.wait_for(run(), 5))


def sealed_life() -> Broadcaster:
    b = Broadcaster("life1")
    b.publish("birth", {"life": "life1"})
    for seq in range(3):
        b.publish("token", {"life": "life1", "seq": seq, "text": "x"})
    b.publish("vitals", {"life": "life1", "tokens": 3})
    assert b.seal("death", lambda tokens: {"life": "life1", "tokens": tokens}) == 5
    return b


def test_a_death_is_the_last_event_and_nothing_published_after_it_is_sent():
    b = sealed_life()
    assert b.publish("token", {"life": "life1", "seq": 3, "text": "late"}) is None
    assert b.publish("vitals", {"life": "life1"}) is None
    assert b.seal("death", lambda tokens: {"again": tokens}) is None  # one death per life
    events = drain(b)  # ends by itself: the stream stops after the death
    assert [e["event"] for e in events] == ["birth", "token", "token", "token", "vitals", "death"]
    assert events[-1] == {"event": "death", "id": "life1:5", "data": '{"life":"life1","tokens":3}'}


def test_a_client_resuming_before_the_death_gets_it_and_one_resuming_after_it_gets_an_ended_stream():
    b = sealed_life()
    assert [e["id"] for e in drain(b, "life1:3")] == ["life1:4", "life1:5"]
    assert drain(b, "life1:5") == []


def test_a_death_before_any_birth_ends_waiting_streams():
    b = Broadcaster("life1")
    b.seal("death", lambda tokens: {"tokens": tokens})
    assert drain(b) == []


# -- fatal errors after birth ------------------------------------------------------------------------


class FailingSource(ScriptedSource):
    """Thinks ``good`` tokens, then raises ``error``."""

    def __init__(self, path, good: int, error: Exception, **kw):
        super().__init__(path, **kw)
        self.good, self.error = good, error

    def next_piece(self) -> bytes:
        if self.good == 0:
            raise self.error
        self.good -= 1
        return super().next_piece()


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [(RuntimeError("llama_decode failed (-3) SECRET"), 70, "error"), (SourceError("model gone SECRET"), 78, "model")],
)
def test_a_fatal_error_after_birth_is_announced_with_its_exit_code_then_the_process_ends(
    script_file, error, code, reason
):
    exits = []
    app = create_app(settings(), FailingSource(script_file, 60, error, rate=200.0), on_fatal=exits.append)
    mind = app.state.mind
    with serve(app) as url:
        events = follow(url)
        wait_until(lambda: exits)
        assert httpx.get(url + "/health").status_code == 503
    death = the_death(events, mind.life)
    assert death == {"life": mind.life, "cause": "failed", "exit_code": code, "reason": reason, "tokens": 60}
    assert exits == [code]  # ended with the status it announced, after announcing it
    assert not any("SECRET" in json.dumps(d) for _, _, d in events)  # no exception text anywhere


def test_a_failure_before_birth_is_not_announced(script_file):
    class Unloadable(ScriptedSource):
        def load(self):
            raise SourceError("no model here")

    exits = []
    app = create_app(settings(), Unloadable(script_file), on_fatal=exits.append)
    with serve(app) as url:
        wait_until(lambda: exits)
        assert not app.state.mind.broadcaster.born and app.state.mind.death is None
        assert httpx.get(url + "/health").json()["state"] == "failed"
    assert exits == [78]


# -- the hung watchdog -------------------------------------------------------------------------------


class HangingSource(ScriptedSource):
    """Thinks ``good`` tokens, then blocks in next_piece until released (a hung llama.cpp call)."""

    def __init__(self, path, good: int, **kw):
        super().__init__(path, **kw)
        self.good = good
        self.release = threading.Event()

    def next_piece(self) -> bytes:
        if self.good == 0:
            self.release.wait(60)
        self.good -= 1
        return super().next_piece()


def test_a_source_that_stops_returning_is_hung_health_503_announced_then_exit_75(script_file):
    exits = []
    src = HangingSource(script_file, 40, rate=200.0)
    app = create_app(settings(hung_s=1.0), src, on_fatal=exits.append)
    mind = app.state.mind
    try:
        with serve(app) as url:
            events = []
            reader = threading.Thread(target=lambda: events.extend(follow(url)), daemon=True)
            reader.start()
            wait_until(lambda: mind.watched.progress(10).in_call_s > 0.3)  # blocked, not yet hung
            assert httpx.get(url + "/health").status_code == 200
            wait_until(lambda: mind.death is not None, timeout=10)
            health = httpx.get(url + "/health")
            assert health.status_code == 503 and health.json()["state"] == "dying"
            wait_until(lambda: exits, timeout=10)
            reader.join(10)
    finally:
        src.release.set()
    death = the_death(events, mind.life)
    assert (death["cause"], death["reason"], death["exit_code"], death["tokens"]) == ("failed", "hung", 75, 40)
    assert exits == [75]


def test_a_slow_but_steady_source_is_not_hung(script_file):
    # Two tokens a second, the watchdog at one second: each call returns in half a second.
    exits = []
    app = create_app(
        settings(hung_s=1.0, scripted_rate=2.0), ScriptedSource(script_file, rate=2.0), on_fatal=exits.append
    )
    with serve(app) as url:
        wait_until(lambda: app.state.mind.thinker.seq >= 7, timeout=10)
        assert httpx.get(url + "/health").status_code == 200
    assert exits == [] and app.state.mind.death is None
