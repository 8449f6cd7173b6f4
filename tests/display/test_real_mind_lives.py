"""The display against a real `python -m mind` (scripted source): a life, a kill -9, a resurrection."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from display.app import create_app
from display_helpers import Recorder, display_settings, free_port, serve, wait_for

SERVICES = Path(__file__).resolve().parents[2] / "services"


def start_mind(port: int, tmp_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(SERVICES),
        "MIND_SOURCE": "scripted",
        "MIND_HOST": "127.0.0.1",
        "MIND_PORT": str(port),
        "MIND_SCRIPTED_RATE": "50",
        "MIND_TOKENS_PER_S": "0",  # the scripted rate sets the pace, not the breath
    }
    log = open(tmp_path / f"mind-{time.monotonic_ns()}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "mind"], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the mind exited with {proc.returncode}; see {log.name}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    pytest.fail("the mind did not become healthy within 60 s")


def test_a_real_mind_dies_by_kill_9_and_the_display_sees_a_death_and_a_new_life(tmp_path):
    port = free_port()
    rec = Recorder()
    # the display boots first: the mind is not up yet
    app = create_app(
        display_settings(tmp_path, f"http://127.0.0.1:{port}", death_style="fade"), panel=None, subscribers=[rec]
    )
    with serve(app) as url:
        display = app.state.display
        mind = start_mind(port, tmp_path)
        try:
            wait_for(lambda: display.tokens_total >= 20, timeout=30, what="the first life's thoughts")
            first = display.life
            assert any(line.strip() for line in display.wall.grid.text())

            mind.send_signal(signal.SIGKILL)  # a death: the stream breaks, nobody announces it
            mind.wait(10)
            wait_for(lambda: ("death", first) in rec.calls, timeout=10, what="the death")
            wait_for(lambda: display.wall.state == "dead", timeout=10, what="the death picture")
            assert sum(display.wall.frame.masks) == 0  # the fade ends dark
            assert httpx.get(url + "/health").json()["mind_connected"] is False

            mind = start_mind(port, tmp_path)  # the resurrection: a new process, no memory
            wait_for(
                lambda: display.life not in (None, first) and display.tokens_total > 0, timeout=30, what="a new life"
            )
            wait_for(lambda: display.wall.state == "alive" and any(display.wall.frame.masks), timeout=10)
            assert display.lives_total == 2
            assert [k for k in rec.kinds() if k in ("birth", "death")] == ["birth", "death", "birth"]
            assert display.last_death["life"] == first
            metrics = httpx.get(url + "/metrics").text
            assert "display_lives_total 2" in metrics
            # the chronicle, wired by create_app, saw both lives
            assert len(app.state.chronicle.lives()) == 2
        finally:
            mind.kill()
            mind.wait(10)


def test_a_frozen_real_mind_is_shown_dead_and_taken_back_when_it_thaws(tmp_path):
    port = free_port()
    mind = start_mind(port, tmp_path)
    rec = Recorder()
    try:
        # a read timeout far below the mind's ping interval: only a busy mind counts as alive here
        app = create_app(
            display_settings(tmp_path, f"http://127.0.0.1:{port}", read_timeout_s=1.0, reconnect_max_s=0.2),
            panel=None,
            chronicle=None,
            subscribers=[rec],
        )
        with serve(app):
            display = app.state.display
            wait_for(lambda: display.tokens_total >= 10, timeout=30, what="thoughts")
            life = display.life
            mind.send_signal(signal.SIGSTOP)
            try:
                wait_for(lambda: ("death", life) in rec.calls, timeout=10, what="silence to count as death")
                assert display.upstream_connected is False
            finally:
                mind.send_signal(signal.SIGCONT)
            before = display.tokens_total
            wait_for(
                lambda: display.wall.state == "alive" and display.tokens_total > before + 10,
                timeout=30,
                what="the same life to go on",
            )
            assert display.life == life and display.lives_total == 1
            assert [k for k in rec.kinds() if k in ("birth", "death", "resume")] == ["birth", "death", "resume"]
    finally:
        mind.kill()
        mind.wait(10)


def test_a_real_mind_stopped_by_sigterm_announces_it_and_the_display_records_stopped(tmp_path):
    # The contract end to end: the mind's own death event (mind.death) as the display takes it.
    port = free_port()
    rec = Recorder()
    app = create_app(display_settings(tmp_path, f"http://127.0.0.1:{port}"), panel=None, subscribers=[rec])
    with serve(app) as url:
        display = app.state.display
        mind = start_mind(port, tmp_path)
        try:
            wait_for(lambda: display.tokens_total >= 20, timeout=30, what="thoughts")
            life = display.life
            mind.send_signal(signal.SIGTERM)
            assert mind.wait(10) == 0
            wait_for(lambda: ("death", life) in rec.calls, timeout=10, what="the death")
        finally:
            mind.kill()
            mind.wait(10)
        (death,) = rec.deaths
        assert (death.cause, death.source, death.detail, death.exit_code) == ("stopped", "mind", "signal", 0)
        assert death.tokens == display.last_seq + 1  # the display received every token the mind thought
        assert display.last_death["cause"] == "stopped"
        wait_for(lambda: app.state.chronicle.lives()[0]["died_at"], timeout=10, what="the chronicle's record")
        (record,) = app.state.chronicle.lives()
        assert (record["cause"], record["cause_source"], record["cause_words"]) == ("stopped", "mind", "stopped")
        assert record["tokens"] == death.tokens and record["missing_tokens"] == 0
        assert httpx.get(url + "/health").json()["mind_connected"] is False
