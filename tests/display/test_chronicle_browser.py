"""The chronicle page in a real headless Chromium at 1, 10 and 1,000 lives: the axes name the right lives,
the plots are drawn, the living life is on the limit plots; and the mirror names the prompt frame.
Screenshots go to test-output/chronicle-<n>-lives.png."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI

from chronicle_lives import many_lives
from display.app import create_app
from display.chronicle import Chronicle, chronicle_router
from display_helpers import FakeMind, birth, chromium, display_settings, serve, sse, wait_for

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    with chromium(1280, 900, 60) as driver:
        yield driver


# What the page shows, read from the rendered DOM: each plot's title, its axis labels, its drawn marks
# and their on-screen size, the table's rows, and whether anything spills out of the window sideways.
READ_PAGE = """
const plots = [...document.querySelectorAll('.plots svg')].map(svg => {
  const box = svg.getBoundingClientRect();
  return {
    title: svg.querySelector('title').textContent,
    axis: [...svg.querySelectorAll('text.axis')].map(t => t.textContent),
    texts: [...svg.querySelectorAll('text')].map(t => t.textContent),
    bars: svg.querySelectorAll('rect').length,
    points: svg.querySelectorAll('circle').length,
    hollow: svg.querySelectorAll('circle[fill="none"]').length,
    width: box.width, height: box.height,
  };
});
return {
  plots,
  rows: document.querySelectorAll('tr.alive, tr.dead').length,
  frames: [...document.querySelectorAll('table.frames tbody tr')].map(r => r.cells[0].textContent),
  overflow: document.documentElement.scrollWidth > window.innerWidth,
};
"""


@pytest.mark.parametrize("n", [1, 10, 1000])
def test_the_chronicle_page_reads_right_at_1_10_and_1000_lives(tmp_path, browser, n):
    chronicle = Chronicle(tmp_path / "chronicle.db", keep_lives=0, max_bytes=0)
    try:
        started = time.monotonic()
        many_lives(chronicle, n)  # the last one still alive, at a 480 or 700 MiB limit
        chronicle.judge_pending()
        written = time.monotonic() - started
        app = FastAPI()
        app.include_router(chronicle_router(chronicle))
        with serve(app) as url:
            started = time.monotonic()
            browser.get(url + "/chronicle")
            loaded = time.monotonic() - started
            page = browser.execute_script(READ_PAGE)
            OUTPUT.mkdir(exist_ok=True)
            browser.save_screenshot(str(OUTPUT / f"chronicle-{n}-lives.png"))
    finally:
        chronicle.close()
    print(f"{n} lives: written in {written:.2f} s, page loaded in {loaded:.2f} s")

    plots = {p["title"]: p for p in page["plots"]}
    assert len(plots) == 4
    for p in plots.values():
        assert p["width"] > 200 and p["height"] > 100  # drawn, at its size
    for title in ("Lifespan per life (tokens)", "Lifespan per life (minutes)"):
        bars = plots[title]
        assert bars["bars"] == n and "no lives yet" not in bars["texts"]
        # one life is named once; more are named at both ends, oldest to newest
        assert bars["axis"] == (["life 1"] if n == 1 else ["life 1", f"life {n}"])
    for title in ("Tokens lived against memory limit", "Minutes lived against memory limit"):
        scatter = plots[title]
        # every life had a limit: all are plotted, the living one hollow; none says "no life with a limit"
        assert scatter["points"] == n and scatter["hollow"] == 1
        assert "no life with a memory limit yet" not in scatter["texts"]
        assert scatter["axis"][-1] in ("500 MiB", "1,000 MiB")  # the x axis ends past the largest limit
    assert page["rows"] == n
    assert page["frames"] == (["transcript (a1a1a1a1)"] if n < 3 else ["transcript (a1a1a1a1)", "entity (e2e2e2e2)"])
    assert not page["overflow"]
    assert loaded < 20


def test_the_mirror_names_the_prompt_frame_of_the_life(tmp_path, browser):
    end = threading.Event()

    async def scenario(writer, headers):
        if end.is_set():
            return
        writer.write(sse("birth", {**birth("f1"), "frame": "entity", "frame_sha256": "e2" * 32}, "f1:0"))
        writer.write(sse("token", {"life": "f1", "seq": 0, "text": "I am "}, "f1:1"))
        await writer.drain()
        while not end.is_set():
            writer.write(b": ping\n\n")
            await writer.drain()
            await asyncio.sleep(0.05)

    with FakeMind(scenario) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=None, chronicle=None)
        with serve(app) as url:
            browser.get(url + "/")
            wait_for(lambda: browser.find_element("id", "promptframe").is_displayed(), timeout=20, what="the frame")
            assert browser.find_element("id", "promptframe").text == "prompt frame entity"
            OUTPUT.mkdir(exist_ok=True)
            browser.save_screenshot(str(OUTPUT / "display-mirror-frame.png"))
            end.set()
