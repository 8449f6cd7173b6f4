"""Pure prediction of when the mind dies: no I/O, no model, no clock.

The mind's memory is stepwise: a context of ``n`` tokens costs ``base + kv_bytes_per_token * n``
whatever is in it (llama.cpp commits the whole KV buffer when it creates a context). When the context
fills, the mind saves the sequence state, frees the old context, creates a larger one and restores
the state into it. During that step the saved state and the new context coexist, so the peak is

    base + kv_bytes_per_token * n_new + state(n_old)                     (old context freed first)
    base + kv_bytes_per_token * n_old + context_fixed_bytes + context_bytes_per_token * n_new + state(n_old)
                                                                         (old_context_coexists)
    state(n) = state_bytes_per_token * n + swa_state_bytes_per_token * min(n, swa_window)

(layers with sliding-window attention, as in Gemma 3, save only their window: their part of the
state stops growing at ``swa_window`` tokens, though their cache, with ``swa_full``, does not).

and that peak, not the resident memory afterwards, is what the kernel compares with the limit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Growth:
    """One growth step: the context goes from ``n_old`` to ``n_new`` tokens."""

    n_old: int
    n_new: int
    peak_bytes: int
    resident_bytes: int


def state_bytes(n: int, state_bytes_per_token: float, swa_state_bytes_per_token: float = 0.0,
                swa_window: int = 0) -> float:
    """Size of the saved sequence state after ``n`` tokens."""
    return state_bytes_per_token * n + swa_state_bytes_per_token * min(n, swa_window)


def growth_steps(
    *, base_bytes: int, kv_bytes_per_token: float, n_ctx_start: int, growth_step: int, n_ctx_train: int,
    state_bytes_per_token: Optional[float] = None, swa_state_bytes_per_token: float = 0.0, swa_window: int = 0,
    old_context_coexists: bool = False, context_bytes_per_token: Optional[float] = None, context_fixed_bytes: int = 0,
) -> list[Growth]:
    """Every growth step from ``n_ctx_start`` to ``n_ctx_train``, with its memory peak and resident size."""
    if growth_step <= 0:
        raise ValueError("growth_step must be positive")
    per_token = kv_bytes_per_token if state_bytes_per_token is None else state_bytes_per_token
    steps = []
    n = n_ctx_start
    while n < n_ctx_train:
        n_new = min(n + growth_step, n_ctx_train)
        resident = base_bytes + kv_bytes_per_token * n_new
        if old_context_coexists:
            fresh = kv_bytes_per_token if context_bytes_per_token is None else context_bytes_per_token
            peak = base_bytes + kv_bytes_per_token * n + context_fixed_bytes + fresh * n_new
        else:
            peak = resident
        peak += state_bytes(n, per_token, swa_state_bytes_per_token, swa_window)
        steps.append(Growth(n, n_new, int(peak), int(resident)))
        n = n_new
    return steps


def predict_tokens_at_death(
    *,
    base_bytes: int,
    kv_bytes_per_token: float,
    n_ctx_start: int,
    growth_step: int,
    n_ctx_train: int,
    limit_bytes: Optional[int],
    prompt_tokens: int = 0,
    state_bytes_per_token: Optional[float] = None,
    swa_state_bytes_per_token: float = 0.0,
    swa_window: int = 0,
    old_context_coexists: bool = False,
    context_bytes_per_token: Optional[float] = None,
    context_fixed_bytes: int = 0,
) -> Optional[int]:
    """Predict how many tokens the mind has thought when the kernel kills it.

    Args:
        base_bytes: memory charged before the first context exists (weights + runtime), in bytes.
        kv_bytes_per_token: bytes one token of context size costs (KV cache and the compute buffers
            that scale with it), measured as the resident increase of a growth step / the step.
        n_ctx_start: context size at birth, in tokens.
        growth_step: tokens added to the context when it fills.
        n_ctx_train: the largest context (the model's trained length, or a configured cap); at this
            size the mind shifts old thoughts out and its memory stays flat.
        limit_bytes: the memory limit in force, or None when there is none.
        prompt_tokens: tokens of the prompt frame, which fill the context but are not thoughts.
        state_bytes_per_token: size of the saved sequence state per token during a growth step
            (defaults to ``kv_bytes_per_token``); for sliding-window layers see the next two.
        swa_state_bytes_per_token: state bytes per token of the sliding-window layers, which save at
            most ``swa_window`` tokens (0 for models without them).
        swa_window: the sliding window, in tokens (``llama_model_n_swa``).
        old_context_coexists: the larger context is made before the old one is freed (the mind's
            default, ``MIND_GROWTH_PREPARE_AHEAD``): shorter pauses, a higher peak.
        context_bytes_per_token: with ``old_context_coexists``, what a freshly made context costs per
            token of its size (defaults to ``kv_bytes_per_token``; the resident slope can be higher,
            as freed memory is not always handed back at once).
        context_fixed_bytes: with ``old_context_coexists``, what a fresh context costs whatever its size.

    Returns:
        The tokens thought at death (a death happens while the context grows from ``n`` tokens,
        i.e. after ``n - prompt_tokens`` thoughts), 0 if even the first context does not fit, or
        None if the mind never dies (no limit, or the largest context fits).
    """
    if limit_bytes is None:
        return None
    if base_bytes + kv_bytes_per_token * n_ctx_start > limit_bytes:
        return 0
    for step in growth_steps(
        base_bytes=base_bytes, kv_bytes_per_token=kv_bytes_per_token, n_ctx_start=n_ctx_start,
        growth_step=growth_step, n_ctx_train=n_ctx_train, state_bytes_per_token=state_bytes_per_token,
        swa_state_bytes_per_token=swa_state_bytes_per_token, swa_window=swa_window,
        old_context_coexists=old_context_coexists, context_bytes_per_token=context_bytes_per_token,
        context_fixed_bytes=context_fixed_bytes,
    ):
        if step.peak_bytes > limit_bytes:
            return max(0, step.n_old - prompt_tokens)
    return None


def predict_tokens_left(
    *, tokens: int, n_ctx: int, prompt_tokens: int, base_bytes: int, kv_bytes_per_token: float,
    growth_step: int, n_ctx_train: int, limit_bytes: Optional[int], state_bytes_per_token: Optional[float] = None,
    swa_state_bytes_per_token: float = 0.0, swa_window: int = 0, old_context_coexists: bool = False,
    context_bytes_per_token: Optional[float] = None,
    context_fixed_bytes: int = 0,
) -> Optional[int]:
    """Tokens still to think before death, from the live state (current context ``n_ctx``)."""
    at_death = predict_tokens_at_death(
        base_bytes=base_bytes, kv_bytes_per_token=kv_bytes_per_token, n_ctx_start=n_ctx,
        growth_step=growth_step, n_ctx_train=n_ctx_train, limit_bytes=limit_bytes,
        prompt_tokens=prompt_tokens, state_bytes_per_token=state_bytes_per_token,
        swa_state_bytes_per_token=swa_state_bytes_per_token, swa_window=swa_window,
        old_context_coexists=old_context_coexists, context_bytes_per_token=context_bytes_per_token,
        context_fixed_bytes=context_fixed_bytes,
    )
    if at_death is None:
        return None
    return max(0, at_death - tokens)
