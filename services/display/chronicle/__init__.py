"""The chronicle: every life of the mind, persisted in SQLite, and its read-only web view."""

from display.chronicle.router import chronicle_router
from display.chronicle.store import Chronicle

__all__ = ["Chronicle", "chronicle_router"]
