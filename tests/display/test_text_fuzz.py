"""Fuzz: any unicode text through censor, font, pacing and layout yields well-formed frames."""

from hypothesis import given, settings
from hypothesis import strategies as st

from display.core.blocklist import Censor
from display.core.font import to_cells
from display.core.pacing import Typewriter
from display.core.wall import Wall

any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=300)


@settings(max_examples=300, deadline=None)
@given(tokens=st.lists(any_text, max_size=20), rows=st.integers(1, 8), cols=st.integers(1, 20))
def test_any_unicode_stream_yields_frames_of_rows_times_cols_masks_under_2_17(tokens, rows, cols):
    wall = Wall(rows, cols)
    wall.birth()
    censor = Censor(["bad", "wor*"])
    typewriter = Typewriter(max_backlog=64)
    t = 0.0
    for token in tokens:
        typewriter.push(to_cells(censor.feed(token)))
        assert len(typewriter) <= 64 + 2
        t += 0.5
        keys, _ = typewriter.release(t)
        wall.write(keys)
        frame = wall.frame
        assert len(frame.masks) == rows * cols
        assert all(0 <= m < 2**17 for m in frame.masks)


@settings(max_examples=300, deadline=None)
@given(text=any_text)
def test_text_never_expands_beyond_one_cell_per_code_point(text):
    assert len(to_cells(text)) <= len(text)
