"""Fixtures shared by the tests that drive the real Docker engine."""

from __future__ import annotations

import docker
import pytest

from .stack import compose_command


@pytest.fixture(scope="module")
def engine():
    if compose_command() is None:
        pytest.skip("neither 'docker compose' nor 'docker-compose' is installed")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure here means there is no engine to test against
        pytest.skip(f"no Docker engine reachable: {exc}")
    return client
