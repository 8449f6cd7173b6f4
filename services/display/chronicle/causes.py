"""How a life ended, as best known: pure rules, no I/O.

The mind never announces its death (the kernel does not warn), so the chronicle judges from the last
vitals it saw of that life. The life died "at the limit" (cause ``"oom"``, source ``"vitals"``) when
those vitals showed, concretely, either

- ``memory_bytes >= OOM_MEMORY_FRACTION * limit_bytes`` (0.9: vitals are sampled every few seconds, so
  the last sample before an OOM kill is near the limit but rarely on it), or
- ``tokens_left - tokens_after <= OOM_TOKENS_LEFT``: the mind's own prediction of tokens until its next
  context growth passes the limit, less the tokens the display received after those vitals (vitals come
  every 2 s, i.e. ~80 tokens apart at 40 tokens/s, and memory grows in steps, so the sampled memory
  alone often sits well below the limit right before the step that kills).

Anything else is ``"unknown"``: never a silent guess. An explicit report (Docker's ``oom`` event, the
artist) outranks the inference from vitals and is never overwritten by it.
"""

from __future__ import annotations

OOM = "oom"
UNKNOWN = "unknown"
OOM_MEMORY_FRACTION = 0.9
OOM_TOKENS_LEFT = 16

# The weakest source of a cause: what the chronicle inferred from the last vitals.
INFERRED = "vitals"


def infer_cause(
    memory_bytes: int | None,
    limit_bytes: int | None,
    tokens_left: int | None,
    tokens_after: int = 0,
) -> str:
    """The cause of a death from the life's last vitals and the tokens seen after them."""
    if not limit_bytes:
        return UNKNOWN
    if memory_bytes is not None and memory_bytes >= OOM_MEMORY_FRACTION * limit_bytes:
        return OOM
    if tokens_left is not None and tokens_left - max(0, tokens_after) <= OOM_TOKENS_LEFT:
        return OOM
    return UNKNOWN


def outranks(new_source: str, old_source: str | None) -> bool:
    """True when a cause from ``new_source`` may replace one recorded from ``old_source``."""
    return old_source is None or old_source == INFERRED or new_source != INFERRED
