"""Keeps the display's long-running tasks alive: one that ends or raises is logged and started again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

FIRST_DELAY_S = 0.1  # before the first restart; doubles up to MAX_DELAY_S
MAX_DELAY_S = 5.0
HEALTHY_AFTER_S = 30.0  # a task that has not failed for this long is healthy again


class Supervisor:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.tasks: dict[str, asyncio.Task] = {}
        self.restarts = 0
        self._failed_at: dict[str, float] = {}

    def start(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self.tasks[name] = asyncio.create_task(self._keep(name, run), name=name)

    async def _keep(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        delay = FIRST_DELAY_S
        while True:
            try:
                await run()
                log.error("task %s ended by itself; starting it again in %.1f s", name, delay)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("task %s failed; starting it again in %.1f s", name, delay)
            self.restarts += 1
            self._failed_at[name] = self.clock()
            await asyncio.sleep(delay)
            delay = min(2 * delay, MAX_DELAY_S)

    def failing(self, name: str) -> bool:
        """The task is not running, or failed within the last HEALTHY_AFTER_S."""
        task = self.tasks.get(name)
        if task is None or task.done():
            return True
        failed_at = self._failed_at.get(name)
        return failed_at is not None and self.clock() - failed_at < HEALTHY_AFTER_S

    async def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        for task in self.tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
