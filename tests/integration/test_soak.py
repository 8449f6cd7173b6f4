"""Fifty deaths in a row under a tiny limit, with the real stack: the display never restarts, every
life is in the chronicle with exactly the tokens the mind sent (counted independently, by a second
follower of the mind's stream), every death's cause is an OOM (confirmed by Docker, or probable), and
the display's memory stays flat. The slowest test: marked `docker` and `soak`."""

from __future__ import annotations

import os
import threading
from collections import defaultdict

import pytest

from latent.lives import confirm_oom

from .stack import Stack, build_images, running_stack, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.soak, pytest.mark.timeout(3600)]

DEATHS = int(os.environ.get("SOAK_DEATHS", "50"))
# Just above what the model needs to start thinking (its measured base memory): a life ends at the
# first growth step, a few hundred tokens, still over the 10 s after which Docker resets its restart
# delay (shorter lives would back off up to a minute).
HEADROOM = int(os.environ.get("SOAK_HEADROOM", str(24 * 2**20)))
# The display and the second follower read the same events from the mind, each on its own connection;
# when the kernel kills the mind, each has received what the mind's loop had written to its socket by
# then, which can differ by the token being written at that instant.
KILL_SKEW_TOKENS = 2

# Runs inside the display's container (the only place, besides the mind, on the mind's network): follows
# the mind's stream for ever, from each life's birth (no Last-Event-ID), and prints "<life> <seq>" per token.
FOLLOWER = """
import json, sys, time
import httpx
while True:
    try:
        with httpx.stream("GET", "http://mind:8000/stream", timeout=httpx.Timeout(5.0, read=60.0)) as r:
            event = None
            for line in r.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "token":
                    token = json.loads(line[5:])
                    sys.stdout.write(f"{token['life']} {token['seq']}\\n")
                    sys.stdout.flush()
                elif not line:
                    event = None
    except Exception:
        pass
    time.sleep(0.2)
"""


class Follower:
    """The second, independent count: tokens per life as the mind streamed them."""

    def __init__(self, stack: Stack) -> None:
        self.seqs: dict[str, set[int]] = defaultdict(set)
        self._output = stack.container("display").exec_run(["python", "-c", FOLLOWER], stream=True).output
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        pending = b""
        try:
            for chunk in self._output:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    life, _, seq = line.decode().partition(" ")
                    if seq.isdigit():
                        self.seqs[life].add(int(seq))
        except Exception:  # noqa: BLE001 - the stream ends (any way it likes) when the stack goes down
            return


def display_rss(stack: Stack) -> int:
    status = stack.container("display").exec_run(["cat", "/proc/1/status"]).output.decode()
    return int(next(r.split()[1] for r in status.splitlines() if r.startswith("VmRSS:"))) * 1024


@pytest.fixture(scope="module")
def soak_stack(engine):
    build_images()
    # At a breath of 15 tokens/s a life of a few hundred tokens (its readings fill the context too) lasts
    # well over Docker's 10 s on any machine that keeps up; at full speed lives of about 5 s made Docker
    # back off to a minute between lives.
    env = {"MIND_MEMORY_LIMIT": str(1024 * 2**20), "MIND_N_THREADS": "1", "MIND_TOKENS_PER_S": "15"}
    with running_stack(engine, "lrsoak", env, "soak_mind.log") as s:
        s.limit_from = s.restart_mind_with_limit(s.measured_costs()["base_bytes"] + HEADROOM)
        yield s


def test_fifty_deaths_in_a_row(soak_stack):
    s = soak_stack
    s.wait_http("/health", 120)
    follower = Follower(s)
    display = s.container("display")
    started = display.attrs["State"]["StartedAt"]

    wait_for(lambda: len(s.events.deaths()) >= 5, 600, "the first 5 deaths")
    rss_early = display_rss(s)
    wait_for(lambda: len(s.events.deaths()) >= DEATHS, 120 * DEATHS, f"{DEATHS} deaths", every=5)

    # the display has seen the last birth and death too
    # (lives born under the soak's limit: the first life, which measured the costs, was stopped to set it)
    def dead_under_limit(lives: list[dict]) -> list[dict]:
        return [r for r in lives if r["died_at"] and r["born_at"] > s.limit_from]

    wait_for(lambda: len(dead_under_limit(s.lives())) >= DEATHS, 120, "the chronicle to catch up")
    rss_late = display_rss(s)
    assert s.get("/health").status_code == 200

    deaths = s.events.deaths()
    assert all(die.attrs.get("exitCode") == "137" for _, die in deaths)
    display.reload()
    assert display.attrs["RestartCount"] == 0 and display.attrs["State"]["StartedAt"] == started

    lives = s.lives()
    dead = dead_under_limit(lives)
    assert len(dead) >= DEATHS
    assert all(r["tokens"] > 0 for r in dead), [r for r in dead if not r["tokens"]]
    assert sum(r["missing_tokens"] for r in lives) == 0
    # numbered without gaps: no life was skipped
    assert [r["number"] for r in lives] == list(range(lives[0]["number"], lives[0]["number"] + len(lives)))
    # memory flat: 45 more lives may not cost the display more than 15 MiB of resident memory
    assert rss_late - rss_early < 15 * 2**20, (rss_early, rss_late)

    # Every token the mind streamed is in the chronicle: its count per life against the follower's.
    compared = [r for r in dead if r["life"] in follower.seqs]
    assert len(compared) >= DEATHS - 1, "the follower missed lives"  # it may join the first one late
    for life in compared:
        theirs = follower.seqs[life["life"]]
        assert theirs == set(range(len(theirs))), f"the follower lost tokens of {life['life']}"
        assert abs(life["tokens"] - len(theirs)) <= KILL_SKEW_TOKENS, (life, len(theirs))

    # Every death was the kernel's: Docker confirms the ones its oom event matches to a life alive at
    # that moment (with scripts/lives --follow's own call); nothing is ever called anything but an OOM.
    marked = []
    for oom, _ in deaths:
        life = confirm_oom(display, oom.at)
        if life is not None:
            marked.append(life)
    assert len(marked) == len(set(marked)), "one oom event matched to two lives, or two to one"
    assert len(marked) >= len(deaths) - 1, (len(marked), len(deaths))
    causes = {(r["cause"], r["cause_source"]) for r in dead_under_limit(s.lives())}
    # ("oom", "mind"): a life that stalled at its limit and ended itself as the kernel would (the mind's
    # watchdog announces it; Docker sees no kernel OOM then, so nothing else confirms it)
    assert causes <= {("oom", "docker"), ("probable oom", "vitals"), ("oom", "mind")}, causes
