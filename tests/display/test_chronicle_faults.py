"""The chronicle when things go wrong: failed commits, a full volume (a real one), rows an older version
wrote badly, exports nobody reads, and Docker's word about a life that was not alive."""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
import struct
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from display.chronicle import Chronicle, chronicle_router, render
from display.chronicle import store as store_module
from display.chronicle.store import mark_cause
from display.core.causes import DOCKER, OOM, PROBABLE_OOM, UNKNOWN, VITALS, Death
from display_helpers import CHRONICLE_V1_SCHEMA, free_port, wait_for

MiB = 2**20
LIMIT = 512 * MiB


def birth(life: str, born_at: float | None = None) -> dict:
    return {"life": life, "born_at": born_at or time.time(), "model": "m", "prompt": "p", "limit_bytes": LIMIT}


def token(life: str, seq: int, pad: int = 0) -> dict:
    return {"life": life, "seq": seq, "text": f" {life}{seq}" + "." * pad}


class Failing:
    """The chronicle's writer connection, with chosen statements made to fail, and a record of which did."""

    def __init__(self, conn: sqlite3.Connection, fail_commits: int = 0) -> None:
        self.conn = conn
        self.fail_commits = fail_commits
        self.raised: list[str] = []

    def execute(self, sql: str, *args):
        if sql == "COMMIT" and self.fail_commits > 0:
            self.fail_commits -= 1
            self.raised.append(sql)
            raise sqlite3.OperationalError("disk I/O error (injected at COMMIT)")
        try:
            return self.conn.execute(sql, *args)
        except sqlite3.Error:
            self.raised.append(sql.split()[0])
            raise

    def __getattr__(self, name):
        return getattr(self.conn, name)


def test_a_failed_birth_commit_changes_nothing_in_memory_and_leaves_no_ghost(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "RETRY_FIRST_S", 0.0)
    c = Chronicle(tmp_path / "chronicle.db", keep_lives=100, max_bytes=0)
    failing = Failing(c._conn, fail_commits=1)
    c._conn = failing
    c.on_birth(birth("lost"))
    assert failing.raised == ["COMMIT"]
    assert (c._open, c._current, c.pending, c.failing) == ({}, None, 1, True)  # memory as before the birth
    for seq in range(3):
        c.on_token(token("lost", seq))
    c.on_birth(birth("next"))
    for seq in range(3):
        c.on_token(token("next", seq))
    lost, following = c.lives()
    assert (lost["life"], lost["number"], lost["tokens"], lost["alive"]) == ("lost", 1, 3, False)
    assert (following["life"], following["number"], following["tokens"]) == ("next", 2, 3)
    assert c.life("lost")["text"] == " lost0 lost1 lost2"  # written late, in order, nothing lost
    assert c.life("next")["text"] == " next0 next1 next2"  # its own tokens from seq 0, none inherited
    assert (c.pending, c.failing, c.late) == (0, False, 2)  # the birth, written with the first token after it
    c.close()


def test_docker_s_oom_marks_only_a_life_alive_at_that_moment(tmp_path):
    c = Chronicle(tmp_path / "chronicle.db", keep_lives=100, max_bytes=0)
    c.on_birth(birth("a1", born_at=time.time() - 60))
    c.on_token(token("a1", 0))
    c.on_death(Death("a1", PROBABLE_OOM, VITALS))
    seen = time.time()
    # the next mind is killed while loading, before its birth reached the display: no life was alive
    assert mark_cause(c.path, OOM, DOCKER, at=seen + 3.0) is None
    assert (c.lives()[0]["cause"], c.lives()[0]["cause_source"]) == (PROBABLE_OOM, VITALS)
    assert mark_cause(c.path, OOM, DOCKER, at=seen - 0.01) == "a1"  # the kill the display saw as a break
    assert c.lives()[0]["cause_words"] == "oom, confirmed by Docker"
    assert mark_cause(c.path, OOM, DOCKER, at=seen - 3600) is None  # before it was born
    c.on_birth(birth("b2"))
    assert mark_cause(c.path, OOM, DOCKER) == "b2"  # alive now
    assert mark_cause(c.path, OOM, DOCKER, at=time.time() + 3600) is None  # no word from it for an hour
    c.close()


def test_rows_an_older_version_wrote_badly_are_repaired_and_never_fatal(tmp_path):
    path = tmp_path / "chronicle.db"
    with sqlite3.connect(path) as db:  # what version 1 stored when it took any value from the stream
        db.executescript(CHRONICLE_V1_SCHEMA)
        db.execute(
            "INSERT INTO lives (life, born_at, died_at, last_event_at, tokens, max_seq, cause, cause_source) "
            "VALUES ('old', 1000.0, 1100.0, 1100.0, 2, 1, 'oom', 'vitals')"
        )
        db.execute(
            "INSERT INTO lives (life, born_at, last_event_at, limit_bytes, last_memory_bytes, "
            "peak_memory_bytes, last_tokens_left, tokens, max_seq) "
            "VALUES ('bad', 'yesterday', 1200.0, 'lots', 'lots', X'00ff', 'many', 'two', 'x')"
        )
        db.executemany(
            "INSERT INTO tokens VALUES (?, ?, ?)", [(1, 0, "I "), (1, 1, "was."), (2, 0, b"\xffbytes "), (2, 1, 12)]
        )
    c = Chronicle(path, keep_lives=100, max_bytes=0)
    old, bad = c.lives()
    assert (old["cause"], old["cause_words"]) == (PROBABLE_OOM, "probable oom (memory near its limit)")
    assert (bad["born_at"], bad["limit_bytes"], bad["peak_memory_bytes"], bad["tokens"]) == (1200.0, None, None, 2)
    assert c.life("bad")["text"] == "\ufffdbytes 12"
    c.on_birth(birth("new"))  # closes "bad", judging its (repaired) last vitals: no guess from "lots"
    assert [(s["life"], s["alive"], s["cause"]) for s in c.lives()] == [
        ("old", False, PROBABLE_OOM),
        ("bad", False, UNKNOWN),
        ("new", True, None),
    ]
    app = FastAPI()
    app.include_router(chronicle_router(c))
    with served(app) as url:
        assert httpx.get(url + "/chronicle").status_code == 200
        assert len(httpx.get(url + "/chronicle/export.jsonl").text.splitlines()) == 3
    c.close()


# --- exports that pin nothing -------------------------------------------------------------------


class served:
    def __init__(self, app) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))

    def __enter__(self) -> str:
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, what="uvicorn")
        return f"http://127.0.0.1:{self.server.config.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def wal_frames(db: Path) -> int:
    """Frames in the WAL now: mxFrame of the wal-index header (https://sqlite.org/walformat.html)."""
    return struct.unpack("=I", db.with_name(db.name + "-shm").read_bytes()[16:20])[0]


def stalled_export(url: str) -> socket.socket:
    """A client that asks for the whole chronicle, reads a little, then stops reading."""
    port = int(url.rsplit(":", 1)[1])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /chronicle/export.jsonl HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    return sock


def test_an_export_nobody_reads_holds_no_snapshot_so_the_wal_stays_small(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "CHECKPOINT_EVERY_S", 0.05)
    c = Chronicle(tmp_path / "chronicle.db", keep_lives=100, max_bytes=0)
    c.on_birth(birth("big"))
    for seq in range(3000):  # ~12 MB of text: far more than the sockets buffer
        c.on_token(token("big", seq, pad=4000))
    seq = 3000
    while wal_frames(c.path) > 50:  # the checkpointer catches up and the WAL starts afresh
        c.on_token(token("big", seq))
        seq += 1
        time.sleep(0.02)
    app = FastAPI()
    app.include_router(chronicle_router(c, send_timeout_s=120))
    with served(app) as url:
        sock = stalled_export(url)
        try:
            time.sleep(0.5)  # the server fills the socket buffers and waits for the client
            for _ in range(3000):  # thousands of tokens while the export is held open
                c.on_token(token("big", seq))
                seq += 1
            grown = wal_frames(c.path)
            # A reader holding a snapshot keeps the WAL from starting afresh: it would only grow, by a
            # frame or more per token. Read in pages, the export holds none: the WAL starts afresh.
            deadline = time.monotonic() + 15
            while wal_frames(c.path) > 50:
                assert time.monotonic() < deadline, f"the WAL stayed at {wal_frames(c.path)} frames ({grown} grown)"
                c.on_token(token("big", seq))
                seq += 1
                time.sleep(0.02)
            sock.setblocking(False)
            assert sock.recv(1), "the export is still held open, unread"
        finally:
            sock.close()
    assert c.life("big")["tokens"] == seq
    c.close()


def test_an_export_whose_client_stops_reading_is_cut_off_after_the_timeout(tmp_path):
    c = Chronicle(tmp_path / "chronicle.db", keep_lives=100, max_bytes=0)
    c.on_birth(birth("big"))
    for seq in range(3000):
        c.on_token(token("big", seq, pad=4000))
    full = sum(len(chunk.encode()) for chunk in render.export_jsonl(c.lives_with_text()))
    app = FastAPI()
    app.include_router(chronicle_router(c, send_timeout_s=1.0))
    with served(app) as url:
        sock = stalled_export(url)
        time.sleep(3.0)  # well past the timeout
        sock.settimeout(10)
        got, deadline = 0, time.monotonic() + 10
        while time.monotonic() < deadline:
            data = sock.recv(1 << 16)
            if not data:
                break  # the server closed the connection
            got += len(data)
        else:
            pytest.fail("the stalled export was never cut off")
        sock.close()
    assert got < full / 2
    c.close()


# --- a real full volume ----------------------------------------------------------------------------


@pytest.fixture
def small_volume(tmp_path):
    """A real 2 MiB tmpfs mounted for the test: its writes fail with ENOSPC like a full SD card's."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "volume"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(volume: Path) -> Path:
    """Fill the volume to the brim; returns the file that does it."""
    filler = volume / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


@pytest.mark.mount
def test_a_full_volume_at_commit_loses_nothing_acknowledged_and_recording_resumes_by_itself(small_volume, monkeypatch):
    monkeypatch.setattr(store_module, "CHECKPOINT_EVERY_S", 0.05)
    c = Chronicle(small_volume / "chronicle.db", keep_lives=100, max_bytes=0)
    failing = Failing(c._conn)
    c._conn = failing
    c.on_birth(birth("full"))
    seq, acknowledged = 0, 0
    for _ in range(200):
        c.on_token(token("full", seq, pad=60))
        seq += 1
    acknowledged = seq
    filler = fill(small_volume)
    while not c.failing:  # think on until a commit meets the full volume
        assert seq < 100_000, "the volume never filled"
        c.on_token(token("full", seq, pad=60))
        seq += 1
        if not c.failing:
            acknowledged = seq
    assert "COMMIT" in failing.raised  # the statement that met the full volume
    with sqlite3.connect(f"file:{c.path}?mode=ro", uri=True) as db:  # acknowledged = committed = on disk
        stored = {r[0] for r in db.execute("SELECT seq FROM tokens")}
    assert set(range(acknowledged)) <= stored
    for _ in range(300):  # the life goes on while the volume is full: its tokens wait in memory
        c.on_token(token("full", seq, pad=60))
        seq += 1
    assert c.failing and c.pending >= 300
    filler.unlink()  # space returns; no new event comes: the background thread catches up alone
    wait_for(lambda: not c.failing and c.pending == 0, timeout=20, what="recording to resume by itself")
    assert c.life("full")["text"] == "".join(token("full", s, pad=60)["text"] for s in range(seq))
    assert c.late >= 300
    c.close()


@pytest.mark.mount
def test_the_display_on_a_full_volume_says_degraded_then_recovers_with_every_word(small_volume):
    from display.app import create_app
    from display_helpers import FakeMind, display_settings, serve, steady_life

    with FakeMind(steady_life("sd", 0.005)) as mind:
        app = create_app(display_settings(small_volume, mind.url), panel=None)
        with serve(app) as url:
            chronicle = app.state.chronicle
            wait_for(lambda: chronicle.lives() and chronicle.lives()[0]["tokens"] > 50, what="tokens chronicled")
            filler = fill(small_volume)
            wait_for(lambda: httpx.get(url + "/health").status_code == 503, timeout=30, what="degraded")
            assert httpx.get(url + "/health").json()["problems"] == ["the chronicle is not recording"]
            filler.unlink()
            wait_for(lambda: httpx.get(url + "/health").status_code == 200, timeout=30, what="healthy again")
            seen = app.state.display.last_seq
            wait_for(lambda: chronicle.life("sd")["tokens"] > seen + 1, what="every token up to now")
            words = chronicle.life("sd")["text"].split()
            assert words == [f"word{i}" for i in range(len(words))] and len(words) > seen + 1  # gapless
            assert chronicle.late > 0
