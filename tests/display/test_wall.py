"""The wall's states: birth clears, death shows a deliberate picture, then holds it."""

import random

from display.core.font import GLYPHS
from display.core.wall import Wall


def test_birth_clears_and_numbers_frames_in_sequence():
    wall = Wall(2, 4)
    wall.birth()
    first = wall.write("hi")
    wall.birth()
    assert wall.frame.masks == (0,) * 8
    assert wall.frame.seq > first.seq


def test_fade_turns_segments_off_gradually_and_ends_dark():
    wall = Wall(2, 8)
    wall.birth()
    wall.write("dying thoughts")
    counts = [sum(bin(m).count("1") for m in f.masks) for f in wall.death_frames("fade", 6, random.Random(1))]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] > 0 and counts[-1] == 0
    assert len(set(counts)) > 3  # gradual, not a blink
    assert wall.state == "dead"


def test_flatline_draws_a_line_across_the_middle_row():
    wall = Wall(6, 16)
    wall.birth()
    wall.write("x")
    frames = list(wall.death_frames("flatline", 8))
    last = frames[-1].masks
    assert last[2 * 16 : 3 * 16] == (GLYPHS["-"],) * 16
    assert sum(last) == 16 * GLYPHS["-"]


def test_text_arriving_during_the_death_picture_does_not_overwrite_it():
    wall = Wall(2, 4)
    wall.birth()
    frames = list(wall.death_frames("flatline", 2))
    assert wall.write("late") is None
    assert wall.frame == frames[-1]
