"""Replay a past life as a film of the wall: an animated GIF (Pillow) or a WebM (ffmpeg).

    latent replay 3                      life 3 of the chronicle into life-3.gif
    latent replay 3 --speed 4 -o a.webm  four times faster, as WebM (needs ffmpeg: apt install ffmpeg)

The display makes the frames from the life's stored tokens with the wall's own layout, pacing, font and
death picture (GET /chronicle/lives/LIFE/replay.json on the mirror's port: MIRROR_PORT in .env, default
8080); this command only draws their segments, as the mirror does, and encodes them. It needs Pillow,
which the host tools leave out: `pipx install '.[replay]'` (or `pipx inject latent-reflection pillow`;
with Raspberry Pi OS's python3, `sudo apt install python3-pil`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from latent import CliError
from latent.project import add_project_argument, find_project

log = logging.getLogger(__name__)

# The mirror's geometry (services/display/web/mirror.html), in its units: a cell is PX x PY, the wall has
# a margin of OX, OY; segments are lines between these points, in the font's bit order (A..U), then DP.
PX, PY, OX, OY = 40, 64, 8, 7
_L, _M, _R, _T, _C, _B, _g, _d = 3, 15, 27, 3, 25, 47, 2.2, 3.2
SEGMENTS = [
    (_L + _g, _T, _M - _g, _T), (_M + _g, _T, _R - _g, _T), (_R, _T + _g, _R, _C - _g), (_R, _C + _g, _R, _B - _g),
    (_M + _g, _B, _R - _g, _B), (_L + _g, _B, _M - _g, _B), (_L, _C + _g, _L, _B - _g), (_L, _T + _g, _L, _C - _g),
    (_L + _d, _T + _d, _M - _d, _C - _d), (_M, _T + _g, _M, _C - _g), (_R - _d, _T + _d, _M + _d, _C - _d),
    (_M + _g, _C, _R - _g, _C), (_M + _d, _C + _d, _R - _d, _B - _d), (_M, _C + _g, _M, _B - _g),
    (_M - _d, _C + _d, _L + _d, _B - _d), (_L + _g, _C, _M - _g, _C),
]  # fmt: skip
DP = (_R + 4.5, _B, 1.9)
SKEW = math.tan(math.radians(-6))  # the mirror's skewX(-6): a slight italic
STROKE = 3.2
BACKGROUND, OFF, ON = (10, 10, 10), (23, 10, 6), (255, 74, 28)  # the mirror's #0a0a0a, --off, --on
SUPERSAMPLE = 4
HOLD_S = 3.0  # the last picture (the death's) stays this long before the film loops


def _mix(a: tuple[int, ...], b: tuple[int, ...], f: float) -> tuple[int, ...]:
    return tuple(round(x + (y - x) * f) for x, y in zip(a, b, strict=True))


def palette() -> list[int]:
    """256 colours: background to lit, background to unlit, unlit to lit (all a glyph can hold)."""
    colours = [_mix(BACKGROUND, ON, i / 127) for i in range(128)]
    colours += [_mix(BACKGROUND, OFF, i / 63) for i in range(64)]
    colours += [_mix(OFF, ON, i / 63) for i in range(64)]
    return [c for rgb in colours for c in rgb]


class Painter:
    """The wall as a palette image; each cell drawn from its mask (a cache of glyphs: few distinct masks)."""

    def __init__(self, rows: int, cols: int, scale: float = 1.0) -> None:
        from PIL import Image

        self.Image = Image
        self.rows, self.cols, self.scale = rows, cols, scale
        self.cell_w, self.cell_h = round(PX * scale), round(PY * scale)
        self.size = (round(OX * scale) * 2 + cols * self.cell_w, round(OY * scale) * 2 + rows * self.cell_h)
        self.palette_image = Image.new("P", (1, 1))
        self.palette_image.putpalette(palette())
        self.canvas = Image.new("P", self.size, 0)
        self.canvas.putpalette(palette())
        self.glyphs: dict[int, object] = {}
        self.masks = [-1] * (rows * cols)
        self.paint([0] * (rows * cols))

    def origin(self, cell: int) -> tuple[int, int]:
        row, col = divmod(cell, self.cols)
        return round(OX * self.scale) + col * self.cell_w, round(OY * self.scale) + row * self.cell_h

    def glyph(self, mask: int):
        found = self.glyphs.get(mask)
        if found is not None:
            return found
        from PIL import ImageChops, ImageDraw, ImageFilter

        Image, k = self.Image, self.scale * SUPERSAMPLE
        size = (self.cell_w * SUPERSAMPLE, self.cell_h * SUPERSAMPLE)

        def at(x: float, y: float) -> tuple[float, float]:  # the mirror's translate(3, 5) skewX(-6)
            return (x + SKEW * y + 3) * k, (y + 5) * k

        off, lit = Image.new("L", size, 0), Image.new("L", size, 0)
        width = max(1, round(STROKE * k))
        for bit, (x1, y1, x2, y2) in enumerate(SEGMENTS):
            layer = ImageDraw.Draw(lit if mask >> bit & 1 else off)
            a, b = at(x1, y1), at(x2, y2)
            layer.line([a, b], fill=255, width=width)
            for x, y in (a, b):  # round caps
                layer.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=255)
        x, y, r = DP
        (cx, cy), rr = at(x, y), r * k
        ImageDraw.Draw(lit if mask >> 16 & 1 else off).ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=255)
        glow = lit.filter(ImageFilter.GaussianBlur(1.6 * k)).point(lambda v: v * 0.7)
        picture = Image.new("RGB", size, BACKGROUND)
        picture.paste(OFF, mask=off)
        picture.paste(ON, mask=ImageChops.lighter(lit, glow))
        small = picture.resize((self.cell_w, self.cell_h), Image.Resampling.LANCZOS)
        found = small.quantize(palette=self.palette_image, dither=Image.Dither.NONE)
        self.glyphs[mask] = found
        return found

    def paint(self, masks: Sequence[int]) -> tuple[int, int, int, int] | None:
        """Draw the cells whose mask changed; the box around them (None: nothing changed)."""
        box = None
        for cell, mask in enumerate(masks):
            if self.masks[cell] == mask:
                continue
            self.masks[cell] = mask
            x, y = self.origin(cell)
            self.canvas.paste(self.glyph(mask), (x, y))
            right, bottom = x + self.cell_w, y + self.cell_h
            box = (x, y, right, bottom) if box is None else (
                min(box[0], x), min(box[1], y), max(box[2], right), max(box[3], bottom)
            )  # fmt: skip
        return box


def pictures(doc: dict, speed: float, fps: float) -> Iterator[tuple[int, list[int]]]:
    """``(tick, masks)``: the wall at each tick (1/fps s of film) where it changed. The frames due within
    one tick show as the last of them: a film shows what the wall showed at its ticks."""
    tick_ms = 1000 / fps
    masks = [0] * (doc["rows"] * doc["cols"])
    current = None
    for row in doc["frames"]:
        tick = math.ceil(row[0] / speed / tick_ms - 1e-9)
        if current is not None and tick != current:
            yield current, list(masks)
        current = tick
        for i in range(1, len(row), 2):
            masks[row[i]] = row[i + 1]
    if current is not None:
        yield current, masks


def timeline(doc: dict, speed: float, fps: float, hold_s: float = HOLD_S) -> Iterator[tuple[list[int], int]]:
    """``(masks, ticks shown)`` in order, the last held for ``hold_s``."""
    previous = None
    for tick, masks in pictures(doc, speed, fps):
        if previous is not None:
            yield previous[1], tick - previous[0]
        previous = (tick, masks)
    if previous is not None:
        yield previous[1], max(1, round(hold_s * fps))


def write_gif(doc: dict, out, speed: float = 1.0, fps: float = 25.0, scale: float = 1.0) -> int:
    """The film as an animated GIF, written as it is drawn (a long life never sits in memory); returns
    its frame count. Each GIF frame is the box that changed, over the one before."""
    from PIL import GifImagePlugin

    painter = Painter(doc["rows"], doc["cols"], scale)
    tick_ms = 1000 / fps
    written, pending, at_ms = 0, None, 0.0  # a frame waits until its duration is known

    def flush(last: bool) -> None:
        nonlocal written, pending
        if pending is None:
            return
        image, box, start_ms, end_ms = pending
        # durations in centiseconds, rounded on the film's clock so the total does not drift
        duration = (round(end_ms / 10) - round(start_ms / 10)) * 10
        if written == 0:
            header, _ = GifImagePlugin.getheader(image, info={"loop": 0, "duration": duration})
            out.write(b"".join(header))
            box = (0, 0, *image.size)
        for chunk in GifImagePlugin.getdata(image.crop(box), offset=box[:2], duration=duration):
            out.write(chunk)
        written += 1
        pending = None

    for masks, ticks in timeline(doc, speed, fps):
        box = painter.paint(masks)
        end_ms = at_ms + ticks * tick_ms
        if box is None and pending is not None:  # the same picture again: the frame before lasts longer
            pending = (*pending[:3], end_ms)
        else:
            flush(False)
            pending = (painter.canvas.copy(), box or (0, 0, 1, 1), at_ms, end_ms)
        at_ms = end_ms
    flush(True)
    out.write(b";")
    return written


def write_webm(doc: dict, path: Path, speed: float = 1.0, fps: float = 25.0, scale: float = 1.0) -> int:
    """The film as WebM (VP8) through ffmpeg; returns its frame count."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise CliError("WebM needs ffmpeg, which this machine does not have: sudo apt install ffmpeg (or make a GIF)")
    painter = Painter(doc["rows"], doc["cols"], scale)
    width, height = painter.size
    # even sizes for the encoder
    command = [ffmpeg, "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"]
    command += ["-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
    command += ["-c:v", "libvpx", "-b:v", "1M", "-deadline", "realtime", "-cpu-used", "16", "-threads", "2", str(path)]
    encoder = subprocess.Popen(command, stdin=subprocess.PIPE)
    frames = 0
    try:
        for masks, ticks in timeline(doc, speed, fps):
            painter.paint(masks)
            raw = painter.canvas.convert("RGB").tobytes()
            for _ in range(ticks):
                encoder.stdin.write(raw)
            frames += ticks
        encoder.stdin.close()
    except BrokenPipeError:
        pass
    if encoder.wait() != 0:
        raise CliError(f"ffmpeg could not write {path} (its message is above)")
    return frames


def fetch(url: str, life: str) -> dict:
    """The life's frames from the display; LIFE is its id or its number in the chronicle."""
    life_id = life
    try:
        if life.isdigit():
            with urllib.request.urlopen(f"{url}/chronicle/lives", timeout=10) as r:
                by_number = {str(x["number"]): x["life"] for x in json.load(r)}
            life_id = by_number.get(life, life)
        with urllib.request.urlopen(
            f"{url}/chronicle/lives/{urllib.parse.quote(life_id, safe='')}/replay.json", timeout=120
        ) as r:
            return json.load(r)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise CliError(f"no life {life} in the chronicle at {url} (latent lives lists them)") from None
        raise CliError(f"the display at {url} could not make the replay (HTTP {exc.code})") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)  # a URLError wraps the socket's error
        why = getattr(reason, "strerror", None) or str(reason)
        raise CliError(f"the display at {url} does not answer ({why}): is the installation running?") from None


def main(argv: Sequence[str] | None = None, prog: str = "latent replay") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("life", help="the life's number in the chronicle (or its id)")
    parser.add_argument("-o", "--output", type=Path, help="the film: .gif or .webm (default: life-LIFE.gif)")
    parser.add_argument("--speed", type=float, default=1.0, help="play this many times faster (default 1)")
    parser.add_argument("--fps", type=float, default=25.0, help="film frames per second (default 25)")
    parser.add_argument("--scale", type=float, default=1.0, help="size: 1 is 656 x 398 pixels for 6 x 16 cells")
    parser.add_argument("--url", help="the mirror's base URL (default: http://127.0.0.1:MIRROR_PORT)")
    add_project_argument(parser)
    args = parser.parse_args(argv)
    from latent.lives import mirror_url

    try:
        if not (args.speed > 0 and 1 <= args.fps <= 50 and 0.1 <= args.scale <= 4):
            raise CliError("--speed must be above 0, --fps between 1 and 50, --scale between 0.1 and 4")
        out = args.output or Path(f"life-{args.life}.gif")
        if out.suffix.lower() not in (".gif", ".webm"):
            raise CliError(f"{out}: the film is a .gif or a .webm")
        try:
            import PIL  # noqa: F401
        except ImportError:
            raise CliError(
                "drawing the film needs Pillow: pipx install '.[replay]' in the checkout "
                "(or pip install pillow; on Raspberry Pi OS: sudo apt install python3-pil)"
            ) from None
        url = args.url or mirror_url(find_project(args.project_dir, required=False))
        doc = fetch(url.rstrip("/"), args.life)
        if out.suffix.lower() == ".webm":
            frames = write_webm(doc, out, args.speed, args.fps, args.scale)
        else:
            with open(out, "wb") as f:
                frames = write_gif(doc, f, args.speed, args.fps, args.scale)
    except CliError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"replay: cannot write the film ({exc.strerror or exc})", file=sys.stderr)
        return 2
    print(f"{out}: life {doc['number']}, {len(doc['frames'])} wall frames, {frames} film frames")
    return 0
