"""The mind's memory model: what its memory costs, how its context grows, and when it dies. Pure and
stdlib-only (no I/O, no model, no clock), so the host's scripts import it without the mind's stack.

The mind's memory is stepwise: a context of ``n`` tokens costs ``base + kv_bytes_per_token * n``
whatever is in it (llama.cpp commits the whole KV buffer when it creates a context). When the context
fills, the mind saves the sequence state, creates a larger context and restores the state into it.
During that step the saved state and the new context coexist, so the peak is

    base + kv_bytes_per_token * n_new + state(n_old)                     (old context freed first)
    base + kv_bytes_per_token * n_old + context_fixed_bytes + context_bytes_per_token * n_new + state(n_old)
                                                                         (old_context_coexists)
    state(n) = state_bytes_per_token * n + swa_state_bytes_per_token * min(n, swa_window)

(layers with sliding-window attention, as in Gemma 3, save only their window: their part of the
state stops growing at ``swa_window`` tokens, though their cache, with ``swa_full``, does not).

and that peak, not the resident memory afterwards, is what the kernel compares with the limit. With
``old_context_coexists`` the larger context is made ``PREPARE_LEAD`` tokens before the old one is full:
a limit that the two contexts alone exceed (before any state is saved) kills the mind that much earlier.

The mind reads its memory at each growth's peak, as it happens. What those readings had beyond the
model (the allocator's slack, page-sized noise: within a MiB or two of it, measured every 2 ms by
scripts/bench_growth_memory.py) is ``margin_bytes``, and how much it varied ``margin_spread_bytes``:
a prediction is then a range of deaths (``predict_death``), one point only when the whole range falls
between the same two growths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CTX_PAD = 256  # llama.cpp rounds every context size up to a multiple of this
PREPARE_LEAD = 32  # tokens before a full context at which its successor starts being made (ahead)


def pad_ctx(n: int) -> int:
    """``n`` tokens rounded up as llama.cpp sizes a context."""
    return -(-n // CTX_PAD) * CTX_PAD


@dataclass(frozen=True)
class ContextSettings:
    """The context as configured (MIND_N_CTX_START, MIND_N_CTX_STEP, MIND_N_CTX_MAX): the defaults here
    are the mind's defaults."""

    n_ctx_start: int = 512
    n_ctx_step: int = 256
    n_ctx_max: int = 0  # 0: the model's trained length

    def padded(self) -> ContextSettings:
        """Start and step as llama.cpp will size them."""
        return ContextSettings(pad_ctx(self.n_ctx_start), pad_ctx(self.n_ctx_step), self.n_ctx_max)

    def plan(self, *, prompt_tokens: int, n_ctx_trained: int) -> Plan:
        """How a mind with these settings grows, for a prompt frame of ``prompt_tokens`` and a model
        trained on ``n_ctx_trained`` tokens: the first context holds the prompt and at least one more
        token, every size is padded, and growth stops at ``n_ctx_max`` (if set) or the trained length."""
        padded = self.padded()
        start, step = padded.n_ctx_start, padded.n_ctx_step
        largest = min(n_ctx_trained, self.n_ctx_max) if self.n_ctx_max else n_ctx_trained
        while start <= prompt_tokens + 1:
            start += step
        return Plan(min(start, largest), step, largest, prompt_tokens)


@dataclass(frozen=True)
class Plan:
    """How a context grows: from ``n_ctx_start`` tokens by ``growth_step`` up to ``n_ctx_train``, the
    first ``prompt_tokens`` of it the prompt frame (which fills the context but is not thought)."""

    n_ctx_start: int
    growth_step: int
    n_ctx_train: int
    prompt_tokens: int = 0


@dataclass(frozen=True)
class Costs:
    """What the mind's memory costs, as it measures itself (GET /vitals names each field alike).

    base_bytes: memory with a context of 0 tokens: the weights, the runtime and a context's fixed
        buffers (the intercept of memory against context size).
    kv_bytes_per_token: bytes one token of context size costs (KV cache and the compute buffers that
        scale with it), the slope of memory against context size.
    state_bytes_per_token: size of the saved sequence state per token during a growth step (None:
        as ``kv_bytes_per_token``); for sliding-window layers see the next two.
    swa_state_bytes_per_token: state bytes per token of the sliding-window layers, which save at most
        ``swa_window`` tokens (0 for models without them).
    swa_window: the sliding window, in tokens (``llama_model_n_swa``).
    old_context_coexists: the larger context is made before the old one is freed (the mind's
        default, ``MIND_GROWTH_PREPARE_AHEAD``): shorter pauses, a higher peak.
    context_bytes_per_token: with ``old_context_coexists``, what a freshly made context costs per token
        of its size (None: as ``kv_bytes_per_token``; the resident slope can be higher, as freed
        memory is not always handed back at once).
    context_fixed_bytes: with ``old_context_coexists``, what a fresh context costs whatever its size.
    margin_bytes: what the growths' peaks, read as they happened, had beyond all of the above
        (margin_from_peaks; negative: below it).
    margin_spread_bytes: how far ``margin_bytes`` may be off, either way.
    """

    base_bytes: int
    kv_bytes_per_token: float
    state_bytes_per_token: float | None = None
    swa_state_bytes_per_token: float = 0.0
    swa_window: int = 0
    old_context_coexists: bool = False
    context_bytes_per_token: float | None = None
    context_fixed_bytes: int = 0
    margin_bytes: float = 0.0
    margin_spread_bytes: float = 0.0

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> Costs:
        """The costs named in ``m`` (a GET /vitals body). Raises KeyError, TypeError or ValueError."""

        def number(key: str) -> float | None:
            return None if m.get(key) is None else float(m[key])

        return cls(
            base_bytes=int(m["base_bytes"]),
            kv_bytes_per_token=float(m["kv_bytes_per_token"]),
            state_bytes_per_token=number("state_bytes_per_token"),
            swa_state_bytes_per_token=float(m.get("swa_state_bytes_per_token") or 0.0),
            swa_window=int(m.get("swa_window") or 0),
            old_context_coexists=bool(m.get("old_context_coexists")),
            context_bytes_per_token=number("context_bytes_per_token"),
            context_fixed_bytes=int(m.get("context_fixed_bytes") or 0),
            margin_bytes=float(m.get("margin_bytes") or 0.0),
            margin_spread_bytes=float(m.get("margin_spread_bytes") or 0.0),
        )

    def resident_bytes(self, n_ctx: int) -> float:
        """Memory with a context of ``n_ctx`` tokens, between growths."""
        return self.base_bytes + self.kv_bytes_per_token * n_ctx

    def state_bytes(self, n: int) -> float:
        """Size of the saved sequence state after ``n`` tokens."""
        per_token = self.kv_bytes_per_token if self.state_bytes_per_token is None else self.state_bytes_per_token
        return per_token * n + self.swa_state_bytes_per_token * min(n, self.swa_window)

    def both_contexts_bytes(self, n_old: int, n_new: int) -> float:
        """With ``old_context_coexists``: memory once the larger context exists beside the old one, before
        the state is saved (``PREPARE_LEAD`` tokens before the growth). Without: the resident size."""
        if not self.old_context_coexists:
            return self.resident_bytes(n_old)
        fresh = self.kv_bytes_per_token if self.context_bytes_per_token is None else self.context_bytes_per_token
        return self.resident_bytes(n_old) + self.context_fixed_bytes + fresh * n_new

    def peak_bytes(self, n_old: int, n_new: int) -> float:
        """Memory at the peak of a growth from ``n_old`` to ``n_new`` tokens, as measured (no margin)."""
        if self.old_context_coexists:
            peak = self.both_contexts_bytes(n_old, n_new)
        else:
            peak = self.resident_bytes(n_new)
        return peak + self.state_bytes(n_old)


@dataclass(frozen=True)
class Growth:
    """One growth step: the context goes from ``n_old`` to ``n_new`` tokens. ``early_bytes``: memory
    ``PREPARE_LEAD`` tokens before it, once the larger context exists (the resident size when it is
    not made ahead). Neither counts the margin."""

    n_old: int
    n_new: int
    peak_bytes: int
    resident_bytes: int
    early_bytes: int = 0


@dataclass(frozen=True)
class Death:
    """When the kernel kills the mind: ``tokens`` thought at the likeliest death, and the range
    ``low``..``high`` it falls in given how unsure the margin is (all None: it never dies). ``sure``:
    the range is one point. ``n_ctx``: the context that was growing at the likeliest death."""

    tokens: int | None
    low: int | None
    high: int | None
    n_ctx: int | None = None
    peak_bytes: int | None = None

    @property
    def sure(self) -> bool:
        return self.low == self.high


def margin_from_peaks(costs: Costs, peaks: Sequence[Sequence[int]]) -> tuple[float, float]:
    """(margin_bytes, margin_spread_bytes) from memory read at growths' peaks, ``(n_old, n_new, bytes)``
    each: the middle of what they had beyond ``costs.peak_bytes`` (negative: below it) and half the
    range, so that every peak seen lies within margin ± spread."""
    if not peaks:
        return 0.0, 0.0
    excess = [peak - costs.peak_bytes(n_old, n_new) for n_old, n_new, peak in peaks]
    low, high = min(excess), max(excess)
    return (low + high) / 2, (high - low) / 2


def fit_line(points: list[tuple[int, int]]) -> tuple[float, int]:
    """Least-squares (slope, intercept) of bytes against tokens, the slope at least 0; one point gives a
    line through 0."""
    if len(points) == 1:
        ((x, y),) = points
        return max(0.0, y / x), 0
    xs, ys = zip(*points, strict=True)
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = max(0.0, sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs))
    return slope, int(my - slope * mx)


def growth_steps(costs: Costs, plan: Plan) -> list[Growth]:
    """Every growth step of ``plan``, with its memory peak and resident size."""
    if plan.growth_step <= 0:
        raise ValueError("growth_step must be positive")
    steps = []
    n = plan.n_ctx_start
    while n < plan.n_ctx_train:
        n_new = min(n + plan.growth_step, plan.n_ctx_train)
        steps.append(
            Growth(
                n,
                n_new,
                int(costs.peak_bytes(n, n_new)),
                int(costs.resident_bytes(n_new)),
                int(costs.both_contexts_bytes(n, n_new)),
            )
        )
        n = n_new
    return steps


def _death_at(costs: Costs, plan: Plan, limit_bytes: int, margin: float) -> tuple[int | None, Growth | None]:
    """(tokens at death, the fatal growth) with ``margin`` bytes added to every peak."""
    if costs.resident_bytes(plan.n_ctx_start) + margin > limit_bytes:
        return 0, None
    for step in growth_steps(costs, plan):
        if step.early_bytes + margin > limit_bytes:
            # the larger context alone does not fit: the death comes as it is made, ahead of the growth
            return max(0, step.n_old - PREPARE_LEAD - plan.prompt_tokens), step
        if step.peak_bytes + margin > limit_bytes:
            return max(0, step.n_old - plan.prompt_tokens), step
    return None, None


def predict_death(costs: Costs, plan: Plan, limit_bytes: int | None) -> Death:
    """The death under ``limit_bytes``: a death happens while the context grows from ``n`` tokens, i.e.
    after ``n - prompt_tokens`` thoughts; with the margin's spread, a range of them. Tokens are 0 if even
    the first context does not fit; None if the mind never dies (no limit, or the largest context fits)."""
    if limit_bytes is None:
        return Death(None, None, None)
    tokens, fatal = _death_at(costs, plan, limit_bytes, costs.margin_bytes)
    spread = costs.margin_spread_bytes
    low, _ = _death_at(costs, plan, limit_bytes, costs.margin_bytes + spread)
    high, _ = _death_at(costs, plan, limit_bytes, costs.margin_bytes - spread)
    n_ctx = fatal.n_old if fatal else (plan.n_ctx_start if tokens == 0 else None)
    peak = None if fatal is None else int(fatal.peak_bytes + costs.margin_bytes)
    return Death(tokens, low, high, n_ctx, peak)


def predict_tokens_at_death(costs: Costs, plan: Plan, limit_bytes: int | None) -> int | None:
    """The likeliest tokens thought at death (predict_death's point); None: it never dies."""
    return predict_death(costs, plan, limit_bytes).tokens


def predict_tokens_left(costs: Costs, plan: Plan, limit_bytes: int | None, tokens: int) -> int | None:
    """Tokens still to think before death, for a mind that has thought ``tokens`` and whose ``plan``
    starts at its current context."""
    at_death = predict_tokens_at_death(costs, plan, limit_bytes)
    return None if at_death is None else max(0, at_death - tokens)
