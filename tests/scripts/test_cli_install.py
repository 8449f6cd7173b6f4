"""The host tools install alone: `pip install .` into a fresh venv, offline from images/wheelhouse, brings
the `latent` command with its own two dependencies (the Docker SDK, PyYAML) and nothing of the services'
stacks; every subcommand's --help runs, and a prediction runs from the installed copy, outside the
checkout. (About 15 s: a venv and an install.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scripts.test_lifespan_cli import VITALS

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / "images" / "wheelhouse"
HELPS = [
    ["--help"],
    ["check-host", "--help"],
    ["energy", "--help"],
    ["fetch-model", "--help"],
    ["lifespan", "--help"],
    ["lifespan", "predict", "--help"],
    ["lifespan", "calibrate", "--help"],
    ["lifespan", "set-limit", "--help"],
    ["lives", "--help"],
    ["replay", "--help"],
    ["set-limit", "--help"],
    ["wall-test", "--help"],
]
# what the tools and their two dependencies bring; pip and setuptools come with every venv
ALLOWED = {"latent-reflection", "docker", "pyyaml", "requests", "urllib3", "certifi", "charset-normalizer", "idna"}
HEAVY = {"pydantic", "pydantic_settings", "llama_cpp", "fastapi", "starlette", "numpy", "httpx", "uvicorn", "pytest"}


def run(*cmd, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    missing = [w for w in ("docker-7.2.0-", "pyyaml-6.0.3-", "setuptools-") if not list(WHEELHOUSE.glob(f"{w}*.whl"))]
    assert not missing, f"images/wheelhouse lacks {missing}: run scripts/setup (it downloads them)"
    tmp = tmp_path_factory.mktemp("install")
    # a copy of the checkout, so the build's egg-info and build/ never land in the real tree
    source = tmp / "src"
    shutil.copytree(
        ROOT,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "images", "build", "test-output", "models", "*.egg-info", "__pycache__", ".*cache"
        ),
    )
    venv = tmp / "venv"
    r = run(sys.executable, "-m", "venv", venv)
    assert r.returncode == 0, r.stderr
    r = run(venv / "bin" / "pip", "install", "--no-index", "--find-links", WHEELHOUSE, source)
    assert r.returncode == 0, r.stdout + r.stderr
    return venv


def test_only_its_own_requirements_are_installed(installed):
    r = run(installed / "bin" / "pip", "list", "--format", "json")
    names = {p["name"].lower() for p in json.loads(r.stdout)} - {"pip", "setuptools"}
    assert names == ALLOWED
    site = next((installed / "lib").glob("python3*/site-packages"))
    assert sorted(p.name for p in (site / "mind").glob("*.py")) == ["__init__.py", "lifespan.py", "sizes.py"]


@pytest.mark.parametrize("args", HELPS, ids=" ".join)
def test_every_subcommands_help_runs(installed, args, tmp_path):
    r = run(installed / "bin" / "latent", *args, cwd=tmp_path)  # outside any checkout
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: latent"), r.stdout
    assert "Traceback" not in r.stderr


def test_no_heavy_module_is_imported_by_any_subcommand(installed):
    code = (
        "import sys, latent.cli, latent.checkhost, latent.energy, latent.fetch, latent.lifespan, latent.lives, "
        "latent.setlimit, latent.walltest, latent.replay, docker, yaml\n"
        f"print(sorted(set({sorted(HEAVY)!r}) & {{m.split('.')[0] for m in sys.modules}}))"
    )
    r = run(installed / "bin" / "python", "-c", code)
    assert (r.returncode, r.stdout) == (0, "[]\n"), r.stderr


def test_the_installed_copy_predicts_outside_the_checkout(installed, tmp_path):
    vitals = tmp_path / "vitals.json"
    vitals.write_text(json.dumps(VITALS))
    r = run(
        installed / "bin" / "latent", "lifespan", "predict", "--from-vitals", vitals, "--limit", "500m", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert "tokens at death" in r.stdout and "500.0 MiB" in r.stdout


def test_replay_without_its_extra_says_how_to_install_it(installed, tmp_path):
    # Pillow is the extra `replay`, not one of the tools' two dependencies
    r = run(installed / "bin" / "latent", "replay", "1", "--url", "http://127.0.0.1:9", cwd=tmp_path)
    assert r.returncode == 2
    assert "needs Pillow: pipx install '.[replay]'" in r.stderr and "Traceback" not in r.stderr
