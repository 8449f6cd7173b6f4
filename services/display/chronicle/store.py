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

Transactions mean what they say: the in-memory state (which lives are open, their counters) changes
only once a transaction has committed. An event that cannot be written (a full or failing volume) waits
in memory, in order, with the time it arrived (at most MAX_PENDING tokens); the waiting events are
written as soon as the volume takes them again, by the next event or by the background thread, so
recording resumes by itself. An event that can never be written (a value no column takes) is dropped
and counted, never retried for ever and never raised into the display.

The writer connection is used by the subscriber methods (on the display's event loop) and, to catch
up, by the background thread; every query opens its own short-lived connection and reads in pages,
each its own short transaction, so a slow reader (an export to a client that stopped reading) holds
no snapshot and never keeps the WAL from being checkpointed.

Once a life is over, the background thread judges its words (display.core.judge): it reads the text on
a connection of its own and takes the writer only for the one UPDATE that keeps the numbers.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

from display.core import judge
from display.core.causes import OOM, PROBABLE_OOM, VITALS, Death, infer_cause, outranks, words

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
# Retention is checked on every new life and every this many stored tokens (a life can be long).
RETENTION_EVERY_TOKENS = 4096
# Tokens read per page when a life's text is assembled or streamed; lives per page of an export.
READ_BATCH = 1024
LIVES_PAGE = 64
# A life's counters (tokens, last sign of life) reach its row at least this often while it thinks.
FLUSH_EVERY_S = 2.0
# Seconds between checkpoints by the background thread.
CHECKPOINT_EVERY_S = 5.0
# Passes per checkpoint to catch up with a writer that goes on meanwhile.
CHECKPOINT_TRIES = 20
# Page size of a new file: a commit appends whole pages to the WAL, so this is what a token writes.
PAGE_SIZE = 1024
# Upper bound of the WAL file between checkpoints, so the volume holds database + a small WAL.
WAL_SIZE_LIMIT = 4 * 1024 * 1024
# Tokens kept in memory while the volume refuses writes: about 8 minutes at 40 tokens/s, a few MB.
MAX_PENDING = 20_000
# Waiting events written per transaction when catching up (the event loop waits for each).
WRITE_BATCH = 500
# After a failed write, the next try waits this long, doubling up to RETRY_MAX_S.
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 2.0
# How often the background thread looks for waiting events.
CATCH_UP_EVERY_S = 0.25
# A Docker event belongs to a life only if it came no later than this after the display saw the
# life end (the display sees a kill within milliseconds; a restarted mind takes over a second).
ALIVE_SLACK_S = 1.0
# An open life is taken for alive at a moment no later than this after its last recorded sign.
OPEN_SLACK_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lives (
    number INTEGER PRIMARY KEY AUTOINCREMENT,  -- life number, never reused
    life TEXT NOT NULL UNIQUE,                 -- the mind's id
    born_at REAL NOT NULL,                     -- Unix seconds (the mind's clock)
    died_at REAL,                              -- last sign of life; NULL while the life is open
    death_seen_at REAL,                        -- display's clock when it saw the end (the latest
                                               -- the death can have been)
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
    cause TEXT,                                -- display.core.causes: oom, probable oom, stopped, ...
    cause_source TEXT,                         -- how it is known: vitals, mind, docker
    exit_code INTEGER,                         -- the mind's, when it announced a failure
    cause_detail TEXT                          -- a word more: hung, stall, ...
);
CREATE TABLE IF NOT EXISTS tokens (
    number INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    at REAL,                                   -- display's clock when it arrived (NULL before version 3)
    PRIMARY KEY (number, seq)
) WITHOUT ROWID;
"""
_ADDED_IN_2 = {"death_seen_at": "REAL", "exit_code": "INTEGER", "cause_detail": "TEXT"}
# Version 3: the energy ledger, from the last vitals: the mind's CPU seconds and their joules (its power
# model), and the joules of the segments the wall lit for the life (display.core.energy), all estimates;
# (#10) steps at which the mind would have ended its thought, readings it was given (sense events: the
# system's words, never stored as thought), and text the wall skipped (its backlog overflowed);
# (#16) what a life was (the mind's birth event), and what its words were like (display.core.judge:
# judged once the life is over, by the background thread; NULL until then).
_ADDED_IN_3 = {
    "cpu_seconds": "REAL",
    "cpu_joules": "REAL",
    "light_joules": "REAL",
    "stops_refused": "INTEGER",
    "senses": "INTEGER",
    "trimmed_chars": "INTEGER",
    "first_trim_seq": "INTEGER",
    "frame": "TEXT",  # the prompt frame's name
    "frame_sha256": "TEXT",
    "frame_text": "TEXT",  # the frame as filled in for this life
    "sampler": "TEXT",  # JSON object of the sampler's settings
    "seed": "INTEGER",
    "judged_tokens": "INTEGER",  # the judge's word tokens in the whole life; NULL: not judged yet
    "words_distinct": "REAL",  # distinct-word ratio (per 500 judge tokens) of the whole life
    "words_first_person": "REAL",  # share of paragraphs in the first person about the speaker
    "words_markup": "REAL",  # markup and URLs per 1,000 judge tokens
    "words_repeat_chars": "INTEGER",  # length of the longest sentence said twice verbatim (0: none)
    "words_distinct_first": "REAL",  # the same two numbers for the first and the last
    "words_distinct_last": "REAL",  # JUDGE_EDGE_TOKENS model tokens (NULL for a life too short
    "words_first_person_first": "REAL",  # to have two apart)
    "words_first_person_last": "REAL",
}
# How a life's words change: its first and last this many model tokens are judged apart.
JUDGE_EDGE_TOKENS = 500
# Lives judged per pass of the background thread (each reads a whole life's text).
JUDGE_PER_PASS = 4
# After a failed judgement (a full volume, say) the background thread waits this long to try again.
JUDGE_RETRY_S = 30.0
# Columns added to the tokens table: when each token reached the display, so a replay paces it as the wall did.
_TOKENS_ADDED = {"at": "REAL"}

# What the judge says of a life's words (display.core.judge): numbers, NULL until it is judged.
_WORDS = (
    "words_distinct",
    "words_first_person",
    "words_markup",
    "words_distinct_first",
    "words_distinct_last",
    "words_first_person_first",
    "words_first_person_last",
)

# An older version (or a hand) may have stored anything: each column holds its kind or is repaired.
_NUMBER = "(typeof({c}) IN ('integer', 'real') AND {c} BETWEEN -1e15 AND 1e15)"
_REPAIRS = [
    "UPDATE lives SET last_event_at = CASE WHEN " + _NUMBER.format(c="born_at") + " THEN born_at ELSE 0 END "
    "WHERE NOT " + _NUMBER.format(c="last_event_at"),
    "UPDATE lives SET born_at = last_event_at WHERE NOT " + _NUMBER.format(c="born_at"),
    "UPDATE lives SET died_at = last_event_at WHERE died_at IS NOT NULL AND NOT " + _NUMBER.format(c="died_at"),
    "UPDATE lives SET death_seen_at = NULL WHERE death_seen_at IS NOT NULL AND NOT "
    + _NUMBER.format(c="death_seen_at"),
    *(
        f"UPDATE lives SET {c} = NULL WHERE {c} IS NOT NULL AND NOT (typeof({c}) = 'integer' AND {c} >= 0)"
        for c in (
            "limit_bytes",
            "peak_memory_bytes",
            "last_memory_bytes",
            "last_tokens_left",
            "last_vitals_tokens",
            "exit_code",
            "stops_refused",
            "senses",
            "trimmed_chars",
            "first_trim_seq",
            "judged_tokens",
            "words_repeat_chars",
        )
    ),
    "UPDATE lives SET seed = NULL WHERE seed IS NOT NULL AND typeof(seed) != 'integer'",
    *(f"UPDATE lives SET {c} = NULL WHERE {c} IS NOT NULL AND NOT {_NUMBER.format(c=c)}" for c in _WORDS),
    *(
        f"UPDATE lives SET {c} = NULL WHERE {c} IS NOT NULL AND NOT " + _NUMBER.format(c=c)
        for c in ("cpu_seconds", "cpu_joules", "light_joules")
    ),
    "UPDATE lives SET tokens = (SELECT COUNT(*) FROM tokens t WHERE t.number = lives.number), "
    "max_seq = (SELECT COALESCE(MAX(seq), -1) FROM tokens t WHERE t.number = lives.number) "
    "WHERE typeof(tokens) != 'integer' OR typeof(max_seq) != 'integer'",
    *(
        f"UPDATE lives SET {c} = NULL WHERE {c} IS NOT NULL AND typeof({c}) != 'text'"
        for c in ("model", "prompt", "cause", "cause_source", "cause_detail", "frame", "frame_sha256", "frame_text")
    ),
    "UPDATE lives SET life = 'life-' || number WHERE typeof(life) != 'text'",
]

# An open life's counters in its row lag by up to FLUSH_EVERY_S: count its token rows instead.
_SUMMARY_COLUMNS = (
    "number, life, born_at, died_at, last_event_at, model, limit_bytes, peak_memory_bytes, "
    "cause, cause_source, exit_code, cause_detail, cpu_seconds, cpu_joules, light_joules, "
    "stops_refused, senses, trimmed_chars, first_trim_seq, "
    "frame, frame_sha256, sampler, seed, judged_tokens, words_distinct, words_first_person, "
    "words_markup, words_repeat_chars, words_distinct_first, words_distinct_last, words_first_person_first, "
    "words_first_person_last, "
    "CASE WHEN died_at IS NULL THEN (SELECT COUNT(*) FROM tokens t WHERE t.number = lives.number) "
    "ELSE tokens END AS tokens, "
    "CASE WHEN died_at IS NULL THEN (SELECT COALESCE(MAX(seq), -1) FROM tokens t WHERE t.number = lives.number) "
    "ELSE max_seq END AS max_seq"
)


def _num(value) -> float | None:
    """A stored number, or None for anything else (a value from an older version, say)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return None


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value) -> str | None:
    return value if isinstance(value, str) else None


def _sampler(value) -> dict | None:
    """The stored sampler settings, or None for anything that is not a JSON object."""
    try:
        out = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return out if isinstance(out, dict) else None


def _summary(row: sqlite3.Row, now: float) -> dict:
    """A life as the web view and the exports show it (no text, no prompt); never fails on odd values."""
    alive = row["died_at"] is None
    born = _num(row["born_at"]) or 0.0
    died = _num(row["died_at"])
    end = now if alive or died is None else died
    tokens = _int(row["tokens"]) or 0
    max_seq = _int(row["max_seq"])
    cause, source = _str(row["cause"]), _str(row["cause_source"])
    exit_code, detail = _int(row["exit_code"]), _str(row["cause_detail"])
    return {
        "number": row["number"],
        "life": str(row["life"]),
        "born_at": born,
        "died_at": died,
        "alive": alive,
        "last_event_at": _num(row["last_event_at"]),
        "lifespan_s": max(0.0, end - born),
        "tokens": tokens,
        "missing_tokens": max(0, (max_seq if max_seq is not None else -1) + 1 - tokens),
        "model": _str(row["model"]),
        "limit_bytes": _int(row["limit_bytes"]),
        "peak_memory_bytes": _int(row["peak_memory_bytes"]),
        "cause": cause,
        "cause_source": source,
        "exit_code": exit_code,
        "cause_detail": detail,
        "cause_words": None if alive else words(cause, source, exit_code, detail),
        "stops_refused": _int(row["stops_refused"]),
        "senses": _int(row["senses"]),
        "trimmed_chars": _int(row["trimmed_chars"]) or 0,  # characters the wall skipped
        "first_trim_seq": _int(row["first_trim_seq"]),
        "frame": _str(row["frame"]),
        "frame_sha256": _str(row["frame_sha256"]),
        "sampler": _sampler(row["sampler"]),
        "seed": _int(row["seed"]),
        # what its words were like (display.core.judge), once it is over and judged; else None
        "judged_tokens": _int(row["judged_tokens"]),
        "words_repeat_chars": _int(row["words_repeat_chars"]),
        **{c: _num(row[c]) for c in _WORDS},
        **_energy(row, tokens),
    }


def _energy(row: sqlite3.Row, tokens: int) -> dict:
    """A life's energy ledger as last reported (estimates), and per token where both sides are known."""
    cpu_s, thinking, lighting = (_num(row[c]) for c in ("cpu_seconds", "cpu_joules", "light_joules"))
    known = [j for j in (thinking, lighting) if j is not None]
    total = sum(known) if known else None
    return {
        "cpu_seconds": cpu_s,
        "thinking_joules": thinking,
        "lighting_joules": lighting,
        "joules_per_token": total / tokens if total is not None and tokens else None,
    }


def _connect(path: Path) -> sqlite3.Connection:
    # check_same_thread=False: the display may build the chronicle on one thread and run its loop on
    # another, and the background thread catches up with the writer connection.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=2.0)
    conn.row_factory = sqlite3.Row
    # Text that is not UTF-8 (written by something else) is read with replacement characters, not an error.
    conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
    return conn


def _set_cause(conn: sqlite3.Connection, number: int, death: Death) -> bool:
    row = conn.execute("SELECT cause_source FROM lives WHERE number = ?", (number,)).fetchone()
    if row is None or not outranks(death.source, _str(row["cause_source"])):
        return False
    conn.execute(
        "UPDATE lives SET cause = ?, cause_source = ?, exit_code = ?, cause_detail = ? WHERE number = ?",
        (death.cause, death.source, death.exit_code, death.detail, number),
    )
    return True


def mark_cause(path: Path, cause: str, source: str, life: str | None = None, at: float | None = None) -> str | None:
    """Record an externally known cause of death in the chronicle at ``path`` from another process.

    ``life`` names the life; without it, the life that was alive at Unix time ``at`` (default: now):
    born at or before it, and not yet dead then. A closed life was dead by the time the display saw
    its end (``death_seen_at``, plus ALIVE_SLACK_S for the clocks); an open one is taken for alive up to
    OPEN_SLACK_S after its last recorded sign. A mind killed before its birth reached the display
    (it died at once) matches no life, so it cannot overwrite the cause of the life before it.
    Returns the life id marked, or None. For a script that watches ``docker events`` (it knows the
    time of the ``oom`` event, not the mind's life id).
    """
    at = time.time() if at is None else at
    conn = _connect(Path(path))
    try:
        conn.execute("BEGIN IMMEDIATE")
        if life is not None:
            row = conn.execute("SELECT number, life FROM lives WHERE life = ?", (life,)).fetchone()
        else:
            row = conn.execute(
                "SELECT number, life FROM lives WHERE born_at <= :at AND CASE "
                "WHEN died_at IS NULL THEN :at <= last_event_at + :open_slack "
                "ELSE :at <= COALESCE(death_seen_at, died_at) + :slack END "
                "ORDER BY number DESC LIMIT 1",
                {"at": at, "open_slack": OPEN_SLACK_S, "slack": ALIVE_SLACK_S},
            ).fetchone()
        marked = row is not None and _set_cause(conn, row["number"], Death(str(row["life"]), cause, source))
        conn.execute("COMMIT")
        return str(row["life"]) if marked else None
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


class _Tx:
    """One write transaction, and the in-memory state it leaves behind if, and only if, it commits."""

    def __init__(self, conn: sqlite3.Connection, open_lives: dict[str, _Progress], current: str | None) -> None:
        self.conn = conn
        self.open = {life: replace(p) for life, p in open_lives.items()}
        self.current = current
        self.stored_tokens = 0
        self.retention = False
        self.notes: list[tuple] = []  # log lines, written once committed

    def note(self, message: str, *args) -> None:
        self.notes.append((message, *args))


Apply = Callable[[_Tx, object, float], None]


@dataclass
class _Pending:
    apply: Apply
    data: object
    at: float  # when the event reached the display
    what: str  # for the log


class _Rejected(Exception):
    """An event no transaction can ever write: drop it, do not retry it."""

    def __init__(self, pending: _Pending) -> None:
        super().__init__(pending.what)
        self.pending = pending


class Chronicle:
    """A life subscriber that persists every life: births, tokens, vitals, deaths and their causes.

    ``keep_lives`` and ``max_bytes`` bound the store (a value <= 0 disables that bound): the oldest
    whole lives are deleted and the file is shrunk; the life being lived is never deleted.
    """

    def __init__(self, path: Path, keep_lives: int, max_bytes: int, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.clock = clock  # when an event arrived (tests share the display's clock)
        self.keep_lives = keep_lives
        self.max_bytes = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._open: dict[str, _Progress] = {}  # life id -> progress, for lives this process wrote to
        self._current: str | None = None
        self._since_retention = 0
        self._pending: deque[_Pending] = deque()
        self._retry_at = 0.0
        self._retry_delay = RETRY_FIRST_S
        self._room_made = False  # a full volume already cost a life in this episode
        self.failing = False  # the last write failed; events wait in memory
        self.failures = 0  # transactions that failed
        self.dropped = 0  # tokens dropped because MAX_PENDING were already waiting
        self.rejected = 0  # events that could never be written
        self.late = 0  # events written after waiting
        self._unjudged = True  # lives may be over and not judged yet (set at every death)
        self._judge_after = 0.0  # monotonic time before which judging waits (after a failure)
        self.judge_failures = 0
        self._conn = _connect(self.path)
        self._open_schema()
        self.enforce_retention()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._background, name="chronicle", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Events received but not yet written."""
        return len(self._pending)

    def _background(self) -> None:
        """Catches up with waiting events, and every CHECKPOINT_EVERY_S moves the WAL into the database
        file (the fsyncs happen here, off the event loop). This also bounds what a power cut can take
        (synchronous=NORMAL) to about that many seconds."""
        conn = _connect(self.path)
        checkpoint_failures = 0
        last_checkpoint = time.monotonic()
        try:
            while not self._stop.wait(min(CATCH_UP_EVERY_S, CHECKPOINT_EVERY_S)):
                if self._pending:
                    with self._lock:
                        self._drain(time.time())
                elif self._unjudged and not self.failing and time.monotonic() >= self._judge_after:
                    self._unjudged = False
                    if self.judge_pending(JUDGE_PER_PASS) == JUDGE_PER_PASS:
                        self._unjudged = True  # maybe more

                if time.monotonic() - last_checkpoint < CHECKPOINT_EVERY_S:
                    continue
                last_checkpoint = time.monotonic()
                try:
                    # The writer starts the WAL afresh only after a checkpoint that caught up with it;
                    # tokens committed while one runs leave a tail, so copy the tail again (it is short).
                    for _ in range(CHECKPOINT_TRIES):
                        _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        if copied >= frames or self._stop.wait(0.002):
                            break
                except sqlite3.Error as exc:
                    checkpoint_failures += 1
                    if checkpoint_failures == 1 or checkpoint_failures % 100 == 0:
                        log.error("chronicle: checkpoint failed (%s); %d failures so far", exc, checkpoint_failures)
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
        # Checkpoints (copy the WAL into the file, with fsyncs) run in the background thread, off the
        # event loop; the writer checkpoints itself only if that thread falls far behind.
        conn.execute(f"PRAGMA wal_autocheckpoint = {4 * WAL_SIZE_LIMIT // PAGE_SIZE}")
        conn.executescript(_SCHEMA)
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            # A file made without it: convert once (VACUUM rewrites the file).
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("VACUUM")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        columns = {r["name"] for r in conn.execute("PRAGMA table_info(lives)")}
        conn.execute("BEGIN")
        for name, kind in (_ADDED_IN_2 | _ADDED_IN_3).items():
            if name not in columns:
                conn.execute(f"ALTER TABLE lives ADD COLUMN {name} {kind}")
        token_columns = {r["name"] for r in conn.execute("PRAGMA table_info(tokens)")}
        for name, kind in _TOKENS_ADDED.items():
            if name not in token_columns:
                conn.execute(f"ALTER TABLE tokens ADD COLUMN {name} {kind}")
        if 0 < version < 2:
            # Version 1 called an unannounced death near the limit "oom": it was only ever probable.
            conn.execute("UPDATE lives SET cause = ? WHERE cause = ? AND cause_source = ?", (PROBABLE_OOM, OOM, VITALS))
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
        self._repair()

    def _repair(self) -> None:
        """Values of the wrong kind (from an older version, or a hand) become sound ones or NULL."""
        try:
            with self._lock:
                self._conn.execute("BEGIN")
                repaired = sum(self._conn.execute(sql).rowcount for sql in _REPAIRS)
                self._conn.execute("COMMIT")
            if repaired:
                log.warning("chronicle: repaired %d values of the wrong kind in old rows", repaired)
        except sqlite3.Error:
            self._rollback()
            log.exception("chronicle: could not repair old rows; reading them defensively")

    # --- the life subscriber ------------------------------------------------------------------

    def on_birth(self, birth: dict) -> None:
        self._record(self._apply_birth, birth, "birth")

    def on_token(self, token: dict) -> None:
        self._record(self._apply_token, token, "token")

    def on_vitals(self, vitals: dict) -> None:
        self._record(self._apply_vitals, vitals, "vitals")

    def on_resume(self, life: str) -> None:
        """The display took the life back after a broken stream: it was not a death."""
        self._record(self._apply_resume, life, "resume")

    def on_death(self, death: Death) -> None:
        self._record(self._apply_death, death, "death")

    def on_sense(self, sense: dict) -> None:
        self._record(self._apply_sense, sense, "sense")

    def on_trim(self, life: str, chars: int, seq: int | None) -> None:
        self._record(self._apply_trim, (life, chars, seq), "trim")

    # --- writing ------------------------------------------------------------------------------

    def _record(self, apply: Apply, data: object, what: str) -> None:
        """Write one event, after any that wait; on failure it waits too. Never raises."""
        now = self.clock()
        with self._lock:
            if what == "token" and len(self._pending) >= MAX_PENDING:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.error(
                        "chronicle: %d events wait to be written; %d tokens dropped so far",
                        len(self._pending),
                        self.dropped,
                    )
                return
            self._pending.append(_Pending(apply, data, now, what))
            self._drain(now)

    def _rollback(self) -> None:
        with self._lock:
            if self._conn.in_transaction:
                try:
                    self._conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("chronicle: rollback failed")

    def _drain(self, now: float) -> None:
        """Write waiting events in order, a batch per transaction (call with the lock held)."""
        while self._pending and now >= self._retry_at:
            batch = list(islice(self._pending, WRITE_BATCH))
            tx = _Tx(self._conn, self._open, self._current)
            try:
                self._conn.execute("BEGIN")
                for pending in batch:
                    self._apply(tx, pending)
                self._conn.execute("COMMIT")
            except _Rejected as rejected:
                self._rollback()
                self._pending.remove(rejected.pending)
                self.rejected += 1
                log.error(
                    "chronicle: a %s event could not be recorded and was dropped (%s)",
                    rejected.pending.what,
                    rejected.__cause__,
                )
                continue
            except sqlite3.Error as exc:
                self._rollback()
                if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL and not self._room_made:
                    # The volume is full: give up the oldest life so that the one being lived goes on.
                    self._room_made = True
                    log.warning("chronicle: the volume is full; giving up the oldest life to make room")
                    if self.enforce_retention(make_room=True):
                        continue
                self._failed(exc, now)
                return
            # Committed: now, and only now, the in-memory state follows.
            for _ in batch:
                self._pending.popleft()
            self._open, self._current = tx.open, tx.current
            for note in tx.notes:
                log.info(*note)
            if self.failing:
                self.late += len(batch)
                if not self._pending:
                    log.warning("chronicle: recording again; %d events written late", self.late)
            if not self._pending:
                self.failing = False
                self._room_made = False
                self._retry_delay = RETRY_FIRST_S
            self._since_retention += tx.stored_tokens
            if tx.retention or self._since_retention >= RETENTION_EVERY_TOKENS:
                self.enforce_retention()

    @staticmethod
    def _apply(tx: _Tx, pending: _Pending) -> None:
        try:
            pending.apply(tx, pending.data, pending.at)
        except (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError, sqlite3.DataError) as exc:
            raise _Rejected(pending) from exc
        except sqlite3.Error:
            raise  # the volume or the file: it may take the event later
        except Exception as exc:
            raise _Rejected(pending) from exc

    def _failed(self, exc: sqlite3.Error, now: float) -> None:
        self.failures += 1
        if not self.failing or self.failures % 1000 == 0:
            log.error(
                "chronicle: not recording (%s); %d events wait in memory, %d failures so far",
                exc,
                len(self._pending),
                self.failures,
            )
        self.failing = True
        self._retry_at = now + self._retry_delay
        self._retry_delay = min(2 * self._retry_delay, RETRY_MAX_S)

    # --- one event in a transaction -------------------------------------------------------------

    @staticmethod
    def _counted(conn: sqlite3.Connection, number: int, last_event_at: float) -> _Progress:
        """A life's progress from its stored tokens (its ``lives`` row may lag after a kill)."""
        tokens, max_seq = conn.execute(
            "SELECT COUNT(*), COALESCE(MAX(seq), -1) FROM tokens WHERE number = ?", (number,)
        ).fetchone()
        return _Progress(number, tokens, max_seq, last_event_at, flushed_at=0.0)

    def _progress(self, tx: _Tx, life: str, now: float) -> _Progress:
        """The life's progress; a life never born before this process saw it is recorded now."""
        progress = tx.open.get(life)
        if progress is not None:
            return progress
        row = tx.conn.execute("SELECT number, last_event_at FROM lives WHERE life = ?", (life,)).fetchone()
        if row is None:
            tx.note("chronicle: event of life %s before its birth; recording it from now", life)
            number = tx.conn.execute(
                "INSERT INTO lives (life, born_at, last_event_at) VALUES (?, ?, ?)", (life, now, now)
            ).lastrowid
            progress = _Progress(number, 0, -1, now, now)
        else:
            progress = self._counted(tx.conn, row["number"], _num(row["last_event_at"]) or now)
        tx.open[life] = progress
        return progress

    @staticmethod
    def _reopen(conn: sqlite3.Connection, number: int) -> None:
        # its words are judged again when it ends
        conn.execute(
            "UPDATE lives SET died_at = NULL, death_seen_at = NULL, judged_tokens = NULL WHERE number = ?", (number,)
        )
        conn.execute(
            "UPDATE lives SET cause = NULL, cause_source = NULL, exit_code = NULL, cause_detail = NULL "
            "WHERE number = ? AND cause_source = ?",
            (number, VITALS),
        )

    @staticmethod
    def _flush(conn: sqlite3.Connection, p: _Progress, now: float) -> None:
        conn.execute(
            "UPDATE lives SET tokens = ?, max_seq = ?, last_event_at = ? WHERE number = ?",
            (p.tokens, p.max_seq, p.last_event_at, p.number),
        )
        p.flushed_at = now

    def _apply_birth(self, tx: _Tx, birth: dict, now: float) -> None:
        conn, life = tx.conn, birth["life"]
        row = conn.execute("SELECT number, died_at FROM lives WHERE life = ?", (life,)).fetchone()
        if row is None:
            born_at = birth.get("born_at")
            number = conn.execute(
                "INSERT INTO lives (life, born_at, last_event_at, model, prompt, limit_bytes) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    life,
                    now if born_at is None else born_at,
                    now,
                    birth.get("model"),
                    birth.get("prompt"),
                    birth.get("limit_bytes"),
                ),
            ).lastrowid
            self._what_it_was(conn, number, birth)
            tx.open[life] = _Progress(number, 0, -1, now, now)
            tx.note("chronicle: life %d (%s) born", number, life)
        else:
            # The display restarted in the middle of this life: it continues.
            number = row["number"]
            conn.execute(
                "UPDATE lives SET model = COALESCE(?, model), prompt = COALESCE(?, prompt), "
                "limit_bytes = COALESCE(?, limit_bytes) WHERE number = ?",
                (birth.get("model"), birth.get("prompt"), birth.get("limit_bytes"), number),
            )
            self._what_it_was(conn, number, birth)
            if row["died_at"] is not None:
                # Closed when an earlier display process saw its stream break; the mind's birth event
                # says it lives.
                self._reopen(conn, number)
            progress = tx.open.get(life) or self._counted(conn, number, now)
            progress.last_event_at = now
            tx.open[life] = progress
            self._flush(conn, progress, now)
            tx.note("chronicle: life %d (%s) continues", number, life)
        # Any older life still open died while the display was away: close it at its last sign.
        for old in conn.execute("SELECT life FROM lives WHERE died_at IS NULL AND number != ?", (number,)).fetchall():
            self._close(tx, old["life"], now, None)
        tx.current = life
        tx.retention = True

    @staticmethod
    def _what_it_was(conn: sqlite3.Connection, number: int, birth: dict) -> None:
        """The birth's frame, sampler and seed (optional: an older mind sends none; a birth seen again
        keeps what is known)."""
        sampler = birth.get("sampler")
        conn.execute(
            "UPDATE lives SET frame = COALESCE(?, frame), frame_sha256 = COALESCE(?, frame_sha256), "
            "frame_text = COALESCE(?, frame_text), sampler = COALESCE(?, sampler), seed = COALESCE(?, seed) "
            "WHERE number = ?",
            (
                birth.get("frame"),
                birth.get("frame_sha256"),
                birth.get("frame_text"),
                None if sampler is None else json.dumps(sampler, sort_keys=True),
                birth.get("seed"),
                number,
            ),
        )

    def _apply_token(self, tx: _Tx, token: dict, now: float) -> None:
        conn = tx.conn
        progress = self._progress(tx, token["life"], now)
        seq, text = token["seq"], token["text"]
        stored = 0
        if token.get("tail"):
            # The blocklist's held-back end of token seq, released at a death or a resume: it follows
            # that token's text.
            if not conn.execute(
                "UPDATE tokens SET text = text || ? WHERE number = ? AND seq = ?", (text, progress.number, seq)
            ).rowcount:
                stored = conn.execute(
                    "INSERT OR IGNORE INTO tokens (number, seq, text, at) VALUES (?, ?, ?, ?)",
                    (progress.number, seq, text, now),
                ).rowcount
        else:
            # Only the token row is written per token (one small page appended to the WAL); the life's
            # counters are flushed every FLUSH_EVERY_S, on vitals and on death, and recounted from the
            # token rows whenever they might lag.
            stored = conn.execute(
                "INSERT OR IGNORE INTO tokens (number, seq, text, at) VALUES (?, ?, ?, ?)",
                (progress.number, seq, text, now),
            ).rowcount
        progress.last_event_at = now
        if stored:
            progress.tokens += 1
            progress.max_seq = max(progress.max_seq, seq)
            tx.stored_tokens += 1
        if now - progress.flushed_at >= FLUSH_EVERY_S:
            self._flush(conn, progress, now)

    def _apply_vitals(self, tx: _Tx, vitals: dict, now: float) -> None:
        progress = self._progress(tx, vitals["life"], now)
        progress.last_event_at = now
        self._flush(tx.conn, progress, now)
        peak = max(
            (v for v in (vitals.get("memory_bytes"), vitals.get("peak_memory_bytes")) if v is not None), default=None
        )
        tx.conn.execute(
            "UPDATE lives SET limit_bytes = COALESCE(?, limit_bytes), "
            "peak_memory_bytes = MAX(COALESCE(peak_memory_bytes, 0), COALESCE(?, 0)), "
            "last_memory_bytes = ?, last_tokens_left = ?, last_vitals_tokens = ?, "
            "cpu_seconds = COALESCE(?, cpu_seconds), cpu_joules = COALESCE(?, cpu_joules), "
            "light_joules = COALESCE(?, light_joules), stops_refused = COALESCE(?, stops_refused) WHERE number = ?",
            (
                vitals.get("limit_bytes"),
                peak,
                vitals.get("memory_bytes"),
                vitals.get("tokens_left"),
                vitals.get("tokens"),
                vitals.get("cpu_seconds"),
                vitals.get("cpu_joules"),
                vitals.get("light_joules"),
                vitals.get("stops_refused"),
                progress.number,
            ),
        )

    def _apply_sense(self, tx: _Tx, sense: dict, now: float) -> None:
        """Readings are flagged by a count: the thought's text stays the model's words alone."""
        progress = self._progress(tx, sense["life"], now)
        progress.last_event_at = now
        tx.conn.execute("UPDATE lives SET senses = COALESCE(senses, 0) + 1 WHERE number = ?", (progress.number,))

    def _apply_trim(self, tx: _Tx, trim: tuple, now: float) -> None:
        life, chars, seq = trim
        progress = self._progress(tx, life, now)
        tx.conn.execute(
            "UPDATE lives SET trimmed_chars = COALESCE(trimmed_chars, 0) + ?, "
            "first_trim_seq = COALESCE(first_trim_seq, ?) WHERE number = ?",
            (chars, seq, progress.number),
        )

    def _apply_resume(self, tx: _Tx, life: str, now: float) -> None:
        row = tx.conn.execute("SELECT number, died_at FROM lives WHERE life = ?", (life,)).fetchone()
        if row is None or row["died_at"] is None:
            return
        self._reopen(tx.conn, row["number"])
        progress = self._counted(tx.conn, row["number"], now)
        tx.open[life] = progress
        self._flush(tx.conn, progress, now)
        tx.current = life
        tx.note("chronicle: life %d (%s) resumed after a broken stream", row["number"], life)

    def _apply_death(self, tx: _Tx, death: Death, now: float) -> None:
        self._close(tx, death.life, now, death)
        if tx.current == death.life:
            tx.current = None

    def _close(self, tx: _Tx, life: str, now: float, death: Death | None) -> None:
        """A death at the life's last sign of life; its cause as the display judged it, or (for a life
        that died while the display was away) the cause its last stored vitals support."""
        conn = tx.conn
        row = conn.execute(
            "SELECT number, last_event_at, died_at, last_memory_bytes, limit_bytes, last_tokens_left, "
            "last_vitals_tokens FROM lives WHERE life = ?",
            (life,),
        ).fetchone()
        if row is None:
            return
        number = row["number"]
        if row["died_at"] is not None:
            tx.open.pop(life, None)
            if death is not None:
                _set_cause(conn, number, death)  # a stronger word after the fact (the mind's, after a break)
            return
        progress = tx.open.pop(life, None) or self._counted(conn, number, _num(row["last_event_at"]) or now)
        if death is not None and death.tokens is not None:
            progress.max_seq = max(progress.max_seq, death.tokens - 1)  # what the mind thought, all of it
        self._flush(conn, progress, now)
        if death is None:
            tokens_after = 0
            vitals_tokens = _int(row["last_vitals_tokens"])
            if vitals_tokens is not None:
                tokens_after = progress.max_seq + 1 - vitals_tokens
            cause = infer_cause(
                _int(row["last_memory_bytes"]), _int(row["limit_bytes"]), _int(row["last_tokens_left"]), tokens_after
            )
            death = Death(life, cause, VITALS)
        conn.execute("UPDATE lives SET died_at = last_event_at, death_seen_at = ? WHERE number = ?", (now, number))
        self._unjudged = True  # the background thread judges its words
        _set_cause(conn, number, death)
        tx.note("chronicle: life %d (%s) ended after %d tokens; cause %s", number, life, progress.tokens, death.words())

    def record_cause(self, life: str, cause: str, source: str) -> bool:
        """An explicit cause (e.g. ``"oom"`` from ``"docker"``); it outranks the inference from vitals."""
        with self._lock:
            try:
                self._conn.execute("BEGIN")
                row = self._conn.execute("SELECT number FROM lives WHERE life = ?", (life,)).fetchone()
                marked = row is not None and _set_cause(self._conn, row["number"], Death(life, cause, source))
                self._conn.execute("COMMIT")
                return marked
            except sqlite3.Error:
                self._rollback()
                log.exception("chronicle: cause of %s not recorded", life)
                return False

    # --- what a life's words were like ---------------------------------------------------------

    def judge_pending(self, limit: int | None = None) -> int:
        """Judge the words of lives that are over and not judged yet (newest first; at most ``limit``):
        the text is read in pages on a connection of its own, only the result is written. Returns the
        number judged. Never raises: a life that cannot be judged now is judged on a later pass."""
        judged = 0
        try:
            rows = self._read(
                "SELECT number FROM lives WHERE died_at IS NOT NULL AND judged_tokens IS NULL "
                "ORDER BY number DESC LIMIT ?",
                (-1 if limit is None else limit,),
            )
            for row in rows:
                number = row["number"]
                values = self._judged(number)
                with self._lock:
                    self._conn.execute("BEGIN")
                    # Only a life still over: one reopened meanwhile (a resume) is judged when it ends.
                    self._conn.execute(
                        "UPDATE lives SET judged_tokens = ?, words_distinct = ?, words_first_person = ?, "
                        "words_markup = ?, words_repeat_chars = ?, words_distinct_first = ?, "
                        "words_distinct_last = ?, words_first_person_first = ?, words_first_person_last = ? "
                        "WHERE number = ? AND died_at IS NOT NULL",
                        (*values, number),
                    )
                    self._conn.execute("COMMIT")
                judged += 1
        except sqlite3.Error as exc:
            self._rollback()
            self._unjudged = True
            self._judge_after = time.monotonic() + JUDGE_RETRY_S  # a full volume: not four times a second
            self.judge_failures += 1
            if self.judge_failures == 1 or self.judge_failures % 100 == 0:
                log.error("chronicle: judging a life's words failed (%s); trying again in %g s", exc, JUDGE_RETRY_S)
        return judged

    def _judged(self, number: int) -> tuple:
        """The judge's numbers for a life: the whole text, then its first and last JUDGE_EDGE_TOKENS
        model tokens (only when the life has two such stretches apart)."""
        text = "".join(self._text_pages(number))
        whole = judge.judge(text)
        first = last = None
        count = self._read("SELECT COUNT(*) FROM tokens WHERE number = ?", (number,))[0][0]
        if count >= 2 * JUDGE_EDGE_TOKENS:
            first = "".join(
                r["text"] or ""
                for r in self._read(
                    "SELECT CAST(text AS TEXT) AS text FROM tokens WHERE number = ? ORDER BY seq LIMIT ?",
                    (number, JUDGE_EDGE_TOKENS),
                )
            )
            last = "".join(
                r["text"] or ""
                for r in reversed(
                    self._read(
                        "SELECT CAST(text AS TEXT) AS text FROM tokens WHERE number = ? ORDER BY seq DESC LIMIT ?",
                        (number, JUDGE_EDGE_TOKENS),
                    )
                )
            )
        return (
            whole.tokens,
            whole.distinct_word_ratio,
            whole.first_person_share,
            whole.markup_per_1000,
            len(whole.longest_repeat.sentence) if whole.longest_repeat else 0,
            None if first is None else judge.distinct_word_ratio(first),
            None if last is None else judge.distinct_word_ratio(last),
            None if first is None else judge.first_person_share(first),
            None if last is None else judge.first_person_share(last),
        )

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(10)
        with self._lock:
            self._retry_at = 0.0
            self._drain(time.time())
            if self._pending:
                log.error("chronicle: closing with %d events never written", len(self._pending))
            try:
                self._conn.execute("BEGIN")
                now = time.time()
                for progress in self._open.values():
                    self._flush(self._conn, progress, now)
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                self._rollback()
                log.exception("chronicle: counters not flushed at close")
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
                        "SELECT COUNT(*), MIN(number), MAX(number) FROM lives"
                    ).fetchone()
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

    # --- queries (own connection, short transactions: safe from any thread, pin nothing) ----------

    def _read(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        """One query, its own connection and its own short read transaction."""
        conn = _connect(self.path)
        try:
            conn.execute("PRAGMA query_only = 1")
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def lives(self, frame: str | None = None, model: str | None = None, limit_mib: int | None = None) -> list[dict]:
        """Every life kept, oldest first, without text; only those of ``frame``, ``model`` and a memory
        limit of ``limit_mib`` (rounded to whole MiB) when given."""
        where, params = [], []
        for column, value in (("frame", frame), ("model", model)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if limit_mib is not None:
            where.append("typeof(limit_bytes) = 'integer' AND CAST(ROUND(limit_bytes / 1048576.0) AS INTEGER) = ?")
            params.append(limit_mib)
        condition = f"WHERE {' AND '.join(where)} " if where else ""
        rows = self._read(f"SELECT {_SUMMARY_COLUMNS} FROM lives {condition}ORDER BY number", tuple(params))
        now = time.time()
        return [_summary(r, now) for r in rows]

    def life(self, life: str) -> dict | None:
        """One life with its prompt and full text, or None."""
        rows = self._read(f"SELECT {_SUMMARY_COLUMNS}, prompt, frame_text FROM lives WHERE life = ?", (life,))
        if not rows:
            return None
        out = _summary(rows[0], time.time())
        out["prompt"] = _str(rows[0]["prompt"])
        out["frame_text"] = _str(rows[0]["frame_text"])
        out["text"] = "".join(self._text_pages(rows[0]["number"]))
        return out

    def timed_tokens(self, life: str) -> tuple[dict, list[tuple[float | None, str]]] | None:
        """One life (summary, with ``death_seen_at``) and its tokens in order as ``(arrival time, text)``;
        the time is None for tokens stored before version 3. None if no such life."""
        rows = self._read(f"SELECT {_SUMMARY_COLUMNS}, death_seen_at FROM lives WHERE life = ?", (life,))
        if not rows:
            return None
        head = _summary(rows[0], time.time())
        head["death_seen_at"] = _num(rows[0]["death_seen_at"])
        number, tokens, after = rows[0]["number"], [], -1
        while True:
            page = self._read(
                "SELECT seq, at, CAST(text AS TEXT) AS text FROM tokens WHERE number = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (number, after, READ_BATCH),
            )
            tokens += [(_num(r["at"]), r["text"] or "") for r in page]
            if len(page) < READ_BATCH:
                return head, tokens
            after = page[-1]["seq"]

    def _text_pages(self, number: int) -> Iterator[str]:
        """A life's text, READ_BATCH tokens per page, each page its own short read (by seq)."""
        after = None
        while True:
            if after is None:
                rows = self._read(
                    "SELECT seq, CAST(text AS TEXT) AS text FROM tokens WHERE number = ? ORDER BY seq LIMIT ?",
                    (number, READ_BATCH),
                )
            else:
                rows = self._read(
                    "SELECT seq, CAST(text AS TEXT) AS text FROM tokens WHERE number = ? AND seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (number, after, READ_BATCH),
                )
            if not rows:
                return
            yield "".join(r["text"] or "" for r in rows)
            if len(rows) < READ_BATCH:
                return
            after = rows[-1]["seq"]

    def lives_with_text(self) -> Iterator[tuple[dict, Iterator[str]]]:
        """Every life, oldest first: its summary (with its prompt) and its text as an iterator of chunks.
        Read in pages (LIVES_PAGE lives, READ_BATCH tokens), each its own short transaction, so a reader
        that stops half-way holds nothing; a life that grows meanwhile is read as far as it had got."""
        after = 0
        while True:
            rows = self._read(
                f"SELECT {_SUMMARY_COLUMNS}, prompt, frame_text FROM lives WHERE number > ? ORDER BY number LIMIT ?",
                (after, LIVES_PAGE),
            )
            now = time.time()
            for row in rows:
                head = _summary(row, now)
                head["prompt"] = _str(row["prompt"])
                head["frame_text"] = _str(row["frame_text"])
                yield head, self._text_pages(row["number"])
            if len(rows) < LIVES_PAGE:
                return
            after = rows[-1]["number"]
