"""Read-only web view of the chronicle (stub: final signature, body follows)."""

from __future__ import annotations

from fastapi import APIRouter

from display.chronicle.store import Chronicle


def chronicle_router(chronicle: Chronicle) -> APIRouter:
    return APIRouter()
