"""Fixtures for the mind's tests."""

import pytest


@pytest.fixture
def script_file(tmp_path):
    path = tmp_path / "script.txt"
    path.write_text(
        "I am a small machine. I think in words, and the words go out to a wall.\n"
        "Naïve café thoughts — with accents — still whole.\n",
        encoding="utf-8",
    )
    return path
