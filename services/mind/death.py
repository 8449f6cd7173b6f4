"""The deaths the mind can see, in one place: what it announces, and how the process then ends.

The kernel's OOM kill is never announced (nothing runs after a SIGKILL). Every other end is: the mind
publishes one ``death`` event (docs/stream-contract.md), gives its subscribers a short grace to receive
it, then exits with the status it announced:

    stopped  signal  0    SIGTERM or SIGINT (docker stop, a restart, a recreate)
    failed   model   78   the model file failed it after birth (a SourceError)
    failed   error   70   any other fatal error after birth
    failed   hung    75   the watchdog saw no token for MIND_HUNG_S seconds (mind.watchdog)
    oom      stall   137  stalled at its memory limit: the mind kills itself as the kernel would

A failure before birth (a missing model, say) is never announced: no subscriber has seen that life."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mind.sources import EX_CONFIG, SourceError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mind.settings import MindSettings

log = logging.getLogger(__name__)

EX_OK = 0
EX_HUNG = 75  # sysexits' EX_TEMPFAIL: try again (Docker's restart policy does)
EX_KILLED = 128 + signal.SIGKILL  # how Docker reports a SIGKILL, the kernel's or the mind's own

STOPPED, FAILED, OOM = "stopped", "failed", "oom"
SIGNAL, MODEL, ERROR, HUNG, STALL = "signal", "model", "error", "hung", "stall"

GRACE_S = 1.0  # how long subscribers get to receive a death before the process ends
FLUSH_S = 0.1  # after the last subscriber took it: the event loop writes what it holds
# Then uvicorn waits for connections to close, for ever by default: a client that reads nothing keeps
# its connection open (its response never completes). Bounded, so docker stop's 10 s are never reached.
SHUTDOWN_S = 3.0


@dataclass(frozen=True)
class Death:
    """A death the mind announces: the contract's words, and the status the process ends with."""

    cause: str
    reason: str | None
    exit_code: int

    @classmethod
    def stopped(cls) -> Death:
        return cls(STOPPED, SIGNAL, EX_OK)

    @classmethod
    def failed(cls, exit_code: int, error: BaseException | None = None) -> Death:
        """A fatal error of the thinker: a SourceError (or EX_CONFIG) is the model's doing, anything else an
        error. ``error`` is only looked at, never shown."""
        if isinstance(error, SourceError) or exit_code == EX_CONFIG:
            return cls(FAILED, MODEL, EX_CONFIG)
        return cls(FAILED, ERROR, exit_code)

    @classmethod
    def hung(cls) -> Death:
        return cls(FAILED, HUNG, EX_HUNG)

    @classmethod
    def stall(cls) -> Death:
        return cls(OOM, STALL, EX_KILLED)

    def data(self, life: str, tokens: int) -> dict:
        """The ``death`` event's data: only fixed words and numbers, never an exception's text."""
        return {"life": life, "cause": self.cause, "exit_code": self.exit_code, "reason": self.reason, "tokens": tokens}


def end_process(code: int) -> None:
    """End the process at once with ``code``: 137 is a SIGKILL to itself, as the kernel would have done."""
    logging.shutdown()
    if code == EX_KILLED:
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(code)


def serve(app: FastAPI, settings: MindSettings) -> int:
    """Run ``app`` (mind.app.create_app) with uvicorn until it stops; return the exit status.

    uvicorn's own signal handler starts closing connections at once, and sse-starlette ends every
    stream with it, so a death announced after it would reach nobody. This server announces first:
    on SIGTERM (or SIGINT) the mind publishes ``death`` (stopped), waits until every subscriber has
    received it (at most GRACE_S), and only then lets uvicorn shut down. A second signal cuts the grace
    short; a third is uvicorn's own (SIGINT: force)."""
    import uvicorn

    mind = app.state.mind

    class MindServer(uvicorn.Server):
        stopping: asyncio.Task | None = None

        def handle_exit(self, sig: int, frame) -> None:
            loop = mind.broadcaster.loop
            if self.should_exit or loop is None or not mind.broadcaster.born:
                super().handle_exit(sig, frame)  # before birth nobody has seen this life; or a third signal
            elif mind.death is not None:
                self.should_exit = True  # announced already (a second signal, or a failure on its way out)
            elif self.stopping is None:
                loop.call_soon_threadsafe(self._announce_then_stop, loop)

        def _announce_then_stop(self, loop: asyncio.AbstractEventLoop) -> None:
            self.stopping = loop.create_task(self.stop_announced())  # kept: the loop holds tasks weakly

        async def stop_announced(self) -> None:
            if mind.die(Death.stopped()):
                await mind.broadcaster.drained(GRACE_S)
            # Set directly, not through handle_exit: uvicorn would raise the signal again once it has
            # shut down, and the status would be the signal's, not the one announced.
            self.should_exit = True

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_S,
    )
    MindServer(config).run()
    return EX_OK if mind.death is None else mind.death.exit_code
