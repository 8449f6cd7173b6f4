"""The prompt frame read into a new life's first context: always in the same batches, and from the
cache (mind.llama.cache) wherever a past life read the same tokens.

Every life reads its frame into the same model and gets the same state before its first sampled
token, so the state after reading it is kept, and the next life restores it instead of reading the
frame again. Only the frame's state is kept, never a thought: it is copied before the first token
is sampled.

- **The plan** (read_plan): batches of at most ``n_batch`` tokens that end after every token ending a
  line; the frame's last token alone (its logits give the first thought). llama.cpp's numbers depend,
  in their last bits, on how tokens are batched; a plan that depends on the tokens alone makes every
  reading of a frame bit-identical, whether it starts from the cache or not.
- **What is restored** (restore_point): the longest common prefix of a cached frame and this one, cut
  back to the last batch boundary where both plans still agree. The cached state is loaded, its
  positions from there on are removed (``llama_memory_seq_rm``), and the rest of the frame is read.
  A frame that differs from a cached one only in its last line restores every line before it.
- **When a frame's state is kept** (worth_keeping): when nothing could be restored, and when the
  previous birth's frame shares more with this one than any cached frame does (the frame changed,
  and the change has stayed). A frame whose last line differs at every birth (a life number) then
  costs one entry, not one per life.
- **The key**: the model file's fingerprint (its whole content, hashed once), the first context's
  parameters (size at birth, batch, KV cache types, flash attention, swa_full), llama-cpp-python's
  version and llama.cpp's CPU features; the frame's tokens (and its plan) are stored in the entry
  and compared token by token. Anything else is a miss: the frame is read and its state kept.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import re
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import llama_cpp.llama_cpp as L

from mind.llama.cache import FileCache, model_fingerprint
from mind.llama.engine import context_params, save_state
from mind.sources import Background

log = logging.getLogger(__name__)

KIND = "frame-state"
LAST_KIND = "frame-last"  # the previous birth's frame (tokens only), to tell a lasting change
PLAN_VERSION = 3  # raise when read_plan changes: entries read another way are never restored


# -- the plan: pure, on token lists ----------------------------------------------------------------


def read_plan(line_ends: Sequence[bool], n_batch: int, number_starts: Sequence[bool] = ()) -> list[int]:
    """Where the batches that read a frame begin and end: ``[0, b1, ..., n]`` for a frame of n tokens
    whose i-th token ends a line if ``line_ends[i]`` (and begins a number if ``number_starts[i]``). A
    batch ends after every token that ends a line, before every token that begins a number (the life's
    own number: the cache restores the line up to it) and after ``n_batch`` tokens; the last token is a
    batch of its own (a frame the same at every birth restores all but it), unless the last batch begins
    with a number: a frame that ends with the life's number and a few words differs from the cached one
    there at every birth, and reading that tail in one batch saves a forward pass (19–22 ms here) of
    every resurrection. Each boundary before the last batch is decided by the tokens up to the one after
    it, so the plan of a frame begins with the plan of any frame it begins with."""
    n = len(line_ends)
    starts = list(number_starts) + [False] * (n - len(number_starts))
    bounds, start = [0], 0
    for i in range(n - 1):
        if line_ends[i] or starts[i + 1] or i + 1 - start >= n_batch:
            start = i + 1
            bounds.append(start)
    if start < n - 1 and not starts[start]:
        bounds.append(n - 1)
    if n:
        bounds.append(n)
    return bounds


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def restore_point(cached: Sequence[int], cached_plan: Sequence[int], tokens: Sequence[int], plan: Sequence[int]) -> int:
    """How many of ``tokens`` can come from the state of ``cached`` exactly as if they had been read:
    the last batch boundary up to which both plans agree, within the common prefix, and short of the
    last token (which must be read for its logits)."""
    p = common_prefix(cached, tokens)
    point = 0
    for a, b in zip(cached_plan, plan, strict=False):
        if a != b or b > p or b >= len(tokens):
            break
        point = b
    return point


def worth_keeping(restored: int, n_tokens: int, previous_point: int | None) -> bool:
    """Whether a frame of ``n_tokens``, ``restored`` of them from the cache, should be kept: when nothing
    was restored, or when the previous birth's frame would have restored more (``previous_point``;
    None if it is unknown). Not when all but its last token came from the cache."""
    if restored >= n_tokens - 1:
        return False
    if restored == 0:
        return True
    return previous_point is not None and previous_point > restored


# -- the key ---------------------------------------------------------------------------------------


def llama_cpp_version() -> str:
    """llama-cpp-python's version, from its ``__init__`` without running it (the mind never imports
    the package's high-level API; importlib.metadata would cost a tenth of a second per life)."""
    spec = importlib.util.find_spec("llama_cpp")
    try:
        text = Path(spec.origin).read_text(encoding="utf-8") if spec and spec.origin else ""
    except OSError:
        text = ""
    m = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
    return m.group(1) if m else "unknown"


def context_key(n_ctx: int, n_batch: int) -> dict:
    """What of the first context's parameters shapes the state it holds."""
    p = context_params(n_ctx, n_batch, 1)
    return {
        "n_ctx": n_ctx,
        "n_batch": p.n_batch,
        "n_ubatch": p.n_ubatch,
        "type_k": p.type_k,
        "type_v": p.type_v,
        "flash_attn": p.flash_attn_type,
        "swa_full": bool(p.swa_full),
    }


# -- the cache -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """How a frame was read: its tokens, its plan, how many tokens came from the cache, and the time
    it took to restore them and to read the whole frame (restoring included)."""

    tokens: list[int]
    plan: list[int]
    restored: int
    restore_seconds: float
    seconds: float


class FrameStateCache:
    """The frame's state in ``cache``, for the model file at ``model_path``."""

    def __init__(self, cache: FileCache, model_path: str | Path) -> None:
        self.cache = cache
        self.model_path = Path(model_path)
        self._keeping: Background | None = None
        self._previous: tuple[list[int], list[int]] | None = None

    def base_key(self, fingerprint: str, n_ctx: int, n_batch: int) -> dict:
        return {
            "plan": PLAN_VERSION,
            "model": fingerprint,
            "context": context_key(n_ctx, n_batch),
            "llama_cpp_python": llama_cpp_version(),
            "system": L.llama_print_system_info().decode("utf-8", "replace").strip(),
        }

    def restore(self, ctx, tokens: list[int], plan: list[int], n_batch: int) -> int:
        """Load the best cached state into sequence 0 of the empty ``ctx`` and cut it back to what this
        frame shares; how many of ``tokens`` it holds now (0: nothing restored, ``ctx`` untouched)."""
        fingerprint = model_fingerprint(self.model_path, self.cache, compute=False)
        if fingerprint is None:
            return 0  # a model never seen with this cache: nothing of it can be here
        base = self.base_key(fingerprint, L.llama_n_ctx(ctx), n_batch)
        previous = self.cache.get(LAST_KIND, base)
        if previous is not None:
            self._previous = _unpack_frame(previous)
        best, point = None, 0
        for entry in self.cache.entries(KIND):
            if {k: v for k, v in entry.key.items() if k not in ("tokens", "bounds")} != base:
                continue
            p = restore_point(entry.key["tokens"], entry.key["bounds"], tokens, plan)
            if p > point:
                best, point = entry, p
        if best is None:
            return 0
        data = self.cache.read(best)
        if data is None:
            return 0
        state = (ctypes.c_uint8 * len(data)).from_buffer(data)
        mem = L.llama_get_memory(ctx)
        if L.llama_state_seq_set_data(ctx, state, len(state), 0) == 0:
            log.warning("cache entry %s does not restore into this context: deleted", best.path.name)
            self.cache.remove(KIND, best.key)
            L.llama_memory_clear(mem, True)
            return 0
        del state, data
        if not L.llama_memory_seq_rm(mem, 0, point, -1):
            log.warning("cannot cut the cached frame state back to %d tokens; reading the whole frame", point)
            L.llama_memory_clear(mem, True)
            return 0
        return point

    def keep_if_worth_it(self, ctx, reading: Reading, n_batch: int) -> None:
        """After ``reading`` left the frame's state in ``ctx`` (nothing sampled yet): copy it now, if it
        is worth keeping, and write it (and the frame as the previous birth's) on a thread of its own."""
        tokens, plan = reading.tokens, reading.plan
        previous_point = restore_point(*self._previous, tokens, plan) if self._previous else None
        state = save_state(ctx) if worth_keeping(reading.restored, len(tokens), previous_point) else None
        remember = self._previous != (tokens, plan)
        if state is None and not remember:
            return
        n_ctx = L.llama_n_ctx(ctx)

        def write() -> None:
            started = time.monotonic()
            fingerprint = model_fingerprint(self.model_path, self.cache)
            if fingerprint is None:
                return
            base = self.base_key(fingerprint, n_ctx, n_batch)
            if remember:
                self.cache.put(LAST_KIND, base, _pack_frame(tokens, plan))
            if state is not None and self.cache.put(KIND, {**base, "tokens": tokens, "bounds": plan}, state):
                log.info(
                    "frame state kept: %d tokens, %d bytes, in %.2f s",
                    len(tokens),
                    len(state),
                    time.monotonic() - started,
                )

        self._keeping = Background(write, "mind-frame-keep")

    def wait(self) -> None:
        """Until the frame's state is written (tests, and a clean close)."""
        if self._keeping is not None:
            self._keeping.wait()


def _pack_frame(tokens: list[int], plan: list[int]) -> bytes:
    return array("i", [len(tokens), *tokens, *plan]).tobytes()


def _unpack_frame(data: bytes | bytearray) -> tuple[list[int], list[int]] | None:
    values = array("i")
    try:
        values.frombytes(bytes(data))
        n = values[0]
    except (ValueError, IndexError):
        return None
    return list(values[1 : 1 + n]), list(values[1 + n :])
