"""The display app against a scripted fake mind on 127.0.0.1: lives, deaths, and everything malformed."""

import asyncio
import json
import socket
import threading

import httpx
import pytest

from display import supervisor as supervisor_module
from display.adapters.upstream import Upstream
from display.app import create_app
from display.core.font import ELLIPSIS, Font, mask
from display.core.layout import Grid
from display.runtime import Display
from display_helpers import (
    FakeMind,
    Recorder,
    birth,
    display_settings,
    free_port,
    hold,
    read_frames,
    serve,
    sse,
    steady_life,
    wait_for,
)


def one_life(life: str, tokens: list[str], then_close: bool = False):
    async def scenario(writer, headers):
        writer.write(sse("birth", birth(life), f"{life}:0"))
        for i, text in enumerate(tokens, 1):
            writer.write(sse("token", {"life": life, "seq": i - 1, "text": text}, f"{life}:{i}"))
        await writer.drain()
        if not then_close:
            await hold(writer)

    return scenario


def expected_masks(text: str, rows=6, cols=16) -> list[int]:
    grid = Grid(rows, cols, Font(case="upper"))  # the display's default letter case, every segment (no panel)
    grid.write(text)
    return list(grid.masks())


def test_tokens_appear_in_the_mirror_frame_stream_and_reach_subscribers(tmp_path):
    rec = Recorder()
    with FakeMind(one_life("aa11", ["I am ", "a small ", "machine."])) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=None, chronicle=None, subscribers=[rec])
        with serve(app) as url:
            want = expected_masks("I am a small machine.")
            got = read_frames(url, lambda f: f["masks"] == want)
            assert got["rows"] == 6 and got["cols"] == 16
            # a viewer connecting later gets the current picture first (the snapshot)
            snap = read_frames(url, lambda f: True)
            assert snap["masks"] == want
            assert rec.kinds()[:4] == ["birth", "token", "token", "token"]
            assert rec.text() == "I am a small machine."
            health = httpx.get(url + "/health").json()
            assert health["mind_connected"] is True and health["life"] == "aa11"


def test_a_death_then_a_birth_counts_a_new_life_and_resumes_with_last_event_id(tmp_path):
    lives = iter(["life1", "life2", "life3"])

    async def scenario(writer, headers):
        life = next(lives)
        writer.write(sse("birth", birth(life), f"{life}:0"))
        writer.write(sse("token", {"life": life, "seq": 0, "text": f"I am {life}. "}, f"{life}:1"))
        writer.write(
            sse(
                "vitals", {"life": life, "tokens": 1, "memory_bytes": 5_000_000, "limit_bytes": 10_000_000}, f"{life}:2"
            )
        )
        await writer.drain()
        if life == "life1":
            return  # the stream ends: a death
        await hold(writer)

    rec = Recorder()
    with FakeMind(scenario) as mind:
        app = create_app(
            display_settings(tmp_path, mind.url, death_style="flatline"), panel=None, chronicle=None, subscribers=[rec]
        )
        with serve(app) as url:
            wait_for(lambda: app.state.display.life == "life2", what="the second life")
            display = app.state.display
            assert [c for c in rec.calls if c[0] in ("birth", "death")] == [
                ("birth", rec.calls[0][1]),
                ("death", "life1"),
                ("birth", rec.calls[4][1]),
            ]
            assert display.lives_total == 2
            assert display.last_death["life"] == "life1" and display.last_death["memory_bytes"] == 5_000_000
            assert mind.connections[1].get("last-event-id") == "life1:2"
            wait_for(lambda: "I am life2." in display.wall.grid.text()[0], what="the new life on the wall")
            metrics = httpx.get(url + "/metrics").text
            assert "display_lives_total 2" in metrics and "display_upstream_connected 1" in metrics


def test_the_wall_shows_the_death_picture_while_the_mind_is_gone(tmp_path):
    first = one_life("gone", ["farewell"], then_close=True)

    async def dies_and_stays_down(writer, headers):
        if len(mind.connections) == 1:
            await first(writer, headers)
        # later connections end at once: a mind that is not up again yet

    with FakeMind(dies_and_stays_down) as mind:
        app = create_app(display_settings(tmp_path, mind.url, death_style="flatline"), panel=None, chronicle=None)
        with serve(app) as url:
            line = [0] * 32 + [mask("-")] * 16 + [0] * 48
            read_frames(url, lambda f: f["masks"] == line)
            wait_for(lambda: app.state.display.wall.state == "dead")
            status = app.state.display.status()
            assert status["alive"] is False and status["last_death"]["life"] == "gone"


def test_boots_before_the_mind_is_up_and_connects_when_it_comes(tmp_path):
    port = free_port()
    app = create_app(display_settings(tmp_path, f"http://127.0.0.1:{port}"), panel=None, chronicle=None)
    with serve(app) as url:
        health = httpx.get(url + "/health")
        assert health.status_code == 200 and health.json()["mind_connected"] is False
        mind = FakeMind(one_life("late", ["hello"]))
        mind.port, mind.url = port, f"http://127.0.0.1:{port}"
        with mind:
            wait_for(lambda: httpx.get(url + "/health").json()["mind_connected"], what="connection")
            wait_for(lambda: app.state.display.life == "late")


def test_a_frozen_mind_is_a_broken_stream_after_the_read_timeout(tmp_path, caplog):
    async def frozen(writer, headers):
        writer.write(sse("birth", birth("ice"), "ice:0"))
        await writer.drain()
        await asyncio.sleep(3600)  # no events, no pings: SIGSTOP as the display sees it

    rec = Recorder()
    with FakeMind(frozen) as mind:
        app = create_app(
            display_settings(tmp_path, mind.url, read_timeout_s=0.5), panel=None, chronicle=None, subscribers=[rec]
        )
        with serve(app):
            wait_for(lambda: ("death", "ice") in rec.calls, what="a death by silence")
            wait_for(lambda: len(mind.connections) >= 2, what="a reconnection")
            assert app.state.display.last_death["cause"] == "unknown"
            assert "stream silent for 0.5 s" in caplog.text  # the reason is in the log, not on the page


def test_malformed_upstream_is_counted_exactly_never_stored_and_the_next_sane_life_is_whole(tmp_path):
    malformed = [  # each of these is one event the display must skip and count
        b"event: token\ndata: {not json\n\n",
        b"event: token\ndata: [1, 2]\n\n",  # data that is not an object
        b'event: token\ndata: {"life": "bad", "seq": 1, "text": "\xff\xfe"}\n\n',  # not UTF-8
        b"event: token\ndata: " + b"x" * (10 * 1024 * 1024) + b"\n\n",  # a 10 MB line
        b"event: token\ndata: " + b"[" * 5000 + b"\n\n",  # nested deeper than json can recurse
        b"event: vitals\ndata: " + b'{"a":' * 5000 + b"\n\n",
        sse("token", {"life": "bad", "seq": 2, "text": 5}),
        sse("token", {"life": "bad", "seq": "3", "text": "three "}),
        b'event: token\ndata: {"life": "bad", "seq": 4, "text": "\\ud800"}\n\n',  # a lone surrogate
        sse("vitals", {"life": "bad", "tokens": 1, "memory_bytes": "lots", "limit_bytes": 10_000_000}),
        b'event: vitals\ndata: {"life": "bad", "tokens": 1, "memory_bytes": NaN}\n\n',
        b'event: vitals\ndata: {"life": "bad", "tokens": 1, "tokens_per_s": Infinity}\n\n',
        b'event: vitals\ndata: {"life": "bad", "tokens": 1, "limit_bytes": 1e999}\n\n',
        sse("birth", {"life": "b a d", "born_at": 1.0}),  # an id that is not safe characters
        'id: bad:\u0663\nevent: token\ndata: {"life": "bad", "seq": 5, "text": "x"}\n\n'.encode(),
        sse("token", {"life": "other", "seq": 0, "text": "not of this life "}),
        sse("death", {"life": "bad", "cause": "RuntimeError: boom"}),
    ]

    async def scenario(writer, headers):
        if len(mind.connections) == 1:
            writer.write(sse("birth", {**birth("bad"), "limit_bytes": 10_000_000}, "bad:0"))
            writer.write(sse("token", {"life": "bad", "seq": 0, "text": "one "}, "bad:1"))
            writer.write(sse("mystery", {"life": "bad"}))
            for raw in malformed:
                writer.write(raw)
            writer.write(sse("token", {"life": "bad", "seq": 1, "text": "two "}, "bad:2"))
            writer.write(
                sse("vitals", {"life": "bad", "tokens": 2, "memory_bytes": 1000, "limit_bytes": 10_000_000}, "bad:3")
            )
            writer.write(b'event: token\ndata: {"life": "bad", "seq": 4, "te')  # cut mid-event
            await writer.drain()
            return
        writer.write(sse("birth", birth("sane"), "sane:0"))
        for seq, text in enumerate(["I ", "am ", "sane."]):
            writer.write(sse("token", {"life": "sane", "seq": seq, "text": text}, f"sane:{seq + 1}"))
        await writer.drain()
        await hold(writer)

    with FakeMind(scenario) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=None)
        with serve(app) as url:
            chronicle = app.state.chronicle
            wait_for(
                lambda: len(chronicle.lives()) == 2 and chronicle.lives()[1]["tokens"] == 3,
                timeout=20,
                what="the sane life chronicled",
            )
            display, upstream = app.state.display, app.state.upstream
            assert display.malformed_total == len(malformed) == 17
            assert display.unknown_events_total == 1
            assert (upstream.event_errors, upstream.loop_errors, app.state.supervisor.restarts) == (0, 0, 0)
            assert mind.connections[1]["last-event-id"] == "bad:3"  # the last good id, never the Arabic one
            bad, sane = chronicle.lives()
            assert (bad["life"], bad["alive"], bad["tokens"], bad["peak_memory_bytes"]) == ("bad", False, 2, 1000)
            assert chronicle.life("bad")["text"] == "one two "
            assert chronicle.life("sane")["text"] == "I am sane."
            wait_for(lambda: display.wall.grid.text()[0].startswith("I am sane."), what="the sane life on the wall")
            assert httpx.get(url + "/health").status_code == 200
            assert httpx.get(url + "/chronicle").status_code == 200


def test_a_token_flood_keeps_the_backlog_bounded_and_marks_the_gap_and_the_chronicle_keeps_it_all(tmp_path):
    async def flood(writer, headers):
        writer.write(sse("birth", birth("fast"), "fast:0"))
        for i in range(20000):
            writer.write(sse("token", {"life": "fast", "seq": i, "text": f"word{i} "}, f"fast:{i + 1}"))
            if i % 500 == 0:
                await writer.drain()
        await writer.drain()
        await hold(writer)

    with FakeMind(flood) as mind:
        app = create_app(display_settings(tmp_path, mind.url, pacing=True, max_backlog=200), panel=None)
        with serve(app) as url:
            wait_for(lambda: app.state.display.tokens_total == 20000, timeout=60, what="the flood to arrive")
            display = app.state.display
            assert display.backlog() <= 202
            assert display.typewriter.dropped > 100_000
            wait_for(
                lambda: any(ELLIPSIS in line for line in display.wall.grid.lines),
                timeout=10,
                what="an ellipsis cell on the wall",
            )
            assert "display_backlog_dropped_chars_total" in httpx.get(url + "/metrics").text
            # the chronicle, attached, kept every word the wall had to drop
            chronicle = app.state.chronicle
            assert chronicle.life("fast")["text"] == "".join(f"word{i} " for i in range(20000))
            assert (chronicle.pending, chronicle.failing, chronicle.dropped) == (0, False, 0)
            # ... and marks what the wall skipped: how much, and from which token on
            kept = chronicle.life("fast")
            assert kept["trimmed_chars"] == display.typewriter.dropped == display.trimmed
            assert kept["first_trim_seq"] is not None and 0 <= kept["first_trim_seq"] < 20000


def test_viewers_that_vanish_are_forgotten_and_slow_viewers_are_dropped(tmp_path):
    fast = threading.Event()

    with FakeMind(steady_life("v", lambda: 0.001 if fast.is_set() else 0.05)) as mind:
        # a big grid makes big frames, so a viewer that does not read fills its socket buffers quickly
        settings = display_settings(tmp_path, mind.url, viewer_queue=16, rows=20, cols=60)
        app = create_app(settings, panel=None, chronicle=None)
        with serve(app) as url:
            hub = app.state.hub
            port = int(url.rsplit(":", 1)[1])
            with httpx.Client(timeout=5) as client:
                for _ in range(50):  # 50 viewers come and go
                    with client.stream("GET", url + "/frames") as response:
                        next(response.iter_lines())
            wait_for(lambda: len(hub.viewers) == 0, what="the 50 viewers to be forgotten")
            dropped_before = hub.dropped_viewers
            fast.set()
            # connects and never reads; a small receive buffer set before connecting (the window is
            # agreed at the handshake) so its sends get stuck even when the loop is slowed by a busy machine
            slow = socket.socket()
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.connect(("127.0.0.1", port))
            slow.sendall(b"GET /frames HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_for(lambda: hub.dropped_viewers > dropped_before, timeout=30, what="the slow viewer to be dropped")
            assert len(hub.viewers) == 0
            assert hub.viewers_total == 51
            # and its response is aborted, though it is stuck in a send that never completes
            wait_for(lambda: hub.aborted_viewers == 1, timeout=40, what="the stuck viewer to be cut off")
            slow.close()


def test_the_mirror_page_links_the_chronicle_and_draws_from_the_frame_stream(tmp_path):
    app = create_app(display_settings(tmp_path, "http://127.0.0.1:9"), panel=None, chronicle=None)
    with serve(app) as url:
        page = httpx.get(url + "/").text
        assert 'href="/chronicle"' in page and "EventSource" in page


def test_blocked_words_are_masked_on_the_mirror_and_for_subscribers(tmp_path):
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("darn\n")
    rec = Recorder()
    with FakeMind(one_life("bl", ["oh ", "da", "rn it "])) as mind:
        app = create_app(
            display_settings(tmp_path, mind.url, blocklist_path=blocklist),
            panel=None,
            chronicle=None,
            subscribers=[rec],
        )
        with serve(app) as url:
            want = expected_masks("oh **** it ")
            read_frames(url, lambda f: f["masks"] == want)
            assert "darn" not in rec.text() and "****" in rec.text()


def test_the_panel_and_the_mirror_show_the_same_frame(tmp_path):
    class RecordingPanel:
        def __init__(self):
            self.frames = []

        def show(self, frame):
            self.frames.append(frame)

        def close(self):
            pass

    panel = RecordingPanel()
    with FakeMind(one_life("same", ["one frame for every sink"])) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=panel, chronicle=None)
        with serve(app) as url:
            want = expected_masks("one frame for every sink")
            got = read_frames(url, lambda f: f["masks"] == want)
            shown = {f.seq: f for f in panel.frames}
            assert list(shown[got["seq"]].masks) == got["masks"]


def test_the_chronicle_is_built_in_data_dir_subscribed_and_routed(tmp_path):
    with FakeMind(one_life("chron", ["remember me "])) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=None)
        with serve(app) as url:
            assert (tmp_path / "chronicle.sqlite3").exists()
            assert app.state.chronicle in app.state.display.subscribers
            wait_for(lambda: app.state.display.tokens_total >= 1)
            assert httpx.get(url + "/chronicle").status_code == 200


def test_a_quick_resurrection_waits_for_the_death_picture_to_finish(tmp_path):
    lives = iter(["quick1", "quick2"])

    async def scenario(writer, headers):
        life = next(lives, None)
        if life is None:
            return
        writer.write(sse("birth", birth(life), f"{life}:0"))
        writer.write(sse("token", {"life": life, "seq": 0, "text": f"I am {life} "}, f"{life}:1"))
        await writer.drain()
        if life == "quick1":
            return  # dies; the next connection is already the next life
        await hold(writer)

    with FakeMind(scenario) as mind:
        app = create_app(
            display_settings(tmp_path, mind.url, death_style="flatline", death_duration_s=0.5),
            panel=None,
            chronicle=None,
        )
        seen = []

        def record(frame):
            seen.append(frame["masks"])
            return frame["masks"] == expected_masks("I am quick2 ")

        with serve(app) as url:
            read_frames(url, record)
        flat = [0] * 32 + [mask("-")] * 16 + [0] * 48
        assert flat in seen, "the full flatline was shown before the new life"
        assert seen.index(flat) < len(seen) - 1


def test_the_mirror_response_still_overrides_sse_starlettes_per_send_wrapper():
    # the override halves the CPU cost of many viewers; an sse-starlette upgrade must not lose it silently
    from sse_starlette import EventSourceResponse

    from display.web.mirror import ViewerResponse

    assert "_send_with_timeout" in vars(EventSourceResponse)
    assert "_send_with_timeout" in vars(ViewerResponse)


def test_an_exception_while_handling_one_event_is_counted_and_the_stream_goes_on(tmp_path, monkeypatch):
    def broken_vitals(self, data):
        raise RuntimeError("a bug in the vitals handler")

    monkeypatch.setattr(Display, "_vitals", broken_vitals)

    async def scenario(writer, headers):
        writer.write(sse("birth", birth("bug"), "bug:0"))
        for seq in range(3):
            writer.write(sse("token", {"life": "bug", "seq": seq, "text": f"t{seq} "}, f"bug:{2 * seq + 1}"))
            writer.write(sse("vitals", {"life": "bug", "tokens": seq + 1}, f"bug:{2 * seq + 2}"))
        await writer.drain()
        await hold(writer)

    with FakeMind(scenario) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=None, chronicle=None)
        with serve(app) as url:
            display = app.state.display
            wait_for(lambda: display.wall.grid.text()[0].startswith("t0 t1 t2"), what="every token after the errors")
            assert app.state.upstream.event_errors == 3
            assert len(mind.connections) == 1 and app.state.supervisor.restarts == 0
            assert httpx.get(url + "/health").status_code == 200
            assert "display_event_errors_total 3" in httpx.get(url + "/metrics").text


def test_a_dead_upstream_task_is_restarted_logged_and_reported_until_healthy(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(supervisor_module, "HEALTHY_AFTER_S", 1.0)
    original, calls = Upstream.run, []

    async def dies_once(self):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("injected: the loop itself broke")
        await original(self)

    monkeypatch.setattr(Upstream, "run", dies_once)
    with FakeMind(steady_life("again", 0.05)) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=None, chronicle=None)
        with serve(app) as url:
            wait_for(lambda: app.state.display.life == "again", what="the restarted task to follow the mind")
            assert len(calls) == 2 and app.state.supervisor.restarts == 1
            assert "task upstream failed; starting it again" in caplog.text
            assert "display_task_restarts_total 1" in httpx.get(url + "/metrics").text
            wait_for(lambda: httpx.get(url + "/health").status_code == 200, what="healthy again")


def test_a_failing_upstream_loop_goes_on_and_health_says_degraded_until_it_follows_the_mind(tmp_path, monkeypatch):
    async def broken_follow(self, client):
        raise RuntimeError("injected: every round fails")

    monkeypatch.setattr(Upstream, "_follow", broken_follow)
    with FakeMind(steady_life("later", 0.05)) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=None, chronicle=None)
        with serve(app) as url:
            wait_for(lambda: app.state.upstream.loop_errors >= 3, what="rounds failing, and the loop going on")
            health = httpx.get(url + "/health")
            assert health.status_code == 503
            assert health.json()["status"] == "degraded"
            assert health.json()["problems"] == ["the loop following the mind is failing"]
            assert app.state.supervisor.restarts == 0  # the task never died
            monkeypatch.undo()
            wait_for(lambda: app.state.display.life == "later", what="the loop to follow the mind again")
            assert httpx.get(url + "/health").status_code == 200


def test_a_last_event_id_the_mind_refuses_with_400_is_forgotten(tmp_path):
    lives = iter(["first", "second"])

    async def scenario(writer, headers):
        life = next(lives)
        writer.write(sse("birth", birth(life), f"{life}:0"))
        writer.write(sse("token", {"life": life, "seq": 0, "text": f"{life} "}, f"{life}:1"))
        await writer.drain()
        if life == "second":
            await hold(writer)

    with FakeMind(scenario, status=lambda headers: 400 if "last-event-id" in headers else 200) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=None, chronicle=None)
        with serve(app):
            wait_for(lambda: app.state.display.life == "second", what="a life after the refused id")
            assert mind.connections[1]["last-event-id"] == "first:1"
            assert "last-event-id" not in mind.connections[2]


def test_health_is_degraded_when_the_chronicle_cannot_be_opened(tmp_path):
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("a file where the volume should be")
    app = create_app(display_settings(not_a_dir, "http://127.0.0.1:9"), panel=None)
    with serve(app) as url:
        health = httpx.get(url + "/health")
        assert health.status_code == 503
        assert health.json()["problems"] == ["the chronicle could not be opened"]
        assert httpx.get(url + "/").status_code == 200  # the wall and the mirror go on


def test_a_chronicle_that_cannot_write_degrades_health_and_recovers_by_itself_losing_nothing(tmp_path):
    with FakeMind(steady_life("full", 0.01)) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=None)
        with serve(app) as url:
            chronicle = app.state.chronicle
            wait_for(lambda: chronicle.lives() and chronicle.lives()[0]["tokens"] > 20, what="tokens chronicled")
            with chronicle._lock:  # the file may grow no further: SQLite answers SQLITE_FULL, as on a full disk
                pages = chronicle._conn.execute("PRAGMA page_count").fetchone()[0]
                chronicle._conn.execute(f"PRAGMA max_page_count = {pages}")
            wait_for(lambda: httpx.get(url + "/health").status_code == 503, what="health to say degraded")
            assert httpx.get(url + "/health").json()["problems"] == ["the chronicle is not recording"]
            wait_for(lambda: chronicle.pending > 20, what="events waiting in memory")
            with chronicle._lock:  # space returns
                chronicle._conn.execute("PRAGMA max_page_count = 1073741823")
            wait_for(lambda: httpx.get(url + "/health").status_code == 200, what="recording to resume by itself")
            seen = app.state.display.last_seq
            wait_for(lambda: chronicle.life("full")["tokens"] > seen + 1, what="every token up to now")
            words = chronicle.life("full")["text"].split()
            assert words == [f"word{i}" for i in range(len(words))] and len(words) > seen + 1  # gapless


@pytest.mark.parametrize(
    "death,cause,source,words",
    [
        ({"cause": "stopped", "exit_code": 0, "tokens": 2}, "stopped", "mind", "stopped"),
        (
            {"cause": "failed", "exit_code": 70, "reason": "hung", "tokens": 2},
            "failed",
            "mind",
            "failed: hung (exit 70)",
        ),
        ({"cause": "oom", "exit_code": 137, "reason": "stall", "tokens": 3}, "oom", "mind", "oom (stall)"),
    ],
)
def test_a_death_the_mind_announces_is_recorded_as_said_even_near_the_limit(tmp_path, death, cause, source, words):
    rec = Recorder()
    holder = {}

    async def scenario(writer, headers):
        if len(holder["mind"].connections) > 1:
            await hold(writer)
        writer.write(sse("birth", {**birth("said"), "limit_bytes": 10_000_000}, "said:0"))
        writer.write(sse("token", {"life": "said", "seq": 0, "text": "I "}, "said:1"))
        writer.write(sse("token", {"life": "said", "seq": 1, "text": "go."}, "said:2"))
        writer.write(
            sse("vitals", {"life": "said", "tokens": 2, "memory_bytes": 9_900_000, "limit_bytes": 10_000_000}, "said:3")
        )
        writer.write(sse("death", {"life": "said", **death}, "said:4"))
        await writer.drain()

    with FakeMind(scenario) as mind:
        holder["mind"] = mind
        app = create_app(display_settings(tmp_path, mind.url), panel=None, subscribers=[rec])
        with serve(app) as url:
            wait_for(lambda: len(mind.connections) >= 2, what="the stream to end after the death")
            chronicle = app.state.chronicle
            wait_for(lambda: not chronicle.lives()[0]["alive"], what="the death chronicled")
            [life] = httpx.get(url + "/chronicle/lives").json()
            assert (life["cause"], life["cause_source"], life["cause_words"]) == (cause, source, words)
            assert life["missing_tokens"] == death["tokens"] - 2
            assert [c for c in rec.calls if c[0] == "death"] == [("death", "said")]  # the end of the stream is
            assert app.state.display.last_death["cause"] == words  # not a second death
            assert words in httpx.get(url + "/chronicle").text


def test_the_mind_s_word_after_a_break_replaces_the_inference(tmp_path):
    async def scenario(writer, headers):
        if "last-event-id" not in headers:
            writer.write(sse("birth", {**birth("late"), "limit_bytes": 10_000_000}, "late:0"))
            writer.write(
                sse(
                    "vitals",
                    {"life": "late", "tokens": 0, "memory_bytes": 9_500_000, "limit_bytes": 10_000_000},
                    "late:1",
                )
            )
            await writer.drain()
            return  # a break: the display infers a probable oom
        writer.write(sse("death", {"life": "late", "cause": "stopped"}, "late:2"))  # the mind's word, resumed
        await writer.drain()
        await hold(writer)

    with FakeMind(scenario) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=None)
        with serve(app):
            chronicle = app.state.chronicle
            wait_for(lambda: chronicle.lives() and chronicle.lives()[0]["cause"] == "stopped", what="the mind's word")
            assert chronicle.lives()[0]["cause_source"] == "mind"
            assert app.state.display.last_death["cause"] == "stopped"
            assert app.state.display.wall.state != "alive"  # a death announced is never taken back


def test_no_exception_text_reaches_the_mirror_and_the_connection_state_is_true(tmp_path):
    async def scenario(writer, headers):
        if len(holder["mind"].connections) == 1:
            # a chunked body cut in the middle of a chunk: httpx raises RemoteProtocolError
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            body = sse("birth", {**birth("cut"), "limit_bytes": 10_000_000}, "cut:0")
            body += sse("vitals", {"life": "cut", "tokens": 0, "memory_bytes": 9_500_000, "limit_bytes": 10_000_000})
            writer.write(f"{len(body):x}\r\n".encode() + body + b"\r\n" + b"400\r\npartial")
            await writer.drain()
            return
        await hold(writer)  # the mind is up again but no life is born yet

    holder = {}

    class RawMind(FakeMind):
        async def _handle(self, reader, writer):
            try:
                request = await reader.readuntil(b"\r\n\r\n")
                self.connections.append({"raw": request})
                if len(self.connections) > 1:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
                await self.scenario(writer, {})
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

    with RawMind(scenario) as mind:
        holder["mind"] = mind
        app = create_app(display_settings(tmp_path, mind.url), panel=None, chronicle=None)
        with serve(app) as url:
            display = app.state.display
            wait_for(
                lambda: display.last_death is not None and len(mind.connections) >= 2 and display.upstream_connected,
                what="the death, then the mind connected again",
            )
            status = display.status()
            text = json.dumps(status)
            assert status["last_death"]["cause"] == "probable oom (memory near its limit)"
            for leak in ("Error", "Exception", "peer closed", "incomplete", "Traceback"):
                assert leak not in text
            assert (status["connected"], status["alive"]) == (True, False)  # connected, no life yet
            page = httpx.get(url + "/").text
            assert "dd.reason" not in page and "dd.cause" in page and "waiting for the mind" in page


def test_the_word_the_blocklist_holds_back_reaches_wall_and_chronicle_at_a_death_and_a_resume(tmp_path):
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("darn\n")

    class RecordingPanel:
        def __init__(self):
            self.frames = []

        def show(self, frame):
            self.frames.append(frame)

        def close(self):
            pass

    async def scenario(writer, headers):
        if "last-event-id" not in headers:
            writer.write(sse("birth", birth("held"), "held:0"))
            for seq, text in enumerate(["oh ", "da", "rn it ", "good", "bye"]):
                writer.write(sse("token", {"life": "held", "seq": seq, "text": text}, f"held:{seq + 1}"))
            await writer.drain()
            return  # a break after a word with no end yet: the blocklist holds "goodbye"
        for seq, text in enumerate([" and so", " on"], start=5):  # the same life resumes
            writer.write(sse("token", {"life": "held", "seq": seq, "text": text}, f"held:{seq + 1}"))
        await writer.drain()
        await hold(writer)  # "on" is held again until the end of this test

    panel = RecordingPanel()
    rec = Recorder()
    with FakeMind(scenario) as mind:
        app = create_app(
            display_settings(tmp_path, mind.url, blocklist_path=blocklist, death_style="flatline"),
            panel=panel,
            subscribers=[rec],
        )
        with serve(app):
            wait_for(lambda: ("resume", "held") in rec.calls, what="the resume")
            wait_for(lambda: rec.text() == "oh **** it goodbye and so ", what="every word but the held one")
            chronicle = app.state.chronicle
            wait_for(lambda: chronicle.life("held")["text"] == "oh **** it goodbye and so ", what="the chronicle")
            # the wall showed "goodbye" before the death picture took it
            assert list(expected_masks("oh **** it goodbye")) in [list(f.masks) for f in panel.frames]
            assert [k for k in rec.kinds() if k in ("death", "resume")] == ["death", "resume"]


def every_route(routes, prefix: str = ""):
    """(path, methods) of every route, routers included (FastAPI keeps an included router as one entry)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from every_route(included.routes, prefix + route.include_context.prefix)
        else:
            yield prefix + route.path, getattr(route, "methods", None)  # a mount or a websocket has none


def test_every_route_is_get_only(tmp_path):
    app = create_app(display_settings(tmp_path, "http://127.0.0.1:9"), panel=None)
    paths = set()
    for path, methods in every_route(app.routes):
        assert methods is not None and methods <= {"GET", "HEAD"}, (path, methods)
        paths.add(path)
    assert {
        "/",
        "/frames",
        "/health",
        "/metrics",
        "/chronicle",
        "/chronicle/lives",
        "/chronicle/lives/{life}",
        "/chronicle/export.jsonl",
        "/chronicle/export.txt",
    } <= paths
    with serve(app) as url:
        for path in paths:
            concrete = path.replace("{life}", "x")
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                assert httpx.request(method, url + concrete).status_code == 405, (method, path)


SENSE_TEXT = "[memory 212 MB of 700 MB; 5 words; alive 3 s]\n\n"


def life_with_a_reading(life: str):
    async def scenario(writer, headers):
        writer.write(sse("birth", birth(life), f"{life}:0"))
        for i, text in enumerate(["I am ", "awake.", "\n\n"]):
            writer.write(sse("token", {"life": life, "seq": i, "text": text}, f"{life}:{i + 1}"))
        sense = {"life": life, "seq": 2, "text": SENSE_TEXT, "tokens": 3, "words": 3, "memory_bytes": 222_298_112}
        writer.write(sse("sense", sense, f"{life}:4"))
        writer.write(sse("token", {"life": life, "seq": 3, "text": "Still here."}, f"{life}:5"))
        writer.write(sse("vitals", {"life": life, "tokens": 4, "stops_refused": 12, "words": 5}, f"{life}:6"))
        await writer.drain()
        await hold(writer)

    return scenario


@pytest.mark.parametrize("on_wall", [True, False], ids=["shown", "hidden"])
def test_the_system_s_readings_reach_the_mirror_apart_the_wall_per_setting_and_the_chronicle_flagged(tmp_path, on_wall):
    with FakeMind(life_with_a_reading("sens")) as mind:
        app = create_app(display_settings(tmp_path, mind.url, senses_on_wall=on_wall, rows=12, cols=32), panel=None)
        with serve(app) as url:
            display = app.state.display
            wait_for(lambda: (display.vitals or {}).get("stops_refused") == 12, what="the vitals")
            status = display.status()
            assert status["sense"] == SENSE_TEXT.strip()  # the mirror shows it in a colour of its own
            assert status["vitals"]["stops_refused"] == 12  # "it tried to end its thought 12 times"
            wall = "\n".join("".join(line) for line in display.wall.grid.lines)
            assert ("[memory 212 MB" in wall) is on_wall
            assert "Still here." in wall
            chronicle = app.state.chronicle
            wait_for(lambda: chronicle.life("sens")["stops_refused"] == 12, what="the chronicle")
            kept = chronicle.life("sens")
            assert kept["senses"] == 1
            assert kept["text"] == "I am awake.\n\nStill here."  # the thought alone: readings are not words of it
            page = httpx.get(url + "/").text
            assert 'id="sense"' in page and "it tried to end its thought" in page
