"""latent lifespan measures what `docker compose up` would run: the image, model, prompt and MIND_* settings
Compose makes of .env and the compose files (an override included), the models folder and the prompt frames
mounted, the limit in force as the default one, thinking unpaced (MIND_TOKENS_PER_S=0) while it measures,
and the minutes also at the installation's own pace. Compose is real (both versions where installed); the
Docker engine is a fake that records the container it is asked to run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from latent import lifespan as ls
from tests.deploy.test_wall_settings import COMPOSES
from tests.scripts.test_lifespan_cli import VITALS

ROOT = Path(__file__).resolve().parents[2]
MiB = 1 << 20
AVAILABLE = {name: cmd for name, cmd in COMPOSES.items() if cmd}
pytestmark = pytest.mark.skipif(not AVAILABLE, reason="no compose command installed on this machine")


FIRST = "Compose v2" if "Compose v2" in AVAILABLE else next(iter(AVAILABLE), None)


@pytest.fixture
def compose(request):
    """Compose v2 (a fast Go binary) where installed; the first test runs with both versions."""
    return getattr(request, "param", FIRST)


@pytest.fixture
def project(compose, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENT_COMPOSE", " ".join(AVAILABLE[compose]))
    for key in ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "LATENT_PROJECT_DIR", "MIND_MEMORY_LIMIT", "MIND_PROMPT"):
        monkeypatch.delenv(key, raising=False)
    root = tmp_path / "latent-reflection"
    root.mkdir()
    shutil.copy(ROOT / "compose.yaml", root / "compose.yaml")
    (root / "services").symlink_to(ROOT / "services")
    (root / "models").mkdir()
    with (root / "models" / "small.gguf").open("wb") as f:
        f.write(b"GGUF")
        f.truncate(300 * MiB)  # sparse
    (root / ".env").write_text(
        "MIND_MODEL_PATH=/models/extra/small.gguf\nMIND_PROMPT=entity\nMIND_MEMORY_LIMIT=900m\nMIND_N_THREADS=3\n"
    )
    # what a maker sets beyond .env: read by Compose from compose.override.yaml
    (root / "compose.override.yaml").write_text(
        "services:\n  mind:\n    environment:\n      MIND_N_CTX_STEP: '512'\n      MIND_TOKENS_PER_S: '4'\n"
    )
    monkeypatch.chdir(root)
    return root


class FakeContainer:
    status = "running"
    attrs = {"NetworkSettings": {"Ports": {"8000/tcp": [{"HostPort": "1"}]}}, "State": {}}

    def reload(self):
        pass

    def remove(self, **kwargs):
        self.removed = kwargs


class FakeEngine:
    """docker.from_env() as far as `predict` uses it: records each container it is asked to run."""

    def __init__(self):
        self.runs: list[tuple[str, dict]] = []
        self.images = self
        self.containers = self

    def get(self, image):
        return image

    def run(self, image, *args, **kwargs):
        self.runs.append((image, kwargs))
        return FakeContainer()


@pytest.fixture
def engine(monkeypatch):
    fake = FakeEngine()
    monkeypatch.setattr(ls, "docker_client", lambda: fake)
    monkeypatch.setattr(ls, "measured_vitals", lambda mind, deadline_s, progress=None: {**VITALS, "kv_measured": True})
    return fake


@pytest.mark.parametrize("compose", sorted(AVAILABLE), indirect=True)
def test_predict_runs_the_mind_as_compose_would_and_measures_it_unpaced(compose, project, engine, capsys):
    code = ls.main(["predict", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    (image, run), *_ = engine.runs
    assert image == "latent-reflection/mind:latest"
    env = run["environment"]
    assert env["MIND_MODEL_PATH"] == "/models/extra/small.gguf" and env["MIND_PROMPT"] == "entity"
    assert env["MIND_N_THREADS"] == "3"  # from .env
    assert env["MIND_N_CTX_STEP"] == "512"  # from compose.override.yaml
    assert env["MIND_TOKENS_PER_S"] == "0"  # measured as fast as it thinks
    assert run["volumes"] == {
        str(project / "services" / "mind" / "prompts"): {"bind": "/app/mind/prompts", "mode": "ro"},
        str(project / "models"): {"bind": "/models/extra", "mode": "ro"},
    }
    assert "mem_limit" not in run  # the measuring run is unlimited
    doc = json.loads(out)
    # no --limit: the installation's own, and minutes at its own pace (4 tok/s from the override)
    [p] = doc["predictions"]
    assert p["limit_bytes"] == 900 * MiB
    assert doc["pace_tokens_per_s"] == 4.0
    assert p["minutes_at_pace"] == pytest.approx(p["tokens_at_death"] / 4 / 60)
    assert doc["plan"]["growth_step"] == 512
    assert "measuring the mind as `docker compose up` runs it" in err and "small.gguf" in err


def test_the_table_shows_minutes_at_the_installations_pace(project, engine, capsys):
    assert ls.main(["predict", "--limit", "800m"]) == 0
    out = capsys.readouterr().out
    assert "minutes at its pace (4 tok/s)" in out and "MIND_TOKENS_PER_S=4" in out


def test_a_model_the_container_cannot_see_is_refused_before_anything_runs(project, engine, capsys):
    (project / ".env").write_text("MIND_MODEL_PATH=models/small.gguf\n")
    assert ls.main(["predict", "--limit", "900m"]) == 2
    err = capsys.readouterr().err
    assert "does not exist inside the container" in err and "MIND_MODEL_PATH=/models/extra/small.gguf" in err
    assert engine.runs == []
    (project / ".env").write_text("MIND_MODEL_PATH=/models/extra/gone.gguf\n")
    assert ls.main(["predict", "--limit", "900m"]) == 2
    assert "small.gguf" in capsys.readouterr().err  # what the folder holds instead
    assert engine.runs == []


def test_a_limit_below_the_weights_is_warned_about_before_measuring(project, engine, capsys):
    ls.main(["predict", "--limit", "200m", "--limit", "900m"])
    err = capsys.readouterr().err
    assert "limit 200.0 MiB is below the model's weights alone (small.gguf, 300.0 MiB)" in err


def test_no_compose_measures_the_image_with_its_own_defaults(project, engine, capsys):
    assert ls.main(["predict", "--limit", "900m", "--no-compose"]) == 0
    (_, run), *_ = engine.runs
    assert "MIND_MODEL_PATH" not in run["environment"] and run["environment"]["MIND_TOKENS_PER_S"] == "0"
    assert list(run["volumes"].values()) == [{"bind": "/app/mind/prompts", "mode": "ro"}]


def test_named_volumes_become_throwaway_ones_never_the_installations(project, engine, capsys):
    # another service's volume (a state volume, say) must not be shared with a measuring run
    (project / "compose.override.yaml").write_text(
        "services:\n  mind:\n    volumes:\n      - mind-state:/state\nvolumes:\n  mind-state: {}\n"
    )
    assert ls.main(["predict", "--limit", "900m"]) == 0
    (_, run), *_ = engine.runs
    # compose.yaml's own mind-state volume and the override's: each an anonymous volume of its own
    assert {m["Target"] for m in run["mounts"]} >= {"/state", "/var/lib/mind"}
    assert all(m["Type"] == "volume" and not m.get("Source") for m in run["mounts"]), run["mounts"]


class Recorder:
    """A caller's own progress hook (what the `progress` argument of main and run_life is for)."""

    def __init__(self):
        self.events = []

    def phase(self, text):
        self.events.append(("phase", text))

    def vitals(self, vitals, limit_bytes, tokens):
        self.events.append(("vitals", vitals["tokens"], limit_bytes, tokens))

    def close(self):
        self.events.append(("close",))


def test_progress_reports_go_to_the_hook_the_caller_gives(project, monkeypatch, capsys):
    fake = FakeEngine()
    monkeypatch.setattr(ls, "docker_client", lambda: fake)
    readings = iter([None, {**VITALS, "state": "loading"}, {**VITALS, "growths": 0}, {**VITALS, "kv_measured": True}])
    monkeypatch.setattr(ls.MindContainer, "vitals", lambda self: next(readings))
    monkeypatch.setattr(ls.time, "sleep", lambda s: None)
    hook = Recorder()
    assert ls.main(["predict", "--limit", "900m"], progress=hook) == 0
    kinds = [e[0] for e in hook.events]
    phases = [e[1] for e in hook.events if e[0] == "phase"]
    assert phases[0].startswith("measuring the mind as `docker compose up` runs it") and "starting" in phases[1]
    assert ("phase", "loading… (the model, then the prompt)") in hook.events
    assert any(e[0] == "phase" and e[1].startswith("measuring…") for e in hook.events)
    assert ("vitals", VITALS["tokens"], None, None) in hook.events  # unlimited while measuring
    assert kinds[-1] == "close"
