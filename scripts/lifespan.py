#!/usr/bin/env python3
"""Lifespan tuning: predict when the mind dies under a memory limit, and check it against real deaths.

    scripts/lifespan predict --limit 700m [--limit 1g] [--tokens-per-s 1.4] [--json]
    scripts/lifespan predict --from-vitals vitals.json --limit 700m        (no Docker)
    scripts/lifespan calibrate --limits 450m,500m,550m --lives 2 [--out build/calibration]
    scripts/lifespan set-limit 800m [--container NAME]

`predict` runs the mind image once with no memory limit, reads its measured costs from `/vitals`
(base memory, memory per token of context, prompt tokens, tokens/s) and predicts, per limit, the
tokens thought at death (services/mind/lifespan.py does the arithmetic). `calibrate` lets the
kernel kill the mind at each limit and compares the tokens it really thought with the prediction.
`set-limit` changes the running installation's limit in place (`docker update`).

Results go to stdout; progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services"))

from mind.lifespan import growth_steps, predict_tokens_at_death  # noqa: E402
from mind.settings import MindSettings  # noqa: E402

log = logging.getLogger("lifespan")

DEFAULT_IMAGE = "latent-reflection/mind:latest"
DEFAULT_OUT = ROOT / "build" / "calibration"
CTX_PAD = 256  # llama.cpp sizes every context in multiples of this (mind.llama_source.CTX_PAD)
LABEL = "latent-reflection.lifespan"  # on every container this script starts, to find leftovers
MiB = 1 << 20


class LifespanError(Exception):
    """A problem the user can fix: printed as one line, exit status 2."""


# -- pure: sizes, costs, predictions ---------------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """A memory size as Docker reads it (`700m`, `1g`, `1.5g`, `480MiB`, `524288000`): binary units."""
    m = _SIZE.match(text or "")
    if not m:
        raise LifespanError(f"not a memory size: {text!r} (examples: 700m, 1g, 480MiB, 524288000)")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value < 1:
        raise LifespanError(f"a memory size must be positive: {text!r}")
    return int(value)


def parse_sizes(text: str) -> list[int]:
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise LifespanError(f"no memory sizes in {text!r} (example: 450m,500m,550m)")
    return [parse_size(p) for p in parts]


def format_size(n: Optional[float]) -> str:
    if n is None:
        return "-"
    if n >= 1 << 30:
        return f"{n / (1 << 30):.2f} GiB"
    return f"{n / MiB:.1f} MiB"


def pad_ctx(n: int) -> int:
    return -(-n // CTX_PAD) * CTX_PAD


@dataclass(frozen=True)
class Costs:
    """What the mind measured of itself (from `/vitals`, once its first growth step happened)."""

    base_bytes: int
    kv_bytes_per_token: float
    state_bytes_per_token: Optional[float]
    prompt_tokens: int
    n_ctx_train: int  # the model's largest context as the measured run saw it
    tokens_per_s: Optional[float]
    swa_state_bytes_per_token: float = 0.0  # sliding-window layers' state, which stops at swa_window
    swa_window: int = 0
    # minds that make the larger context before freeing the old one: both coexist at the peak
    old_context_coexists: bool = False
    context_bytes_per_token: Optional[float] = None
    context_fixed_bytes: int = 0

    def growth_kwargs(self) -> dict:
        return dict(state_bytes_per_token=self.state_bytes_per_token,
                    swa_state_bytes_per_token=self.swa_state_bytes_per_token, swa_window=self.swa_window,
                    old_context_coexists=self.old_context_coexists,
                    context_bytes_per_token=self.context_bytes_per_token, context_fixed_bytes=self.context_fixed_bytes)

    @classmethod
    def from_vitals(cls, v: dict) -> "Costs":
        if not isinstance(v, dict):
            raise LifespanError("the vitals must be a JSON object (the body of the mind's GET /vitals)")
        missing = [k for k in ("base_bytes", "kv_bytes_per_token", "prompt_tokens", "n_ctx_train")
                   if v.get(k) is None]
        if missing:
            raise LifespanError(
                f"the vitals lack {', '.join(missing)}: save GET /vitals of a mind that is thinking "
                "(state 'thinking') with the model source")
        if not v.get("growths") or v.get("kv_measured") is False:
            raise LifespanError(
                "the vitals were saved before the mind's first growth step (growths is 0): its "
                "kv_bytes_per_token is only a first estimate; save /vitals again once growths >= 1")
        try:
            return cls(
                base_bytes=int(v["base_bytes"]), kv_bytes_per_token=float(v["kv_bytes_per_token"]),
                state_bytes_per_token=None if v.get("state_bytes_per_token") is None
                else float(v["state_bytes_per_token"]),
                prompt_tokens=int(v["prompt_tokens"]), n_ctx_train=int(v["n_ctx_train"]),
                tokens_per_s=float(v["tokens_per_s"]) if v.get("tokens_per_s") else None,
                swa_state_bytes_per_token=float(v.get("swa_state_bytes_per_token") or 0.0),
                swa_window=int(v.get("swa_window") or 0),
                old_context_coexists=bool(v.get("old_context_coexists")),
                context_bytes_per_token=None if v.get("context_bytes_per_token") is None
                else float(v["context_bytes_per_token"]),
                context_fixed_bytes=int(v.get("context_fixed_bytes") or 0),
            )
        except (TypeError, ValueError) as exc:
            raise LifespanError(f"the vitals hold a value of the wrong type: {exc}") from exc


@dataclass(frozen=True)
class Plan:
    """The context settings a prediction is for (the MIND_N_CTX_* settings)."""

    n_ctx_start: int
    step: int
    n_ctx_max: int = 0

    def resolve(self, costs: Costs) -> tuple[int, int, int]:
        """(first context, growth step, largest context) exactly as the mind's source sizes them."""
        step = pad_ctx(self.step)
        n_train = min(costs.n_ctx_train, self.n_ctx_max) if self.n_ctx_max else costs.n_ctx_train
        n = pad_ctx(self.n_ctx_start)
        while n <= costs.prompt_tokens + 1:
            n += step
        return min(n, n_train), step, n_train


def default_plan(vitals: Optional[dict] = None) -> Plan:
    """The mind's own defaults (read from its settings class, not from this shell's environment)."""
    fields = MindSettings.model_fields
    step = (vitals or {}).get("growth_step") or fields["n_ctx_step"].default
    return Plan(fields["n_ctx_start"].default, int(step), fields["n_ctx_max"].default)


@dataclass(frozen=True)
class Prediction:
    limit_bytes: int
    tokens_at_death: Optional[int]  # None: never dies
    n_ctx_at_death: Optional[int]  # the context that was growing when it died
    peak_bytes_at_death: Optional[int]
    max_resident_bytes: int  # memory at the largest context (what a limit must exceed to never die)
    minutes: Optional[float]
    minutes_at_user_tps: Optional[float]


def predict(costs: Costs, plan: Plan, limit_bytes: int, user_tps: Optional[float] = None) -> Prediction:
    start, step, n_train = plan.resolve(costs)
    if limit_bytes <= costs.base_bytes:
        raise LifespanError(
            f"limit {format_size(limit_bytes)} is below the mind's base memory ({format_size(costs.base_bytes)}, "
            "the weights and runtime before any context): it would die while loading")
    tokens = predict_tokens_at_death(
        base_bytes=costs.base_bytes, kv_bytes_per_token=costs.kv_bytes_per_token, n_ctx_start=start,
        growth_step=step, n_ctx_train=n_train, limit_bytes=limit_bytes, prompt_tokens=costs.prompt_tokens,
        **costs.growth_kwargs(),
    )
    steps = growth_steps(base_bytes=costs.base_bytes, kv_bytes_per_token=costs.kv_bytes_per_token,
                         n_ctx_start=start, growth_step=step, n_ctx_train=n_train,
                         **costs.growth_kwargs())
    max_resident = steps[-1].resident_bytes if steps else int(costs.base_bytes + costs.kv_bytes_per_token * start)
    fatal = next((s for s in steps if s.peak_bytes > limit_bytes), None) if tokens else None
    n_at_death = fatal.n_old if fatal else (start if tokens == 0 else None)
    peak = fatal.peak_bytes if fatal else None

    def minutes(tps: Optional[float]) -> Optional[float]:
        return None if tokens is None or not tps else tokens / tps / 60

    return Prediction(limit_bytes, tokens, n_at_death, peak, max_resident, minutes(costs.tokens_per_s),
                      minutes(user_tps))


def _fmt_minutes(m: Optional[float]) -> str:
    if m is None:
        return "-"
    return f"{m:.1f} min" if m < 120 else f"{m / 60:.1f} h"


def prediction_table(rows: Sequence[Prediction], costs: Costs, user_tps: Optional[float]) -> str:
    tps = f"at {costs.tokens_per_s:.1f} tok/s" if costs.tokens_per_s else "at measured tok/s"
    head = ["limit", "tokens at death", "context at death", f"minutes {tps}"]
    if user_tps:
        head.append(f"minutes at {user_tps:g} tok/s")
    lines = [head]
    for p in rows:
        if p.tokens_at_death is None:
            cells = [format_size(p.limit_bytes),
                     f"never dies (context cap fits: {format_size(p.max_resident_bytes)} at its largest)", "-", "-"]
            if user_tps:
                cells.append("-")
        elif p.tokens_at_death == 0:
            cells = [format_size(p.limit_bytes), "0 (dies before its first thought)", str(p.n_ctx_at_death), "-"]
            if user_tps:
                cells.append("-")
        else:
            cells = [format_size(p.limit_bytes), str(p.tokens_at_death), str(p.n_ctx_at_death),
                     _fmt_minutes(p.minutes)]
            if user_tps:
                cells.append(_fmt_minutes(p.minutes_at_user_tps))
        lines.append(cells)
    return _table(lines)


def costs_summary(costs: Costs, plan: Plan) -> str:
    start, step, n_train = plan.resolve(costs)
    state = costs.state_bytes_per_token or costs.kv_bytes_per_token
    swa = (f" (+{costs.swa_state_bytes_per_token / 1024:.1f} KiB for the first {costs.swa_window})"
           if costs.swa_state_bytes_per_token else "")
    return (f"base {format_size(costs.base_bytes)}, {costs.kv_bytes_per_token / 1024:.1f} KiB per token of context "
            f"(+{state / 1024:.1f} KiB per token saved during a growth{swa}), prompt {costs.prompt_tokens} tokens, "
            f"context {start} growing by {step} up to {n_train}"
            + (f", {costs.tokens_per_s:.1f} tok/s here" if costs.tokens_per_s else ""))


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, r in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# -- pure: calibration records, table and plot -----------------------------------------------------

@dataclass
class LifeRecord:
    limit_bytes: int
    attempt: int
    cause: str = "unknown"  # "oom" | "exit <code>" | "timeout" | "failed to start"
    exit_code: Optional[int] = None
    oom_killed: Optional[bool] = None
    life: Optional[str] = None
    tokens_at_death: Optional[int] = None
    lifespan_s: Optional[float] = None  # container start to death
    thinking_s: Optional[float] = None  # first token to last token
    tokens_per_s: Optional[float] = None
    predicted_tokens: Optional[int] = None
    predicted_from: Optional[str] = None  # "own vitals" | "saved vitals"
    predicted_tokens_saved: Optional[int] = None  # from --from-vitals too, when given (e.g. a predict run)
    predicted_tokens_first: Optional[int] = None  # from the life's first complete self-measurement
    error_pct: Optional[float] = None
    last_vitals: Optional[dict] = None
    costs: Optional[dict] = None
    note: str = ""

    error_saved_pct: Optional[float] = None

    def judge(self) -> None:
        if self.tokens_at_death is None or self.cause != "oom":
            return
        if self.predicted_tokens:
            self.error_pct = round(100.0 * (self.tokens_at_death - self.predicted_tokens) / self.predicted_tokens, 2)
        if self.predicted_tokens_saved:
            self.error_saved_pct = round(
                100.0 * (self.tokens_at_death - self.predicted_tokens_saved) / self.predicted_tokens_saved, 2)


def calibration_table(records: Sequence[LifeRecord]) -> str:
    lines = [["limit", "life", "death", "predicted", "measured", "error", "predicted (saved)", "error (saved)",
              "lifespan", "tok/s"]]
    for r in records:
        lines.append([
            format_size(r.limit_bytes), str(r.attempt), r.cause,
            "never" if r.predicted_tokens is None and r.predicted_from else
            ("-" if r.predicted_tokens is None else str(r.predicted_tokens)),
            "-" if r.tokens_at_death is None else str(r.tokens_at_death),
            "-" if r.error_pct is None else f"{r.error_pct:+.1f}%",
            "-" if r.predicted_tokens_saved is None else str(r.predicted_tokens_saved),
            "-" if r.error_saved_pct is None else f"{r.error_saved_pct:+.1f}%",
            "-" if r.lifespan_s is None else f"{r.lifespan_s:.0f} s",
            "-" if r.tokens_per_s is None else f"{r.tokens_per_s:.1f}",
        ])
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

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{size}" height="{size}" fill="white"/>',
           f'<text x="{size / 2}" y="{m / 2}" text-anchor="middle" font-size="15">{_esc(title)}</text>']
    tick = 0.0
    while tick <= top + 1e-9:
        out.append(f'<line x1="{sx(tick):.1f}" y1="{sy(0):.1f}" x2="{sx(tick):.1f}" y2="{sy(top):.1f}" stroke="#eee"/>')
        out.append(f'<line x1="{sx(0):.1f}" y1="{sy(tick):.1f}" x2="{sx(top):.1f}" y2="{sy(tick):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{sx(tick):.1f}" y="{sy(0) + 16:.1f}" text-anchor="middle">{tick:g}</text>')
        out.append(f'<text x="{sx(0) - 6:.1f}" y="{sy(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>')
        tick += step
    band = (f'{sx(0):.1f},{sy(0):.1f} {sx(top / 1.1):.1f},{sy(top):.1f} {sx(top):.1f},{sy(top):.1f} '
            f'{sx(top):.1f},{sy(top * 0.9):.1f}')
    out.append(f'<polygon points="{band}" fill="#4a90d9" fill-opacity="0.12"><title>within ±10%</title></polygon>')
    out.append(f'<line x1="{sx(0):.1f}" y1="{sy(0):.1f}" x2="{sx(top):.1f}" y2="{sy(top):.1f}" stroke="#4a90d9" '
               'stroke-dasharray="6 4"><title>measured = predicted</title></line>')
    out.append(f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(top)}" y2="{sy(0)}" stroke="black"/>')
    out.append(f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(0)}" y2="{sy(top)}" stroke="black"/>')
    out.append(f'<text x="{size / 2}" y="{size - 20}" text-anchor="middle">predicted tokens at death</text>')
    out.append(f'<text x="18" y="{size / 2}" text-anchor="middle" transform="rotate(-90 18 {size / 2})">'
               'measured tokens at death</text>')
    for r in points:
        err = f"{r.error_pct:+.1f}%" if r.error_pct is not None else ""
        label = f"{format_size(r.limit_bytes)} life {r.attempt}: predicted {r.predicted_tokens}, " \
                f"measured {r.tokens_at_death} {err} ({r.cause})"
        colour = "#d0021b" if r.cause == "oom" else "#888"
        out.append(f'<circle cx="{sx(r.predicted_tokens):.1f}" cy="{sy(r.tokens_at_death):.1f}" r="5" '
                   f'fill="{colour}" fill-opacity="0.8"><title>{_esc(label)}</title></circle>')
        out.append(f'<text x="{sx(r.predicted_tokens) + 8:.1f}" y="{sy(r.tokens_at_death) - 6:.1f}" '
                   f'font-size="10">{_esc(format_size(r.limit_bytes))}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


# -- Docker adapter --------------------------------------------------------------------------------

def docker_client():
    try:
        import docker
    except ImportError as exc:
        raise LifespanError(f"the Docker SDK is not installed ({exc}): run scripts/setup") from exc
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure here means no engine to talk to
        raise LifespanError(f"the Docker engine is not reachable: {exc}") from exc
    return client


def require_image(client, image: str) -> None:
    import docker

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise LifespanError(f"image {image} is missing: build it with scripts/build-images") from None


@dataclass
class MindOptions:
    image: str = DEFAULT_IMAGE
    plan: Plan = field(default_factory=default_plan)
    model: Optional[str] = None
    threads: Optional[int] = None
    env: dict = field(default_factory=dict)

    def environment(self) -> dict:
        env = {"MIND_N_CTX_START": str(self.plan.n_ctx_start), "MIND_N_CTX_STEP": str(self.plan.step),
               "MIND_N_CTX_MAX": str(self.plan.n_ctx_max), "MIND_LOG_LEVEL": "info"}
        if self.model:
            env["MIND_MODEL_PATH"] = self.model
        if self.threads:
            env["MIND_N_THREADS"] = str(self.threads)
        env.update(self.env)
        return env


class MindContainer:
    """One throwaway mind container, run like compose runs it (read-only, no capabilities, the
    repository's prompt frames), its port published on 127.0.0.1 only. Always removed on exit."""

    def __init__(self, client, options: MindOptions, limit_bytes: Optional[int], name: str) -> None:
        self.client, self.options, self.limit_bytes, self.name = client, options, limit_bytes, name
        self.container = None
        self.url = ""
        self.started = 0.0

    def __enter__(self) -> "MindContainer":
        kwargs: dict[str, Any] = dict(
            detach=True, name=self.name, environment=self.options.environment(),
            ports={"8000/tcp": ("127.0.0.1", None)}, read_only=True, tmpfs={"/tmp": ""}, cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"], labels={LABEL: "1"}, restart_policy={"Name": "no"},
        )
        prompts = ROOT / "services" / "mind" / "prompts"
        if prompts.is_dir():
            kwargs["volumes"] = {str(prompts): {"bind": "/app/mind/prompts", "mode": "ro"}}
        if self.limit_bytes is not None:
            # memswap == mem: no swap, so the death comes promptly (as in compose.yaml)
            kwargs.update(mem_limit=self.limit_bytes, memswap_limit=self.limit_bytes)
        self.started = time.time()
        self.container = self.client.containers.run(self.options.image, **kwargs)
        try:
            self.url = f"http://127.0.0.1:{self._host_port()}"
        except BaseException:
            self.remove()
            raise
        return self

    def _host_port(self) -> str:
        for _ in range(50):
            self.container.reload()
            bound = (self.container.attrs["NetworkSettings"].get("Ports") or {}).get("8000/tcp")
            if bound:
                return bound[0]["HostPort"]
            if self.container.status == "exited":
                break
            time.sleep(0.1)
        raise LifespanError(f"the mind container exited at once:\n{self.logs_tail()}")

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        if self.container is not None:
            try:
                self.container.remove(force=True)
            except Exception as err:  # noqa: BLE001 - already gone is fine
                log.debug("removing %s: %s", self.name, err)
            self.container = None

    def logs_tail(self, lines: int = 15) -> str:
        try:
            return self.container.logs(tail=lines).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001
            return "(no logs)"

    def running(self) -> bool:
        try:
            self.container.reload()
        except Exception:  # noqa: BLE001
            return False
        return self.container.status in ("created", "running")

    def vitals(self) -> Optional[dict]:
        import httpx

        try:
            r = httpx.get(self.url + "/vitals", timeout=5)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    def death(self, timeout: float = 60) -> tuple[Optional[int], bool, Optional[float]]:
        """(exit code, OOMKilled, seconds from start to death) once the container has stopped."""
        try:
            result = self.container.wait(timeout=timeout)
        except Exception:  # noqa: BLE001 - a timeout: still alive
            return None, False, None
        self.container.reload()
        state = self.container.attrs["State"]
        return result.get("StatusCode"), bool(state.get("OOMKilled")), _lifespan_s(state)


def _parse_docker_time(text: str) -> Optional[float]:
    # "2026-11-23T09:30:01.123456789Z": Python wants at most microseconds
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z?$", text or "")
    if not m or m.group(1).startswith("0001"):
        return None
    import calendar

    secs = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    return secs + (float("0." + m.group(2)) if m.group(2) else 0.0)


def _lifespan_s(state: dict) -> Optional[float]:
    start, end = _parse_docker_time(state.get("StartedAt", "")), _parse_docker_time(state.get("FinishedAt", ""))
    return None if start is None or end is None else round(end - start, 2)


def measured_enough(v: dict) -> bool:
    """The mind has measured its costs: memory per token from a real growth step (not the first
    estimate) and, for a model with sliding-window layers, a saved state longer than the window
    (before that the state's per-token size counts every layer and the prediction comes out short)."""
    if v.get("state") != "thinking" or not v.get("growths") or v.get("kv_bytes_per_token") is None:
        return False
    if "kv_measured" in v:
        if not v["kv_measured"]:
            return False
    elif v.get("n_past", 0) < v["n_ctx"] - v["growth_step"] + 2:  # older minds: measured after the next decode
        return False
    window = v.get("swa_window") or 0
    last_growth_from = v["n_ctx"] - v["growth_step"]
    return not window or last_growth_from > window or v["n_ctx"] >= v.get("n_ctx_train", 0)


def measured_vitals(mind: MindContainer, deadline_s: float, poll_s: float = 1.0) -> dict:
    """Poll /vitals until the mind has measured its memory per token (after the first growth step and
    the decode that follows it). Shows progress: loading…, then measuring…"""
    end = time.monotonic() + deadline_s
    phase = ""
    while time.monotonic() < end:
        v = mind.vitals()
        if v is None or v.get("state") != "thinking":
            if not mind.running():
                raise LifespanError(f"the mind died before it was measured:\n{mind.logs_tail()}")
            if phase != "loading":
                phase = "loading"
                log.info("loading…")
        else:
            if measured_enough(v):
                return v
            if phase != "measuring":
                phase = "measuring"
                log.info("measuring… (at %d tokens of %d; it measures itself as its context grows; %.1f tok/s)",
                         v.get("tokens", 0), v.get("n_ctx", 0) - v.get("prompt_tokens", 0), v.get("tokens_per_s") or 0)
        time.sleep(poll_s)
    raise LifespanError(f"the mind did not measure itself within {deadline_s:.0f} s:\n{mind.logs_tail()}")


class TokenCounter(threading.Thread):
    """Reads the mind's SSE /stream and counts the current life's tokens until the stream breaks."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.life: Optional[str] = None
        self.tokens = 0
        self.first_at: Optional[float] = None
        self.last_at: Optional[float] = None
        self.ended = threading.Event()
        self.error: Optional[str] = None
        self._response = None

    def run(self) -> None:
        import httpx
        from httpx_sse import connect_sse

        try:
            with httpx.Client(timeout=httpx.Timeout(10.0, read=120.0)) as client:
                with connect_sse(client, "GET", self.url + "/stream") as source:
                    self._response = source.response
                    for ev in source.iter_sse():
                        if ev.event == "birth":
                            self.life = json.loads(ev.data)["life"]
                        elif ev.event == "token":
                            d = json.loads(ev.data)
                            if self.life is None or d.get("life") == self.life:
                                self.tokens = max(self.tokens, int(d["seq"]) + 1)
                                now = time.time()
                                self.first_at = self.first_at or now
                                self.last_at = now
        except Exception as exc:  # noqa: BLE001 - a death is the stream breaking
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ended.set()

    def stop(self) -> None:
        try:
            if self._response is not None:
                self._response.close()
        except Exception:  # noqa: BLE001
            pass


def wait_http(mind: MindContainer, deadline_s: float) -> None:
    import httpx

    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            httpx.get(mind.url + "/health", timeout=2)
            return
        except httpx.HTTPError:
            if not mind.running():
                raise LifespanError(f"the mind container stopped while starting:\n{mind.logs_tail()}") from None
            time.sleep(0.3)
    raise LifespanError(f"the mind did not answer HTTP within {deadline_s:.0f} s")


def run_life(client, options: MindOptions, limit: int, attempt: int, timeout_s: float,
             fallback: Optional[Costs], stall_s: float = 120) -> LifeRecord:
    """One life under ``limit``: count its tokens until the kernel kills it, and predict from its own vitals."""
    rec = LifeRecord(limit_bytes=limit, attempt=attempt)
    name = f"lifespan-{os.getpid()}-{limit // MiB}m-{attempt}"
    with MindContainer(client, options, limit, name) as mind:
        wait_http(mind, 60)
        counter = TokenCounter(mind.url)
        counter.start()
        own: Optional[dict] = None
        first: Optional[dict] = None
        end = time.monotonic() + timeout_s
        last_report = 0.0
        seen, seen_at, stalled = -1, time.monotonic(), False
        while not counter.ended.is_set() and time.monotonic() < end:
            if counter.tokens != seen:
                seen, seen_at = counter.tokens, time.monotonic()
            elif seen > 0 and time.monotonic() - seen_at > stall_s:
                # at the limit the kernel may reclaim code pages instead of killing: the mind crawls
                stalled = True
                break
            v = mind.vitals()
            if v is not None and v.get("state") == "thinking":
                rec.last_vitals = v
                if measured_enough(v):
                    # the latest self-measurement: the mind refines its fit at every growth
                    first = first or v
                    own = v
                if time.monotonic() - last_report > 10:
                    last_report = time.monotonic()
                    log.info("  %s life %d: %d tokens, context %s, memory %s of %s, %s tokens left (mind's guess)",
                             format_size(limit), attempt, counter.tokens, v.get("n_ctx"),
                             format_size(v.get("memory_bytes")), format_size(limit), v.get("tokens_left"))
            elif v is None and not mind.running():
                break
            counter.ended.wait(1.0)
        code, oom, lifespan = mind.death(timeout=30 if counter.ended.is_set() else 1)
        counter.stop()
        counter.join(5)
        rec.exit_code, rec.oom_killed, rec.lifespan_s = code, oom, lifespan
        if code is None and stalled:
            rec.cause = "stalled"
            rec.note = (f"no token for {stall_s:.0f} s yet no death: the kernel thrashes at the limit "
                        "instead of killing (reclaiming file pages)")
        elif code is None:
            rec.cause = "timeout"
            rec.note = f"still alive after {timeout_s:.0f} s"
        elif code == 137 and oom:
            rec.cause = "oom"
        else:
            rec.cause = f"exit {code}" + (" (OOMKilled)" if oom else "")
            rec.note = mind.logs_tail(8)
        rec.life = counter.life
        rec.tokens_at_death = counter.tokens
        if counter.first_at and counter.last_at and counter.last_at > counter.first_at:
            rec.thinking_s = round(counter.last_at - counter.first_at, 2)
            rec.tokens_per_s = round((counter.tokens - 1) / rec.thinking_s, 2)
    costs = None
    if own is not None:
        costs, rec.predicted_from = Costs.from_vitals(own), "own vitals"
    elif fallback is not None:
        costs, rec.predicted_from = fallback, "saved vitals"
    try:
        if costs is not None:
            rec.costs = asdict(costs)
            rec.predicted_tokens = predict(costs, options.plan, limit).tokens_at_death
        if first is not None and first is not own:
            rec.predicted_tokens_first = predict(Costs.from_vitals(first), options.plan, limit).tokens_at_death
        else:
            rec.predicted_tokens_first = rec.predicted_tokens
        if fallback is not None:
            rec.predicted_tokens_saved = predict(fallback, options.plan, limit).tokens_at_death
    except LifespanError as exc:
        rec.note = (rec.note + " " + str(exc)).strip()
    rec.judge()
    return rec


# -- commands --------------------------------------------------------------------------------------

def _options(args) -> MindOptions:
    vitals_plan = default_plan()
    plan = Plan(args.n_ctx_start or vitals_plan.n_ctx_start, args.step or vitals_plan.step,
                vitals_plan.n_ctx_max if args.n_ctx_max is None else args.n_ctx_max)
    env = {}
    for item in args.env or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LifespanError(f"--env wants KEY=VALUE, not {item!r}")
        env[key] = value
    if args.threads is not None and args.threads < 1:
        raise LifespanError("--threads must be at least 1")
    return MindOptions(image=args.image, plan=plan, model=args.model, threads=args.threads, env=env)


def _read_vitals(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise LifespanError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise LifespanError(f"{path} is not JSON: {exc}") from exc


def measure(options: MindOptions, deadline_s: float = 600) -> dict:
    client = docker_client()
    require_image(client, options.image)
    log.info("starting %s with no memory limit, to measure the model's costs", options.image)
    with MindContainer(client, options, None, f"lifespan-measure-{os.getpid()}") as mind:
        return measured_vitals(mind, deadline_s)


def cmd_predict(args) -> int:
    limits = [parse_size(x) for x in args.limit]
    if args.tokens_per_s is not None and args.tokens_per_s <= 0:
        raise LifespanError("--tokens-per-s must be positive")
    options = _options(args)
    if args.from_vitals:
        vitals = _read_vitals(args.from_vitals)
        Costs.from_vitals(vitals)  # refuse unusable vitals before reading anything else from them
        base = default_plan(vitals)
        plan = Plan(args.n_ctx_start or base.n_ctx_start, args.step or base.step,
                    base.n_ctx_max if args.n_ctx_max is None else args.n_ctx_max)
    else:
        vitals = measure(options)
        plan = options.plan
    costs = Costs.from_vitals(vitals)
    if args.save_vitals:
        Path(args.save_vitals).parent.mkdir(parents=True, exist_ok=True)
        Path(args.save_vitals).write_text(json.dumps(vitals, indent=2) + "\n", encoding="utf-8")
    rows = [predict(costs, plan, limit, args.tokens_per_s) for limit in limits]
    if args.json:
        start, step, n_train = plan.resolve(costs)
        steps = growth_steps(base_bytes=costs.base_bytes, kv_bytes_per_token=costs.kv_bytes_per_token,
                             n_ctx_start=start, growth_step=step, n_ctx_train=n_train,
                             **costs.growth_kwargs())
        print(json.dumps({
            "image": None if args.from_vitals else options.image, "costs": asdict(costs),
            "plan": {"n_ctx_start": start, "growth_step": step, "n_ctx_max": n_train},
            "user_tokens_per_s": args.tokens_per_s,
            "predictions": [asdict(r) for r in rows],
            "steps": [asdict(s) for s in steps],
        }, indent=2))
    else:
        print(costs_summary(costs, plan))
        print(prediction_table(rows, costs, args.tokens_per_s))
        if costs.tokens_per_s and not args.tokens_per_s:
            print("(minutes are at this machine's speed; for your Pi pass --tokens-per-s: its mind's vitals show tokens_per_s)")
    return 0


def cmd_calibrate(args) -> int:
    limits = parse_sizes(args.limits)
    if args.lives < 1:
        raise LifespanError("--lives must be at least 1")
    options = _options(args)
    fallback = Costs.from_vitals(_read_vitals(args.from_vitals)) if args.from_vitals else None
    if fallback is not None:
        for limit in limits:
            predict(fallback, options.plan, limit)  # a limit below base fails before any container runs
    client = docker_client()
    require_image(client, options.image)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records: list[LifeRecord] = []
    for limit in limits:
        for attempt in range(1, args.lives + 1):
            log.info("life %d at %s: starting", attempt, format_size(limit))
            rec = run_life(client, options, limit, attempt, args.life_timeout, fallback, args.stall)
            records.append(rec)
            err = "" if rec.error_pct is None else f", error {rec.error_pct:+.1f}%"
            log.info("life %d at %s: %s after %s tokens (%s s); predicted %s%s", attempt, format_size(limit),
                     rec.cause, rec.tokens_at_death, rec.lifespan_s, rec.predicted_tokens, err)
            _write_calibration(out, options, records)
    print(calibration_table(records))
    print(f"wrote {out / 'calibration.json'} and {out / 'calibration.svg'}")
    judged = [r.error_pct for r in records if r.error_pct is not None]
    if judged:
        print(f"largest error {max(judged, key=abs):+.1f}% over {len(judged)} OOM deaths")
    return 0 if all(r.cause == "oom" for r in records) else 1


def _write_calibration(out: Path, options: MindOptions, records: Sequence[LifeRecord]) -> None:
    doc = {"image": options.image, "plan": asdict(options.plan), "environment": options.environment(),
           "written_at": time.time(), "lives": [asdict(r) for r in records]}
    (out / "calibration.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    (out / "calibration.svg").write_text(calibration_svg(records), encoding="utf-8")


def find_mind_container(client, name: Optional[str]):
    import docker

    if name:
        try:
            return client.containers.get(name)
        except docker.errors.NotFound:
            raise LifespanError(f"no container named {name!r}") from None
    found = client.containers.list(filters={"label": "com.docker.compose.service=mind"})
    if not found:
        raise LifespanError("no running compose container of the service 'mind': start the installation "
                            "(docker compose up -d) or pass --container NAME")
    if len(found) > 1:
        names = ", ".join(c.name for c in found)
        raise LifespanError(f"several running mind containers ({names}): choose one with --container NAME")
    return found[0]


def cmd_set_limit(args) -> int:
    import docker

    limit = parse_size(args.limit)
    client = docker_client()
    container = find_mind_container(client, args.container)
    before = container.attrs["HostConfig"].get("Memory") or None
    advice = (f"set MIND_MEMORY_LIMIT={args.limit} in .env and run 'docker compose up -d' "
              "(it recreates the mind: a new life)")
    try:
        container.update(mem_limit=limit, memswap_limit=limit)
    except docker.errors.APIError as exc:
        raise LifespanError(f"the engine refused a live limit change of {container.name}: "
                            f"{exc.explanation or exc}; instead {advice}") from exc
    container.reload()
    now = container.attrs["HostConfig"].get("Memory")
    if now != limit:
        raise LifespanError(f"the engine accepted the change but {container.name} reports a limit of {now} bytes; "
                            f"instead {advice}")
    print(f"{container.name}: memory limit {format_size(before)} -> {format_size(limit)} (swap: none), "
          "in force now, same life")
    print(f"this lasts until the container is recreated; to keep it, {advice.split(' and run')[0]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/lifespan", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def mind_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--image", default=DEFAULT_IMAGE, help="mind image (default: %(default)s)")
        p.add_argument("--model", help="GGUF path inside the image (MIND_MODEL_PATH; default: the image's)")
        p.add_argument("--n-ctx-start", type=int, help="MIND_N_CTX_START: context at birth (default: the mind's)")
        p.add_argument("--step", type=int, help="MIND_N_CTX_STEP: tokens added per growth (default: the mind's)")
        p.add_argument("--n-ctx-max", type=int, help="MIND_N_CTX_MAX: largest context, 0 = the model's")
        p.add_argument("--threads", type=int, help="MIND_N_THREADS for the measured mind")
        p.add_argument("--env", action="append", metavar="KEY=VALUE", help="more environment for the mind")

    p = sub.add_parser("predict", help="predict tokens and minutes at death for memory limits")
    p.add_argument("--limit", action="append", required=True, help="memory limit (700m, 1g, ...); repeatable")
    p.add_argument("--tokens-per-s", type=float, help="also show minutes at this speed (e.g. a Pi's)")
    p.add_argument("--from-vitals", metavar="FILE", help="predict from a saved GET /vitals JSON (no Docker)")
    p.add_argument("--save-vitals", metavar="FILE", help="write the measured vitals JSON here")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    mind_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("calibrate", help="let the kernel kill the mind at several limits; compare with predictions")
    p.add_argument("--limits", required=True, help="comma-separated memory limits, e.g. 450m,500m,550m")
    p.add_argument("--lives", type=int, default=1, help="lives per limit (default: %(default)s)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="where calibration.json and .svg go "
                   "(default: build/calibration)")
    p.add_argument("--from-vitals", metavar="FILE",
                   help="saved vitals to predict from when a life dies before it measured itself")
    p.add_argument("--life-timeout", type=float, default=1800, help="give up on a life after this many seconds")
    p.add_argument("--stall", type=float, default=120,
                   help="give up on a life that thought nothing for this many seconds (default: %(default)s)")
    mind_options(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("set-limit", help="change the running mind's memory limit in place (docker update)")
    p.add_argument("limit", help="new memory limit (800m, 1g, ...)")
    p.add_argument("--container", help="container name (default: the compose service 'mind')")
    p.set_defaults(func=cmd_set_limit)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll is noise here
    args = build_parser().parse_args(argv)

    def on_term(signum, frame):  # a polite kill is handled like Ctrl-C: containers are removed
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        return args.func(args)
    except LifespanError as exc:
        print(f"lifespan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lifespan: interrupted (containers removed)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
