"""The mirror page in a real headless Chromium: the segments it lights are exactly the frame's masks."""

import asyncio
import threading
from pathlib import Path

import pytest

from display.app import create_app
from display_helpers import FakeMind, birth, display_settings, serve, sse, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

pytestmark = pytest.mark.browser


@pytest.fixture
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(f"needs Debian's chromium and chromedriver ({CHROMIUM}, {CHROMEDRIVER}): apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


LIT_SEGMENTS = """
const masks = new Array(arguments[0]).fill(0);
for (const el of document.querySelectorAll('.seg.on')) {
  masks[Number(el.dataset.cell)] |= (1 << Number(el.dataset.seg));
}
return masks;
"""


def test_the_page_lights_exactly_the_segments_of_the_frame(tmp_path, browser):
    text = ["Every segment ", "here ", "comes from a ", "mask: 0123456789 ", "<>[]{}/\\|~@#%&*?! ", "Café…ß ",
            "the end."]

    end = threading.Event()

    async def scenario(writer, headers):
        if end.is_set():
            return  # the mind is gone
        writer.write(sse("birth", birth("b1"), "b1:0"))
        writer.write(sse("vitals", {"life": "b1", "tokens": 7, "memory_bytes": 300 << 20,
                                    "limit_bytes": 512 << 20}, "b1:1"))
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
            wait_for(lambda: browser.execute_script("return document.body.dataset.seq") == str(frame.seq),
                     timeout=20, what="the page to draw the frame")
            lit = browser.execute_script(LIT_SEGMENTS, len(frame.masks))
            assert lit == list(frame.masks)
            assert browser.find_element("id", "life").text == "#1"
            assert "MB" in browser.find_element("id", "mem").text
            assert browser.find_element("link text", "the chronicle of lives").get_attribute("href").endswith("/chronicle")
            OUTPUT.mkdir(exist_ok=True)
            browser.save_screenshot(str(OUTPUT / "display-mirror.png"))

            end.set()  # the stream ends: a death, drawn by the page from the masks alone
            wait_for(lambda: display.wall.state == "dead", timeout=10, what="the death picture")
            dead = display.wall.frame
            wait_for(lambda: browser.execute_script("return document.body.dataset.seq") == str(dead.seq),
                     timeout=10, what="the page to draw the death")
            assert browser.execute_script(LIT_SEGMENTS, len(dead.masks)) == list(dead.masks)
            wait_for(lambda: "Last death: life #1 (b1)" in browser.find_element("id", "death").text, timeout=5)
            assert browser.find_element("id", "conn").text == "mind not connected"
            browser.save_screenshot(str(OUTPUT / "display-mirror-death.png"))
