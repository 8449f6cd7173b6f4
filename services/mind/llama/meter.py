"""What the mind learns of its own memory: its Costs (mind.lifespan), from memory readings taken around
its growths. No llama.cpp here: the source tells the meter what happened, the meter reads the probe.

- Before the first context: the weights and runtime (``model_bytes``, the first ``base_bytes``).
- After the prompt is read: a first estimate of memory per token of context (too high: it includes
  the context's fixed buffers), and the saved state's size per token.
- Around every growth: memory before it and after the first decode in the larger context (once its
  compute buffer has been touched); a line ``memory = base + kv * n_ctx`` through all of them (one
  step alone is blurred by page-sized noise; the intercept is more than the weights, as each context
  also holds buffers that do not scale with its size).
- When the larger context is made beside the old one: what a fresh context costs, per token and fixed.
- The saved state's size at every growth, split into a part that grows with every token and a
  sliding-window part that stops at the window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mind.lifespan import Costs, fit_line, margin_from_peaks

log = logging.getLogger(__name__)


class Meter:
    """Learns Costs from ``probe()`` (memory as the kernel will judge it, None if unreadable)."""

    def __init__(self, probe: Callable[[], int | None], *, old_context_coexists: bool) -> None:
        self.read = probe
        self.old_context_coexists = old_context_coexists
        self.model_bytes: int | None = None  # memory before the first context: weights + runtime
        self.base_bytes: int | None = None
        self.kv_bytes_per_token: float | None = None
        self.kv_measured = False  # kv_bytes_per_token comes from a real growth, not the first estimate
        self.state_bytes_per_token: float | None = None
        self.swa_state_bytes_per_token = 0.0
        self.swa_window = 0
        self.context_bytes_per_token: float | None = None  # a fresh context, per token of its size ...
        self.context_fixed_bytes = 0  # ... plus what it costs whatever its size
        self._short_state_per_token: float | None = None  # all layers, while n <= the window
        self._memory_points: list[tuple[int, int]] = []  # (n_ctx, memory) around growths
        self._context_points: list[tuple[int, int]] = []  # (n_ctx, what a fresh context of it cost)
        self._settling: tuple[int, int, int | None] | None = None  # (n_ctx before a growth, memory then, at its peak)
        self._peaks: list[tuple[int, int, int]] = []  # (n_old, n_new, memory read at the growth's peak)
        self.margin_bytes = 0.0
        self.margin_spread_bytes = 0.0

    def weights_loaded(self) -> None:
        """Call before the first context exists."""
        self.model_bytes = self.base_bytes = self.read()

    def prompt_read(self, *, n_ctx: int, n_past: int, state_size: int, swa_window: int) -> None:
        """The first context (``n_ctx`` tokens) holds the prompt (``n_past`` tokens, a saved state of
        ``state_size`` bytes); the model's sliding window is ``swa_window`` tokens (0: none)."""
        self.swa_window = swa_window
        if swa_window == 0 or n_past <= swa_window:
            self._short_state_per_token = self.state_bytes_per_token = state_size / n_past
        after = self.read()
        if self.base_bytes is not None and after is not None:
            # First estimate (includes fixed buffers, so too high); replaced at the first growth.
            self.kv_bytes_per_token = max(0.0, (after - self.base_bytes) / n_ctx)

    def context_made(self, n_ctx: int, before: int | None, after: int | None) -> None:
        """A context of ``n_ctx`` tokens was made beside the old one; memory was ``before`` and
        ``after`` around it."""
        if before is not None and after is not None:
            self._context_points.append((n_ctx, after - before))
            self.context_bytes_per_token, self.context_fixed_bytes = fit_line(self._context_points)

    def grown(self, *, n_old: int, before: int | None, state_size: int, n_past: int, peak: int | None = None) -> None:
        """The context grew from ``n_old`` tokens, where memory was ``before``, carrying a saved state
        of ``state_size`` bytes for ``n_past`` tokens; memory was ``peak`` at the moment the model calls
        the growth's peak (both contexts and the state, or the new context and the state). Call settle()
        after the next decode."""
        self._learn_state_size(state_size, n_past)
        if before is not None:
            self._settling = (n_old, before, peak)

    @property
    def settling(self) -> bool:
        """A growth waits for its reading after the next decode."""
        return self._settling is not None

    def settle(self, n_ctx: int) -> None:
        """After the first decode in the grown context of ``n_ctx`` tokens: read memory and fit."""
        if self._settling is None:
            return
        (n_old, before, peak), self._settling = self._settling, None
        after = self.read()
        if after is None:
            return
        if peak is not None:
            self._peaks.append((n_old, n_ctx, peak))
        if not self._memory_points:
            self._memory_points.append((n_old, before))
        self._memory_points.append((n_ctx, after))
        self.kv_bytes_per_token, self.base_bytes = fit_line(self._memory_points)
        self.kv_measured = True
        self._learn_margin()
        log.info(
            "memory = %d + %.0f bytes per token of context (fit through %d points)",
            self.base_bytes,
            self.kv_bytes_per_token,
            len(self._memory_points),
        )

    def _learn_margin(self) -> None:
        """What the growths' real peaks had beyond the model's peaks, as fitted so far (mind.lifespan)."""
        costs = self.costs()
        if costs is not None and self._peaks:
            self.margin_bytes, self.margin_spread_bytes = margin_from_peaks(costs, self._peaks)

    @property
    def growth_peaks(self) -> tuple[tuple[int, int, int], ...]:
        """Memory read at each growth's peak: (n_old, n_new, bytes)."""
        return tuple(self._peaks)

    def _learn_state_size(self, size: int, n: int) -> None:
        """Split the saved state into a part that grows with every token and a sliding-window part
        that stops at the window. Until a state past the window is seen, assume it all grows."""
        w = self.swa_window
        if w == 0 or n <= w:
            self._short_state_per_token = size / n
            self.state_bytes_per_token, self.swa_state_bytes_per_token = size / n, 0.0
        elif self._short_state_per_token is not None:
            full = max(0.0, (size - self._short_state_per_token * w) / (n - w))
            self.state_bytes_per_token = full
            self.swa_state_bytes_per_token = max(0.0, self._short_state_per_token - full)
        else:
            self.state_bytes_per_token, self.swa_state_bytes_per_token = size / n, 0.0

    def costs(self) -> Costs | None:
        """What memory costs as measured so far; None until both base and per-token cost are known."""
        if self.base_bytes is None or self.kv_bytes_per_token is None:
            return None
        return Costs(
            base_bytes=self.base_bytes,
            kv_bytes_per_token=self.kv_bytes_per_token,
            state_bytes_per_token=self.state_bytes_per_token,
            swa_state_bytes_per_token=self.swa_state_bytes_per_token,
            swa_window=self.swa_window,
            old_context_coexists=self.old_context_coexists,
            context_bytes_per_token=self.context_bytes_per_token,
            context_fixed_bytes=self.context_fixed_bytes,
            margin_bytes=self.margin_bytes,
            margin_spread_bytes=self.margin_spread_bytes,
        )
