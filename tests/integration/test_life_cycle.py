"""The whole installation on the real Docker engine: the kernel kills the mind at its memory limit,
Docker brings it back, the display counts every life. Slow (several minutes): marked `docker`."""

from __future__ import annotations

import json
import os
import statistics
import time

import pytest

from .stack import ROOT, EventLog, Stack, build_images, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.timeout(3000)]

# Small limits so a life lasts about a minute with the default model on two cores.
LIMIT_A = 480 * 2**20
LIMIT_B = LIMIT_A + 48 * 2**20
DEATHS_AT_A = 3
DEATHS_AT_B = 2
LIFE_TIMEOUT_S = 400


@pytest.fixture(scope="module")
def stack(engine):
    build_images()
    s = Stack(f"lrtest{os.getpid()}", {
        "MIND_MEMORY_LIMIT": str(LIMIT_A),
        # two threads: the machine has two cores and the display must keep up
        "MIND_N_THREADS": "2",
    })
    s.up()
    s.started_at = time.time() - 1
    s.events = EventLog(engine, s.container("mind").id)
    s.events.start(since=s.started_at - 60)
    yield s
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    (out / "life_cycle_mind.log").write_text(s.mind_logs())
    s.events.stop()
    s.down()


def test_the_mirror_and_the_mind_come_up_and_it_thinks(stack):
    health = stack.wait_http("/health", 120).json()
    assert health["status"] == "ok"
    page = stack.get("/").text
    assert "<svg" in page or "svg" in page.lower()

    def thinking():
        lives = stack.lives()
        return lives and lives[-1]["tokens"] >= 50 and lives
    lives = wait_for(thinking, 300, "the first life to think 50 tokens")
    text = stack.get(f"/chronicle/lives/{lives[-1]['life']}").json()["text"]
    assert len(text.split()) >= 20, text


def test_both_containers_are_confined_and_the_mind_has_no_route_out(stack):
    for service in ("mind", "display"):
        c = stack.container(service)
        assert c.attrs["Config"]["User"] == "10001:10001"
        host = c.attrs["HostConfig"]
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges:true" in host["SecurityOpt"]
        assert not any("docker.sock" in m["Source"] for m in c.attrs["Mounts"])
        status = c.exec_run(["cat", "/proc/1/status"]).output.decode()
        assert "CapEff:\t0000000000000000" in status
        write = c.exec_run(["sh", "-c", "echo x > /app/x"])
        assert write.exit_code != 0  # read-only root filesystem
    # An internal network has no gateway: the mind's routing table has no default route, so no
    # packet can leave (checked without sending any).
    routes = stack.container("mind").exec_run(["cat", "/proc/net/route"]).output.decode().splitlines()[1:]
    assert routes, "no routing table read"
    assert all(line.split()[1] != "00000000" for line in routes), routes


def test_its_memory_rises_as_it_thinks(stack):
    mind = stack.container("mind")
    samples = []
    for _ in range(20):
        stats = mind.stats(stream=False)
        usage = stats.get("memory_stats", {}).get("usage")
        if usage:
            samples.append(usage)
        time.sleep(1.5)
    assert len(samples) >= 10
    # Growth steps add context memory: usage climbs across the window (a death in between resets it,
    # so compare the rise before the lowest point's successor rather than first vs last).
    rises = [b - a for a, b in zip(samples, samples[1:])]
    assert sum(r for r in rises if r > 0) > 8 * 2**20, samples


def test_the_kernel_kills_it_and_docker_brings_it_back_three_times(stack):
    events = stack.events
    wait_for(lambda: len(events.deaths()) >= DEATHS_AT_A, LIFE_TIMEOUT_S * DEATHS_AT_A,
             f"{DEATHS_AT_A} OOM deaths")
    for oom, die in events.deaths()[:DEATHS_AT_A]:
        assert die.attrs.get("exitCode") == "137", die.attrs
        assert 0 <= die.at - oom.at < 5
        # Docker's restart policy, not us, brings it back
        assert events.first_after("start", die.at) is not None
    state = stack.container("mind").attrs
    assert state["RestartCount"] >= DEATHS_AT_A
    assert state["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"


def test_the_display_survives_counts_every_life_and_the_mirror_shows_it(stack):
    display = stack.container("display")
    assert display.attrs["RestartCount"] == 0
    def all_recorded():
        lives = stack.lives()
        dead = [l for l in lives if l.get("died_at")]
        return len(lives) >= DEATHS_AT_A + 1 and len(dead) >= DEATHS_AT_A and lives
    lives = wait_for(all_recorded, 120, "the chronicle to hold every life")
    dead = [l for l in lives if l.get("died_at")]
    assert all(l["cause"] == "oom" for l in dead[:DEATHS_AT_A]), dead
    assert all(l["limit_bytes"] == LIMIT_A for l in dead[:DEATHS_AT_A]), dead
    status = stack.mirror_status()
    assert status["life_number"] >= DEATHS_AT_A + 1
    assert status["life"] == lives[-1]["life"]


def test_a_larger_limit_set_live_makes_lives_longer(stack, engine):
    mind = stack.container("mind")
    mind.update(mem_limit=LIMIT_B, memswap_limit=LIMIT_B)
    changed_at = time.time()
    def lives_at_b():
        lives = stack.lives()
        at_b = [l for l in lives if l.get("died_at") and l["born_at"] > changed_at
                and l["limit_bytes"] == LIMIT_B]
        return len(at_b) >= DEATHS_AT_B and lives
    lives = wait_for(lives_at_b, LIFE_TIMEOUT_S * (DEATHS_AT_B + 1), f"{DEATHS_AT_B} lives at the larger limit")
    at_a = [l["tokens"] for l in lives if l.get("died_at") and l["limit_bytes"] == LIMIT_A]
    at_b = [l["tokens"] for l in lives if l.get("died_at") and l["limit_bytes"] == LIMIT_B]
    # 48 MiB more at ~18 KiB per token of context is ~2700 tokens more; ask for at least half of that
    assert statistics.median(at_b) > statistics.median(at_a) + 1300, (at_a, at_b)
    record = {"limit_a": LIMIT_A, "limit_b": LIMIT_B, "tokens_at_a": at_a, "tokens_at_b": at_b}
    (ROOT / "test-output").mkdir(exist_ok=True)
    (ROOT / "test-output" / "life_cycle_limits.json").write_text(json.dumps(record, indent=2))
