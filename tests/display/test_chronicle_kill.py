"""The chronicle survives SIGKILL at a random moment: every token reported as received is on disk.

A child process feeds tokens to a real Chronicle as fast as it can and writes each seq to its stdout
only AFTER ``on_token`` returned, i.e. after the display "has received it". The parent kills the child
with SIGKILL at a random moment, reopens the database and looks for every reported token.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from display.chronicle import Chronicle

SERVICES = Path(__file__).resolve().parents[2] / "services"

CHILD = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from display.chronicle import Chronicle

    path, first_seq, keep_lives, life_every = Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    chronicle = Chronicle(path, keep_lives=keep_lives, max_bytes=0)
    life, n = None, 0
    seq = first_seq
    while True:
        if life is None or (life_every and n % life_every == 0):
            life = f"life{n}" if life_every else "only"
            chronicle.on_birth({"life": life, "born_at": time.time(), "model": "m", "prompt": "p",
                                "limit_bytes": 1 << 29})
            seq = first_seq if not life_every else 0
            os.write(1, f"birth {life}\\n".encode())
        chronicle.on_token({"life": life, "seq": seq, "text": f"<{seq}>"})
        os.write(1, f"{life} {seq}\\n".encode())  # reported only once on_token has returned
        seq += 1
        n += 1
    """
)


def run_and_kill(path: Path, first_seq: int, after_s: float, keep_lives: int = 100, life_every: int = 0) -> list[str]:
    """Run the child, SIGKILL it ``after_s`` seconds after its first report; return its report lines."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(SERVICES), str(path), str(first_seq), str(keep_lives), str(life_every)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: list[str] = []
    first = threading.Event()

    def read() -> None:
        for raw in child.stdout:
            lines.append(raw.decode().rstrip("\n"))
            first.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while not first.wait(0.05):
        assert child.poll() is None, f"the child died: {child.stderr.read().decode()}"
        assert time.monotonic() < deadline, "the child reported nothing in 30 s"
    time.sleep(after_s)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(10) == -signal.SIGKILL
    reader.join(10)
    child.stderr.close()
    return lines


def stored(path: Path, life: str) -> dict[int, str]:
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return dict(
            db.execute(
                "SELECT t.seq, t.text FROM tokens t JOIN lives l USING (number) WHERE l.life = ?", (life,)
            ).fetchall()
        )


def test_sigkill_mid_life_loses_no_token_already_received(tmp_path):
    path = tmp_path / "chronicle.db"
    rng = random.Random()
    reported: set[int] = set()
    first_seq = 0
    for _ in range(3):  # killed three times in one life; each restart replays the last 50 tokens
        lines = run_and_kill(path, first_seq, after_s=rng.uniform(0.2, 1.2))
        seqs = [int(line.split()[1]) for line in lines if not line.startswith("birth")]
        assert len(seqs) > 50, "the child barely ran; the kill proves nothing"
        reported.update(seqs)
        have = stored(path, "only")
        lost = reported - have.keys()
        assert not lost, f"{len(lost)} tokens reported as received are missing, e.g. {sorted(lost)[:5]}"
        first_seq = max(0, max(seqs) - 50)

    # One life, never duplicated, its text whole and in order, its count right despite the kills.
    have = stored(path, "only")
    assert sorted(have) == list(range(len(have)))
    chronicle = Chronicle(path, keep_lives=100, max_bytes=0)
    [life] = chronicle.lives()
    assert (life["tokens"], life["missing_tokens"]) == (len(have), 0)
    assert chronicle.life("only")["text"] == "".join(f"<{s}>" for s in range(len(have)))
    chronicle.on_birth({"life": "next", "born_at": time.time(), "model": "m", "prompt": "p", "limit_bytes": None})
    closed = chronicle.lives()[0]
    assert not closed["alive"] and closed["tokens"] == len(have) and closed["cause"] == "unknown"
    chronicle.close()


def test_sigkill_during_births_and_retention_leaves_a_sound_file_and_the_current_life_whole(tmp_path):
    path = tmp_path / "chronicle.db"
    # A new life every 200 tokens with keep_lives=2: deletions, vacuum and checkpoints run all the time.
    lines = run_and_kill(path, 0, after_s=random.uniform(0.5, 1.5), keep_lives=2, life_every=200)
    births = [line.split()[1] for line in lines if line.startswith("birth")]
    assert len(births) >= 3, "no retention happened before the kill"
    current = births[-1]
    reported = {int(line.split()[1]) for line in lines if line.startswith(current + " ")}
    assert reported <= stored(path, current).keys()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM lives").fetchone()[0] <= 3
