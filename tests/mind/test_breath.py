"""The breath: the mind thinks no faster than MIND_TOKENS_PER_S, so the wall can show every word."""

import random
import threading
import time

import pytest

from mind.broadcast import Broadcaster
from mind.settings import DEFAULT_TOKENS_PER_S, MindSettings
from mind.sources import ContextInfo
from mind.thinker import Breath, Thinker


class FakeTime:
    def __init__(self):
        self.now = 1000.0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_over_a_minute_the_breath_holds_within_5_percent_whatever_each_token_costs():
    """A simulated minute: tokens that cost 0 to 0.5 s each (a growth, a busy machine), at 4 tokens/s."""
    t = FakeTime()
    breath = Breath(4.0, t.clock, t.sleep)
    rng = random.Random(3)
    start, tokens = t.now, 0
    while t.now - start < 60.0:
        breath.wait()
        t.now += rng.choice([0.01, 0.02, 0.05, 0.5])  # the token's own cost
        tokens += 1
    assert abs(tokens / (t.now - start) - 4.0) <= 0.05 * 4.0


def test_a_slow_patch_is_caught_up_by_at_most_one_second_of_tokens():
    t = FakeTime()
    breath = Breath(4.0, t.clock, t.sleep)
    breath.wait()
    t.now += 10.0  # ten seconds stuck (a growth on a slow card)
    stamps = []
    for _ in range(12):
        breath.wait()
        stamps.append(t.now)
    burst = sum(1 for a, b in zip(stamps, stamps[1:], strict=False) if b - a < 0.2)
    assert burst <= 4  # one second's worth, then the pace again
    assert stamps[-1] - stamps[-2] == pytest.approx(0.25)


def test_off_is_full_speed():
    t = FakeTime()
    breath = Breath(0.0, t.clock, t.sleep)
    for _ in range(1000):
        breath.wait()
    assert t.now == 1000.0
    assert MindSettings(tokens_per_s="off").tokens_per_s == 0.0
    assert MindSettings().tokens_per_s == DEFAULT_TOKENS_PER_S == 4.0


class FastSource:
    name = "fast"

    def __init__(self):
        self.calls = 0

    def load(self):
        pass

    def next_piece(self):
        self.calls += 1
        return b" word"

    def info(self):
        return ContextInfo(n_ctx=16, n_ctx_train=16, n_past=0, prompt_tokens=0, growth_step=16, shifting=False)

    def close(self):
        pass


def test_a_real_thinker_breathes_at_its_rate_in_real_time():
    """Ten real seconds at 20 tokens/s from a source that could think thousands."""
    source = FastSource()
    thinker = Thinker(
        source, Broadcaster("l"), birth_data=lambda: {"life": "l"}, on_fatal=lambda c: None, tokens_per_s=20
    )
    thinker.start()
    while thinker.state != "thinking":
        time.sleep(0.01)
    first = thinker.tokens
    started = time.monotonic()
    threading.Event().wait(10.0)
    rate = (thinker.tokens - first) / (time.monotonic() - started)
    thinker.stop()
    assert abs(rate - 20) <= 0.05 * 20
