"""The display app against a scripted fake mind on 127.0.0.1: lives, deaths, and everything malformed."""

import asyncio
import socket
import threading

import httpx

from display.app import create_app
from display.core.font import ELLIPSIS, mask
from display.core.layout import Grid
from display_helpers import (FakeMind, Recorder, birth, display_settings, free_port, hold, read_frames, serve,
                             sse, steady_life, wait_for)


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
    grid = Grid(rows, cols)
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
        writer.write(sse("vitals", {"life": life, "tokens": 1, "memory_bytes": 5_000_000, "limit_bytes": 10_000_000},
                         f"{life}:2"))
        await writer.drain()
        if life == "life1":
            return  # the stream ends: a death
        await hold(writer)

    rec = Recorder()
    with FakeMind(scenario) as mind:
        app = create_app(display_settings(tmp_path, mind.url, death_style="flatline"), panel=None,
                         chronicle=None, subscribers=[rec])
        with serve(app) as url:
            wait_for(lambda: app.state.display.life == "life2", what="the second life")
            display = app.state.display
            assert [c for c in rec.calls if c[0] in ("birth", "death")] == [
                ("birth", rec.calls[0][1]), ("death", "life1"), ("birth", rec.calls[4][1])]
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


def test_a_frozen_mind_is_a_broken_stream_after_the_read_timeout(tmp_path):
    async def frozen(writer, headers):
        writer.write(sse("birth", birth("ice"), "ice:0"))
        await writer.drain()
        await asyncio.sleep(3600)  # no events, no pings: SIGSTOP as the display sees it

    rec = Recorder()
    with FakeMind(frozen) as mind:
        app = create_app(display_settings(tmp_path, mind.url, read_timeout_s=0.5), panel=None, chronicle=None,
                         subscribers=[rec])
        with serve(app):
            wait_for(lambda: ("death", "ice") in rec.calls, what="a death by silence")
            wait_for(lambda: len(mind.connections) >= 2, what="a reconnection")
            assert "silent" in app.state.display.last_death["reason"]


def test_malformed_upstream_is_skipped_and_never_crashes(tmp_path):
    async def hostile(writer, headers):
        if len(mind.connections) > 1:
            await hold(writer)
        writer.write(sse("birth", birth("bad"), "bad:0"))
        writer.write(b"event: token\ndata: {not json\n\n")
        writer.write(b"event: token\ndata: [1, 2]\n\n")
        writer.write(sse("mystery", {"life": "bad"}))
        writer.write(b"event: token\ndata: {\"life\": \"bad\", \"seq\": 1, \"text\": \"\xff\xfe\"}\n\n")
        writer.write(b"event: token\ndata: " + b"x" * (10 * 1024 * 1024) + b"\n\n")
        writer.write(sse("token", {"life": "bad", "seq": 2, "text": 5}))
        writer.write(sse("token", {"life": "bad", "seq": 3, "text": "still here "}, "bad:3"))
        writer.write(b"event: token\ndata: {\"life\": \"bad\", \"seq\": 4, \"te")  # cut mid-event
        await writer.drain()

    with FakeMind(hostile) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=None, chronicle=None)
        with serve(app) as url:
            wait_for(lambda: len(mind.connections) >= 2, timeout=20, what="a reconnection after the cut")
            display = app.state.display
            assert display.wall.grid.text()[0].startswith("still here")
            assert display.malformed_total >= 5
            assert display.unknown_events_total == 1
            assert httpx.get(url + "/health").status_code == 200


def test_a_token_flood_keeps_the_backlog_bounded_and_marks_the_gap(tmp_path):
    async def flood(writer, headers):
        writer.write(sse("birth", birth("fast"), "fast:0"))
        for i in range(20000):
            writer.write(sse("token", {"life": "fast", "seq": i, "text": f"word{i} "}, f"fast:{i + 1}"))
            if i % 500 == 0:
                await writer.drain()
        await writer.drain()
        await hold(writer)

    with FakeMind(flood) as mind:
        app = create_app(display_settings(tmp_path, mind.url, pacing=True, max_backlog=200), panel=None,
                         chronicle=None)
        with serve(app) as url:
            wait_for(lambda: app.state.display.tokens_total == 20000, timeout=30, what="the flood to arrive")
            display = app.state.display
            assert display.backlog() <= 202
            assert display.typewriter.dropped > 100_000
            wait_for(lambda: any(ELLIPSIS in line for line in display.wall.grid.lines), timeout=10,
                     what="an ellipsis cell on the wall")
            assert "display_backlog_dropped_chars_total" in httpx.get(url + "/metrics").text


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
            slow = socket.create_connection(("127.0.0.1", port))  # connects and never reads
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.sendall(b"GET /frames HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_for(lambda: hub.dropped_viewers > dropped_before, timeout=30, what="the slow viewer to be dropped")
            assert len(hub.viewers) == 0
            assert hub.viewers_total == 51
            # and its response is aborted, though it is stuck in a send that never completes
            wait_for(lambda: hub.aborted_viewers == 1, timeout=15, what="the stuck viewer to be cut off")
            slow.close()


def test_the_mirror_is_read_only(tmp_path):
    app = create_app(display_settings(tmp_path, "http://127.0.0.1:9"), panel=None, chronicle=None)
    with serve(app) as url:
        for path in ("/", "/frames", "/health", "/metrics"):
            assert httpx.post(url + path).status_code == 405
            assert httpx.delete(url + path).status_code == 405
        page = httpx.get(url + "/").text
        assert 'href="/chronicle"' in page and "EventSource" in page


def test_blocked_words_are_masked_on_the_mirror_and_for_subscribers(tmp_path):
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("darn\n")
    rec = Recorder()
    with FakeMind(one_life("bl", ["oh ", "da", "rn it "])) as mind:
        app = create_app(display_settings(tmp_path, mind.url, blocklist_path=blocklist), panel=None,
                         chronicle=None, subscribers=[rec])
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
        app = create_app(display_settings(tmp_path, mind.url, death_style="flatline", death_duration_s=0.5),
                         panel=None, chronicle=None)
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
