"""The optional blocklist: off by default; masks words even when tokens split them."""

from display.core.blocklist import Censor, parse_blocklist


def test_off_by_default_passes_text_through():
    censor = Censor()
    assert not censor.enabled
    assert censor.feed("fu") == "fu"


def test_masks_a_word_split_across_tokens_case_and_accent_insensitively():
    censor = Censor(["darn"])
    out = "".join(censor.feed(t) for t in ["oh ", "D", "ár", "n it", " all"]) + censor.flush()
    assert out == "oh **** it all"
    assert censor.masked == 1


def test_does_not_mask_words_that_merely_contain_a_blocked_word():
    censor = Censor(["ass"])
    assert censor.feed("a class assignment ass ") == "a class assignment *** "


def test_prefix_entries_mask_every_word_starting_with_them():
    censor = Censor(parse_blocklist("# comment\nheck*  # prefix\n\n"))
    assert censor.feed("heck hecking fine ") == "**** ******* fine "


def test_hold_back_is_bounded():
    censor = Censor(["x"])
    out = censor.feed("a" * 1000)
    assert len(out) == 1000
