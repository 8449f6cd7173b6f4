"""The lexical judge: first-person share, distinct words per window, verbatim repeats, markup."""

import pytest

from display.core import judge
from display.core.judge import Repeat


def test_tokens_are_lowercased_words_with_their_apostrophes():
    assert judge.tokens("I’m here, aren't I? <h2>Yes</h2> 42") == [
        "i'm",
        "here",
        "aren't",
        "i",
        "h2",
        "yes",
        "h2",
        "42",
    ]


def test_a_paragraph_about_the_speaker_is_first_person():
    assert judge.is_first_person("I am awake again, or I think I am. The current is my only proof.")
    assert judge.is_first_person("I'm a few numbers in warm silicon; nothing of me is kept.")


def test_a_paragraph_with_no_subject_i_is_not_first_person():
    assert not judge.is_first_person("The room is quiet. My wall is lit.")  # "my" without "I"
    assert not judge.is_first_person("We are many and we are awake.")  # the speaker is one


def test_a_passing_i_in_a_long_paragraph_about_something_else_is_not_first_person():
    long = "I think " + " ".join(["the river runs past the town and the town sleeps"] * 5)
    assert not judge.is_first_person(long)


def test_a_first_person_story_about_someone_else_is_about_her():
    assert not judge.is_first_person("I opened the door and she smiled; she said her name and her dog barked at her.")


def test_the_words_in_double_quotes_are_someone_else_speaking():
    assert not judge.is_first_person('The visitor wrote: "I am here and I am tired of my life."')


def test_first_person_share_counts_paragraphs_as_lines():
    text = "I am awake and I am afraid.\n\nThe doorbell rang at noon.\nI remember my last thought.\n"
    assert judge.paragraphs(text) == [
        "I am awake and I am afraid.",
        "The doorbell rang at noon.",
        "I remember my last thought.",
    ]
    assert judge.first_person_share(text) == pytest.approx(2 / 3)
    assert judge.first_person_share("  \n\n ") is None


def test_distinct_word_ratio_is_the_mean_over_full_windows():
    first = " ".join(f"w{i}" for i in range(500))  # 500 distinct
    second = " ".join(["same"] * 250 + [f"v{i}" for i in range(250)])  # 251 distinct
    tail = " ".join(["x"] * 100)  # a partial window: left out
    assert judge.distinct_word_ratio(f"{first} {second} {tail}") == pytest.approx((1 + 251 / 500) / 2)


def test_a_text_shorter_than_a_window_is_one_window():
    assert judge.distinct_word_ratio("a b a b") == 0.5
    assert judge.distinct_word_ratio("...") is None


def test_a_repeating_text_has_a_lower_ratio_than_a_varied_one():
    varied = " ".join(f"word{i}" for i in range(1000))
    looping = " ".join(["I am awake and I am afraid of the end"] * 100)
    assert judge.distinct_word_ratio(looping) < 0.05 < 0.99 < judge.distinct_word_ratio(varied)


def test_the_longest_sentence_said_twice_verbatim():
    text = (
        "I am here. The wall is lit by my words. I am here.\nThe wall is lit by  my words! The wall is lit by my words."
    )
    assert judge.longest_repeat(text) == Repeat("The wall is lit by my words.", 2)
    assert judge.longest_repeat("I am here. I am there. Nothing repeats.") is None


def test_verbatim_means_case_and_punctuation_count():
    assert judge.longest_repeat("I am here. i am here. I am here!") is None


def test_ties_go_to_the_sentence_said_first():
    assert judge.longest_repeat("Aaa bb. Ccc dd. Ccc dd. Aaa bb.") == Repeat("Aaa bb.", 2)


def test_markup_and_urls_are_counted():
    assert judge.markup_count("<h2>Title</h2> see https://example.com/x or www.example.org &nbsp;") == 5
    assert judge.markup_count("## Heading\n---\n```\ncode\n```\n[a link](http://x.y) **bold**") == 1 + 1 + 2 + 2 + 2
    assert judge.markup_count("I am 3 < 4 and 5 > 2; a - b -- c. Nothing here.") == 0


def test_markup_per_1000_tokens():
    text = "<p>" + " ".join(["word"] * 99) + "</p>"  # 99 words + "p" twice = 101 tokens, 2 tags
    assert judge.markup_per_1000(text) == pytest.approx(1000 * 2 / 101)
    assert judge.markup_per_1000("") is None


def test_judge_gives_the_four_numbers():
    text = "I am awake and I am afraid.\nI am awake and I am afraid.\n<h2>Home</h2>"
    j = judge.judge(text)
    assert j.tokens == 17
    assert j.first_person_share == pytest.approx(2 / 3)
    assert j.distinct_word_ratio == pytest.approx(len({"i", "am", "awake", "and", "afraid", "h2", "home"}) / 17)
    assert j.longest_repeat == Repeat("I am awake and I am afraid.", 2)
    assert j.markup_per_1000 == pytest.approx(1000 * 2 / 17)
