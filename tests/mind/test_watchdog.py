"""The watchdogs (mind.watchdog) on a simulated clock, with cgroup files written as the kernel writes them
(v2 and v1): the source's own work is what counts, never the pauses the thinker makes between calls."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest

from mind.cgroup import CgroupMemory
from mind.watchdog import Progress, Watchdog, WatchedSource, WatchSettings
from mind_helpers import wait_until

LIMIT = 300 << 20


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class WorkingSource:
    """Each call into it takes ``cost`` seconds of the simulated clock."""

    name = "working"

    def __init__(self, clock: Clock, cost: float) -> None:
        self.clock, self.cost = clock, cost

    def next_piece(self) -> bytes:
        self.clock.now += self.cost
        return b" word"


class Cgroup:
    """A memory cgroup's files in a directory, as v2 or v1 lays them out; ``set`` rewrites them."""

    def __init__(self, root, version: int) -> None:
        self.version = version
        if version == 2:
            (root / "cgroup.controllers").write_text("memory\n")
            self.dir = root / "mind"
            self.dir.mkdir()
            (self.dir / "cgroup.controllers").write_text("memory\n")
            (self.dir / "memory.max").write_text(f"{LIMIT}\n")
        else:
            self.dir = root / "memory" / "mind"
            self.dir.mkdir(parents=True)
            (self.dir / "memory.limit_in_bytes").write_text(f"{LIMIT}\n")
        self.hits = self.refaults = 0
        self.set(0.5)
        self.memory = CgroupMemory(root, proc_cgroup="0::/mind\n" if version == 2 else "4:memory:/mind\n0::/\n")
        assert self.memory.version == version

    def set(self, share: float, hits: int = 0, full: float = 0.0, refaults: int = 0) -> None:
        """Memory at ``share`` of the limit (4 MiB of it page cache); ``hits`` more limit hits and ``refaults``
        more refaults; PSI full at ``full`` %."""
        self.hits += hits
        self.refaults += refaults
        usage = int(share * LIMIT) + (4 << 20)
        if self.version == 2:
            (self.dir / "memory.current").write_text(f"{usage}\n")
            (self.dir / "memory.stat").write_text(
                f"anon {usage - (4 << 20)}\nfile {4 << 20}\nworkingset_refault_anon 0\n"
                f"workingset_refault_file {self.refaults}\n"
            )
            (self.dir / "memory.events").write_text(f"low 0\nhigh 0\nmax {self.hits}\noom 0\noom_kill 0\n")
            psi = f"avg10={full:.2f} avg60=0.00 avg300=0.00 total=1\n"
            (self.dir / "memory.pressure").write_text(f"some {psi}full {psi}")
        else:
            (self.dir / "memory.usage_in_bytes").write_text(f"{usage}\n")
            (self.dir / "memory.stat").write_text(
                f"total_inactive_file {4 << 20}\nhierarchical_memory_limit {LIMIT}\n"
                f"workingset_refault_file 0\ntotal_workingset_refault_file {self.refaults}\n"
            )
            # memswap limited like the memory: charges fail on either counter, split here between both
            (self.dir / "memory.failcnt").write_text(f"{self.hits // 2}\n")
            (self.dir / "memory.memsw.failcnt").write_text(f"{self.hits - self.hits // 2}\n")


def watch(tmp_path, version=2, hung_s=0.0, stall_s=10.0):
    clock = Clock()
    source = WatchedSource(WorkingSource(clock, 0.025), clock=clock)
    cgroup = Cgroup(tmp_path, version)
    dog = Watchdog(
        source,
        cgroup.memory,
        WatchSettings(hung_s=hung_s, stall_s=stall_s),
        thinking=lambda: True,
        on_verdict=lambda v: None,
        clock=clock,
    )
    return clock, source, cgroup, dog


@contextmanager
def stuck_call(source: WatchedSource, clock: Clock):
    """A call into ``source`` that does not return until the block ends."""
    release = threading.Event()
    source.source.next_piece = lambda: release.wait(30) and b""
    caller = threading.Thread(target=source.next_piece, daemon=True)
    caller.start()
    try:
        wait_until(lambda: source.progress(1.0, clock.now + 1).in_call_s > 0)
        yield
    finally:
        release.set()
        caller.join(5)


def think(clock, source, dog, seconds: float, cost: float, pause: float, cgroup=None, **state):
    """Think for ``seconds``: calls of ``cost`` s each, ``pause`` s between them (the breath); the watchdog
    looks once a simulated second. Returns the first verdict, or None."""
    source.source.cost = cost
    end, next_look = clock.now + seconds, clock.now
    while clock.now < end:
        source.next_piece()
        clock.now += pause
        while clock.now >= next_look:
            if cgroup is not None:
                cgroup.set(**state)
            verdict = dog.check()
            if verdict is not None:
                return verdict
            next_look += 1.0
    return None


def test_progress_counts_only_time_inside_the_source():
    clock = Clock()
    source = WatchedSource(WorkingSource(clock, 0.1), clock=clock)
    for _ in range(5):
        source.next_piece()
        clock.now += 1.9  # a pause of the thinker's own
    assert source.progress(10.0) == Progress(calls=5, busy_s=pytest.approx(0.5), in_call_s=0.0)
    assert source.progress(10.0).rate == pytest.approx(10.0)
    assert source.progress(1.0) == Progress(calls=0, busy_s=0.0, in_call_s=0.0)  # only a pause: no rate
    assert source.progress(1.0).rate is None


def test_a_mind_that_breathes_at_its_limit_is_neither_hung_nor_stalled(tmp_path):
    # 40 tokens/s of work, paced to 4 tokens/s by pauses; at its limit, the kernel reclaiming: no verdict.
    clock, source, cgroup, dog = watch(tmp_path, hung_s=2.0)
    assert think(clock, source, dog, 60, cost=0.025, pause=0.225, cgroup=cgroup, share=0.98, hits=50, full=0) is None
    # and long pauses (seconds between tokens) are no hang either: only a call that does not return is
    assert think(clock, source, dog, 30, cost=0.025, pause=5.0, cgroup=cgroup, share=0.98, hits=50, full=0) is None


def test_a_call_that_does_not_return_is_hung_after_hung_s(tmp_path):
    clock, source, cgroup, dog = watch(tmp_path, hung_s=120.0)
    with stuck_call(source, clock):
        for _ in range(120):
            assert dog.check() is None
            clock.now += 1.0
        verdict = dog.check()
    assert (verdict.death.cause, verdict.death.reason, verdict.death.exit_code) == ("failed", "hung", 75)
    assert "no token for 120 s" in verdict.why


def test_a_frozen_mind_thawed_is_not_hung(tmp_path):
    # SIGSTOP or docker pause for ten minutes in the middle of a call: the watchdog sleeps through it too,
    # and times the call from its thaw on.
    clock, source, cgroup, dog = watch(tmp_path, hung_s=120.0)
    with stuck_call(source, clock):
        for _ in range(100):
            assert dog.check() is None
            clock.now += 1.0
        clock.now += 600
        for _ in range(120):
            assert dog.check() is None
            clock.now += 1.0
        verdict = dog.check()
    assert verdict is not None and "no token for 120 s" in verdict.why


@pytest.mark.parametrize("version", [2, 1])
def test_a_source_crawling_at_its_limit_while_the_kernel_reclaims_is_a_stall(tmp_path, version):
    clock, source, cgroup, dog = watch(tmp_path, version, hung_s=120.0, stall_s=10.0)
    assert think(clock, source, dog, 30, cost=0.025, pause=0.225, cgroup=cgroup, share=0.6) is None
    assert dog.best_rate == pytest.approx(40.0)
    # At the limit, each token now takes 3 s of work (its code paged in and out): after a window of it, a stall.
    started = clock.now
    verdict = think(clock, source, dog, 60, cost=3.0, pause=0.0, cgroup=cgroup, share=0.97, hits=200)
    assert verdict is not None and 9 <= clock.now - started <= 14  # 90 % of the window spent crawling
    assert (verdict.death.cause, verdict.death.reason, verdict.death.exit_code) == ("oom", "stall", 137)
    assert "stalled at its limit" in verdict.why and "(97%)" in verdict.why and "met its limit" in verdict.why


@pytest.mark.parametrize(
    "state",
    [
        dict(share=0.8, hits=200),  # slow, pressed, but not at the limit
        dict(share=0.97, hits=0, full=0.0),  # at the limit and slow, but the kernel is not reclaiming
    ],
)
def test_slow_is_not_a_stall_without_both_the_limit_and_the_kernel_pressing(tmp_path, state):
    clock, source, cgroup, dog = watch(tmp_path, 2, stall_s=10.0)
    assert think(clock, source, dog, 30, cost=0.025, pause=0.225, cgroup=cgroup, share=0.6) is None
    assert think(clock, source, dog, 60, cost=3.0, pause=0.0, cgroup=cgroup, **state) is None


def test_refaults_alone_show_the_kernel_pressing_where_it_does_not_count_limit_hits(tmp_path):
    # Kernel 6.18 with memsw limited as the memory is (Docker's memswap_limit): failcnt stays 0 for ever.
    clock, source, cgroup, dog = watch(tmp_path, 1, stall_s=10.0)
    assert think(clock, source, dog, 30, cost=0.025, pause=0.225, cgroup=cgroup, share=0.6, refaults=3) is None
    verdict = think(clock, source, dog, 60, cost=3.0, pause=0.0, cgroup=cgroup, share=0.97, refaults=5000)
    assert verdict is not None and "pages were evicted and read back in" in verdict.why
    assert "met its limit" not in verdict.why


def test_pressure_stall_information_alone_shows_the_kernel_pressing_on_v2(tmp_path):
    clock, source, cgroup, dog = watch(tmp_path, 2, stall_s=10.0)
    assert think(clock, source, dog, 30, cost=0.025, pause=0.225, cgroup=cgroup, share=0.6) is None
    verdict = think(clock, source, dog, 60, cost=3.0, pause=0.0, cgroup=cgroup, share=0.97, hits=0, full=60.0)
    assert verdict is not None and "memory pressure full 60 %" in verdict.why


def test_a_source_slower_than_its_best_but_not_collapsed_is_no_stall(tmp_path):
    # A larger context thinks slower: a third of the best speed is still progress.
    clock, source, cgroup, dog = watch(tmp_path, 2, stall_s=10.0)
    assert think(clock, source, dog, 30, cost=0.025, pause=0.0, cgroup=cgroup, share=0.6) is None
    assert think(clock, source, dog, 60, cost=0.075, pause=0.0, cgroup=cgroup, share=0.97, hits=200) is None


def test_a_stall_needs_a_whole_window_watched(tmp_path):
    # Stuck from the first look on: no verdict before stall_s of watching, one right after.
    clock, source, cgroup, dog = watch(tmp_path, 2, stall_s=10.0)
    cgroup.set(0.97, hits=5)
    with stuck_call(source, clock):
        for _ in range(10):
            assert dog.check() is None
            clock.now += 1.0
            cgroup.set(0.97, hits=5)
        verdict = dog.check()
    assert verdict is not None and verdict.death.reason == "stall" and "0 tokens" in verdict.why


def test_no_limit_in_force_is_never_a_stall(tmp_path):
    clock, source, cgroup, dog = watch(tmp_path, 2, stall_s=10.0)
    (cgroup.dir / "memory.max").write_text("max\n")
    assert think(clock, source, dog, 30, cost=0.025, pause=0.0, cgroup=cgroup, share=0.6) is None
    assert think(clock, source, dog, 60, cost=3.0, pause=0.0, cgroup=cgroup, share=0.97, hits=200, full=90.0) is None


def test_the_watchdogs_can_be_turned_off(tmp_path):
    clock, source, cgroup, dog = watch(tmp_path, 2, hung_s=0.0, stall_s=0.0)
    with stuck_call(source, clock):
        clock.now += 10_000
        cgroup.set(0.99, hits=10_000, full=99.0)
        assert dog.check() is None
