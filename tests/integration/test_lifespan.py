"""scripts/lifespan against the real Docker engine and the real mind image: the kernel kills the mind
at two memory limits and the tokens it thought are within 10% of the prediction. Marked `docker`
(about 3-5 minutes on two cores)."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import docker
import httpx
import pytest

from .stack import ROOT, build_images

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

IMAGE = "latent-reflection/mind:latest"
SCRIPT = ROOT / "scripts" / "lifespan"
MiB = 1 << 20
# One thread: two ggml threads on two shared cores crawl whenever anything else runs (4 tok/s seen
# on a fresh CI machine while images were built beside it). Lives of about 2500 and 3000 tokens
# (90 to 120 s at 25 tok/s): short, yet long enough that one growth step (256 tokens) is about 10% of a life.
THREADS = "1"
TARGET_TOKENS = (2500, 3000)
GROWTH_STEP = 256


@pytest.fixture(scope="module")
def image(engine):
    build_images()  # cached: seconds when the image is already built
    try:
        engine.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{IMAGE} is absent even after scripts/build-images")
    return IMAGE


def lifespan(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def leftovers(engine) -> list:
    return engine.containers.list(all=True, filters={"label": "latent-reflection.lifespan"})


@pytest.fixture(scope="module")
def measured(image, tmp_path_factory):
    """`predict` measures the model's costs in a throwaway container (no limit)."""
    saved = tmp_path_factory.mktemp("lifespan") / "vitals.json"
    r = lifespan("predict", "--limit", "1g", "--json", "--threads", THREADS, "--save-vitals", str(saved))
    assert r.returncode == 0, r.stderr
    assert "loading…" in r.stderr and "measuring…" in r.stderr
    return json.loads(r.stdout), saved


def test_predict_measures_the_model_in_a_throwaway_container(engine, measured):
    doc, saved = measured
    costs = doc["costs"]
    # Gemma 3 270M: weights + runtime are a few hundred MiB, a token of context some KiB
    assert 100 * MiB < costs["base_bytes"] < 1024 * MiB
    assert 4 * 1024 < costs["kv_bytes_per_token"] < 256 * 1024
    assert costs["prompt_tokens"] > 0 and costs["tokens_per_s"] > 0
    assert json.loads(saved.read_text())["growths"] >= 1
    assert leftovers(engine) == []


def limit_for(doc: dict, tokens: int) -> int:
    """A limit halfway between two growth peaks, so the life dies at the step near ``tokens``."""
    prompt = doc["costs"]["prompt_tokens"]
    steps = doc["steps"]
    k = next(i for i, s in enumerate(steps) if s["n_old"] - prompt >= tokens)
    return (steps[k - 1]["peak_bytes"] + steps[k]["peak_bytes"]) // 2


def test_real_deaths_come_within_ten_percent_of_the_prediction(engine, measured, tmp_path):
    doc, saved = measured
    limits = [limit_for(doc, t) for t in TARGET_TOKENS]
    out = tmp_path / "calibration"
    t0 = time.monotonic()
    r = lifespan("calibrate", "--limits", ",".join(str(x) for x in limits), "--lives", "1", "--threads", THREADS,
                 "--from-vitals", str(saved), "--out", str(out), "--life-timeout", "600", "--stall", "60")
    elapsed = time.monotonic() - t0
    (ROOT / "test-output").mkdir(exist_ok=True)
    (ROOT / "test-output" / "lifespan_calibration.txt").write_text(r.stdout + "\n" + r.stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    lives = json.loads((out / "calibration.json").read_text())["lives"]
    assert [life["limit_bytes"] for life in lives] == limits
    for life in lives:
        assert life["cause"] == "oom", life
        assert life["exit_code"] == 137 and life["oom_killed"] is True
        assert life["lifespan_s"] > 0
        # `predict`'s measurement (no limit, a throwaway container) foretells the real death
        saved_prediction = life["predicted_tokens_saved"]
        assert abs(life["tokens_at_death"] - saved_prediction) <= 0.10 * saved_prediction, life
        # the life's own, later self-measurement is at most one growth step off
        assert life["predicted_from"] == "own vitals"
        assert abs(life["tokens_at_death"] - life["predicted_tokens"]) <= GROWTH_STEP + 2, life
    assert lives[0]["tokens_at_death"] < lives[1]["tokens_at_death"]
    svg = (out / "calibration.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<circle") == 2
    assert "error" in r.stdout and "%" in r.stdout
    assert leftovers(engine) == []
    print(r.stdout, f"calibration took {elapsed:.0f} s")


def test_a_missing_image_is_named_with_the_way_to_build_it(engine):
    r = lifespan("predict", "--limit", "500m", "--image", "latent-reflection/no-such-image:latest")
    assert r.returncode == 2
    assert "latent-reflection/no-such-image:latest is missing" in r.stderr and "scripts/build-images" in r.stderr


def test_set_limit_changes_a_running_minds_limit_and_the_mind_sees_it(engine, image):
    name = f"lifespan-setlimit-{os.getpid()}"
    container = engine.containers.run(
        image, detach=True, name=name, mem_limit=2 << 30, memswap_limit=2 << 30,
        ports={"8000/tcp": ("127.0.0.1", None)}, environment={"MIND_N_THREADS": THREADS},
        labels={"latent-reflection.lifespan": "test"})
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
        r = lifespan("set-limit", "900m", "--container", name)
        assert r.returncode == 0, r.stderr
        assert "-> 900.0 MiB" in r.stdout and "MIND_MEMORY_LIMIT" in r.stdout
        container.reload()
        assert container.attrs["HostConfig"]["Memory"] == 900 * MiB
        assert container.attrs["HostConfig"]["MemorySwap"] == 900 * MiB
        # the same life reads the new limit from its cgroup
        end = time.monotonic() + 60
        seen = None
        while time.monotonic() < end:
            try:
                seen = httpx.get(f"http://127.0.0.1:{port}/vitals", timeout=3).json()["limit_bytes"]
                break
            except (httpx.HTTPError, ValueError):
                time.sleep(0.5)
        assert seen == 900 * MiB
        r = lifespan("set-limit", "800m", "--container", "no-such-container-here")
        assert r.returncode == 2 and "no container named" in r.stderr
    finally:
        container.remove(force=True)
