"""Token sources: where the mind's thoughts come from. A source is blocking and single-threaded; the
thinker calls it from its one worker thread."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mind.lifespan import Costs, Plan

# The mind's exit codes (sysexits.h): a source that cannot start is a configuration error; anything
# else that stops thinking is a software failure. Docker's restart policy applies to both.
EX_SOFTWARE = 70
EX_CONFIG = 78


class Background:
    """``work()`` on a daemon thread of its own from construction on (a life's start-up runs beside it).
    ``result()`` waits, then returns what it returned or raises what it raised."""

    def __init__(self, work: Callable[[], Any], name: str) -> None:
        self._work = work
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._work()
        except BaseException as exc:  # noqa: BLE001 - raised again by result()
            self._error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> Any:
        self.wait()
        if self._error is not None:
            raise self._error
        return self._value


class SourceError(RuntimeError):
    """The source cannot start (missing or corrupt model, unreadable script): a configuration error."""


@dataclass(frozen=True)
class ContextInfo:
    """What a source knows about its context, for vitals and the death prediction."""

    n_ctx: int
    n_ctx_train: int
    n_past: int
    prompt_tokens: int
    growth_step: int
    shifting: bool
    growths: int = 0
    last_growth_pause_s: float | None = None
    max_growth_pause_s: float | None = None
    costs: Costs | None = None  # what memory costs, once the source can tell
    kv_measured: bool = False  # costs.kv_bytes_per_token comes from a real growth step, not a first estimate
    model_bytes: int | None = None  # memory before the first context (weights + runtime)
    growth_peaks: tuple[tuple[int, int, int], ...] = ()  # memory read at each growth's peak: (n_old, n_new, bytes)

    def plan(self) -> Plan:
        """The growth still ahead, from the current context."""
        return Plan(self.n_ctx, self.growth_step, self.n_ctx_train, self.prompt_tokens)


class TokenSource(Protocol):
    name: str

    def load(self) -> None:
        """Block until the source is ready to think (model loaded, prompt read). Raises SourceError."""

    def next_piece(self) -> bytes:
        """Block until the next token exists; return its bytes (may be part of a UTF-8 character)."""

    def info(self) -> ContextInfo: ...

    def close(self) -> None: ...

    # Optional: ``sense(text) -> int`` writes the system's readings into the context (the tokens it took);
    # ``birth`` (mind.frames.Birth), ``frame`` (the filled frame), ``stops_refused``, ``sampling``.


WORDISH = re.compile(r"\s*\S+")


def wordish_tokens(text: str) -> list[str]:
    """Split text into word-ish tokens: each word carries the whitespace before it, like a BPE piece."""
    return WORDISH.findall(text)


class ScriptedSource:
    """Thinks a text file word by word, cycling forever, at a fixed rate. Context numbers are simulated
    (start, step, trained length as configured); memory is whatever the cgroup says."""

    def __init__(
        self,
        path: Path,
        *,
        rate: float = 0.0,
        n_ctx_start: int = 512,
        n_ctx_step: int = 512,
        n_ctx_train: int = 32768,
        kv_bytes_per_token: int = 18432,
        base_bytes: int | None = None,
        clock=time.monotonic,
        sleep=time.sleep,
        birth: Any = None,
    ) -> None:
        self.path = Path(path)
        self.birth = birth  # the frame drawn and the life counted (mind.frames.Birth); the script is the text
        self.name = f"scripted:{self.path.name}"
        self.rate = rate
        self.n_ctx = n_ctx_start
        self.n_ctx_step = n_ctx_step
        self.n_ctx_train = max(n_ctx_train, n_ctx_start)
        self.kv_bytes_per_token = kv_bytes_per_token
        self.base_bytes = base_bytes
        self._clock = clock
        self._sleep = sleep
        self._tokens: list[bytes] = []
        self._i = 0
        self._n_past = 0
        self._growths = 0
        self._shifted = False
        self._next_at: float | None = None

    def load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"cannot read script {self.path}: {exc}") from exc
        tokens = wordish_tokens(text)
        if not tokens:
            raise SourceError(f"script {self.path} has no words")
        # A cycle must not glue the last word to the first.
        if not tokens[0][:1].isspace():
            tokens[0] = " " + tokens[0]
        self._tokens = [t.encode("utf-8") for t in tokens]

    def next_piece(self) -> bytes:
        if self.rate > 0:
            now = self._clock()
            if self._next_at is None:
                self._next_at = now
            if self._next_at > now:
                self._sleep(self._next_at - now)
            # Keep a steady schedule, but never bank more than a second of lateness.
            self._next_at = max(self._next_at, self._clock() - 1.0) + 1.0 / self.rate
        piece = self._tokens[self._i]
        self._i = (self._i + 1) % len(self._tokens)
        if self._n_past >= self.n_ctx:
            if self.n_ctx < self.n_ctx_train:
                self.n_ctx = min(self.n_ctx + self.n_ctx_step, self.n_ctx_train)
                self._growths += 1
            else:
                self._n_past -= self._n_past // 2
                self._shifted = True
        self._n_past += 1
        return piece

    def sense(self, text: str) -> int:
        """The system's readings into the simulated context: they fill it like thoughts."""
        n = len(wordish_tokens(text))
        self._n_past += n
        return n

    def info(self) -> ContextInfo:
        kv = float(self.kv_bytes_per_token)
        costs = None if self.base_bytes is None else Costs(self.base_bytes, kv, state_bytes_per_token=kv)
        return ContextInfo(
            n_ctx=self.n_ctx,
            n_ctx_train=self.n_ctx_train,
            n_past=self._n_past,
            prompt_tokens=0,
            growth_step=self.n_ctx_step,
            shifting=self._shifted,
            growths=self._growths,
            last_growth_pause_s=0.0 if self._growths else None,
            max_growth_pause_s=0.0 if self._growths else None,
            costs=costs,
            kv_measured=True,
        )

    def close(self) -> None:
        pass
