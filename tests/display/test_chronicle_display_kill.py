"""The real display process (`python -m display`) SIGKILLed mid-life, then restarted.

The fake mind streams one life's tokens in order. Whatever moment the kill comes, the stored tokens
must be a gapless prefix 0..k (a hole would be a token received, since a later one was, and lost),
the file must be sound, and after a restart the same life goes on, each token stored once.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from display_helpers import FakeMind, free_port, sse, wait_for

SERVICES = Path(__file__).resolve().parents[2] / "services"
LIFE = "cafe01"


async def endless_life(writer, headers):
    """Birth, then tokens 0, 1, 2, … (from 0 again on every connection, as for a client with no id)."""
    writer.write(
        sse(
            "birth",
            {"life": LIFE, "born_at": time.time(), "model": "fake", "prompt": "p", "limit_bytes": None},
            f"{LIFE}:0",
        )
    )
    seq = 0
    while True:
        for _ in range(5):
            writer.write(sse("token", {"life": LIFE, "seq": seq, "text": f"<{seq}>"}, f"{LIFE}:{seq + 1}"))
            seq += 1
        await writer.drain()
        await asyncio.sleep(0.002)


def start_display(mind_url: str, data_dir: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(SERVICES),
        "DISPLAY_MIND_URL": mind_url,
        "DISPLAY_DATA_DIR": str(data_dir),
        "DISPLAY_PANEL": "none",
        "DISPLAY_PACING": "false",
        "DISPLAY_HOST": "127.0.0.1",
        "DISPLAY_PORT": str(free_port()),
        "DISPLAY_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "display"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def stored_seqs(db: Path) -> list[int]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=5) as conn:
        try:
            return [r[0] for r in conn.execute("SELECT seq FROM tokens ORDER BY seq")]
        except sqlite3.OperationalError:  # the display has not made its tables yet
            return []


def test_the_real_display_killed_mid_life_keeps_a_gapless_life_and_continues_it(tmp_path):
    db = tmp_path / "chronicle.sqlite3"
    with FakeMind(endless_life) as mind:
        display = start_display(mind.url, tmp_path)
        try:
            wait_for(
                lambda: len(stored_seqs(db)) >= 200 or display.poll() is not None,
                timeout=30,
                what="the display to chronicle 200 tokens",
            )
            assert display.poll() is None, display.stderr.read().decode()
            time.sleep(random.uniform(0.0, 0.5))  # a random moment, mid-stream
        finally:
            os.kill(display.pid, signal.SIGKILL)
            display.wait(10)
            display.stderr.close()

        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        before = stored_seqs(db)
        assert before == list(range(len(before))), "a token received before a stored one was lost"

        display = start_display(mind.url, tmp_path)
        try:
            wait_for(lambda: len(stored_seqs(db)) >= len(before) + 200, timeout=30, what="the life to go on")
        finally:
            display.send_signal(signal.SIGTERM)
            assert display.wait(15) is not None
            display.stderr.close()

    after = stored_seqs(db)
    assert after == list(range(len(after)))  # replayed from 0, each token once, gapless
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM lives").fetchone()[0] == 1
        text = "".join(r[0] for r in conn.execute("SELECT text FROM tokens ORDER BY seq"))
    assert text == "".join(f"<{s}>" for s in range(len(after)))
