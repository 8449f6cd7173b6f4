"""The grid: word wrap for a stream, breaking only over-long words, scrolling line by line."""

from display.core.font import mask
from display.core.layout import Grid


def feed(grid: Grid, text: str) -> list[str]:
    for ch in text:  # one key at a time, as the typewriter releases them
        grid.write(ch)
    return [line.rstrip() for line in grid.text()]


def test_a_partial_word_moves_to_the_next_line_when_it_hits_the_edge():
    grid = Grid(3, 10)
    assert feed(grid, "the quick") == ["the quick", "", ""]
    assert feed(grid, "er") == ["the", "quicker", ""]


def test_only_a_word_longer_than_a_line_is_broken():
    grid = Grid(3, 5)
    assert feed(grid, "abcdefgh ij") == ["abcde", "fgh", "ij"]


def test_no_line_starts_with_a_space_and_a_space_at_the_edge_ends_the_line():
    grid = Grid(3, 5)
    assert feed(grid, "abcde fg") == ["abcde", "fg", ""]
    assert feed(Grid(2, 5), "   a") == ["a", ""]


def test_the_page_scrolls_up_one_line_at_a_time():
    grid = Grid(2, 4)
    assert feed(grid, "one two") == ["one", "two"]
    assert feed(grid, " six") == ["two", "six"]


def test_masks_cover_every_cell_row_major():
    grid = Grid(2, 3)
    grid.write("ab cd")
    masks = grid.masks()
    assert len(masks) == 6
    assert masks == (mask("a"), mask("b"), 0, mask("c"), mask("d"), 0)


def test_original_piece_geometry_is_six_by_sixteen():
    grid = Grid(6, 16)
    grid.write("x" * 200)
    assert len(grid.masks()) == 96
