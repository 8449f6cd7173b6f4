"""The chronicle's store: every life of the mind in one SQLite file on the display's volume.

Write policy: WAL journal, ``synchronous=NORMAL``, one transaction per event. A committed transaction
is in the WAL file (the OS page cache) when ``on_token`` returns, so a SIGKILL of the display at any
later moment loses nothing already received; only a power cut can drop the last transactions since the
previous checkpoint, and never corrupts the file. Token rows are keyed by ``(life, seq)``: a replay
after a reconnect is ignored, and a life cut mid-write keeps every token committed before the cut.

A token's transaction writes only its row (1 KiB pages: ~1.3 KB of WAL per token, against ~8.5 KB with
4 KiB pages and the life's row rewritten each time); the life's counters and last sign of life are
flushed every FLUSH_EVERY_S, on vitals and on death, and recounted from the token rows after a kill.
So a death time recorded after the display itself was killed is exact to within FLUSH_EVERY_S.

The writer connection is used by the subscriber methods (on the display's event loop); every query
opens its own short-lived connection, so the web view can read from worker threads while the writer
goes on (WAL readers see a consistent snapshot and never block it).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from display.chronicle.causes import INFERRED, infer_cause, outranks

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# Retention is checked on every new life and every this many stored tokens (a life can be long).
RETENTION_EVERY_TOKENS = 4096
# Tokens read per batch when a life's text is assembled or streamed.
READ_BATCH = 1024
# A life's counters (tokens, last sign of life) reach its row at least this often while it thinks.
FLUSH_EVERY_S = 2.0
# Seconds between checkpoints by the checkpointer thread.
CHECKPOINT_EVERY_S = 5.0
# Passes per checkpoint to catch up with a writer that goes on meanwhile.
CHECKPOINT_TRIES = 20
# Page size of a new file: a commit appends whole pages to the WAL, so this is what a token writes.
PAGE_SIZE = 1024
# Upper bound of the WAL file between checkpoints, so the volume holds database + a small WAL.
WAL_SIZE_LIMIT = 4 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lives (
    number INTEGER PRIMARY KEY AUTOINCREMENT,  -- life number, never reused
    life TEXT NOT NULL UNIQUE,                 -- the mind's hex id
    born_at REAL NOT NULL,                     -- Unix seconds (the mind's clock)
    died_at REAL,                              -- NULL while the life is open
    last_event_at REAL NOT NULL,               -- display's clock: last sign of life
    model TEXT,
    prompt TEXT,
    limit_bytes INTEGER,                       -- NULL: no memory limit in force
    peak_memory_bytes INTEGER,
    tokens INTEGER NOT NULL DEFAULT 0,         -- distinct tokens stored
    max_seq INTEGER NOT NULL DEFAULT -1,       -- tokens - (max_seq + 1) < 0: some were never received
    last_memory_bytes INTEGER,                 -- the last vitals, to judge the cause of death
    last_tokens_left INTEGER,
    last_vitals_tokens INTEGER,
    cause TEXT,
    cause_source TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
    number INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (number, seq)
) WITHOUT ROWID;
"""

# An open life's counters in its row lag by up to FLUSH_EVERY_S: count its token rows instead.
_SUMMARY_COLUMNS = (
    "number, life, born_at, died_at, last_event_at, model, limit_bytes, peak_memory_bytes, cause, cause_source, "
    "CASE WHEN died_at IS NULL THEN (SELECT COUNT(*) FROM tokens t WHERE t.number = lives.number) "
    "ELSE tokens END AS tokens, "
    "CASE WHEN died_at IS NULL THEN (SELECT COALESCE(MAX(seq), -1) FROM tokens t WHERE t.number = lives.number) "
    "ELSE max_seq END AS max_seq"
)


def _summary(row: sqlite3.Row, now: float) -> dict:
    """A life as the web view and the exports show it (no text, no prompt)."""
    alive = row["died_at"] is None
    end = now if alive else row["died_at"]
    return {
        "number": row["number"],
        "life": row["life"],
        "born_at": row["born_at"],
        "died_at": row["died_at"],
        "alive": alive,
        "last_event_at": row["last_event_at"],
        "lifespan_s": max(0.0, end - row["born_at"]),
        "tokens": row["tokens"],
        "missing_tokens": max(0, row["max_seq"] + 1 - row["tokens"]),
        "model": row["model"],
        "limit_bytes": row["limit_bytes"],
        "peak_memory_bytes": row["peak_memory_bytes"],
        "cause": row["cause"],
        "cause_source": row["cause_source"],
    }


def _connect(path: Path) -> sqlite3.Connection:
    # check_same_thread=False: the display may build the chronicle on one thread and run its loop on
    # another, and a streamed export is iterated from worker threads one step at a time.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=2.0)
    conn.row_factory = sqlite3.Row
    return conn


def _set_cause(conn: sqlite3.Connection, number: int, cause: str, source: str) -> bool:
    row = conn.execute("SELECT cause_source FROM lives WHERE number = ?", (number,)).fetchone()
    if row is None or not outranks(source, row["cause_source"]):
        return False
    conn.execute(
        "UPDATE lives SET cause = ?, cause_source = ? WHERE number = ?", (cause, source, number)
    )
    return True


def mark_cause(path: Path, cause: str, source: str, life: str | None = None, at: float | None = None) -> str | None:
    """Record an externally known cause of death in the chronicle at ``path`` from another process.

    ``life`` names the life; without it, the life that was alive at Unix time ``at`` (default: now),
    i.e. the newest life born at or before it. Returns the life id marked, or None. For a script that
    watches ``docker events`` (it knows the time of the ``oom`` event, not the mind's life id).
    """
    conn = _connect(Path(path))
    try:
        conn.execute("BEGIN IMMEDIATE")
        if life is not None:
            row = conn.execute("SELECT number, life FROM lives WHERE life = ?", (life,)).fetchone()
        else:
            row = conn.execute(
                "SELECT number, life FROM lives WHERE born_at <= ? ORDER BY number DESC LIMIT 1",
                (time.time() if at is None else at,),
            ).fetchone()
        marked = row is not None and _set_cause(conn, row["number"], cause, source)
        conn.execute("COMMIT")
        return row["life"] if marked else None
    finally:
        conn.close()


@dataclass
class _Progress:
    """What the writer knows of an open life between flushes of its ``lives`` row."""

    number: int
    tokens: int
    max_seq: int
    last_event_at: float
    flushed_at: float


class Chronicle:
    """A life subscriber that persists every life: births, tokens, vitals, deaths and their causes.

    ``keep_lives`` and ``max_bytes`` bound the store (a value <= 0 disables that bound): the oldest
    whole lives are deleted and the file is shrunk; the life being lived is never deleted.
    """

    def __init__(self, path: Path, keep_lives: int, max_bytes: int) -> None:
        self.path = Path(path)
        self.keep_lives = keep_lives
        self.max_bytes = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._open: dict[str, _Progress] = {}  # life id -> progress, for lives this process wrote to
        self._current: str | None = None
        self._since_retention = 0
        self._failures = 0
        self._conn = _connect(self.path)
        self._open_schema()
        self.enforce_retention()
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="chronicle-checkpoint", daemon=True)
        self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        """Every CHECKPOINT_EVERY_S, move the WAL into the database file: the fsyncs happen here.

        This also bounds what a power cut can take (synchronous=NORMAL) to about that many seconds.
        """
        conn = _connect(self.path)
        try:
            while not self._stop.wait(CHECKPOINT_EVERY_S):
                try:
                    # The writer starts the WAL afresh only after a checkpoint that caught up with it;
                    # tokens committed while one runs leave a tail, so copy the tail again (it is short).
                    for _ in range(CHECKPOINT_TRIES):
                        _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        if copied >= frames or self._stop.wait(0.002):
                            break
                except sqlite3.Error:
                    log.exception("chronicle: checkpoint failed")
        finally:
            conn.close()

    # --- set-up -------------------------------------------------------------------------------

    def _open_schema(self) -> None:
        conn = self._conn
        # Both only act on a new, empty file. Small pages: each commit appends whole pages to the WAL,
        # so the page size is the write cost of a token (the SD card wears). auto_vacuum lets
        # retention shrink the file.
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        # Checkpoints (copy the WAL into the file, with fsyncs) run in the checkpointer thread, off the
        # event loop; the writer checkpoints itself only if that thread falls far behind.
        conn.execute(f"PRAGMA wal_autocheckpoint = {4 * WAL_SIZE_LIMIT // PAGE_SIZE}")
        conn.executescript(_SCHEMA)
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            # A file made without it: convert once (VACUUM rewrites the file).
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("VACUUM")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # --- the life subscriber ------------------------------------------------------------------

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One transaction; a failure is logged, never raised into the display's fan-out."""
        full = False
        with self._lock:
            try:
                self._conn.execute("BEGIN")
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if not isinstance(exc, sqlite3.Error):
                    raise
                # A full or failing volume must not stop the wall: log (sparingly) and go on.
                self._failures += 1
                if self._failures == 1 or self._failures % 1000 == 0:
                    log.exception("chronicle: %s not recorded (%d failures so far)", what, self._failures)
                full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        if full:
            # The volume is full: give up the oldest life so that the one being lived goes on.
            self.enforce_retention(make_room=True)

    @staticmethod
    def _counted(conn: sqlite3.Connection, number: int, last_event_at: float) -> _Progress:
        """A life's progress from its stored tokens (its ``lives`` row may lag after a kill)."""
        tokens, max_seq = conn.execute(
            "SELECT COUNT(*), COALESCE(MAX(seq), -1) FROM tokens WHERE number = ?", (number,)
        ).fetchone()
        return _Progress(number, tokens, max_seq, last_event_at, flushed_at=0.0)

    def _progress(self, conn: sqlite3.Connection, life: str, now: float) -> _Progress:
        """The open life's progress; a life never born before this process saw it is recorded now."""
        progress = self._open.get(life)
        if progress is not None:
            return progress
        row = conn.execute("SELECT number, last_event_at, died_at FROM lives WHERE life = ?", (life,)).fetchone()
        if row is None:
            log.warning("chronicle: event of life %s before its birth; recording it from now", life)
            number = conn.execute(
                "INSERT INTO lives (life, born_at, last_event_at) VALUES (?, ?, ?)", (life, now, now)
            ).lastrowid
            progress = _Progress(number, 0, -1, now, now)
        else:
            progress = self._counted(conn, row["number"], row["last_event_at"])
            if row["died_at"] is not None:
                # The stream broke but the same life went on (the display does not announce a second
                # birth of the life it shows): it was not a death.
                self._reopen(conn, row["number"])
                log.info("chronicle: life %d (%s) resumed after a broken stream", row["number"], life)
        self._open[life] = progress
        return progress

    @staticmethod
    def _reopen(conn: sqlite3.Connection, number: int) -> None:
        conn.execute("UPDATE lives SET died_at = NULL WHERE number = ?", (number,))
        conn.execute(
            "UPDATE lives SET cause = NULL, cause_source = NULL WHERE number = ? AND cause_source = ?",
            (number, INFERRED),
        )

    @staticmethod
    def _flush(conn: sqlite3.Connection, p: _Progress, now: float) -> None:
        conn.execute(
            "UPDATE lives SET tokens = ?, max_seq = ?, last_event_at = ? WHERE number = ?",
            (p.tokens, p.max_seq, p.last_event_at, p.number),
        )
        p.flushed_at = now

    def on_birth(self, birth: dict) -> None:
        life = str(birth["life"])
        now = time.time()
        with self._write("birth") as conn:
            row = conn.execute("SELECT number, died_at FROM lives WHERE life = ?", (life,)).fetchone()
            if row is None:
                number = conn.execute(
                    "INSERT INTO lives (life, born_at, last_event_at, model, prompt, limit_bytes) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (life, birth.get("born_at") or now, now, birth.get("model"), birth.get("prompt"),
                     birth.get("limit_bytes")),
                ).lastrowid
                self._open[life] = _Progress(number, 0, -1, now, now)
                log.info("chronicle: life %d (%s) born", number, life)
            else:
                # The display reconnected (or restarted) in the middle of this life: it continues.
                number = row["number"]
                conn.execute(
                    "UPDATE lives SET model = COALESCE(?, model), prompt = COALESCE(?, prompt), "
                    "limit_bytes = COALESCE(?, limit_bytes) WHERE number = ?",
                    (birth.get("model"), birth.get("prompt"), birth.get("limit_bytes"), number),
                )
                if row["died_at"] is not None:
                    # It was closed when the stream broke, but it lives: forget the inferred cause.
                    self._reopen(conn, number)
                progress = self._open.get(life) or self._counted(conn, number, now)
                progress.last_event_at = now
                self._open[life] = progress
                self._flush(conn, progress, now)
                log.info("chronicle: life %d (%s) continues", number, life)
            # Any older life still open died while the display was away: close it at its last sign.
            for old in conn.execute(
                "SELECT number, life FROM lives WHERE died_at IS NULL AND number != ?", (number,)
            ).fetchall():
                self._close(conn, old["life"], now)
        self._current = life
        self.enforce_retention()

    def on_token(self, token: dict) -> None:
        life = str(token["life"])
        seq = int(token["seq"])
        text = str(token["text"])
        now = time.time()
        # Only the token row is written per token (one small page appended to the WAL); the life's
        # counters are flushed every FLUSH_EVERY_S, on vitals and on death, and recounted from the
        # token rows whenever they might lag.
        with self._write("token") as conn:
            progress = self._progress(conn, life, now)
            stored = conn.execute(
                "INSERT OR IGNORE INTO tokens (number, seq, text) VALUES (?, ?, ?)", (progress.number, seq, text)
            ).rowcount
            progress.last_event_at = now
            if stored:
                progress.tokens += 1
                progress.max_seq = max(progress.max_seq, seq)
            if now - progress.flushed_at >= FLUSH_EVERY_S:
                self._flush(conn, progress, now)
        self._since_retention += 1
        if self._since_retention >= RETENTION_EVERY_TOKENS:
            self.enforce_retention()

    def on_vitals(self, vitals: dict) -> None:
        life = str(vitals["life"])
        now = time.time()
        peak = max((v for v in (vitals.get("memory_bytes"), vitals.get("peak_memory_bytes")) if v is not None),
                   default=None)
        with self._write("vitals") as conn:
            progress = self._progress(conn, life, now)
            progress.last_event_at = now
            self._flush(conn, progress, now)
            conn.execute(
                "UPDATE lives SET limit_bytes = COALESCE(?, limit_bytes), "
                "peak_memory_bytes = MAX(COALESCE(peak_memory_bytes, 0), COALESCE(?, 0)), "
                "last_memory_bytes = ?, last_tokens_left = ?, last_vitals_tokens = ? WHERE number = ?",
                (vitals.get("limit_bytes"), peak, vitals.get("memory_bytes"),
                 vitals.get("tokens_left"), vitals.get("tokens"), progress.number),
            )

    def on_death(self, life: str | None) -> None:
        life = life if life is not None else self._current
        if life is None:
            return
        with self._write("death") as conn:
            self._close(conn, life, time.time())
        if life == self._current:
            self._current = None

    def _close(self, conn: sqlite3.Connection, life: str, now: float) -> None:
        """A death at the life's last sign of life, with the cause its last vitals support."""
        row = conn.execute(
            "SELECT number, last_event_at, died_at, last_memory_bytes, limit_bytes, last_tokens_left, "
            "last_vitals_tokens FROM lives WHERE life = ?", (life,)
        ).fetchone()
        if row is None or row["died_at"] is not None:
            return
        progress = self._open.pop(life, None) or self._counted(conn, row["number"], row["last_event_at"])
        self._flush(conn, progress, now)
        tokens_after = 0
        if row["last_vitals_tokens"] is not None:
            tokens_after = progress.max_seq + 1 - row["last_vitals_tokens"]
        cause = infer_cause(row["last_memory_bytes"], row["limit_bytes"], row["last_tokens_left"], tokens_after)
        conn.execute("UPDATE lives SET died_at = last_event_at WHERE number = ?", (progress.number,))
        _set_cause(conn, progress.number, cause, INFERRED)
        log.info("chronicle: life %d (%s) ended after %d tokens; cause %s", progress.number, life, progress.tokens, cause)

    def record_cause(self, life: str, cause: str, source: str) -> bool:
        """An explicit cause (e.g. ``"oom"`` from ``"docker"``); it outranks the inference from vitals."""
        marked = False
        with self._write("cause") as conn:
            row = conn.execute("SELECT number FROM lives WHERE life = ?", (life,)).fetchone()
            marked = row is not None and _set_cause(conn, row["number"], cause, source)
        return marked

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._checkpointer.join(10)
        with self._write("close") as conn:
            now = time.time()
            for progress in self._open.values():
                self._flush(conn, progress, now)
        with self._lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                log.exception("chronicle: checkpoint at close failed")
            self._conn.close()

    # --- retention ----------------------------------------------------------------------------

    def used_bytes(self) -> int:
        """Bytes of the database in use (pages not on the free list)."""
        conn = self._conn
        with self._lock:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            size = conn.execute("PRAGMA page_size").fetchone()[0]
        return (pages - free) * size

    def enforce_retention(self, make_room: bool = False) -> int:
        """Delete the oldest whole lives beyond the bounds (and one more if ``make_room``), then shrink
        the file. Returns the number of lives deleted."""
        self._since_retention = 0
        deleted = 0
        try:
            while True:
                with self._lock:
                    count, oldest, newest = self._conn.execute(
                        "SELECT COUNT(*), MIN(number), MAX(number) FROM lives").fetchone()
                if count <= 1:
                    break  # the newest life is kept whatever its size
                too_many = 0 < self.keep_lives < count
                too_big = self.max_bytes > 0 and self.used_bytes() > self.max_bytes
                if not (too_many or too_big or (make_room and not deleted)):
                    break
                with self._lock:
                    self._conn.execute("BEGIN")
                    self._conn.execute("DELETE FROM tokens WHERE number = ?", (oldest,))
                    self._conn.execute("DELETE FROM lives WHERE number = ?", (oldest,))
                    self._conn.execute("COMMIT")
                deleted += 1
            if deleted:
                with self._lock:
                    self._open = {k: p for k, p in self._open.items() if p.number > oldest}
                    # Give the freed pages back to the file system: the SD card is small.
                    # The pragma frees one page per step, and Python's execute() steps once:
                    # executescript() runs it to the end.
                    # The file shrinks at the next checkpoint (the checkpointer thread's: a checkpoint
                    # here could wait on a reader, e.g. an export being downloaded).
                    self._conn.executescript("PRAGMA incremental_vacuum;")
                log.info("chronicle: retention deleted %d old lives", deleted)
                if self.max_bytes > 0 and self.used_bytes() > self.max_bytes:
                    log.warning("chronicle: the current life alone exceeds max_bytes=%d", self.max_bytes)
        except sqlite3.Error:
            log.exception("chronicle: retention failed")
            with self._lock:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
        return deleted

    # --- queries (own connection each: safe from any thread) ------------------------------------

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        conn = _connect(self.path)
        try:
            conn.execute("PRAGMA query_only = 1")
            conn.execute("BEGIN")  # one snapshot for the whole query or export
            yield conn
        finally:
            conn.close()

    def lives(self) -> list[dict]:
        """Every life kept, oldest first, without text."""
        now = time.time()
        with self._reader() as conn:
            rows = conn.execute(f"SELECT {_SUMMARY_COLUMNS} FROM lives ORDER BY number").fetchall()
        return [_summary(r, now) for r in rows]

    def life(self, life: str) -> dict | None:
        """One life with its prompt and full text, or None."""
        with self._reader() as conn:
            row = conn.execute(f"SELECT {_SUMMARY_COLUMNS}, prompt FROM lives WHERE life = ?", (life,)).fetchone()
            if row is None:
                return None
            out = _summary(row, time.time())
            out["prompt"] = row["prompt"]
            out["text"] = "".join(self._text_chunks(conn, row["number"]))
        return out

    @staticmethod
    def _text_chunks(conn: sqlite3.Connection, number: int) -> Iterator[str]:
        cursor = conn.execute("SELECT text FROM tokens WHERE number = ? ORDER BY seq", (number,))
        while batch := cursor.fetchmany(READ_BATCH):
            yield "".join(r[0] for r in batch)

    def export_jsonl(self) -> Iterator[str]:
        """Every life as one JSON line (summary, prompt, text), streamed a batch of tokens at a time."""
        with self._reader() as conn:
            now = time.time()
            for row in conn.execute(f"SELECT {_SUMMARY_COLUMNS}, prompt FROM lives ORDER BY number").fetchall():
                head = _summary(row, now)
                head["prompt"] = row["prompt"]
                # The text is one JSON string written in pieces: JSON escapes each character alone.
                yield json.dumps(head, ensure_ascii=False)[:-1] + ', "text": "'
                for chunk in self._text_chunks(conn, row["number"]):
                    yield json.dumps(chunk, ensure_ascii=False)[1:-1]
                yield '"}\n'

    def export_text(self) -> Iterator[str]:
        """Every life as plain text: a header, then what it thought."""
        with self._reader() as conn:
            now = time.time()
            for row in conn.execute(f"SELECT {_SUMMARY_COLUMNS} FROM lives ORDER BY number").fetchall():
                s = _summary(row, now)
                yield describe(s) + "\n\n"
                yield from self._text_chunks(conn, row["number"])
                yield "\n\n"


def _utc(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _mib(n: int | None) -> str:
    return "none" if n is None else f"{n / 2**20:.0f} MiB"


def describe(s: dict) -> str:
    """A life's header as plain text."""
    end = "still alive" if s["alive"] else f"died {_utc(s['died_at'])}"
    cause = "-" if s["cause"] is None else f"{s['cause']} ({s['cause_source']})"
    missing = f", {s['missing_tokens']} never received" if s["missing_tokens"] else ""
    return (
        f"=== Life {s['number']} ({s['life']}) ===\n"
        f"born {_utc(s['born_at'])}, {end}, lived {s['lifespan_s'] / 60:.1f} min\n"
        f"{s['tokens']} tokens{missing}; cause of death: {cause}\n"
        f"model {s['model'] or '-'}; memory limit {_mib(s['limit_bytes'])}, peak {_mib(s['peak_memory_bytes'])}"
    )
