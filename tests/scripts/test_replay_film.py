"""latent replay draws the display's replay frames into a film: the right pictures, for the right time,
with the segments lit where the masks say."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from latent.replay import ON, Painter, timeline, write_gif

A = 0b11_1111  # the top bars and the right side: any mask with bits lit
# a 2 x 3 wall: blank, then cells 0 and 1 lit (two frames 10 ms apart), then blank again
DOC = {"rows": 2, "cols": 3, "number": 7, "frames": [[0], [100, 0, A], [110, 1, A], [500, 0, 0, 1, 0]]}


def lit(image: Image.Image, box=None) -> int:
    """Pixels near the lit colour."""
    rgb = image.convert("RGB")
    if box is not None:
        rgb = rgb.crop(box)
    return sum(1 for r, g, b in pixels(rgb) if r > 200 and g < 120 and b < 80)


def pixels(rgb: Image.Image) -> list[tuple[int, int, int]]:
    raw = rgb.tobytes()
    return [tuple(raw[i : i + 3]) for i in range(0, len(raw), 3)]


def frames_of(data: bytes) -> list[tuple[Image.Image, int]]:
    gif = Image.open(io.BytesIO(data))
    out = []
    for i in range(gif.n_frames):
        gif.seek(i)
        out.append((gif.convert("RGB"), gif.info["duration"]))
    return out


@pytest.mark.parametrize(("speed", "durations"), [(1, [120, 400, 3000]), (2, [80, 200, 3000])])
def test_the_gif_has_one_frame_per_picture_for_as_long_as_the_wall_showed_it(speed, durations):
    # 25 frames/s: the two frames 10 ms apart fall in one tick and show as one picture
    out = io.BytesIO()
    assert write_gif(DOC, out, speed=speed, fps=25) == 3
    frames = frames_of(out.getvalue())
    assert [d for _, d in frames] == durations
    painter = Painter(2, 3)
    cells = [
        (*painter.origin(c), painter.origin(c)[0] + painter.cell_w, painter.origin(c)[1] + painter.cell_h)
        for c in range(6)
    ]
    blank, both, again = (image for image, _ in frames)
    assert lit(blank) == 0 and lit(again) == 0
    assert lit(both, cells[0]) > 50 and lit(both, cells[1]) == lit(both, cells[0])
    assert all(lit(both, cells[c]) == 0 for c in (2, 3, 4, 5))


def test_unlit_segments_show_dimly_as_on_the_mirror():
    painter = Painter(1, 1)
    picture = painter.canvas.convert("RGB")
    colours = set(pixels(picture))
    assert lit(picture) == 0 and len(colours) > 2  # the background and the dark segments between
    painter.paint([(1 << 17) - 1])
    assert lit(painter.canvas) > 200 and max(pixels(painter.canvas.convert("RGB"))) >= (ON[0] - 10, 0, 0)


def test_a_long_pause_is_one_frame_and_the_last_picture_holds():
    doc = {"rows": 1, "cols": 2, "number": 1, "frames": [[0, 0, A], [60_000, 1, A]]}
    shown = list(timeline(doc, speed=1, fps=25, hold_s=2))
    assert [ticks for _, ticks in shown] == [1500, 50]
    out = io.BytesIO()
    write_gif(doc, out, fps=25)
    assert [d for _, d in frames_of(out.getvalue())] == [60_000, 3000]
