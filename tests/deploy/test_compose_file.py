"""The compose files say what the issue and the Pi need: checked statically, and by compose itself."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.stack import compose_command

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


def test_no_service_mounts_the_docker_socket_and_all_run_read_only():
    for name in ("compose.yaml", "compose.pi.yaml", "compose.override.example.yaml"):
        for service, spec in (load(name).get("services") or {}).items():
            for volume in spec.get("volumes", []):
                assert "docker.sock" not in str(volume), (name, service)
    for service in load("compose.yaml")["services"].values():
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]


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
