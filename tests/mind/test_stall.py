"""The stall watchdog in a real memory cgroup (v1 here; v2 where the host has only that): a mind stuck at
its limit, the kernel reclaiming and never killing, announces `oom: stall` and kills itself as the kernel
would. Marked `cgroup` (needs root, or a delegated v2 subtree: see mind_helpers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from mind_helpers import can_make_memory_cgroup, free_port, memory_cgroup, mind_env, wait_until

pytestmark = [
    pytest.mark.cgroup,
    pytest.mark.skipif(not can_make_memory_cgroup(), reason="cannot create a child memory cgroup"),
]

CHILD = Path(__file__).with_name("crawling_mind.py")
LIMIT = 256 << 20
AFTER = 250


@pytest.fixture
def big_file(tmp_path_factory) -> Path:
    """64 MiB on disk (not tmpfs: its pages could not be reclaimed), four times the room left for it."""
    path = tmp_path_factory.mktemp("crawl") / "pages.bin"
    with path.open("wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 20))
        f.flush()
        os.fsync(f.fileno())
    return path


def test_a_mind_stalled_at_its_limit_announces_oom_stall_and_kills_itself(big_file):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = mind_env(
        MIND_PORT=str(port),
        MIND_HOST="127.0.0.1",
        MIND_SOURCE="scripted",
        MIND_SCRIPTED_RATE="50",
        MIND_STALL_S="4",
        MIND_HUNG_S="60",  # a one-call hang would be called out long after the stall
        MIND_TOKENS_PER_S="0",  # the breath (#10) off, for speed: with it on the stall is found the same way
        CRAWL_AFTER=str(AFTER),
    )
    events, ended = [], threading.Event()

    def follow():
        try:
            with httpx.Client(timeout=60) as client, connect_sse(client, "GET", url + "/stream") as source:
                for sse in source.iter_sse():
                    if sse.data:
                        events.append((sse.event, json.loads(sse.data)))
        finally:
            ended.set()

    with memory_cgroup("mind-stall") as cg:
        cg.set_limit(LIMIT)
        cmd = cg.join([sys.executable, str(CHILD), str(big_file)])
        proc = subprocess.Popen(cmd, env=env, cwd="/tmp", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:

            def healthy():
                assert proc.poll() is None, proc.stdout.read()
                try:
                    return httpx.get(url + "/health", timeout=2).status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(healthy, timeout=60, interval=0.1)
            threading.Thread(target=follow, daemon=True).start()
            code = proc.wait(90)
            out = proc.stdout.read()
            assert ended.wait(10)
            oom_kills, limit_hits, refaults = cg.oom_kills(), cg.limit_hits(), cg.refaults()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    print(out)
    assert code == -signal.SIGKILL, out  # Docker reports it as 137, like the kernel's kill
    # The kernel reclaimed all along and never killed. (Kernel 6.18 here never counts v1's failcnt when memsw
    # is limited too, as Docker's memswap_limit does: refaults are what show it there.)
    assert oom_kills == 0 and limit_hits + refaults > 0, (oom_kills, limit_hits, refaults)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "birth" and kinds[-1] == "death" and kinds.count("death") == 1, kinds[-5:]
    death = events[-1][1]
    tokens = [data for kind, data in events if kind == "token"]
    assert death == {
        "life": events[0][1]["life"],
        "cause": "oom",
        "exit_code": 137,
        "reason": "stall",
        "tokens": tokens[-1]["seq"] + 1,
    }
    assert death["tokens"] > AFTER  # it thought normally first, and the crawl did make a little progress
    assert "stalled at its limit" in out and "Ending as the kernel would: SIGKILL, exit 137" in out
