"""Every life says what it was: the birth's frame, model, sampler and seed kept; its words judged once it
is over; the page's frame, model and limit columns, its filters, and a table per frame."""

from __future__ import annotations

import re
import sqlite3
import time

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from chronicle_lives import SHA, live, many_lives, scripted_birth
from display.app import create_app
from display.chronicle import Chronicle, chronicle_router, render
from display.chronicle import store as store_module
from display.core import judge
from display.runtime import Display
from display.web.hub import Hub
from display_helpers import FakeMind, display_settings, hold, serve, sse, wait_for


@pytest.fixture
def chronicle(tmp_path):
    c = Chronicle(tmp_path / "chronicle.db", keep_lives=0, max_bytes=0)
    yield c
    c.close()


def test_a_birth_keeps_its_frame_sampler_and_seed_and_an_older_mind_s_birth_still_works(chronicle):
    chronicle.on_birth(scripted_birth("a1", "transcript", "gemma-3-270m", 480, time.time()))
    chronicle.on_birth(scripted_birth("b2", None, "gemma-3-270m", None, time.time()))  # an older mind
    one = chronicle.life("a1")
    assert (one["frame"], one["frame_sha256"], one["seed"]) == ("transcript", SHA["transcript"], 7)
    assert one["sampler"] == {"temperature": 0.8, "min_p": 0.05, "repeat_penalty": 1.1}
    assert one["frame_text"] == "The transcript frame, filled for a1."
    other = chronicle.life("b2")
    assert (other["frame"], other["frame_sha256"], other["sampler"], other["seed"], other["frame_text"]) == (
        None,
        None,
        None,
        None,
        None,
    )
    # the life's header (the page, the text export) says it
    assert "frame transcript (sha256 " + SHA["transcript"] + "); seed 7" in render.describe(one)
    assert "sampler: min_p 0.05, repeat_penalty 1.1, temperature 0.8" in render.describe(one)


def test_a_birth_seen_again_without_the_fields_keeps_what_is_known(chronicle):
    chronicle.on_birth(scripted_birth("a1", "entity", "m", 480, time.time()))
    chronicle.on_birth({"life": "a1", "born_at": time.time()})  # the display restarted; an older replay
    assert chronicle.life("a1")["frame"] == "entity"


def test_stops_refused_come_with_the_vitals(chronicle):
    live(chronicle, "a1", ["I ", "am."], minutes=1, stops_refused=4)
    assert chronicle.lives()[0]["stops_refused"] == 4


def test_the_words_of_a_finished_life_are_judged_and_the_living_one_is_not(chronicle):
    words = ["I ", "am ", "awake.\n", "<h2>", "Home", "</h2>\n", "I ", "am ", "awake. "]
    live(chronicle, "a1", words, minutes=2)
    live(chronicle, "b2", ["still ", "here"], minutes=1, alive=True)
    chronicle.judge_pending()
    done, alive = chronicle.lives()
    expected = judge.judge("".join(words))
    assert done["judged_tokens"] == expected.tokens == 9
    assert done["words_distinct"] == pytest.approx(expected.distinct_word_ratio)
    assert done["words_first_person"] == pytest.approx(expected.first_person_share) == pytest.approx(2 / 3)
    assert done["words_markup"] == pytest.approx(expected.markup_per_1000)
    assert done["words_repeat_chars"] == len("I am awake.")
    # too short for a first and a last 500 tokens apart
    assert done["words_distinct_first"] is None and done["words_first_person_last"] is None
    assert alive["judged_tokens"] is None and alive["words_distinct"] is None


def test_how_the_words_change_over_a_life_first_against_last_500_tokens(chronicle):
    varied = [f"I saw{i} " for i in range(500)]  # first person, every word new
    looping = ["the ", "end ", "again. "] * 167  # 501 tokens of three words
    live(chronicle, "a1", varied + ["\n"] + looping, minutes=5)
    assert chronicle.judge_pending() == 1
    life = chronicle.lives()[0]
    first, last = "".join(varied), "".join((["\n"] + looping)[-500:])
    assert life["words_distinct_first"] == pytest.approx(judge.distinct_word_ratio(first))
    assert life["words_distinct_last"] == pytest.approx(judge.distinct_word_ratio(last)) == pytest.approx(3 / 500)
    assert life["words_first_person_first"] == 1.0 and life["words_first_person_last"] == 0.0


def test_the_background_thread_judges_lives_by_itself(chronicle):
    live(chronicle, "a1", ["I ", "am."], minutes=1)
    wait_for(lambda: chronicle.lives()[0]["judged_tokens"] is not None, timeout=5)
    assert chronicle.lives()[0]["words_first_person"] == 1.0


def test_a_life_taken_back_after_a_broken_stream_is_judged_again_when_it_ends(chronicle):
    live(chronicle, "a1", ["I ", "am."], minutes=1)
    chronicle.judge_pending()
    chronicle.on_resume("a1")
    assert chronicle.lives()[0]["judged_tokens"] is None
    chronicle.on_token({"life": "a1", "seq": 2, "text": " Still."})
    assert chronicle.judge_pending() == 0  # alive: not judged
    live(chronicle, "b2", [], minutes=0)  # a new birth closes it
    chronicle.judge_pending()
    assert chronicle.life("a1")["judged_tokens"] == 3


class FailingCommit:
    """The writer connection with its next COMMITs failing (a full or failing volume)."""

    def __init__(self, conn: sqlite3.Connection, fails: int) -> None:
        self.conn, self.fails = conn, fails

    def execute(self, sql: str, *args):
        if sql == "COMMIT" and self.fails > 0:
            self.fails -= 1
            raise sqlite3.OperationalError("database or disk is full (injected)")
        return self.conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.conn, name)


def test_a_judgement_that_cannot_be_written_waits_and_is_written_later(chronicle, monkeypatch):
    monkeypatch.setattr(store_module, "JUDGE_RETRY_S", 0.2)
    chronicle._stop.set()  # the background thread would race this test's own calls
    chronicle._thread.join(5)
    live(chronicle, "a1", ["I ", "am."], minutes=1)
    writer = chronicle._conn
    chronicle._conn = FailingCommit(writer, fails=1)
    assert chronicle.judge_pending() == 0  # never raises
    assert chronicle.judge_failures == 1 and chronicle._unjudged
    assert chronicle._judge_after > time.monotonic()  # the thread waits before it tries again
    assert not writer.in_transaction and chronicle.lives()[0]["judged_tokens"] is None
    assert chronicle.judge_pending() == 1 and chronicle.lives()[0]["judged_tokens"] == 2
    chronicle._conn = writer
    chronicle._stop.clear()  # close() runs in full


def test_an_older_file_gains_the_new_columns_once_and_keeps_its_lives(tmp_path):
    path = tmp_path / "old.db"
    old = Chronicle(path, keep_lives=0, max_bytes=0)
    live(old, "a1", ["I ", "am."], minutes=1)
    old.close()
    conn = sqlite3.connect(path)
    # back to version 2: none of the new columns, except the one another helper may already have added
    for column in store_module._ADDED_IN_3:
        if column != "stops_refused":
            conn.execute(f"ALTER TABLE lives DROP COLUMN {column}")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    for _ in range(2):  # idempotent
        c = Chronicle(path, keep_lives=0, max_bytes=0)
        life = c.lives()[0]
        assert life["life"] == "a1" and life["frame"] is None and life["tokens"] == 2
        c.judge_pending()
        assert c.lives()[0]["words_first_person"] == 1.0  # an old life is judged too
        c.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store_module.SCHEMA_VERSION == 3
    columns = [r[1] for r in conn.execute("PRAGMA table_info(lives)")]
    assert set(store_module._ADDED_IN_3) <= set(columns) and len(columns) == len(set(columns))
    conn.close()


def test_filters_by_frame_model_and_limit(chronicle):
    live(chronicle, "a1", ["x"], minutes=1, frame="transcript", model="gemma-3-270m", limit_mib=480)
    live(chronicle, "b2", ["x"], minutes=1, frame="entity", model="gemma-3-270m", limit_mib=700)
    live(chronicle, "c3", ["x"], minutes=1, frame="entity", model="qwen2.5-0.5b", limit_mib=480)
    live(chronicle, "d4", ["x"], minutes=1, frame=None, model="qwen2.5-0.5b", limit_mib=None)

    def ids(**filters):
        return [s["life"] for s in chronicle.lives(**filters)]

    assert ids(frame="entity") == ["b2", "c3"]
    assert ids(model="qwen2.5-0.5b") == ["c3", "d4"]
    assert ids(frame="entity", model="qwen2.5-0.5b") == ["c3"]
    assert ids(limit_mib=480) == ["a1", "c3"]
    assert ids(frame="nothing") == []


def scripted_frames(chronicle: Chronicle) -> None:
    """Three transcript lives (the last alive) and two entity lives; the second entity life loops."""
    first = ["I ", "am ", "awake. "]
    live(chronicle, "t1", first * 2, minutes=10, frame="transcript", stops_refused=1)
    live(chronicle, "t2", first * 4, minutes=30, frame="transcript", stops_refused=2)
    live(chronicle, "e1", [f"word{i} " for i in range(1000)], minutes=4, frame="entity")
    live(chronicle, "e2", [f"I saw{i} " for i in range(500)] + ["\n"] + ["loop "] * 500, minutes=8, frame="entity")
    live(chronicle, "t3", first, minutes=3, frame="transcript", alive=True)  # a birth closes the lives before
    chronicle.judge_pending()


def test_the_table_per_frame_compares_lifespans_and_words(chronicle):
    scripted_frames(chronicle)
    rows = {r["frame"]: r for r in render.frame_table(chronicle.lives())}
    t, e = rows["transcript"], rows["entity"]
    assert (t["lives"], t["alive"], e["lives"], e["alive"]) == (3, 1, 2, 0)
    assert t["frame_sha256"] == SHA["transcript"]
    # medians of the finished lives only (the living one has not finished its span)
    assert t["median_tokens"] == 9 and t["median_minutes"] == pytest.approx(20, abs=0.1)
    assert e["median_tokens"] == 1000.5 and e["median_minutes"] == pytest.approx(6, abs=0.1)
    assert t["stops_refused"] == 3 and e["stops_refused"] is None
    assert t["first_person"] == 1.0 and t["distinct"] == pytest.approx((3 / 6 + 3 / 12) / 2)
    # e1 reads one new word after another; e2 turns from new first-person words to one word looping
    assert e["edges"] == 2
    assert e["distinct_first"] == pytest.approx((1 + 251 / 500) / 2)  # "I" in every other word
    assert e["distinct_last"] == pytest.approx((1 + 1 / 500) / 2)
    assert e["first_person_first"] == pytest.approx(0.5) and e["first_person_last"] == 0.0


@pytest.fixture
def client(chronicle):
    app = FastAPI()
    app.include_router(chronicle_router(chronicle))
    return TestClient(app)


def _rows(page: str) -> list[str]:
    return re.findall(r"<tr class=\"(?:alive|dead)\">(.*?)</tr>", page)


def test_the_page_shows_frame_model_and_limit_and_the_table_per_frame(chronicle, client):
    scripted_frames(chronicle)
    page = client.get("/chronicle").text
    rows = _rows(page)
    assert len(rows) == 5
    assert 'href="?frame=entity">entity (e2e2e2e2)</a>' in rows[1]  # newest first: t3, then e2
    assert 'href="?model=gemma-3-270m">gemma-3-270m</a>' in rows[1] and 'href="?limit=480">480</a>' in rows[1]
    table = page.split("<h2>Frames compared</h2>", 1)[1].split("</table>", 1)[0]
    cells = re.findall(r"<tr><td>(.*?)</tr>", table)
    assert [re.sub(r"<[^>]+>", "", c.split("</td>")[0]) for c in cells] == [
        "transcript (a1a1a1a1)",
        "entity (e2e2e2e2)",
    ]
    assert "3 (1 alive)" in cells[0] and "0.75 → 0.50" in cells[1] and "0.50 → 0.00" in cells[1]


def test_the_page_and_the_json_filter_by_frame_model_and_limit(chronicle, client):
    scripted_frames(chronicle)
    live(chronicle, "q1", ["x"], minutes=1, frame="entity", model="qwen2.5-0.5b", limit_mib=700)
    page = client.get("/chronicle", params={"frame": "entity"}).text
    assert len(_rows(page)) == 3 and "Only the lives of frame entity: 3 lives." in page
    assert 'href="?frame=entity&amp;life=q1#text"' in page  # a life's link keeps the filter
    page = client.get("/chronicle", params={"frame": "entity", "model": "qwen2.5-0.5b"}).text
    assert len(_rows(page)) == 1 and "frame entity, model qwen2.5-0.5b: 1 life." in page
    assert [s["life"] for s in client.get("/chronicle/lives", params={"limit": "700"}).json()] == ["q1"]
    assert len(client.get("/chronicle/lives", params={"frame": ""}).json()) == 6  # empty: no filter
    bad = client.get("/chronicle", params={"limit": "1e9"})
    assert bad.status_code == 400 and "whole number of MiB" in bad.text and "Error" not in bad.text
    assert client.get("/chronicle", params={"limit": "9" * 40}).status_code == 400
    nothing = client.get("/chronicle", params={"frame": "no such frame"}).text
    assert "Only the lives of frame no such frame: 0 lives." in nothing and len(_rows(nothing)) == 0
    assert "no life matches" in nothing and "no lives yet" not in nothing  # the installation has a past


def test_the_axis_names_one_life_once_and_the_ends_of_ten(tmp_path):
    one = Chronicle(tmp_path / "one.db", keep_lives=0, max_bytes=0)
    live(one, "a1", ["I ", "am."], minutes=2, limit_mib=480, alive=True)
    plots = render.plots(one.lives())
    one.close()
    for svg in plots.split("</svg>")[:2]:  # the two bar charts
        assert re.findall(r'class="axis"[^>]*>([^<]*)<', svg) == ["life 1"]
    # the living life with its 480 MiB limit is on the limit plots, not "no life with a limit"
    assert "no life with a memory limit yet" not in plots and plots.count("at 480 MiB") == 2

    ten = Chronicle(tmp_path / "ten.db", keep_lives=0, max_bytes=0)
    many_lives(ten, 10)
    plots = render.plots(ten.lives())
    ten.close()
    assert re.findall(r'class="axis"[^>]*>([^<]*)<', plots.split("</svg>")[0]) == ["life 1", "life 10"]


def test_the_mirror_s_status_names_the_prompt_frame_of_the_current_life(tmp_path):
    display = Display(display_settings(tmp_path, "http://127.0.0.1:9"), Hub())
    assert display.status()["frame"] is None
    display.event("birth", scripted_birth("f1", "entity", "m", 480, time.time()), "f1:0")
    assert display.status()["frame"] == "entity"
    display.event("birth", {"life": "f2"}, "f2:0")  # an older mind names no frame
    assert display.status()["life"] == "f2" and display.status()["frame"] is None


def test_what_a_life_is_goes_from_the_mind_s_birth_through_the_contract_to_the_chronicle_and_the_mirror(tmp_path):
    async def scenario(writer, headers):
        writer.write(sse("birth", scripted_birth("w1", "entity", "gemma-3-270m", 480, time.time()), "w1:0"))
        writer.write(sse("token", {"life": "w1", "seq": 0, "text": "I am."}, "w1:1"))
        await writer.drain()
        await hold(writer)

    with FakeMind(scenario) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=None)
        with serve(app) as url:
            chronicle = app.state.chronicle
            wait_for(lambda: (chronicle.life("w1") or {}).get("tokens") == 1, what="the life in the chronicle")
            kept = chronicle.life("w1")
            assert (kept["frame"], kept["frame_sha256"], kept["seed"]) == ("entity", SHA["entity"], 7)
            assert kept["frame_text"] == "The entity frame, filled for w1." and kept["sampler"]["temperature"] == 0.8
            assert app.state.display.status()["frame"] == "entity"
            page = httpx.get(url + "/chronicle", params={"frame": "entity"}).text
            assert "Only the lives of frame entity: 1 life." in page and "entity (e2e2e2e2)" in page
