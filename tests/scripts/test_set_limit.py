"""scripts/set-limit (latent set-limit) in a copy of the repository's layout, with a fake `docker` that records
its calls: the size goes through the one parser (mind.sizes) into .env, and a bad size changes nothing."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "scripts").mkdir()
    for name in ("set-limit", "lib.sh"):
        shutil.copy2(ROOT / "scripts" / name, tmp_path / "scripts" / name)
    (tmp_path / "scripts" / "latent").symlink_to(ROOT / "scripts" / "latent")
    (tmp_path / "services").symlink_to(ROOT / "services")
    shutil.copy2(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    if (ROOT / ".venv").exists():
        (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/docker.log\n')
    docker.chmod(0o755)
    return tmp_path


def set_limit(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LATENT_PROJECT_DIR", "LATENT_COMPOSE")}
    env["PATH"] = f"{repo / 'bin'}:{os.environ['PATH']}"
    return subprocess.run(
        [str(repo / "scripts" / "set-limit"), *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_a_decimal_size_is_written_as_docker_reads_it_and_the_mind_is_recreated(repo):
    (repo / ".env").write_text("COMPOSE_FILE=compose.yaml\nMIND_MEMORY_LIMIT=700m\n")
    r = set_limit(repo, "1.5g")
    assert r.returncode == 0, r.stderr
    assert (repo / ".env").read_text() == "COMPOSE_FILE=compose.yaml\nMIND_MEMORY_LIMIT=1536m\n"
    assert (repo / "docker.log").read_text().splitlines()[-1] == "compose up -d --no-build mind"


def test_a_size_is_added_to_an_env_without_one(repo):
    assert set_limit(repo, "900m").returncode == 0
    assert (repo / ".env").read_text() == "MIND_MEMORY_LIMIT=900m\n"


@pytest.mark.parametrize("size, reason", [("700", "has no unit"), ("lots", "not a memory size")])
def test_a_bad_size_is_refused_before_anything_changes(repo, size, reason):
    r = set_limit(repo, size)
    assert r.returncode == 2 and reason in r.stderr
    assert not (repo / ".env").exists() and not (repo / "docker.log").exists()


def test_no_size_prints_the_usage(repo):
    r = set_limit(repo)
    assert r.returncode == 2 and "usage: latent set-limit" in r.stderr and "size" in r.stderr
