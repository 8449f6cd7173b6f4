"""Typewriter pacing: a readable pace, faster with a backlog, pauses at sentence ends, bounded."""

from display.core.font import ELLIPSIS
from display.core.pacing import Typewriter


def released_by(tw: Typewriter, until: float, step: float = 0.001) -> str:
    out, t = [], 0.0
    while t <= until:
        keys, _ = tw.release(t)
        out.append(keys)
        t += step
    return "".join(out)


def test_releases_about_rate_characters_per_second():
    tw = Typewriter(rate=16, max_rate=16, sentence_pause=0)
    tw.push("x" * 100)
    assert 15 <= len(released_by(tw, 1.0)) <= 18


def test_speeds_up_when_a_backlog_builds_but_not_beyond_max_rate():
    slow = Typewriter(rate=16, max_rate=30, backlog_full=50, sentence_pause=0)
    slow.push("x" * 5)
    fast = Typewriter(rate=16, max_rate=30, backlog_full=50, sentence_pause=0)
    fast.push("x" * 900)
    n = len(released_by(fast, 1.0))
    assert 26 <= n <= 31
    assert slow.current_rate() < fast.current_rate() <= 30


def test_pauses_after_a_sentence_end():
    plain = Typewriter(rate=10, max_rate=10, sentence_pause=0.5)
    plain.push("abcdefghij")
    sentence = Typewriter(rate=10, max_rate=10, sentence_pause=0.5)
    sentence.push("abc. efghij")
    assert len(released_by(sentence, 1.0)) < len(released_by(plain, 1.0))


def test_wait_tells_when_the_next_character_is_due():
    tw = Typewriter(rate=10, max_rate=10, sentence_pause=0)
    tw.push("ab")
    keys, wait = tw.release(0.0)
    assert keys == "a" and 0.09 <= wait <= 0.11
    tw.release(1.0)
    assert tw.release(2.0) == ("", None)


def test_backlog_over_the_bound_is_dropped_visibly_and_stays_bounded():
    tw = Typewriter(max_backlog=100)
    for _ in range(1000):
        tw.push("word ")
        assert len(tw) <= 100 + 5
    assert tw.dropped > 4000
    assert tw.backlog[0] == ELLIPSIS  # the gap shows on the wall
    assert list(tw.backlog)[2] == "w"  # and what follows starts at a word


def test_disabled_pacing_releases_everything_at_once():
    tw = Typewriter(enabled=False)
    tw.push("hello world")
    assert tw.release(0.0) == ("hello world", None)
