"""scripts/wall-test: its pictures (pure), a run on an emulated wall, finding a wiring from what a maker
sees, and the command line."""

from __future__ import annotations

import asyncio
import io
import os
import queue
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from chips import Board, EmulatedLine, EmulatedSpi, ShiftChain, lit_shift16
from display.adapters.panels import build_panel
from display.core.bringup import all_on, cell_labels, chain_walk, each_segment, segment_bit, wiring_from_answers
from display.core.font import ALL_SEGMENTS, DP, Font
from display.settings import DisplaySettings
from display.walltest import run
from display_helpers import free_port, wait_for
from test_mirror_browser import LIT_SEGMENTS, browser  # noqa: F401 - the headless Chromium fixture

ROOT = Path(__file__).resolve().parents[2]
ROWS, COLS = 6, 16
A, B, R = 1 << 0, 1 << 1, 1 << 12
DOT = 16  # the decimal point's bit


class SyncPanel:
    """A chip panel driven in the caller's thread, so the emulator holds each picture at once."""

    def __init__(self, chip) -> None:
        self.chip = chip
        self.segments = chip.segments
        chip.start()

    def show(self, frame) -> None:
        self.chip.show(frame)

    def close(self) -> None:
        self.chip.close()


def test_all_on_lights_every_segment_the_panel_has_on_every_cell():
    (step,) = all_on(2, 3, ALL_SEGMENTS & ~DP)
    assert step.masks == (ALL_SEGMENTS & ~DP,) * 6


def test_each_segment_walks_the_outputs_in_order_one_segment_on_every_cell():
    wiring = [1, 0] + list(range(2, 15)) + [-1, 15]  # A on output 1, B on 0, U unwired, DP on 15
    steps = each_segment(2, 2, wiring)
    assert [s.pin for s in steps] == list(range(16))
    assert steps[0].masks == (B,) * 4 and steps[0].caption == "output 0: segment B"
    assert steps[15].masks == (DP,) * 4 and steps[15].caption.endswith("segment DP")


def test_cells_show_their_column_then_their_row():
    font = Font(case="upper")
    columns, rows = cell_labels(2, 12, font)
    assert columns.masks[11] == font.mask("B") and columns.masks[12 + 3] == font.mask("3")
    assert rows.masks[11] == font.mask("0") and rows.masks[12 + 3] == font.mask("1")


def test_the_chain_walk_lights_one_cell_at_a_time_in_chain_order():
    chain = [0, 1, 2, 5, 4, 3]
    steps = chain_walk(2, 3, chain, 0xFF, per_board=3)
    assert [s.masks.index(0xFF) for s in steps] == chain
    assert all(sum(1 for m in s.masks if m) == 1 for s in steps)
    assert steps[3].caption == "chain position 3 (board 1, module 0): row 1, column 2"


def test_answers_give_the_wiring_of_the_board():
    identity = list(range(16)) + [-1]
    # output 0 lit B, output 1 lit A, output 12 lit the dot, output 15 lit nothing
    found = wiring_from_answers(identity, {0: 1, 1: 0, 12: 16, 15: None})
    assert found == [1, 0] + list(range(2, 12)) + [-1, 13, 14, -1, 12]
    with pytest.raises(ValueError, match="segment A"):
        wiring_from_answers(identity, {0: 0, 1: 0})
    assert segment_bit("dp") == 16 and segment_bit("k") == 8


def emulated_wall(outputs: dict[int, int], seed: int, **settings_kw):
    chain = ShiftChain(ROWS * COLS, random.Random(seed))
    settings = DisplaySettings(rows=ROWS, cols=COLS, panel="shift16", **settings_kw)
    chip = build_panel(settings, "shift16", spi=EmulatedSpi(chain), output_enable=EmulatedLine(chain, False))
    board = Board([r * COLS + c for r in range(ROWS) for c in range(COLS)], outputs)
    return settings, SyncPanel(chip), lambda: lit_shift16(chain, board, ROWS * COLS)


def test_every_picture_of_a_run_is_on_the_wall_as_on_the_mirror():
    settings, panel, lit = emulated_wall({p: p for p in range(16)}, 1)
    seen = []

    async def pause(step, frame):
        assert lit() == list(frame.masks) == list(step.masks)
        seen.append(step.mode)

    asyncio.run(
        run(settings, ["all", "segments", "cells", "chain"], panel, mirror=False, pause=pause, out=io.StringIO())
    )
    assert seen == ["all"] + ["segments"] * 16 + ["cells"] * 2 + ["chain"] * 96
    panel.close()
    assert not any(lit())


def test_asking_the_maker_finds_a_board_wired_differently_from_the_settings(capsys):
    # the board as built: A and B swapped, the dot on output 12 where the settings expect R
    outputs = {p: p for p in range(16)} | {0: 1, 1: 0, 12: DOT}
    settings, panel, lit = emulated_wall(outputs, 2)

    def maker(prompt: str) -> str:  # looks at the first cell of the wall and names what is lit
        (seg,) = [s for s in range(17) if lit()[0] >> s & 1]
        return "DP" if seg == DOT else "ABCDEFGHKMNPRSTU"[seg]

    found = asyncio.run(run(settings, ["segments"], panel, ask=True, mirror=False, reader=maker))
    assert found == [1, 0] + list(range(2, 12)) + [-1, 13, 14, 15, 12]
    out = capsys.readouterr().out
    assert "set this in .env: DISPLAY_WIRING=[1,0,2,3,4,5,6,7,8,9,10,11,-1,13,14,15,12]" in out
    assert "segments no output lit: R" in out
    # with what it found, every glyph shows as the mirror draws it
    settings, panel, lit = emulated_wall(outputs, 3, wiring=found)
    font = Font(panel.segments, "upper")
    assert font.mask(".") == DP and not font.segments & R

    async def check(step, frame):
        assert lit() == list(frame.masks)

    asyncio.run(run(settings, ["all", "segments", "cells"], panel, mirror=False, pause=check, out=io.StringIO()))


def test_the_command_line_help_and_a_dry_run(tmp_path):
    help_ = subprocess.run([ROOT / "scripts" / "wall-test", "--venv", "--help"], capture_output=True, text=True)
    assert help_.returncode == 0 and "segments" in help_.stdout and "--ask" in help_.stdout
    env = {"PATH": "/usr/bin:/bin", "DISPLAY_PANEL": "max6954", "DISPLAY_CELL_ORDER": "serpentine"}
    dry = subprocess.run(
        [ROOT / "scripts" / "wall-test", "--venv", "--dry-run", "--no-mirror", "--step", "0", "--chain-step", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    # the MAX6954 has no output for B: 16 outputs, 16 segments; the serpentine chain comes back on row 1
    assert len(lines) == 1 + 16 + 2 + 96
    assert "[segments 16/16] output 15: segment DP" in lines
    assert "[chain 17/96] chain position 16 (board 2, module 0): row 1, column 15" in lines


def test_without_a_device_it_says_so_and_exits_2():
    env = {"PATH": "/usr/bin:/bin", "DISPLAY_PANEL": "shift16", "DISPLAY_SPI_BUS": "97"}
    result = subprocess.run(
        [sys.executable, "-m", "display.walltest", "--no-mirror"],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(ROOT / "services")},
        timeout=60,
    )
    assert result.returncode == 2 and "no panel to test" in result.stderr


@pytest.mark.browser
def test_the_mirror_shows_each_picture_with_its_caption(browser):  # noqa: F811
    settings, panel, lit = emulated_wall({p: p for p in range(16)}, 4)
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": free_port()})
    shown: queue.Queue = queue.Queue()
    go_on = threading.Event()

    async def pause(step, frame):
        shown.put((step, frame))
        await asyncio.to_thread(go_on.wait)
        go_on.clear()

    runner = threading.Thread(
        target=lambda: asyncio.run(
            run(settings, ["all", "segments", "cells", "chain"], panel, pause=pause, out=io.StringIO())
        ),
        daemon=True,
    )
    runner.start()
    opened = False
    checked = 0
    for i in range(1 + 16 + 2 + 96):
        step, frame = shown.get(timeout=20)
        if i in (0, 9, 17, 18, 40):  # all; output 8 (K); columns; rows; a cell of the chain
            if not opened:
                browser.get(f"http://127.0.0.1:{settings.port}/")
                opened = True
            wait_for(
                lambda seq=frame.seq: browser.execute_script("return document.body.dataset.seq") == str(seq),
                timeout=20,
                what="the page to draw the picture",
            )
            assert browser.execute_script(LIT_SEGMENTS, len(frame.masks)) == list(frame.masks) == lit()
            caption = browser.find_element("id", "caption").text
            assert caption.endswith(step.caption) and caption.startswith(f"[{step.mode} ")
            checked += 1
        go_on.set()
    runner.join(timeout=20)
    assert checked == 5 and not runner.is_alive()


@pytest.mark.docker
def test_it_runs_in_the_display_image_through_compose():
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker engine")
    subprocess.run(
        [ROOT / "scripts" / "build-images", "display"], cwd=ROOT, check=True, capture_output=True, timeout=1800
    )
    project = f"walltest{os.getpid()}"  # never a running installation's, nor its chronicle
    env = {**os.environ, "COMPOSE_PROJECT_NAME": project, "CHRONICLE_VOLUME": f"{project}_chronicle"}
    try:
        result = subprocess.run(
            [ROOT / "scripts" / "wall-test", "--docker", "--dry-run", "--no-mirror", "--step", "0", "all", "segments"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "[segments 16/16] output 15: segment U"
    finally:
        subprocess.run(["bash", "-c", ". scripts/lib.sh && compose down -v"], cwd=ROOT, capture_output=True, env=env)
