"""Fifty deaths in a row under a tiny limit, with the real stack: the display never restarts, every
life is in the chronicle, the display's memory stays flat. The slowest test: marked `docker` and `soak`."""

from __future__ import annotations

import os

import pytest

from .stack import Stack, build_images, running_stack, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.soak, pytest.mark.timeout(3600)]

DEATHS = int(os.environ.get("SOAK_DEATHS", "50"))
# Just above what the model needs to start thinking (its measured base memory): a life ends at the
# first growth step, a few hundred tokens, still over the 10 s after which Docker resets its restart
# delay (shorter lives would back off up to a minute).
HEADROOM = int(os.environ.get("SOAK_HEADROOM", str(24 * 2**20)))


def display_rss(stack: Stack) -> int:
    status = stack.container("display").exec_run(["cat", "/proc/1/status"]).output.decode()
    return int(next(l.split()[1] for l in status.splitlines() if l.startswith("VmRSS:"))) * 1024


@pytest.fixture(scope="module")
def soak_stack(engine):
    build_images()
    env = {"MIND_MEMORY_LIMIT": str(1024 * 2**20), "MIND_N_THREADS": "1"}
    with running_stack(engine, "lrsoak", env, "soak_mind.log") as s:
        s.set_mind_limit(s.measured_costs()["base_bytes"] + HEADROOM)
        yield s


def test_fifty_deaths_in_a_row(soak_stack):
    s = soak_stack
    s.wait_http("/health", 120)
    display = s.container("display")
    started = display.attrs["State"]["StartedAt"]

    wait_for(lambda: len(s.events.deaths()) >= 5, 600, "the first 5 deaths")
    rss_early = display_rss(s)
    wait_for(lambda: len(s.events.deaths()) >= DEATHS, 120 * DEATHS, f"{DEATHS} deaths", every=5)
    # the display has seen the last birth and death too
    wait_for(lambda: len([l for l in s.lives() if l["died_at"]]) >= DEATHS, 120, "the chronicle to catch up")
    rss_late = display_rss(s)

    deaths = s.events.deaths()
    assert all(die.attrs.get("exitCode") == "137" for _, die in deaths)
    display.reload()
    assert display.attrs["RestartCount"] == 0 and display.attrs["State"]["StartedAt"] == started

    lives = s.lives()
    dead = [l for l in lives if l["died_at"]]
    assert len(dead) >= DEATHS
    assert all(l["tokens"] > 0 for l in dead), [l for l in dead if not l["tokens"]]
    assert sum(l["missing_tokens"] for l in lives) == 0
    # numbered without gaps: no life was skipped
    assert [l["number"] for l in lives] == list(range(lives[0]["number"], lives[0]["number"] + len(lives)))
    # memory flat: 45 more lives may not cost the display more than 15 MiB of resident memory
    assert rss_late - rss_early < 15 * 2**20, (rss_early, rss_late)
