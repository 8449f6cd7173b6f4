"""How a life ended, and how that is known: pure rules, no I/O.

A cause always comes with its source, the way it is known, strongest last:

- ``vitals``: the display's inference at an unannounced end (the stream broke with no ``death`` event).
  The kernel never warns, so this is at best ``probable oom``: the life's last vitals showed it at
  its limit, concretely ``memory_bytes >= OOM_MEMORY_FRACTION * limit_bytes`` (vitals are sampled
  every few seconds, so the last sample before an OOM kill is near the limit but rarely on it), or
  ``tokens_left - tokens_after <= OOM_TOKENS_LEFT`` (the mind's own prediction of tokens until its
  next context growth passes the limit, less the tokens received after those vitals: memory grows in
  steps, so the sampled memory often sits well below the limit right before the step that kills).
  ``tokens_left`` and ``tokens_after`` count thoughts, but the system's readings (``sense`` events)
  fill the context too: one written after those vitals brings the growth, and the death, that many
  thought tokens sooner. So the rule allows ``READING_TOKENS`` more: a gauge reading is 27 to 36 tokens
  with the default model (a ``gauge+past`` reading, 55 or more, can still exceed it).
  Anything else is ``unknown``: a ``docker stop`` or a power cut near the limit is not called an OOM.
- ``mind``: the mind's own ``death`` event (docs/stream-contract.md), sent before it exits:
  ``stopped`` (SIGTERM), ``failed`` (a fatal error, with its exit code), or ``oom`` when the mind ends
  itself at its limit because it stalled there (detail ``stall``).
- ``docker``: Docker's ``oom`` event, matched to a life that was alive at that moment
  (``scripts/lives --follow``): ``oom``, confirmed. Any other named reporter ranks the same.

A cause from a stronger source replaces a weaker one, never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

OOM = "oom"
PROBABLE_OOM = "probable oom"
STOPPED = "stopped"
FAILED = "failed"
UNKNOWN = "unknown"

VITALS = "vitals"  # inferred by the display
MIND = "mind"  # announced by the mind
DOCKER = "docker"  # Docker's oom event

OOM_MEMORY_FRACTION = 0.9
READING_TOKENS = 32  # about one gauge reading's tokens, which the context takes unseen by tokens_after
OOM_TOKENS_LEFT = READING_TOKENS + 16  # + slack for the prediction's own error

_RANK = {VITALS: 0, MIND: 1}  # any other source (docker, a person) is an outside witness: rank 2


@dataclass(frozen=True, slots=True)
class Death:
    """A life's end as the display judged it, handed to every life subscriber."""

    life: str
    cause: str
    source: str
    exit_code: int | None = None
    detail: str | None = None  # a word of the contract's vocabulary ("hung", "stall", ...)
    tokens: int | None = None  # tokens the mind says the life thought (a death event's count)

    def words(self) -> str:
        return words(self.cause, self.source, self.exit_code, self.detail)


def infer_cause(
    memory_bytes: int | None,
    limit_bytes: int | None,
    tokens_left: int | None,
    tokens_after: int = 0,
) -> str:
    """The cause of an unannounced end from the life's last vitals and the tokens seen after them."""
    if not limit_bytes:
        return UNKNOWN
    if memory_bytes is not None and memory_bytes >= OOM_MEMORY_FRACTION * limit_bytes:
        return PROBABLE_OOM
    if tokens_left is not None and tokens_left - max(0, tokens_after) <= OOM_TOKENS_LEFT:
        return PROBABLE_OOM
    return UNKNOWN


def outranks(new_source: str, old_source: str | None) -> bool:
    """True when a cause from ``new_source`` may replace one recorded from ``old_source``."""
    return old_source is None or _RANK.get(new_source, 2) >= _RANK.get(old_source, 2)


def words(cause: str | None, source: str | None = None, exit_code: int | None = None, detail: str | None = None) -> str:
    """A cause as a visitor reads it, saying how it is known. Only known words and numbers: never an
    exception's text."""
    if cause is None:
        return UNKNOWN
    if cause == OOM:
        if source == DOCKER:
            return "oom, confirmed by Docker"
        if source == MIND:
            return f"oom ({detail})" if detail else "oom, announced by the mind"
        return f"oom, confirmed by {source}" if source and source != VITALS else OOM
    if cause == PROBABLE_OOM:
        return "probable oom (memory near its limit)"
    if cause == FAILED:
        text = f"failed: {detail}" if detail else "failed"
        return f"{text} (exit {exit_code})" if exit_code is not None else text
    if cause == STOPPED:
        return STOPPED
    if cause == UNKNOWN:
        return UNKNOWN
    return f"{cause} ({source})" if source else cause
