"""SQLite store of every life (stub: final signatures, body follows)."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


class Chronicle:
    """A life subscriber that persists every life (births, tokens, vitals, deaths)."""

    def __init__(self, path: Path, keep_lives: int, max_bytes: int) -> None:
        self.path = Path(path)
        self.keep_lives = keep_lives
        self.max_bytes = max_bytes

    def on_birth(self, birth: dict) -> None:
        pass

    def on_token(self, token: dict) -> None:
        pass

    def on_vitals(self, vitals: dict) -> None:
        pass

    def on_death(self, life: str | None) -> None:
        pass

    def record_cause(self, life: str, cause: str, source: str) -> bool:
        return False

    def close(self) -> None:
        pass
