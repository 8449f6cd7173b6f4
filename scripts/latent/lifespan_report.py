"""`latent lifespan`'s pure half: what a measured mind's vitals say, predictions for memory limits, and
the reports (tables, the calibration record and its SVG plot). No Docker, no I/O; the arithmetic is
the mind's own (mind.lifespan)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from latent import CliError
from mind.lifespan import ContextSettings, Costs, Plan, growth_steps, margin_from_peaks, predict_death
from mind.sizes import format_size


class LifespanError(CliError):
    """A problem the user can fix: printed as one line, exit status 2."""


# -- what a mind measured of itself ----------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """What a mind measured of itself (from `/vitals`, once its first growth step happened): its
    costs, and the prompt, context and speed they were measured with."""

    costs: Costs
    prompt_tokens: int
    n_ctx_train: int  # the model's largest context as the measured run saw it
    tokens_per_s: float | None

    @classmethod
    def from_vitals(cls, v: dict) -> Measurement:
        if not isinstance(v, dict):
            raise LifespanError("the vitals must be a JSON object (the body of the mind's GET /vitals)")
        missing = [k for k in ("base_bytes", "kv_bytes_per_token", "prompt_tokens", "n_ctx_train") if v.get(k) is None]
        if missing:
            raise LifespanError(
                f"the vitals lack {', '.join(missing)}: save GET /vitals of a mind that is thinking "
                "(state 'thinking') with the model source"
            )
        if not v.get("growths") or v.get("kv_measured") is False:
            raise LifespanError(
                "the vitals were saved before the mind's first growth step (growths is 0): its "
                "kv_bytes_per_token is only a first estimate; save /vitals again once growths >= 1"
            )
        try:
            costs = Costs.from_mapping(v)
            if v.get("growth_peaks"):
                # the peaks as read: the margin as this version of the model makes it of them
                margin, spread = margin_from_peaks(costs, v["growth_peaks"])
                costs = replace(costs, margin_bytes=margin, margin_spread_bytes=spread)
            return cls(
                costs=costs,
                prompt_tokens=int(v["prompt_tokens"]),
                n_ctx_train=int(v["n_ctx_train"]),
                tokens_per_s=float(v["tokens_per_s"]) if v.get("tokens_per_s") else None,
            )
        except (TypeError, ValueError) as exc:
            raise LifespanError(f"the vitals hold a value of the wrong type: {exc}") from exc

    def as_json(self) -> dict:
        """One flat object, the costs named as in the mind's vitals."""
        return {
            **asdict(self.costs),
            "prompt_tokens": self.prompt_tokens,
            "n_ctx_train": self.n_ctx_train,
            "tokens_per_s": self.tokens_per_s,
        }

    def plan(self, settings: ContextSettings) -> Plan:
        """How a mind with ``settings`` grows, as it will size its contexts for this prompt and model."""
        return settings.plan(prompt_tokens=self.prompt_tokens, n_ctx_trained=self.n_ctx_train)


def default_settings(vitals: dict | None = None) -> ContextSettings:
    """The mind's default context settings, with the growth step a measured mind used, if given."""
    defaults = ContextSettings()
    step = (vitals or {}).get("growth_step") or defaults.n_ctx_step
    return ContextSettings(defaults.n_ctx_start, int(step), defaults.n_ctx_max)


def measured_enough(v: dict) -> bool:
    """The mind has measured its costs: memory per token from a real growth step (not the first
    estimate) and, for a model with sliding-window layers, a saved state longer than the window
    (before that the state's per-token size counts every layer and the prediction comes out short)."""
    if (
        v.get("state") != "thinking"
        or not v.get("n_ctx")
        or not v.get("growths")
        or v.get("kv_bytes_per_token") is None
    ):
        return False
    if "kv_measured" in v:
        if not v["kv_measured"]:
            return False
    elif v.get("n_past", 0) < v["n_ctx"] - v["growth_step"] + 2:  # older minds: measured after the next decode
        return False
    window = v.get("swa_window") or 0
    last_growth_from = v["n_ctx"] - v["growth_step"]
    return not window or last_growth_from > window or v["n_ctx"] >= v.get("n_ctx_train", 0)


SURE_GROWTHS = 4  # growths whose peaks the mind has read before `predict` trusts its margin


def sure_enough(v: dict) -> bool:
    """Measured enough (measured_enough) and the margin read at enough growths to trust its spread;
    a mind that does not read its peaks (no margin in its vitals) is as sure as it will ever be."""
    if not measured_enough(v):
        return False
    return "margin_bytes" not in v or (v.get("growths") or 0) >= SURE_GROWTHS


# -- predictions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    limit_bytes: int
    tokens_at_death: int | None  # None: never dies
    n_ctx_at_death: int | None  # the context that was growing when it died
    peak_bytes_at_death: int | None
    max_resident_bytes: int  # memory at the largest context (what a limit must exceed to never die)
    minutes: float | None  # at the measured speed (the measuring run thinks unpaced)
    minutes_at_user_tps: float | None
    minutes_at_pace: float | None = None  # at the installation's own pace (MIND_TOKENS_PER_S)
    # the range the death falls in, as unsure as the measured margin (equal to tokens_at_death: sure)
    tokens_low: int | None = None
    tokens_high: int | None = None

    @property
    def sure(self) -> bool:
        return self.tokens_low == self.tokens_high


def below_base(m: Measurement, limit_bytes: int) -> str | None:
    """Why ``limit_bytes`` cannot hold the mind at all (with the fix), or None."""
    base = m.costs.base_bytes
    if limit_bytes > base:
        return None
    return (
        f"limit {format_size(limit_bytes)} is below the mind's base memory ({format_size(base)}, "
        "the weights and runtime before any context): it would die while loading, over and over; "
        f"give it at least {format_size(base + 64 * (1 << 20))} (MIND_MEMORY_LIMIT in .env, or latent set-limit)"
    )


def predict(
    m: Measurement,
    settings: ContextSettings,
    limit_bytes: int,
    user_tps: float | None = None,
    pace_tps: float | None = None,
) -> Prediction:
    costs, plan = m.costs, m.plan(settings)
    problem = below_base(m, limit_bytes)
    if problem:
        raise LifespanError(problem)
    death = predict_death(costs, plan, limit_bytes)
    tokens = death.tokens
    steps = growth_steps(costs, plan)
    max_resident = steps[-1].resident_bytes if steps else int(costs.resident_bytes(plan.n_ctx_start))

    def minutes(tps: float | None) -> float | None:
        return None if tokens is None or not tps else tokens / tps / 60

    return Prediction(
        limit_bytes,
        tokens,
        death.n_ctx,
        death.peak_bytes,
        max_resident,
        minutes(m.tokens_per_s),
        minutes(user_tps),
        minutes(pace_tps),
        death.low,
        death.high,
    )


def tokens_text(p: Prediction) -> str:
    """The tokens at death as a person should read them: a point when sure, else the range and the
    likeliest ("2816 (2560 to 3072)"); the top of an open range is "never"."""
    if p.sure:
        return str(p.tokens_at_death)
    high = "never" if p.tokens_high is None else str(p.tokens_high)
    return f"{p.tokens_at_death} ({p.tokens_low} to {high})"


def _fmt_minutes(m: float | None) -> str:
    if m is None:
        return "-"
    return f"{m:.1f} min" if m < 120 else f"{m / 60:.1f} h"


def prediction_table(
    rows: Sequence[Prediction],
    m: Measurement,
    user_tps: float | None,
    pace_tps: float | None = None,
    below: Sequence[int] = (),
) -> str:
    """One row per limit: ``rows`` (predicted), then the limits in ``below`` (under the base memory)."""
    tps = f"at {m.tokens_per_s:.1f} tok/s" if m.tokens_per_s else "at measured tok/s"
    head = ["limit", "tokens at death", "context at death", f"minutes {tps}"]
    if pace_tps:
        head.append(f"minutes at its pace ({pace_tps:g} tok/s)")
    if user_tps:
        head.append(f"minutes at {user_tps:g} tok/s")
    extra = int(bool(pace_tps)) + int(bool(user_tps))
    lines = [head]
    for p in rows:
        if p.tokens_at_death is None:
            maybe = "" if p.tokens_low is None else f"; unsure: it may die at {p.tokens_low}"
            cells = [
                format_size(p.limit_bytes),
                f"never dies (context cap fits: {format_size(p.max_resident_bytes)} at its largest{maybe})",
                "-",
                "-",
            ] + ["-"] * extra
        elif p.tokens_at_death == 0:
            cells = [format_size(p.limit_bytes), "0 (dies before its first thought)", str(p.n_ctx_at_death), "-"]
            cells += ["-"] * extra
        else:
            cells = [format_size(p.limit_bytes), tokens_text(p), str(p.n_ctx_at_death), _fmt_minutes(p.minutes)]
            if pace_tps:
                cells.append(_fmt_minutes(p.minutes_at_pace))
            if user_tps:
                cells.append(_fmt_minutes(p.minutes_at_user_tps))
        lines.append(cells)
    for limit in below:
        lines.append([format_size(limit), "0: below its base memory, it dies while loading", "-", "-"] + ["-"] * extra)
    return _table(lines)


def costs_summary(m: Measurement, settings: ContextSettings) -> str:
    costs, plan = m.costs, m.plan(settings)
    state = costs.state_bytes_per_token or costs.kv_bytes_per_token
    swa = (
        f" (+{costs.swa_state_bytes_per_token / 1024:.1f} KiB for the first {costs.swa_window})"
        if costs.swa_state_bytes_per_token
        else ""
    )
    return (
        f"base {format_size(costs.base_bytes)}, {costs.kv_bytes_per_token / 1024:.1f} KiB per token of context "
        f"(+{state / 1024:.1f} KiB per token saved during a growth{swa}), prompt {m.prompt_tokens} tokens, "
        f"context {plan.n_ctx_start} growing by {plan.growth_step} up to {plan.n_ctx_train}"
        + (
            f", growth peaks {format_size(costs.margin_bytes)} above that (± {format_size(costs.margin_spread_bytes)})"
            if costs.margin_bytes or costs.margin_spread_bytes
            else ""
        )
        + (f", {m.tokens_per_s:.1f} tok/s here" if m.tokens_per_s else "")
    )


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, r in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# -- calibration records, table and plot ---------------------------------------------------------


@dataclass
class LifeRecord:
    limit_bytes: int
    attempt: int
    cause: str = "unknown"  # "oom" | "exit <code>" | "timeout" | "failed to start"
    exit_code: int | None = None
    oom_killed: bool | None = None
    life: str | None = None
    # context positions past the frame at death: its thought's tokens and the readings written into its
    # context (MIND_SENSES), as the memory model counts them
    tokens_at_death: int | None = None
    reading_tokens: int | None = None  # of those, the readings'
    lifespan_s: float | None = None  # container start to death
    thinking_s: float | None = None  # first token to last token
    tokens_per_s: float | None = None
    predicted_tokens: int | None = None
    predicted_from: str | None = None  # "own vitals" | "saved vitals"
    predicted_tokens_saved: int | None = None  # from --from-vitals too, when given (e.g. a predict run)
    predicted_tokens_first: int | None = None  # from the life's first complete self-measurement
    error_pct: float | None = None
    last_vitals: dict | None = None
    costs: dict | None = None
    note: str = ""

    error_saved_pct: float | None = None
    # the range of the saved (prior) prediction, what a person was told before the life
    predicted_low_saved: int | None = None
    predicted_high_saved: int | None = None
    growth_step: int | None = None
    # the prior prediction (saved, else the life's own) held: within_bound(); None: not judged
    held: bool | None = None

    def judge(self) -> None:
        if self.tokens_at_death is None or self.cause != "oom":
            return
        if self.predicted_tokens:
            self.error_pct = round(100.0 * (self.tokens_at_death - self.predicted_tokens) / self.predicted_tokens, 2)
        if self.predicted_tokens_saved:
            self.error_saved_pct = round(
                100.0 * (self.tokens_at_death - self.predicted_tokens_saved) / self.predicted_tokens_saved, 2
            )
        prior = self.predicted_tokens_saved if self.predicted_tokens_saved is not None else self.predicted_tokens
        if prior is not None and self.growth_step:
            self.held = within_bound(self.tokens_at_death, prior, self.growth_step)


def within_bound(real: int, predicted: int, growth_step: int) -> bool:
    """A prediction holds when the real death is within 5 % or one growth step of it, whichever is
    larger, and never more than one growth step early (a life cut short is worse than a long one)."""
    tolerance = max(0.05 * predicted, growth_step)
    return abs(real - predicted) <= tolerance and real >= predicted - growth_step


def calibration_table(records: Sequence[LifeRecord]) -> str:
    lines = [
        [
            "limit",
            "life",
            "death",
            "predicted",
            "measured",
            "error",
            "predicted (saved)",
            "error (saved)",
            "held",
            "lifespan",
            "tok/s",
        ]
    ]
    for r in records:
        lines.append(
            [
                format_size(r.limit_bytes),
                str(r.attempt),
                r.cause,
                "never"
                if r.predicted_tokens is None and r.predicted_from
                else ("-" if r.predicted_tokens is None else str(r.predicted_tokens)),
                "-" if r.tokens_at_death is None else str(r.tokens_at_death),
                "-" if r.error_pct is None else f"{r.error_pct:+.1f}%",
                "-" if r.predicted_tokens_saved is None else str(r.predicted_tokens_saved),
                "-" if r.error_saved_pct is None else f"{r.error_saved_pct:+.1f}%",
                "-" if r.held is None else ("yes" if r.held else "no"),
                "-" if r.lifespan_s is None else f"{r.lifespan_s:.0f} s",
                "-" if r.tokens_per_s is None else f"{r.tokens_per_s:.1f}",
            ]
        )
    return _table(lines)


def _nice_step(span: float) -> float:
    raw = span / 5
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def calibration_svg(records: Sequence[LifeRecord], title: str = "Lifespan: predicted vs measured") -> str:
    """Predicted (x) against measured (y) tokens at death, the y = x line and a ±10% band. Hand-written SVG."""
    points = [r for r in records if r.predicted_tokens and r.tokens_at_death is not None]
    size, m = 520, 70
    top = max([max(r.predicted_tokens, r.tokens_at_death) for r in points] or [100]) * 1.1
    step = _nice_step(top)
    top = math.ceil(top / step) * step
    plot = size - 2 * m

    def sx(v: float) -> float:
        return m + plot * v / top

    def sy(v: float) -> float:
        return size - m - plot * v / top

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{size}" height="{size}" fill="white"/>',
        f'<text x="{size / 2}" y="{m / 2}" text-anchor="middle" font-size="15">{_esc(title)}</text>',
    ]
    tick = 0.0
    while tick <= top + 1e-9:
        out.append(f'<line x1="{sx(tick):.1f}" y1="{sy(0):.1f}" x2="{sx(tick):.1f}" y2="{sy(top):.1f}" stroke="#eee"/>')
        out.append(f'<line x1="{sx(0):.1f}" y1="{sy(tick):.1f}" x2="{sx(top):.1f}" y2="{sy(tick):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{sx(tick):.1f}" y="{sy(0) + 16:.1f}" text-anchor="middle">{tick:g}</text>')
        out.append(f'<text x="{sx(0) - 6:.1f}" y="{sy(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>')
        tick += step
    band = (
        f"{sx(0):.1f},{sy(0):.1f} {sx(top / 1.1):.1f},{sy(top):.1f} {sx(top):.1f},{sy(top):.1f} "
        f"{sx(top):.1f},{sy(top * 0.9):.1f}"
    )
    out.append(f'<polygon points="{band}" fill="#4a90d9" fill-opacity="0.12"><title>within ±10%</title></polygon>')
    out.append(
        f'<line x1="{sx(0):.1f}" y1="{sy(0):.1f}" x2="{sx(top):.1f}" y2="{sy(top):.1f}" stroke="#4a90d9" '
        'stroke-dasharray="6 4"><title>measured = predicted</title></line>'
    )
    out.append(f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(top)}" y2="{sy(0)}" stroke="black"/>')
    out.append(f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(0)}" y2="{sy(top)}" stroke="black"/>')
    out.append(f'<text x="{size / 2}" y="{size - 20}" text-anchor="middle">predicted tokens at death</text>')
    out.append(
        f'<text x="18" y="{size / 2}" text-anchor="middle" transform="rotate(-90 18 {size / 2})">'
        "measured tokens at death</text>"
    )
    for r in points:
        err = f"{r.error_pct:+.1f}%" if r.error_pct is not None else ""
        label = (
            f"{format_size(r.limit_bytes)} life {r.attempt}: predicted {r.predicted_tokens}, "
            f"measured {r.tokens_at_death} {err} ({r.cause})"
        )
        colour = "#d0021b" if r.cause == "oom" else "#888"
        out.append(
            f'<circle cx="{sx(r.predicted_tokens):.1f}" cy="{sy(r.tokens_at_death):.1f}" r="5" '
            f'fill="{colour}" fill-opacity="0.8"><title>{_esc(label)}</title></circle>'
        )
        out.append(
            f'<text x="{sx(r.predicted_tokens) + 8:.1f}" y="{sy(r.tokens_at_death) - 6:.1f}" '
            f'font-size="10">{_esc(format_size(r.limit_bytes))}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
