"""The frame cache in the real image: a new named volume at /var/lib/mind is writable by the mind's
user under a read-only root, and a second container (a new life) restores the frame the first one
kept: the model file's fingerprint, remembered by its times, holds across containers of one image.
Marked `docker`."""

from __future__ import annotations

import re
import time

import pytest

from .stack import build_images

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

IMAGE = "latent-reflection/mind:latest"
PROMPT_READ = re.compile(r"prompt read: (\d+) tokens in [\d.]+ s \((\d+) restored")


def life(client, volume: str, until: str, timeout_s: float = 240) -> str:
    """A container of the mind as compose runs it, until its log says ``until``; its log."""
    container = client.containers.run(
        IMAGE,
        detach=True,
        read_only=True,
        tmpfs={"/tmp": ""},
        volumes={volume: {"bind": "/var/lib/mind", "mode": "rw"}},
        environment={"MIND_N_THREADS": "1", "MIND_TOKENS_PER_S": "0"},
        mem_limit="700m",
        memswap_limit="700m",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
    )
    try:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            logs = container.logs().decode("utf-8", "replace")
            if until in logs:
                return logs
            container.reload()
            assert container.status == "running", logs[-3000:]
            time.sleep(0.2)
        raise AssertionError(f"no {until!r} within {timeout_s} s:\n{logs[-3000:]}")
    finally:
        container.remove(force=True)


def test_a_new_life_in_a_new_container_restores_the_frame_the_first_one_kept(engine):
    build_images()
    volume = engine.volumes.create()
    try:
        first = life(engine, volume.name, "frame state kept")
        tokens, restored = map(int, PROMPT_READ.search(first).groups())
        assert restored == 0  # a new volume: the frame was read
        second = life(engine, volume.name, "prompt read")
        tokens_again, restored = map(int, PROMPT_READ.search(second).groups())
        # all but the frame's last line, which names the life (1, then 2) and is read anew: a few tokens
        assert tokens_again == tokens and tokens - 16 < restored < tokens - 1, (tokens, restored)
        assert "model file hashed" not in second  # the fingerprint was remembered, not computed again
        listing = engine.containers.run(
            IMAGE, ["ls", "-ln", "/var/lib/mind/cache"], remove=True, volumes={volume.name: {"bind": "/var/lib/mind"}}
        ).decode()
        assert re.search(r"10001\s+10001 .*frame-state-", listing), listing
    finally:
        volume.remove(force=True)
