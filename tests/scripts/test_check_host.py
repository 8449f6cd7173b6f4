"""latent check-host (scripts/check-host) reads the .env as Compose does (`compose config`, both versions) and
catches what would make the mind exit 78 and restart forever, or never start, before `docker compose up`:
a model path the container cannot see, a limit below the model's weights, a size without a unit, settings
Compose ignores, and on a Pi the wall's devices and group ids. The kernel and Docker facts come from a
fake tree here; the compose files and the .env are the repository's, copied into a project folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from latent.checkhost import Host, check
from tests.deploy.test_wall_settings import COMPOSES

ROOT = Path(__file__).resolve().parents[2]
GOOD_ENGINE = ({"ServerVersion": "test", "MemoryLimit": True, "SwapLimit": True}, "")
AVAILABLE = {name: cmd for name, cmd in COMPOSES.items() if cmd}
pytestmark = pytest.mark.skipif(not AVAILABLE, reason="no compose command installed on this machine")


# Compose v2 (a fast Go binary) where installed, else docker-compose 1.29; the model-path test runs with both.
FIRST = "Compose v2" if "Compose v2" in AVAILABLE else next(iter(AVAILABLE), None)


@pytest.fixture
def compose(request, monkeypatch):
    version = getattr(request, "param", FIRST)
    monkeypatch.setenv("LATENT_COMPOSE", " ".join(AVAILABLE[version]))
    for key in ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "MIND_MODEL_PATH", "MIND_MEMORY_LIMIT", "SPI_GID"):
        monkeypatch.delenv(key, raising=False)
    return version


@pytest.fixture
def project(tmp_path, compose):
    root = tmp_path / "latent-reflection"
    root.mkdir()
    for name in ("compose.yaml", "compose.pi.yaml", ".env.example"):
        shutil.copy(ROOT / name, root / name)
    (root / "services").symlink_to(ROOT / "services")
    (root / "models").mkdir()
    return root


def test_two_groups_with_one_id_are_a_compose_error_reported_as_such(project, host):
    write_env(project, COMPOSE_FILE="compose.yaml:compose.pi.yaml", SPI_GID="997", I2C_GID="998", GPIO_GID="997")
    assert any("Compose cannot read the configuration" in t for t in lines(check(project, host, GOOD_ENGINE), "FIX"))


@pytest.fixture
def host(tmp_path):
    """A Pi-like host: cgroup v2 with the memory controller, no swap, an empty /dev."""
    fs = tmp_path / "host"
    (fs / "cgroup").mkdir(parents=True)
    (fs / "cgroup" / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (fs / "dev").mkdir()
    (fs / "boot" / "firmware").mkdir(parents=True)
    (fs / "boot" / "firmware" / "cmdline.txt").write_text("console=tty1 root=PARTUUID=1 rootwait\n")
    (fs / "swaps").write_text("Filename\tType\tSize\tUsed\tPriority\n")
    return Host(sys_fs=fs / "cgroup", dev=fs / "dev", boot=fs / "boot", proc_swaps=fs / "swaps")


def write_env(project: Path, **values: str) -> None:
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))


def gguf(path: Path, size: int = 4096) -> Path:
    with path.open("wb") as f:
        f.write(b"GGUF")
        f.truncate(size)  # sparse: a "large model" costs no disk
    return path


def lines(report, kind: str) -> list[str]:
    return [text for k, text in report.lines if k == kind]


def test_a_clean_checkout_is_all_good(project, host):
    report = check(project, host, GOOD_ENGINE)
    assert report.problems == 0, report.render()
    assert any("model: the image's own" in t for t in lines(report, "ok"))


@pytest.mark.parametrize("compose", sorted(AVAILABLE), indirect=True)
def test_a_host_path_as_the_model_is_caught_with_the_path_the_container_sees(compose, project, host):
    # what the old fetch-model told people to write: a path on the host, relative to the checkout
    gguf(project / "models" / "llama-3.2-1b-instruct.gguf")
    write_env(project, MIND_MODEL_PATH="models/llama-3.2-1b-instruct.gguf")
    report = check(project, host, GOOD_ENGINE)
    [fix] = [t for t in lines(report, "FIX") if "MIND_MODEL_PATH" in t]
    assert "does not exist inside the container" in fix and "exit 78" in fix
    assert "set MIND_MODEL_PATH=/models/extra/llama-3.2-1b-instruct.gguf" in fix


def test_a_model_missing_from_the_models_folder_is_caught(project, host):
    gguf(project / "models" / "other.gguf")
    write_env(project, MIND_MODEL_PATH="/models/extra/llama.gguf")
    [fix] = [t for t in lines(check(project, host, GOOD_ENGINE), "FIX") if "MIND_MODEL_PATH" in t]
    assert str(project / "models" / "llama.gguf") in fix and "does not exist" in fix
    assert "other.gguf" in fix and "latent fetch-model" in fix


def test_a_model_in_the_models_folder_passes_and_one_that_is_not_gguf_does_not(project, host):
    gguf(project / "models" / "small.gguf")
    write_env(project, MIND_MODEL_PATH="/models/extra/small.gguf")
    report = check(project, host, GOOD_ENGINE)
    assert report.problems == 0, report.render()
    assert any(t.startswith("model: /models/extra/small.gguf") for t in lines(report, "ok"))
    (project / "models" / "small.gguf").write_bytes(b"<html>not found</html>")
    assert any("is not a GGUF file" in t for t in lines(check(project, host, GOOD_ENGINE), "FIX"))


def test_a_limit_below_the_models_weights_is_caught_with_a_limit_that_fits(project, host):
    gguf(project / "models" / "big.gguf", 2019377696)  # the size of Llama 3.2 3B Q4_K_M
    write_env(project, MIND_MODEL_PATH="/models/extra/big.gguf", MIND_MEMORY_LIMIT="700m")
    [fix] = [t for t in lines(check(project, host, GOOD_ENGINE), "FIX") if "MIND_MEMORY_LIMIT" in t]
    assert "below the model's weights (1.88 GiB)" in fix and "die while loading" in fix
    suggested = fix.split("set MIND_MEMORY_LIMIT=")[1].split()[0]
    assert suggested.endswith("m") and int(suggested[:-1]) * 2**20 > 2019377696 + 150 * 2**20


def test_a_size_without_a_unit_and_settings_compose_ignores_are_named(project, host):
    write_env(project, MIND_MEMORY_LIMIT="700", MIND_MODEL_PAHT="/models/default.gguf", MIND_N_CTX_STEP="512")
    report = check(project, host, GOOD_ENGINE)
    assert any("MIND_MEMORY_LIMIT=700" in t and "has no unit" in t for t in lines(report, "FIX"))
    warned = " ".join(lines(report, "warn"))
    assert ".env line 2: MIND_MODEL_PAHT is not a variable the compose files read" in warned
    assert "MIND_N_CTX_STEP" in warned and "compose.override.yaml" in warned


def test_a_missing_models_folder_would_be_created_by_docker_as_root(project, host):
    (project / "models").rmdir()
    assert any("mkdir -p" in t and "owned by root" in t for t in lines(check(project, host, GOOD_ENGINE), "FIX"))


def test_the_memory_cgroup_off_on_a_pi_is_caught_with_the_cmdline_fix(project, host):
    (host.sys_fs / "cgroup.controllers").write_text("cpuset cpu io pids\n")
    [fix] = lines(check(project, host, GOOD_ENGINE), "FIX")
    assert "cgroup_enable=memory" in fix and str(host.boot / "firmware" / "cmdline.txt") in fix


def test_the_wall_needs_its_devices_and_their_group_ids(project, host):
    write_env(project, COMPOSE_FILE="compose.yaml:compose.pi.yaml", SPI_GID="999", I2C_GID="998", GPIO_GID="997")
    fixes = lines(check(project, host, GOOD_ENGINE), "FIX")
    assert any("spidev0.0 is missing" in t and "raspi-config nonint do_spi 0" in t for t in fixes)
    assert any("i2c-1 is missing" in t and "do_i2c 0" in t for t in fixes)
    # the devices appear (each in its own group, as on Raspberry Pi OS), the SPI one in a group the .env
    # does not name
    root = os.geteuid() == 0
    gids = {"spidev0.0": 4242, "i2c-1": 4243, "gpiochip0": 4244} if root else dict.fromkeys(["x"], os.getgid())
    for name in ("spidev0.0", "i2c-1", "gpiochip0"):
        (host.dev / name).touch()
        if root:
            os.chown(host.dev / name, -1, gids[name])
    if not root:
        pytest.skip("giving the fake devices distinct groups needs root")
    write_env(project, COMPOSE_FILE="compose.yaml:compose.pi.yaml", SPI_GID="999", I2C_GID="4243", GPIO_GID="4244")
    report = check(project, host, GOOD_ENGINE)
    assert lines(report, "FIX") == [
        f"{host.dev / 'spidev0.0'} belongs to group 4242 but SPI_GID=999: the display cannot open it; "
        "set SPI_GID=4242 in .env"
    ]
    assert any(t.startswith(f"{host.dev / 'i2c-1'} present") for t in lines(report, "ok"))


def test_the_command_exits_1_and_prints_the_fix(project):
    gguf(project / "models" / "m.gguf")
    write_env(project, MIND_MODEL_PATH="./models/m.gguf")
    env = {k: v for k, v in os.environ.items() if k != "LATENT_PROJECT_DIR"}
    r = subprocess.run(
        [str(ROOT / "scripts" / "check-host"), "--project-dir", str(project)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "set MIND_MODEL_PATH=/models/extra/m.gguf in .env" in r.stdout
    assert r.stdout.rstrip().endswith("thing(s) to fix")
