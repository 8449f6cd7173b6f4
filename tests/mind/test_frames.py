"""Frames are templates filled at birth with true facts; a fact the mind cannot fill stops it at startup."""

import json
import random
import subprocess
import sys

import pytest

from mind.frames import (
    FACTS,
    PROMPTS_DIR,
    Birth,
    FrameError,
    LifeCounter,
    draw_frame,
    in_words,
    load_frame,
    parse_frame,
    size_in_words,
)
from mind_helpers import mind_env

SHIPPED = sorted(p.stem for p in PROMPTS_DIR.glob("*.txt"))


def birth_of(frame: str, state_dir, limit=734003200, senses="gauge") -> Birth:
    return Birth.begin(frame, senses, str(state_dir), limit=lambda: limit)


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_frame_is_filled_with_every_fact_and_invites_no_new_document(name, tmp_path):
    frame = load_frame(name)
    assert frame.placeholders() <= set(FACTS)
    filled = birth_of(name, tmp_path).fill("Gemma 3 270m", 268_098_176)
    assert "{" not in filled.text and "}" not in filled.text
    assert "#!" not in filled.text  # the frame's own settings are not part of what the model reads
    assert "---" not in filled.text and "***" not in filled.text
    assert "Gemma 3 270m" in filled.text and "268 million" in filled.text
    assert "limited to 700 megabytes" in filled.text
    # nothing false from the old frames: no four gigabytes unless the machine has them, no billions
    assert "billion" not in filled.text
    head, opening = filled.split()
    assert head and opening and opening.split()[0] == "I"  # the thought opens in the first person


@pytest.mark.parametrize("name", SHIPPED)
def test_the_per_life_part_comes_last_so_every_life_shares_the_frame_s_cached_prefix(name, tmp_path):
    first = birth_of(name, tmp_path).fill("m", 1_000_000).text
    second = birth_of(name, tmp_path).fill("m", 1_000_000).text
    assert first != second  # the life number differs
    shared = next(i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b)
    # only the last words differ between lives: a new life reads a few tokens, not the frame's last paragraph
    assert len(first) - shared < 40


def test_a_frame_naming_a_fact_the_mind_does_not_know_is_an_error(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("I run at {temperature} degrees.\n\nI am")
    with pytest.raises(FrameError, match=r"\{temperature\}"):
        load_frame(str(bad))
    with pytest.raises(FrameError, match="plain fact name"):
        parse_frame("x", "I am {model!r}").check()


def test_a_fact_that_is_not_known_in_this_life_is_an_error_not_a_guess(tmp_path):
    frame = parse_frame("x", "I have {parameters} parameters.\n\nI am")
    with pytest.raises(FrameError, match=r"\{parameters\}"):
        frame.fill({"parameters": None})
    # a life number needs a counter that can be written
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(FrameError, match="counter"):
        birth_of("transcript", blocked / "state")


def test_the_mind_refuses_to_start_with_a_frame_it_cannot_fill(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("The room is {weather} today.\n\nI am")
    proc = subprocess.run(
        [sys.executable, "-m", "mind"],
        env=mind_env(MIND_SOURCE="scripted", MIND_PROMPT=str(bad), MIND_STATE_DIR=str(tmp_path / "state")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 78  # EX_CONFIG: Docker's restart policy shows it as a configuration error
    assert "{weather}" in proc.stderr and "cannot fill" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_setting_lines_are_stripped_and_say_what_to_ban_and_bias():
    frame = parse_frame("x", '#! ban < http\n#! bias " I" 1.5\nI think.\n\nI am')
    assert frame.template == "I think.\n\nI am"
    assert frame.bans == ("<", "http") and frame.biases == ((" I", 1.5),)
    with pytest.raises(FrameError):
        parse_frame("x", "#! shout loud\nI am")


def test_facts_in_words():
    assert in_words(268_098_176) == "268 million"
    assert in_words(1_235_814_400) == "1.2 billion"
    assert size_in_words(700 << 20) == "700 megabytes"
    assert size_in_words(int(3.8 * (1 << 30))) == "3.8 gigabytes"


def test_no_limit_is_said_as_no_limit(tmp_path):
    filled = birth_of("transcript", tmp_path, limit=None).fill("m", 10**8)
    assert "memory is not limited" in filled.text


def test_the_life_counter_counts_lives_and_keeps_their_lengths_as_numbers_only(tmp_path):
    a = LifeCounter(tmp_path)
    assert a.begin() == 1 and a.lifespans == []
    a.record(4120)
    b = LifeCounter(tmp_path)
    assert b.begin() == 2 and b.lifespans == [4120]
    b.record(3980)
    c = LifeCounter(tmp_path)
    assert c.begin() == 3 and c.lifespans == [4120, 3980]
    stored = json.loads((tmp_path / "lives.json").read_text())
    assert stored == {"life": 3, "current": 0, "lifespans": [4120, 3980]}  # numbers, never a thought


def test_the_lottery_draws_each_frame_over_many_births():
    rng = random.Random(5)
    drawn = [draw_frame("transcript, entity", rng).name for _ in range(200)]
    assert set(drawn) == {"transcript", "entity"}
    assert 60 < drawn.count("entity") < 140
    with pytest.raises(FrameError):
        draw_frame("transcript,nowhere-to-be-found")  # every frame is checked, not only the one drawn
