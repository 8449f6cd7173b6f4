"""The mirror page in a real headless Chromium: the segments it lights are exactly the frame's masks."""

import asyncio
import threading
import time
from pathlib import Path

import pytest

from display.app import create_app
from display_helpers import FakeMind, birth, chromium, display_settings, hold, serve, sse, wait_for

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

pytestmark = pytest.mark.browser


@pytest.fixture
def browser():
    with chromium(1280, 800, 30) as driver:
        yield driver


LIT_SEGMENTS = """
const masks = new Array(arguments[0]).fill(0);
for (const el of document.querySelectorAll('.seg.on')) {
  masks[Number(el.dataset.cell)] |= (1 << Number(el.dataset.seg));
}
return masks;
"""


def test_the_page_lights_exactly_the_segments_of_the_frame(tmp_path, browser):
    text = [
        "Every segment ",
        "here ",
        "comes from a ",
        "mask: 0123456789 ",
        "<>[]{}/\\|~@#%&*?! ",
        "Café…ß ",
        "the end.",
    ]

    end = threading.Event()

    async def scenario(writer, headers):
        if end.is_set():
            return  # the mind is gone
        writer.write(sse("birth", birth("b1"), "b1:0"))
        writer.write(
            sse("vitals", {"life": "b1", "tokens": 7, "memory_bytes": 300 << 20, "limit_bytes": 512 << 20}, "b1:1")
        )
        for i, t in enumerate(text):
            writer.write(sse("token", {"life": "b1", "seq": i, "text": t}, f"b1:{i + 2}"))
        await writer.drain()
        while not end.is_set():
            writer.write(b": ping\n\n")
            await writer.drain()
            await asyncio.sleep(0.05)

    with FakeMind(scenario) as mind:
        app = create_app(display_settings(tmp_path, mind.url), panel=None, chronicle=None)
        with serve(app) as url:
            display = app.state.display
            wait_for(lambda: display.tokens_total == len(text), what="all tokens")
            frame = display.wall.frame
            assert sum(1 for m in frame.masks if m) > 40
            browser.get(url + "/")
            wait_for(
                lambda: browser.execute_script("return document.body.dataset.seq") == str(frame.seq),
                timeout=20,
                what="the page to draw the frame",
            )
            lit = browser.execute_script(LIT_SEGMENTS, len(frame.masks))
            assert lit == list(frame.masks)
            assert browser.find_element("id", "life").text == "#1"
            assert "MB" in browser.find_element("id", "mem").text
            assert (
                browser.find_element("link text", "the chronicle of lives").get_attribute("href").endswith("/chronicle")
            )
            OUTPUT.mkdir(exist_ok=True)
            browser.save_screenshot(str(OUTPUT / "display-mirror.png"))

            end.set()  # the stream ends: a death, drawn by the page from the masks alone
            wait_for(lambda: display.wall.state == "dead", timeout=10, what="the death picture")
            dead = display.wall.frame
            wait_for(
                lambda: browser.execute_script("return document.body.dataset.seq") == str(dead.seq),
                timeout=10,
                what="the page to draw the death",
            )
            assert browser.execute_script(LIT_SEGMENTS, len(dead.masks)) == list(dead.masks)
            wait_for(lambda: "Last death: life #1 (b1)" in browser.find_element("id", "death").text, timeout=5)
            assert browser.find_element("id", "conn").text == "waiting for the mind"
            browser.save_screenshot(str(OUTPUT / "display-mirror-death.png"))


def test_the_page_says_what_is_true_now_and_shows_the_cause_of_death_in_words(tmp_path, browser):
    """Waiting (no mind), loading (stream open, /health says loading, dark wall), connected (a life),
    waiting again (killed), loading again (resurrected), then the display gone: each exactly then."""
    born = threading.Event()

    async def scenario(writer, headers):
        if len(mind.connections) == 1:
            while not born.is_set():  # the model loads: the stream is open and says nothing
                writer.write(b": ping\n\n")
                await writer.drain()
                await asyncio.sleep(0.1)
            writer.write(sse("birth", {**birth("w1"), "limit_bytes": 10_000_000}, "w1:0"))
            writer.write(sse("token", {"life": "w1", "seq": 0, "text": "near the end "}, "w1:1"))
            writer.write(
                sse("vitals", {"life": "w1", "tokens": 1, "memory_bytes": 9_800_000, "limit_bytes": 10_000_000}, "w1:2")
            )
            await writer.drain()
            await asyncio.sleep(1.5)
            return  # killed at its limit: the stream just ends
        while True:  # the mind is up again, loading: connected, no birth yet
            writer.write(b": ping\n\n")
            await writer.drain()
            await asyncio.sleep(0.1)

    def health():
        return {"state": "thinking" if born.is_set() and len(mind.connections) == 1 else "loading", "life": "w1"}

    def conn_text() -> str:
        return browser.find_element("id", "conn").text

    def lit() -> int:
        return browser.execute_script("return document.querySelectorAll('.seg.on').length")

    mind = FakeMind(scenario, health=health)  # its port is known; nothing listens there yet
    app = create_app(display_settings(tmp_path, mind.url, health_interval_s=0.1), panel=None, chronicle=None)
    with serve(app) as url:
        browser.get(url + "/")
        wait_for(lambda: conn_text() == "waiting for the mind", timeout=10, what="waiting: no mind yet")
        with mind:
            wait_for(lambda: conn_text() == "the mind is loading its model", timeout=10, what="the mind loading")
            assert app.state.display.upstream_connected and lit() == 0  # a dark wall, and the page says why
            born.set()
            wait_for(lambda: conn_text() == "mind connected", timeout=10, what="a live life")
            assert lit() > 0
            wait_for(lambda: "Last death" in browser.find_element("id", "death").text, timeout=10, what="the death")
            death = browser.find_element("id", "death").text
            assert death.endswith("cause: probable oom (memory near its limit).")
            assert "Error" not in death and "undefined" not in death
            wait_for(lambda: conn_text() == "the mind is loading its model", timeout=10, what="the mind back, loading")
        wait_for(lambda: conn_text() == "waiting for the mind", timeout=10, what="waiting: the mind gone")
    # the display is gone: the page must not go on claiming the mind is connected
    time.sleep(2.5)  # the page redraws its status every second
    assert conn_text() == "display not reachable"


@pytest.mark.parametrize("grid", [None, 400.0], ids=["no grid factor", "grid factor"])
def test_the_page_shows_the_lives_joules_thinking_and_lighting_as_estimates(tmp_path, browser, grid):
    async def scenario(writer, headers):
        writer.write(sse("birth", birth("e1"), "e1:0"))
        writer.write(sse("token", {"life": "e1", "seq": 0, "text": "a small machine "}, "e1:1"))
        vitals = {"life": "e1", "tokens": 1, "cpu_seconds": 40.0, "cpu_joules": 37.0, "energy_model": "pi4"}
        writer.write(sse("vitals", vitals, "e1:2"))
        await writer.drain()
        await hold(writer)

    def energy_text() -> str:
        return browser.find_element("id", "energy").text

    with FakeMind(scenario) as mind:
        settings = display_settings(tmp_path, mind.url, grid_g_per_kwh=grid)
        app = create_app(settings, panel=None, chronicle=None)
        with serve(app) as url:
            browser.get(url + "/")
            wait_for(lambda: "thinking" in energy_text(), timeout=10, what="the energy of the life")
            text = energy_text()
            assert text.startswith("37 J thinking, ") and " lighting" in text and text.endswith("(estimated)")
            assert ("g CO₂" in text) == (grid is not None)
            assert "undefined" not in text and "NaN" not in text
            if grid is not None:
                browser.save_screenshot(str(OUTPUT / "display-mirror-energy.png"))
