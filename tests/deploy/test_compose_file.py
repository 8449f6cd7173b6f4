"""The compose files say what the issue and the Pi need: checked statically, and by compose itself."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.test_wall_settings import COMPOSES
from tests.integration.stack import Stack, compose_command

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = [ROOT / "compose.yaml", ROOT / "compose.pi.yaml", ROOT / "compose.override.example.yaml"]


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def test_every_variable_the_compose_files_use_is_documented_in_env_example():
    used = set()
    for path in COMPOSE_FILES:
        used |= set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", path.read_text()))
    documented = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    assert used, "no variables found: the pattern is wrong"
    assert used - documented == set()


def test_no_nested_defaults_which_compose_1_29_cannot_read():
    for path in COMPOSE_FILES:
        assert not re.search(r"\$\{[^}]*\$\{", path.read_text()), path


def test_the_mind_is_confined_and_dies_promptly():
    mind = load("compose.yaml")["services"]["mind"]
    assert mind["mem_limit"] == mind["memswap_limit"]  # no swap: the OOM comes promptly
    assert "deploy" not in mind  # 1.29 ignores deploy limits
    assert mind["restart"] == "unless-stopped"
    assert mind["read_only"] is True
    assert mind["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in mind["security_opt"]
    assert "ports" not in mind
    networks = load("compose.yaml")["networks"]
    assert all(networks[n].get("internal") is True for n in mind["networks"])
    assert mind["healthcheck"]["start_period"]


def test_the_mind_keeps_its_frame_cache_on_a_named_volume_its_image_prepares():
    compose = load("compose.yaml")
    assert "mind-state:/var/lib/mind" in compose["services"]["mind"]["volumes"]
    assert "mind-state" in compose["volumes"]
    assert "MIND_STATE_DIR" not in compose["services"]["mind"]["environment"]  # an empty value would override the image
    dockerfile = (ROOT / "images" / "mind" / "Dockerfile").read_text()
    assert re.search(r"^ENV (.*\\\n)*.*MIND_STATE_DIR=/var/lib/mind", dockerfile, re.M)
    # a new named volume takes the owner of the directory it is mounted on: the mind's user
    assert re.search(r"chown 10001:10001 /var/lib/mind", dockerfile)
    assert re.findall(r"^USER (\S+)", dockerfile, re.M)[-1] == "10001:10001"


def test_no_service_mounts_the_docker_socket_and_all_run_read_only():
    for name in ("compose.yaml", "compose.pi.yaml", "compose.override.example.yaml"):
        for service, spec in (load(name).get("services") or {}).items():
            for volume in spec.get("volumes", []):
                assert "docker.sock" not in str(volume), (name, service)
    for service in load("compose.yaml")["services"].values():
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]


def test_both_services_rotate_their_logs_in_bounded_files():
    for name, service in load("compose.yaml")["services"].items():
        logging = service.get("logging")
        assert logging and logging["driver"] == "json-file", name  # Docker's default driver never rotates
        size = re.fullmatch(r"(\d+)([kmg])", logging["options"]["max-size"])
        assert size and int(logging["options"]["max-file"]) >= 1, name
        bound = int(size.group(1)) * {"k": 2**10, "m": 2**20, "g": 2**30}[size.group(2)]
        assert bound * int(logging["options"]["max-file"]) <= 100 * 2**20, name  # an SD card is small


def test_images_run_as_a_non_root_user_from_a_selectable_base():
    for svc in ("mind", "display"):
        text = (ROOT / "images" / svc / "Dockerfile").read_text()
        assert re.search(r"^ARG BASE_IMAGE=python:3.11-slim-bookworm$", text, re.M)
        users = re.findall(r"^USER (\S+)", text, re.M)
        assert users and not users[-1].startswith(("0", "root"))


@pytest.mark.skipif(compose_command() is None, reason="no compose command installed on this machine")
@pytest.mark.parametrize("files", [["compose.yaml"], ["compose.yaml", "compose.pi.yaml"]])
def test_compose_itself_accepts_the_files(files):
    args = [a for f in files for a in ("-f", f)]
    result = subprocess.run([*compose_command(), *args, "config", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _config(compose: list[str], folder: Path, **env: str) -> dict:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("COMPOSE_PROJECT_NAME", "CHRONICLE_VOLUME", "COMPOSE_FILE")
    }
    result = subprocess.run(
        [*compose, "config"], cwd=folder, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.mark.parametrize("version", sorted(COMPOSES))
def test_the_chronicle_volume_is_named_for_the_installation_not_for_the_folder(version, tmp_path):
    compose = COMPOSES[version]
    if compose is None:
        pytest.skip(f"{version} is not installed here")
    names = []
    for folder in ("latent-reflection", "a-new-clone"):
        (tmp_path / folder).mkdir()
        shutil.copy(ROOT / "compose.yaml", tmp_path / folder / "compose.yaml")
        names.append(_config(compose, tmp_path / folder)["volumes"]["chronicle"]["name"])
    assert names == ["latent-reflection_chronicle"] * 2  # a re-clone finds the same past
    # and a stack of the tests names its own
    own = _config(compose, tmp_path / "a-new-clone", CHRONICLE_VOLUME="lrtest1_chronicle")
    assert own["volumes"]["chronicle"]["name"] == "lrtest1_chronicle"


def test_every_test_stack_keeps_a_chronicle_of_its_own():
    # `down -v` ends every test stack: with the installation's volume name it would delete its past.
    stack = Stack("lrtest42", {})
    assert stack.env["COMPOSE_PROJECT_NAME"] == "lrtest42"
    assert stack.env["CHRONICLE_VOLUME"] == "lrtest42_chronicle"
