"""The mirror replays a past life in a real headless Chromium, reached from the chronicle's link: it
plays every frame the display made from the stored tokens and ends on the death picture."""

from pathlib import Path

import httpx
import pytest

from display.app import create_app
from display_helpers import chromium, display_settings, serve, wait_for
from test_replay import LIFE, dead_life_in_a_chronicle

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

pytestmark = pytest.mark.browser

LIT_SEGMENTS = """
const masks = new Array(arguments[0]).fill(0);
for (const el of document.querySelectorAll('.seg.on')) {
  masks[Number(el.dataset.cell)] |= (1 << Number(el.dataset.seg));
}
return masks;
"""


@pytest.fixture
def browser():
    with chromium(1280, 800, 30) as driver:
        yield driver


def test_the_chronicle_links_a_replay_the_mirror_plays_to_the_death(tmp_path, browser):
    from selenium.webdriver.common.by import By

    settings = display_settings(tmp_path, "http://127.0.0.1:9", pacing=True, death_style="flatline")
    app = create_app(settings, panel=None, chronicle=dead_life_in_a_chronicle(tmp_path, 150), start_upstream=False)
    OUTPUT.mkdir(exist_ok=True)
    with serve(app) as url:
        doc = httpx.get(f"{url}/chronicle/lives/{LIFE}/replay.json", timeout=30).json()
        final = [0] * (doc["rows"] * doc["cols"])
        for row in doc["frames"]:
            for i in range(1, len(row), 2):
                final[row[i]] = row[i + 1]
        browser.get(f"{url}/chronicle?life={LIFE}")
        link = browser.find_element(By.LINK_TEXT, "four times faster")
        assert link.get_attribute("href") == f"{url}/?replay={LIFE}&speed=4"
        browser.save_screenshot(str(OUTPUT / "replay-chronicle-link.png"))
        browser.get(f"{url}/?replay={LIFE}&speed=40")
        wait_for(lambda: "The end of life #1" in browser.find_element(By.ID, "death").text, timeout=30, what="the end")
        browser.save_screenshot(str(OUTPUT / "replay-mirror-end.png"))
        assert int(browser.execute_script("return document.body.dataset.seq")) == len(doc["frames"])
        assert browser.execute_script(LIT_SEGMENTS, len(final)) == final
        assert sum(1 for m in final if m) == settings.cols  # the flat line across the wall
        assert "replay of life #1" in browser.find_element(By.ID, "conn").text
        browser.get(f"{url}/?replay=nobody")
        wait_for(lambda: "no such life" in browser.find_element(By.ID, "conn").text, timeout=10, what="the refusal")
