"""The chronicle's store: lives, tokens, replays, causes of death, retention and exports."""

from __future__ import annotations

import json
import math
import sqlite3
import struct
import time

import pytest

from display.chronicle import Chronicle, render
from display.chronicle import store as store_module
from display.chronicle.store import mark_cause
from display.core.causes import (
    DOCKER,
    MIND,
    OOM,
    PROBABLE_OOM,
    UNKNOWN,
    VITALS,
    Death,
    infer_cause,
    outranks,
    words,
)

MiB = 2**20
LIMIT = 512 * MiB


def birth(life: str, limit: int | None = LIMIT, born_at: float | None = None) -> dict:
    return {
        "life": life,
        "born_at": born_at or time.time(),
        "model": "gemma-3-270m",
        "prompt": "You are.",
        "limit_bytes": limit,
    }


def vitals(
    life: str,
    memory: int,
    tokens: int = 0,
    tokens_left: int | None = None,
    peak: int | None = None,
    limit: int | None = LIMIT,
) -> dict:
    return {
        "life": life,
        "born_at": 0,
        "tokens": tokens,
        "tokens_per_s": 40.0,
        "n_ctx": 512,
        "n_ctx_train": 32768,
        "memory_bytes": memory,
        "peak_memory_bytes": peak,
        "limit_bytes": limit,
        "limit_in_force": limit is not None,
        "tokens_left": tokens_left,
        "shifting": False,
    }


def died(life: str, cause: str = UNKNOWN, source: str = VITALS, **more) -> Death:
    return Death(life, cause, source, **more)


def think(chronicle: Chronicle, life: str, seqs, word: str = "w") -> None:
    for seq in seqs:
        chronicle.on_token({"life": life, "seq": seq, "text": f" {word}{seq}"})


@pytest.fixture
def chronicle(tmp_path):
    c = Chronicle(tmp_path / "chronicle.db", keep_lives=100, max_bytes=0)
    yield c
    c.close()


def test_a_birth_records_the_life_with_its_model_prompt_and_limit(chronicle):
    chronicle.on_birth(birth("a1", born_at=1000.0))
    [life] = chronicle.lives()
    assert (life["number"], life["life"], life["born_at"], life["alive"]) == (1, "a1", 1000.0, True)
    assert life["limit_bytes"] == LIMIT and life["model"] == "gemma-3-270m"
    assert chronicle.life("a1")["prompt"] == "You are."


def test_tokens_make_the_text_in_seq_order_whatever_the_arrival_order(chronicle):
    chronicle.on_birth(birth("a1"))
    think(chronicle, "a1", [0, 2, 1, 3])
    life = chronicle.life("a1")
    assert life["text"] == " w0 w1 w2 w3"
    assert life["tokens"] == 4 and life["missing_tokens"] == 0


def test_a_replayed_token_is_not_stored_twice(chronicle):
    chronicle.on_birth(birth("a1"))
    think(chronicle, "a1", range(5))
    think(chronicle, "a1", range(3, 8))  # a reconnect replays 3 and 4
    life = chronicle.life("a1")
    assert life["text"] == "".join(f" w{i}" for i in range(8))
    assert life["tokens"] == 8


def test_tokens_never_received_are_counted_as_missing(chronicle):
    chronicle.on_birth(birth("a1"))
    think(chronicle, "a1", [0, 1, 5])
    assert chronicle.life("a1")["missing_tokens"] == 3


def test_a_birth_of_a_recorded_life_continues_it_across_a_display_restart(tmp_path):
    path = tmp_path / "chronicle.db"
    first = Chronicle(path, keep_lives=100, max_bytes=0)
    first.on_birth(birth("a1"))
    think(first, "a1", range(3))
    first.close()
    second = Chronicle(path, keep_lives=100, max_bytes=0)
    second.on_birth(birth("a1"))
    think(second, "a1", range(2, 5))
    [life] = second.lives()
    assert life["number"] == 1 and life["alive"]
    assert second.life("a1")["text"] == " w0 w1 w2 w3 w4"
    second.close()


def test_a_broken_stream_then_the_same_life_reopens_it_and_forgets_the_inferred_cause(chronicle):
    chronicle.on_birth(birth("a1"))
    think(chronicle, "a1", range(3))
    chronicle.on_death(died("a1"))
    assert chronicle.lives()[0]["cause"] == UNKNOWN
    chronicle.on_birth(birth("a1"))  # a later display process hears its birth: it lives
    [life] = chronicle.lives()
    assert life["alive"] and life["cause"] is None and life["died_at"] is None


def test_a_death_is_dated_at_the_last_sign_of_life_with_the_cause_it_is_given(chronicle):
    chronicle.on_birth(birth("a1", born_at=time.time() - 60))
    think(chronicle, "a1", range(3))
    chronicle.on_vitals(vitals("a1", memory=300 * MiB, tokens=3, tokens_left=5000))
    last_event = chronicle.lives()[0]["last_event_at"]
    time.sleep(0.05)
    chronicle.on_death(died("a1", "failed", MIND, exit_code=70, detail="hung"))
    [life] = chronicle.lives()
    assert (life["cause"], life["cause_source"], life["exit_code"], life["cause_detail"]) == (
        "failed",
        MIND,
        70,
        "hung",
    )
    assert life["cause_words"] == "failed: hung (exit 70)"
    assert life["died_at"] == last_event and not life["alive"]
    assert 59 < life["lifespan_s"] < 120


def test_the_mind_s_count_of_tokens_shows_those_never_received(chronicle):
    chronicle.on_birth(birth("a1"))
    think(chronicle, "a1", range(10))
    chronicle.on_death(died("a1", "stopped", MIND, tokens=12))
    assert chronicle.lives()[0]["missing_tokens"] == 2


def away(tmp_path, *events, limit: int | None = LIMIT) -> dict:
    """A life lived while a display process wrote ``events``; that display stops, the mind dies, a new
    display process hears the next life's birth: the old life as it was then closed."""
    path = tmp_path / "chronicle.db"
    first = Chronicle(path, keep_lives=100, max_bytes=0)
    first.on_birth(birth("old", limit=limit))
    for event in events:
        event(first)
    first.close()
    second = Chronicle(path, keep_lives=100, max_bytes=0)
    second.on_birth(birth("new"))
    old = second.lives()[0]
    second.close()
    return old


def test_a_life_that_died_while_the_display_was_away_is_judged_by_its_last_vitals(tmp_path):
    at_limit = away(tmp_path / "1", lambda c: c.on_vitals(vitals("old", memory=int(0.95 * LIMIT), tokens_left=500)))
    assert (at_limit["cause"], at_limit["cause_source"]) == (PROBABLE_OOM, VITALS)

    def last_predicted_tokens(c):
        think(c, "old", range(100))
        c.on_vitals(vitals("old", memory=300 * MiB, tokens=100, tokens_left=70))
        think(c, "old", range(100, 160))  # 60 of the 70 predicted tokens came: 10 left

    assert away(tmp_path / "2", last_predicted_tokens)["cause"] == PROBABLE_OOM
    far = away(tmp_path / "3", lambda c: c.on_vitals(vitals("old", memory=300 * MiB, tokens_left=5000)))
    assert far["cause"] == UNKNOWN
    no_limit = away(
        tmp_path / "4",
        lambda c: c.on_vitals(vitals("old", memory=4000 * MiB, tokens_left=None, limit=None)),
        limit=None,
    )
    assert no_limit["cause"] == UNKNOWN


def test_a_new_birth_closes_a_life_that_died_while_the_display_was_away(tmp_path):
    path = tmp_path / "chronicle.db"
    first = Chronicle(path, keep_lives=100, max_bytes=0)
    first.on_birth(birth("old"))
    think(first, "old", range(4))
    first.on_vitals(vitals("old", memory=int(0.92 * LIMIT), tokens=4))
    last_event = first.lives()[0]["last_event_at"]
    first.close()  # the display is killed; the mind dies meanwhile; both come back
    second = Chronicle(path, keep_lives=100, max_bytes=0)
    second.on_birth(birth("new"))
    old, new = second.lives()
    assert (old["alive"], old["died_at"], old["cause"], old["tokens"]) == (False, last_event, PROBABLE_OOM, 4)
    assert new["alive"] and new["number"] == 2
    second.close()


def test_vitals_keep_the_peak_memory_and_update_the_limit(chronicle):
    chronicle.on_birth(birth("a1", limit=None))
    chronicle.on_vitals(vitals("a1", memory=100 * MiB, peak=150 * MiB, limit=None))
    chronicle.on_vitals(vitals("a1", memory=200 * MiB, peak=None, limit=LIMIT))
    chronicle.on_vitals(vitals("a1", memory=120 * MiB, peak=None, limit=None))
    [life] = chronicle.lives()
    assert life["peak_memory_bytes"] == 200 * MiB
    assert life["limit_bytes"] == LIMIT


def test_a_cause_reported_by_docker_outranks_the_inference_whenever_it_arrives(chronicle):
    chronicle.on_birth(birth("a1"))
    chronicle.on_death(died("a1"))
    assert chronicle.record_cause("a1", OOM, "docker")
    chronicle.on_birth(birth("b2"))
    assert chronicle.record_cause("b2", OOM, "docker")  # before the stream broke
    chronicle.on_death(died("b2"))  # the inference ("unknown") must not overwrite Docker's word
    chronicle.on_death(died("b2", "stopped", MIND))  # nor the mind's, announced after the fact
    causes = [(s["cause"], s["cause_source"]) for s in chronicle.lives()]
    assert causes == [(OOM, "docker"), (OOM, "docker")]
    assert not chronicle.record_cause("nobody", OOM, "docker")


def test_another_process_can_mark_the_life_alive_at_a_given_time(chronicle):
    chronicle.on_birth(birth("a1", born_at=1000.0))
    chronicle.on_birth(birth("b2", born_at=2000.0))
    assert mark_cause(chronicle.path, OOM, "docker", at=1500.0) == "a1"
    assert mark_cause(chronicle.path, OOM, "docker", life="b2") == "b2"
    assert mark_cause(chronicle.path, OOM, "docker", at=10.0) is None
    assert [s["cause_source"] for s in chronicle.lives()] == ["docker", "docker"]


def test_an_event_of_an_unborn_life_is_still_recorded(chronicle):
    think(chronicle, "ghost", range(2))
    assert chronicle.life("ghost")["text"] == " w0 w1"


def test_an_event_no_column_takes_is_dropped_and_counted_never_raised_or_retried(chronicle):
    chronicle.on_birth(birth("a1"))
    chronicle.on_token({"life": "a1", "text": "no seq"})
    chronicle.on_token({"life": "a1", "seq": 0, "text": "\ud800 a lone surrogate"})
    chronicle.on_token({"life": "a1", "seq": 1, "text": ["not", "text"]})
    think(chronicle, "a1", range(2, 4))
    assert chronicle.rejected == 3 and chronicle.pending == 0 and not chronicle.failing
    assert chronicle.life("a1")["text"] == " w2 w3"


def test_retention_keeps_the_newest_lives_and_never_reuses_a_number(tmp_path):
    c = Chronicle(tmp_path / "chronicle.db", keep_lives=3, max_bytes=0)
    for i in range(6):
        c.on_birth(birth(f"life{i}"))
        think(c, f"life{i}", range(10))
    assert [s["number"] for s in c.lives()] == [4, 5, 6]
    assert c.life("life0") is None
    c.on_birth(birth("life6"))
    assert [s["number"] for s in c.lives()] == [5, 6, 7]
    with sqlite3.connect(c.path) as raw:  # no orphan tokens of deleted lives
        assert raw.execute("SELECT COUNT(*) FROM tokens WHERE number < 5").fetchone()[0] == 0
    c.close()


def test_retention_by_size_deletes_old_lives_and_really_shrinks_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "CHECKPOINT_EVERY_S", 0.05)
    path = tmp_path / "chronicle.db"
    big = Chronicle(path, keep_lives=0, max_bytes=0)
    for i in range(8):
        big.on_birth(birth(f"life{i}"))
        think(big, f"life{i}", range(3000), word="x" * 40)
    big.close()
    size_before = path.stat().st_size
    assert size_before > 8 * 3000 * 40

    small = Chronicle(path, keep_lives=0, max_bytes=size_before // 4)
    kept = [s["life"] for s in small.lives()]
    assert 1 <= len(kept) < 8 and kept[-1] == "life7"
    assert small.used_bytes() <= size_before // 4
    deadline = time.monotonic() + 10
    while path.stat().st_size > size_before // 4:  # the background checkpoint truncates the file
        assert time.monotonic() < deadline, "the file never shrank while the chronicle was open"
        time.sleep(0.02)
    small.close()
    assert path.stat().st_size <= size_before // 4
    assert not path.with_name(path.name + "-wal").exists() or path.with_name(path.name + "-wal").stat().st_size == 0


def test_retention_runs_during_a_long_life_and_spares_the_life_being_lived(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "RETENTION_EVERY_TOKENS", 500)
    c = Chronicle(tmp_path / "chronicle.db", keep_lives=0, max_bytes=400_000)
    c.on_birth(birth("old"))
    think(c, "old", range(2000), word="y" * 40)
    c.on_birth(birth("long"))
    think(c, "long", range(12000), word="z" * 40)  # alone more than max_bytes
    assert [s["life"] for s in c.lives()] == ["long"]
    assert c.life("long")["tokens"] == 12000
    c.close()


def test_jsonl_export_round_trips_every_life_and_awkward_text(chronicle):
    awkward = ['"quoted"', "back\\slash", "new\nline", "tab\t", "ünïcödé ✨", "</script>", "\x00nul"]
    chronicle.on_birth(birth("a1"))
    for seq, text in enumerate(awkward):
        chronicle.on_token({"life": "a1", "seq": seq, "text": text})
    chronicle.on_death(died("a1"))
    chronicle.on_birth(birth("b2"))
    think(chronicle, "b2", range(store_module.READ_BATCH + 10))  # text spans several read batches
    lines = "".join(render.export_jsonl(chronicle.lives_with_text())).splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["text"] == "".join(awkward) and first["cause"] == UNKNOWN and first["prompt"] == "You are."
    assert second["text"] == chronicle.life("b2")["text"] and second["alive"]


def test_text_export_has_a_header_and_the_text_of_each_life(chronicle):
    chronicle.on_birth(birth("a1"))
    think(chronicle, "a1", range(3))
    chronicle.on_vitals(vitals("a1", memory=int(0.99 * LIMIT)))
    chronicle.on_death(died("a1", PROBABLE_OOM))
    text = "".join(render.export_text(chronicle.lives_with_text()))
    assert "=== Life 1 (a1) ===" in text
    assert "cause of death: probable oom (memory near its limit)" in text
    assert " w0 w1 w2" in text


def test_cause_rules_never_call_an_unannounced_end_more_than_a_probable_oom():
    assert infer_cause(math.ceil(0.9 * LIMIT), LIMIT, None) == PROBABLE_OOM
    assert infer_cause(int(0.89 * LIMIT), LIMIT, None) == UNKNOWN
    assert infer_cause(None, LIMIT, 16) == PROBABLE_OOM
    assert infer_cause(None, LIMIT, 100, tokens_after=90) == PROBABLE_OOM
    assert infer_cause(None, LIMIT, 100, tokens_after=10) == UNKNOWN
    # a death about one reading (27 tokens) sooner than the vitals said, a reading having come after them
    # (in CI one life under a limit ended at 1,074 tokens, the next at 1,100; the rule of 16 called the
    # first unknown)
    assert infer_cause(None, LIMIT, 60, tokens_after=34) == PROBABLE_OOM
    assert infer_cause(None, LIMIT, 100, tokens_after=34) == UNKNOWN
    assert infer_cause(10**12, None, 0) == UNKNOWN
    assert OOM not in {infer_cause(m, LIMIT, t) for m in (0, LIMIT, 2 * LIMIT) for t in (None, 0, 10**6)}
    # the outside witness outranks the mind, which outranks the display's inference; never the reverse
    assert outranks(DOCKER, VITALS) and outranks(DOCKER, None) and outranks(VITALS, VITALS)
    assert outranks(MIND, VITALS) and outranks(DOCKER, MIND) and outranks("the artist", MIND)
    assert not outranks(VITALS, DOCKER) and not outranks(VITALS, MIND) and not outranks(MIND, DOCKER)


def test_causes_in_words_say_how_they_are_known_and_repeat_nothing_else():
    assert words(OOM, DOCKER) == "oom, confirmed by Docker"
    assert words(OOM, MIND, detail="stall") == "oom (stall)"
    assert words(PROBABLE_OOM, VITALS) == "probable oom (memory near its limit)"
    assert words("stopped", MIND) == "stopped"
    assert words("failed", MIND, exit_code=70) == "failed (exit 70)"
    assert words("failed", MIND, exit_code=71, detail="hung") == "failed: hung (exit 71)"
    assert words(UNKNOWN, VITALS) == words(None) == "unknown"


def test_the_command_line_marks_a_death_reported_by_docker(chronicle, capsys):
    from display.chronicle.__main__ import main

    chronicle.on_birth(birth("a1", born_at=1000.0))
    chronicle.on_death(died("a1"))
    assert main(["record-cause", "--db", str(chronicle.path), "--at", "1200"]) == 0
    assert capsys.readouterr().out.strip() == "a1"
    assert (chronicle.lives()[0]["cause"], chronicle.lives()[0]["cause_source"]) == (OOM, "docker")
    assert main(["record-cause", "--db", str(chronicle.path), "--life", "nobody"]) == 1


def test_a_resume_reopens_the_life_told_dead_and_its_tokens_go_on(chronicle):
    # The display took the same life back after a broken stream: the death was not one.
    chronicle.on_birth(birth("a1"))
    think(chronicle, "a1", range(3))
    chronicle.on_death(died("a1"))
    chronicle.on_resume("a1")
    think(chronicle, "a1", range(3, 5))
    [life] = chronicle.lives()
    assert life["alive"] and life["cause"] is None and life["tokens"] == 5
    chronicle.on_death(died("a1"))
    assert chronicle.lives()[0]["cause"] == UNKNOWN


def _wal_frames(db_path) -> int:
    """Frames in the WAL now: mxFrame of the wal-index header (https://sqlite.org/walformat.html)."""
    header = db_path.with_name(db_path.name + "-shm").read_bytes()[:48]
    return struct.unpack("=I", header[16:20])[0]


def test_the_wal_is_checkpointed_in_the_background_and_starts_afresh(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "CHECKPOINT_EVERY_S", 0.05)
    c = Chronicle(tmp_path / "chronicle.db", keep_lives=100, max_bytes=0)
    c.on_birth(birth("a1"))
    think(c, "a1", range(500))
    assert _wal_frames(c.path) >= 500
    # A write after a complete checkpoint starts the WAL from its beginning again.
    seq = 500
    deadline = time.monotonic() + 10
    while _wal_frames(c.path) > 10:
        assert time.monotonic() < deadline, "the WAL never started afresh"
        time.sleep(0.02)
        think(c, "a1", [seq])
        seq += 1
    assert c.life("a1")["tokens"] == seq
    c.close()


def test_a_full_volume_costs_the_oldest_life_not_the_current_one(chronicle, caplog):
    for life in ("old", "older_than_now"):
        chronicle.on_birth(birth(life))
        think(chronicle, life, range(300), word="v" * 40)
    chronicle.on_birth(birth("now"))
    # The file may grow no further (as on a full SD card): SQLite answers SQLITE_FULL.
    pages = chronicle._conn.execute("PRAGMA page_count").fetchone()[0]
    chronicle._conn.execute(f"PRAGMA max_page_count = {pages}")
    think(chronicle, "now", range(400), word="n" * 40)  # never raises into the display
    assert "volume is full" in caplog.text
    assert [s["life"] for s in chronicle.lives()][-1] == "now"
    assert chronicle.life("old") is None  # given up to make room
    # the current life went on after the volume filled, and lost nothing
    assert chronicle.life("now")["text"] == "".join(f" {'n' * 40}{seq}" for seq in range(400))
