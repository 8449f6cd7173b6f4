"""The chronicle page's pure parts: durations, axes and the SVG plots."""

from __future__ import annotations

import re

from display.chronicle import render


def life(number: int, tokens: int, minutes: float, limit_mib: int | None, alive: bool = False) -> dict:
    return {
        "number": number,
        "life": f"{number:04x}",
        "born_at": 1_800_000_000.0,
        "died_at": None if alive else 1.0,
        "alive": alive,
        "lifespan_s": minutes * 60,
        "tokens": tokens,
        "missing_tokens": 0,
        "model": "m",
        "limit_bytes": None if limit_mib is None else limit_mib * render.MiB,
        "peak_memory_bytes": None,
        "cause": None if alive else "oom",
        "cause_source": None if alive else "vitals",
        "last_event_at": 1.0,
    }


def test_bars_are_proportional_to_the_lifespans():
    svg = render.bar_chart("t", "tokens", [("life 1", 1000, False), ("life 2", 500, False), ("life 3", 250, True)])
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', svg)]
    assert len(heights) == 3
    assert abs(heights[0] / heights[1] - 2) < 0.01 and abs(heights[1] / heights[2] - 2) < 0.01
    assert svg.count('fill="#fc6"') == 1  # the life still being lived is drawn apart


def test_lifespan_against_limit_plots_the_lives_with_a_limit_and_the_living_one_apart():
    lives = [life(1, 1000, 10, 512), life(2, 2000, 20, 1024), life(3, 50, 1, None), life(4, 10, 0.1, 2048, alive=True)]
    plots = render.plots(lives)
    assert plots.count("<svg") == 4
    scatters = plots.split("Tokens lived against memory limit", 1)[1]
    assert scatters.count("<circle") == 6  # lives 1, 2 and 4, in each of the two scatter plots
    assert "life 1: 1000 tokens at 512 MiB" in scatters and "life 3" not in scatters
    # the living life is a hollow point: its lifespan so far is a lower bound
    assert "life 4: 10 tokens so far (alive) at 2048 MiB" in scatters
    assert scatters.count('fill="none"') == 2 and "no life with a memory limit yet" not in scatters


def test_an_empty_chronicle_still_renders_and_says_so():
    page = render.page([])
    assert "no lives yet" in page and "no life with a memory limit yet" in page
    assert page.startswith("<!doctype html>") and page.endswith("</html>")


def test_axes_end_on_round_numbers_and_durations_read_naturally():
    assert [render._nice_max(v) for v in (0, 3, 10, 11, 240, 251, 4900)] == [1.0, 5, 10, 20, 250, 500, 5000]
    assert render._duration(59) == "0 min 59 s"
    assert render._duration(3 * 3600 + 5 * 60) == "3 h 05 min"
