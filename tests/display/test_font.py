"""The 16-segment font: the MIT table in the project's segment order, and folding of everything else."""

import unicodedata

import pytest

from display.core import font
from display.core.font import ELLIPSIS, GLYPHS, REPLACEMENT, mask, to_cells

A, B, C, D, E, F, G, H = (1 << i for i in range(8))
K, M, N, P, R, S, T, U = (1 << i for i in range(8, 16))


def test_every_printable_ascii_character_has_a_glyph_within_17_bits():
    for code in range(32, 127):
        assert chr(code) in GLYPHS
        assert 0 <= GLYPHS[chr(code)] < 2**17


def test_glyphs_use_the_design_segment_order():
    # '7' is the top bar and the right side; '1' the right side and the upper-right diagonal
    assert mask("7") == A | B | C | D
    assert mask("1") == C | D | N
    assert mask("+") == M | P | S | U
    assert mask("/") == N | T
    assert mask("\\") == K | R
    assert mask(".") == font.DP
    assert mask("0") == A | B | C | D | E | F | G | H | N | T
    assert mask(" ") == 0


def test_table_is_the_upstream_table_verbatim():
    assert len(font.ASCII_16SEG) == 96
    assert font.ASCII_16SEG[ord("A") - 32] == 0x088CF
    assert font.ASCII_16SEG[ord("~") - 32] == 0x0CC00


def test_accents_are_dropped_and_typographic_punctuation_is_folded():
    assert to_cells("Café naïve") == "Cafe naive"
    assert to_cells("“quoted” ‘single’") == "\"quoted\" 'single'"
    assert to_cells("a–b—c") == "a-b-c"
    assert to_cells("Straße") == "Stra\u00dfe"
    assert to_cells("wait…") == "wait" + ELLIPSIS
    assert to_cells("ｆｕｌｌ") == "full"  # NFKD folds full-width forms


def test_unknown_characters_show_one_visible_replacement_cell():
    assert to_cells("日本") == REPLACEMENT * 2
    assert mask(REPLACEMENT) != 0
    assert mask(REPLACEMENT) not in {GLYPHS[chr(c)] for c in range(32, 127)}


@pytest.mark.parametrize(
    "cluster",
    [
        "\U0001f44d\U0001f3fd",  # thumbs up + skin tone
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # family ZWJ sequence
        "\U0001f1e9\U0001f1ea",  # a flag: two regional indicators
        "e\u0301\u0302\u0303",  # a letter with stacked marks
        "\ufdfa",  # one code point whose NFKD is 18 letters
        "\ufb01",  # the fi ligature
    ],
)
def test_one_grapheme_cluster_never_fills_more_than_one_cell(cluster):
    assert len(to_cells(cluster)) == 1
    assert len(to_cells("a" + cluster + "b")) == 3


def test_invisible_characters_take_no_cell_and_whitespace_becomes_a_space():
    assert to_cells("a\u200bb\x00c\ufeff") == "abc"
    assert to_cells("a\tb\nc\u00a0d") == "a b c d"


def test_every_cell_key_has_a_mask():
    sample = "".join(chr(c) for c in range(0, 0x3000, 7))
    for key in to_cells(sample):
        assert key in GLYPHS, (key, unicodedata.name(key, "?"))


def test_without_a_decimal_point_the_font_is_dmadisons_ndp_set():
    # 16-Segment-ASCII_HEX-NDP.txt: '.' moves to segment R, '!' and '?' keep all but the dot
    assert font.ASCII_16SEG_NDP[ord(".") - 32] == R
    no_dp = font.Font(font.ALL_SEGMENTS & ~font.DP)
    assert no_dp.mask(".") == E  # ours: R read as a backslash on the mirror, E as a full stop
    assert no_dp.mask("!") == 0x000C
    assert no_dp.mask("?") == 0x2807
    assert no_dp.mask("A") == mask("A")
    assert no_dp.mask(ELLIPSIS) == E | F  # the two halves of the bottom bar
    assert all(m <= 0xFFFF for m in no_dp.glyphs.values())


def test_a_panel_without_a_segment_gets_glyphs_without_it():
    no_b = font.Font(font.ALL_SEGMENTS & ~B)  # the MAX6954 with decode off: no right half of the top bar
    assert no_b.mask("7") == A | C | D
    assert no_b.mask(".") == font.DP  # it has DP, so the full table's dot stays
    assert all(not m & B for m in no_b.glyphs.values())
    assert set(no_b.glyphs) == set(GLYPHS)


def test_upper_case_draws_capitals_and_leaves_everything_else_alone():
    upper = font.Font(case="upper")
    assert upper.mask("s") == mask("S") != mask("s")  # dmadison's 's' reads as a 5
    assert upper.mask("g") == mask("G") != mask("9")
    assert all(upper.mask(chr(c)) == mask(chr(c)) for c in range(32, 127) if not chr(c).islower())
    assert upper.mask("\u00df") == mask("\u00df") and upper.mask("\u2603") == mask(REPLACEMENT)
