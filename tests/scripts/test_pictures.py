"""scripts/pictures.py remakes the README's pictures from a real life: run it into a temporary folder."""

import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "mind"))
from mind_helpers import can_make_memory_cgroup  # noqa: E402

pytestmark = [pytest.mark.model, pytest.mark.browser, pytest.mark.cgroup]
SEGMENT_ON = (0xFF, 0x4A, 0x1C)  # the mirror's --on colour


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and the rows (RGB or RGBA bytes) of an 8-bit, non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, [b"".join(r[i : i + 3] for i in range(0, stride, bpp)) for r in rows]


def lit_pixels(path: Path, tolerance: int = 40) -> int:
    _, _, rows = png_pixels(path)
    count = 0
    for row in rows:
        for i in range(0, len(row), 3):
            if all(abs(row[i + k] - SEGMENT_ON[k]) <= tolerance for k in range(3)):
                count += 1
    return count


def test_the_pictures_command_makes_every_picture_from_a_real_life(tmp_path):
    if not can_make_memory_cgroup():
        pytest.skip("cannot create a child memory cgroup (needs root, or a delegated v2 subtree)")
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed in this environment")
    pytest.importorskip("selenium", reason="selenium is not installed in this environment")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("needs Debian's chromium and chromedriver")
    out = tmp_path / "img"
    run = subprocess.run(
        # the default headroom: with 10 MiB the kill came within 120 tokens of the limit, before a picture
        # of the life could be taken (the script then refuses rather than show the death as the life)
        [sys.executable, str(ROOT / "scripts" / "pictures.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for name in ("mirror-life.png", "mirror-death.png", "chronicle.png", "memory.svg"):
        assert (out / name).stat().st_size > 1000, name
    width, height, _ = png_pixels(out / "mirror-life.png")
    assert width == 960 and height > 300
    life = lit_pixels(out / "mirror-life.png")
    assert life > 5000, life  # lit segments: a wall of text (the memory bar alone is under 1300)
    # a fifth into the fade: segments still lit (how many depends on how full the wall was at the death)
    assert lit_pixels(out / "mirror-death.png") > 1300
    svg = ET.parse(out / "memory.svg").getroot()
    ns = "{http://www.w3.org/2000/svg}"
    (line,) = svg.iter(ns + "polyline")
    assert len(line.get("points").split()) >= 10  # measured vitals, not a sketch
    assert len(list(svg.iter(ns + "circle"))) >= 1  # a growth step on the way to the limit
    assert any("memory limit" in (t.text or "") for t in svg.iter(ns + "text"))
    assert "OOM kills in its cgroup" in run.stderr
