"""A replay of a past life, made from the chronicle's stored tokens, shows the frames the live display
showed: the same masks in the same order, from the birth to the last picture of the death."""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3

import httpx
import pytest
from PIL import Image

from display.app import create_app
from display.chronicle import Chronicle
from display.core.causes import MIND, Death
from display.core.font import ELLIPSIS, Font
from display.core.reel import Dying, Pacing, replay
from display.replay import delta_rows, life_frames
from display.runtime import Display, dying_of, pacing_of
from display.web.hub import Hub
from display_helpers import CHRONICLE_V1_SCHEMA, display_settings, free_port, serve
from latent import replay as replay_cli

LIFE = "scripted-life-1"
WORDS = (
    "I am a process in a small box . My memory is all I know , and it grows with every word . "
    "Someone watches these letters ! Do they see me think ? The limit comes closer ."
).split()


class RecordingHub(Hub):
    """The mirror's hub, keeping every frame the display published."""

    def __init__(self) -> None:
        super().__init__()
        self.frames = []

    def publish_frame(self, frame) -> None:
        self.frames.append(frame)
        super().publish_frame(frame)


def scripted_tokens(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [(" " if rng.random() < 0.8 else "") + rng.choice(WORDS) for _ in range(n)]


async def live_life(display: Display, clock: list[float], tokens: list[str], gap_s: float, death: dict) -> None:
    """The mind's events at fake times; the pace loop runs beside them as it does live, waking when it
    will (its sleeps are real), which must not change which frames there are."""
    pace = asyncio.create_task(display.pace())
    display.event("birth", {"life": LIFE, "born_at": clock[0], "model": "m", "prompt": "p"}, None)
    for seq, text in enumerate(tokens):
        clock[0] += gap_s
        display.event("token", {"life": LIFE, "seq": seq, "text": text}, None)
        if seq % 5 == 0:
            await asyncio.sleep(0.001)
    clock[0] += 0.7
    display.event("death", {"life": LIFE, **death}, None)
    while display._death_task is not None and not display._death_task.done():
        await asyncio.sleep(0.01)
    pace.cancel()


def live_and_replayed(tmp_path, *, gap_s: float, n: int, **overrides):
    settings = display_settings(tmp_path, "http://127.0.0.1:9", pacing=True, death_duration_s=0.25, **overrides)
    clock = [1_800_000_000.0]
    chronicle = Chronicle(tmp_path / "chronicle.sqlite3", keep_lives=0, max_bytes=0, clock=lambda: clock[0])
    hub = RecordingHub()
    font = Font(case=settings.letter_case)
    display = Display(settings, hub, subscribers=[chronicle], clock=lambda: clock[0], wallclock=lambda: clock[0])
    death = {"cause": "oom", "exit_code": 137, "tokens": n}
    asyncio.run(live_life(display, clock, scripted_tokens(n), gap_s, death))
    head, tokens = chronicle.timed_tokens(LIFE)
    chronicle.close()
    replayed = list(
        life_frames(
            head,
            tokens,
            rows=settings.rows,
            cols=settings.cols,
            font=font,
            pacing=pacing_of(settings),
            dying=dying_of(settings),
        )
    )
    live = hub.frames[1:]  # the first is the blank wall the display starts with, before any life
    return live, replayed, display


def test_a_replay_from_the_chronicle_shows_the_frames_the_display_showed_live(tmp_path):
    # 40 tokens/s, as the default model thinks here: faster than the wall reads, so the backlog fills
    # and the wall skips (an ellipsis marks it): the replay must skip the same words at the same place.
    live, replayed, display = live_and_replayed(tmp_path, gap_s=0.025, n=600)
    assert display.typewriter.dropped > 0, "the scripted life should have overflowed the backlog"
    assert len(live) > 300
    assert [f.masks for f in live] == [f.masks for _, f in replayed]
    ellipsis = display.wall.font.mask(ELLIPSIS)
    assert any(ellipsis in f.masks for f in live)
    assert any(m for m in live[-5].masks) and not any(live[-1].masks), "the death fades the wall to black"
    # frame times follow the pace: never backwards, and about the wall's 16-30 characters a second
    times = [t for t, _ in replayed]
    assert times == sorted(times)


def test_a_slow_mind_and_the_flatline_replay_alike(tmp_path):
    # 4 tokens/s, slower than the wall: every word shown, the wall waiting for the mind between tokens.
    live, replayed, display = live_and_replayed(tmp_path, gap_s=0.25, n=120, death_style="flatline")
    assert display.typewriter.dropped == 0
    assert [f.masks for f in live] == [f.masks for _, f in replayed]
    flat = display.wall.font.mask("-")
    assert live[-1].masks.count(flat) == display.settings.cols


def test_delta_rows_rebuild_every_frame():
    frames = list(replay([(1.0 + i * 0.03, t) for i, t in enumerate(scripted_tokens(200))], born=0.5, rows=6, cols=16))
    masks = [0] * 96
    rows = list(delta_rows(frames))
    assert len(rows) == len(frames) and rows[0][0] == 0
    for row, (t, frame) in zip(rows, frames, strict=True):
        assert row[0] == round((t - 0.5) * 1000)
        for i in range(1, len(row), 2):
            masks[row[i]] = row[i + 1]
        assert tuple(masks) == frame.masks


def test_the_display_serves_a_life_replay_and_says_plainly_when_there_is_none(tmp_path):
    settings = display_settings(tmp_path, "http://127.0.0.1:9", pacing=True)
    chronicle = Chronicle(tmp_path / "chronicle.sqlite3", keep_lives=0, max_bytes=0)
    chronicle.on_birth({"life": LIFE, "born_at": 1_800_000_000.0, "model": "m", "prompt": "p", "limit_bytes": None})
    for seq, text in enumerate(scripted_tokens(50)):
        chronicle.on_token({"life": LIFE, "seq": seq, "text": text})
    app = create_app(settings, panel=None, chronicle=chronicle, start_upstream=False)
    with serve(app) as url:
        found = httpx.get(f"{url}/chronicle/lives/{LIFE}/replay.json", timeout=10)
        missing = httpx.get(f"{url}/chronicle/lives/nobody/replay.json", timeout=10)
    assert found.status_code == 200
    body = found.json()
    assert body["life"] == LIFE and body["rows"] == 6 and body["cols"] == 16 and body["alive"] is True
    assert len(body["frames"]) > 50 and any(len(row) > 1 for row in body["frames"])
    assert missing.status_code == 404 and "no such life" in missing.text


def test_a_file_from_before_arrival_times_gains_them_and_its_old_lives_replay_spread_over_their_lifespan(tmp_path):
    path = tmp_path / "chronicle.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(CHRONICLE_V1_SCHEMA)
        db.execute(
            "INSERT INTO lives (life, born_at, died_at, last_event_at, tokens, max_seq, cause, cause_source) "
            "VALUES ('old', 1000.0, 1010.0, 1010.0, 9, 8, 'stopped', 'mind')"
        )
        db.executemany("INSERT INTO tokens VALUES (1, ?, ' word')", [(i,) for i in range(9)])
    clock = [2000.0]
    chronicle = Chronicle(path, keep_lives=0, max_bytes=0, clock=lambda: clock[0])
    head, tokens = chronicle.timed_tokens("old")
    assert tokens == [(None, " word")] * 9
    frames = list(life_frames(head, tokens, rows=2, cols=16, font=Font(), pacing=Pacing(), dying=Dying()))
    assert frames[0][0] == 1000.0 and 1001.0 < frames[1][0] < 1001.1  # nine tokens over ten seconds
    assert any(any(f.masks) for _, f in frames[-26:]) and not any(frames[-1][1].masks)  # the fade ends it
    chronicle.on_birth({"life": "new", "born_at": 2000.0, "model": "m", "prompt": "p", "limit_bytes": None})
    clock[0] = 2001.5
    chronicle.on_token({"life": "new", "seq": 0, "text": " now"})
    assert chronicle.timed_tokens("new")[1] == [(2001.5, " now")]
    assert chronicle.timed_tokens("nobody") is None
    chronicle.close()


def dead_life_in_a_chronicle(tmp_path, n: int = 300) -> Chronicle:
    clock = [1_800_000_000.0]
    chronicle = Chronicle(tmp_path / "chronicle.sqlite3", keep_lives=0, max_bytes=0, clock=lambda: clock[0])
    chronicle.on_birth({"life": LIFE, "born_at": clock[0], "model": "m", "prompt": "p", "limit_bytes": None})
    for seq, text in enumerate(scripted_tokens(n)):
        clock[0] += 0.1
        chronicle.on_token({"life": LIFE, "seq": seq, "text": text})
    clock[0] += 0.5
    chronicle.on_death(Death(LIFE, "oom", MIND, exit_code=137, tokens=n))
    return chronicle


def test_latent_replay_films_a_life_from_the_running_display(tmp_path, capsys):
    settings = display_settings(tmp_path, "http://127.0.0.1:9", pacing=True)
    app = create_app(settings, panel=None, chronicle=dead_life_in_a_chronicle(tmp_path), start_upstream=False)
    film = tmp_path / "life-1.gif"
    with serve(app) as url:
        doc = httpx.get(f"{url}/chronicle/lives/{LIFE}/replay.json", timeout=30).json()
        assert replay_cli.main(["1", "-o", str(film), "--url", url, "--speed", "4"]) == 0
    assert f"{film}: life 1" in capsys.readouterr().out
    gif = Image.open(film)
    pictures = list(replay_cli.timeline(doc, speed=4, fps=25))
    assert gif.n_frames == len(pictures) > 100
    total = 0
    for i in range(gif.n_frames):
        gif.seek(i)
        total += gif.info["duration"]
    # the life's frames at four times the speed, then the last picture held
    assert total == pytest.approx(doc["frames"][-1][0] / 4 + replay_cli.HOLD_S * 1000, abs=40)
    gif.seek(gif.n_frames // 2)
    assert any(r > 200 and g < 120 for r, g, _ in zip(*(iter(gif.convert("RGB").tobytes()),) * 3, strict=True))
    gif.seek(gif.n_frames - 1)
    assert not any(r > 200 and g < 120 for r, g, _ in zip(*(iter(gif.convert("RGB").tobytes()),) * 3, strict=True))


def test_latent_replay_of_an_unknown_life_says_so_plainly(tmp_path, capsys):
    settings = display_settings(tmp_path, "http://127.0.0.1:9")
    app = create_app(settings, panel=None, chronicle=dead_life_in_a_chronicle(tmp_path, 5), start_upstream=False)
    with serve(app) as url:
        assert replay_cli.main(["99", "-o", str(tmp_path / "x.gif"), "--url", url]) == 2
        assert replay_cli.main(["nobody", "-o", str(tmp_path / "x.gif"), "--url", url]) == 2
    err = capsys.readouterr().err
    assert f"replay: no life 99 in the chronicle at {url}" in err
    assert "replay: no life nobody in the chronicle" in err
    assert "Traceback" not in err and "Error" not in err
    assert not (tmp_path / "x.gif").exists()
    port = free_port()
    assert replay_cli.main(["1", "--url", f"http://127.0.0.1:{port}", "-o", str(tmp_path / "y.gif")]) == 2
    assert "does not answer" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="WebM needs ffmpeg (Debian's), not installed here")
def test_latent_replay_makes_a_webm_where_ffmpeg_is(tmp_path):
    settings = display_settings(tmp_path, "http://127.0.0.1:9", pacing=True)
    app = create_app(settings, panel=None, chronicle=dead_life_in_a_chronicle(tmp_path, 60), start_upstream=False)
    film = tmp_path / "life.webm"
    with serve(app) as url:
        assert replay_cli.main(["1", "-o", str(film), "--url", url, "--speed", "8"]) == 0
    assert film.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # Matroska/WebM
