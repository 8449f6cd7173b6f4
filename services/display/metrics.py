"""GET /metrics: the display's counters, and the mind's vitals as the display last heard them, as
Prometheus text (exposition format 0.0.4). The mind's own /metrics is on the internal network only: one
scrape of the display covers both. No label carries a life's id (a new series every life)."""

from __future__ import annotations

from display.adapters.upstream import MIND_STATES, Upstream
from display.runtime import Display
from display.supervisor import Supervisor

CONTENT_TYPE = "text/plain; version=0.0.4"


class Exposition:
    """Prometheus text, one metric at a time: HELP, TYPE, then the value."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, name: str, kind: str, help_: str, value: float | None) -> None:
        shown = "NaN" if value is None else value  # not known (no vitals yet, or no limit)
        self.lines.extend((f"# HELP {name} {help_}", f"# TYPE {name} {kind}", f"{name} {shown}"))

    def counter(self, name: str, help_: str, value: float) -> None:
        self.add(name, "counter", help_, value)

    def gauge(self, name: str, help_: str, value: float | None) -> None:
        self.add(name, "gauge", help_, value)

    def states(self, name: str, help_: str, states: tuple[str, ...], current: str | None) -> None:
        """A fixed set of series, one per state (a bounded label, unlike a life's id)."""
        self.lines.extend((f"# HELP {name} {help_}", f"# TYPE {name} gauge"))
        self.lines.extend(f'{name}{{state="{state}"}} {int(state == current)}' for state in states)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def mind_vitals(m: Exposition, display: Display) -> None:
    """The current life's last vitals event (NaN before the first); every value a checked number."""
    v = display.vitals or {}
    alive = display.wall.state == "alive"
    m.gauge("display_mind_alive", "1 while a life shows on the wall.", int(alive))
    m.states(
        "display_mind_state",
        "What the mind says it does (1 for the current state; all 0: not known).",
        MIND_STATES,
        display.mind_state,
    )
    born = (display.birth_data or {}).get("born_at") if display.life is not None else None
    m.gauge("display_mind_born_at_seconds", "Unix time of the current life's birth.", born)
    tokens = v.get("tokens") if v.get("tokens") is not None else (display.tokens if display.life else None)
    m.gauge("display_mind_tokens", "Tokens the current life has thought.", tokens)
    m.gauge("display_mind_tokens_per_second", "The mind's recent thinking speed.", v.get("tokens_per_s"))
    m.gauge("display_mind_context_tokens", "The mind's context size (n_ctx).", v.get("n_ctx"))
    m.gauge("display_mind_memory_bytes", "Memory charged to the mind's cgroup.", v.get("memory_bytes"))
    m.gauge("display_mind_memory_peak_bytes", "Peak memory of the mind's cgroup.", v.get("peak_memory_bytes"))
    m.gauge("display_mind_memory_limit_bytes", "The mind's memory limit (NaN: none known).", v.get("limit_bytes"))
    m.gauge("display_mind_tokens_left", "Predicted tokens before the death (NaN: not known).", v.get("tokens_left"))


def display_metrics(
    display: Display, upstream: Upstream | None = None, supervisor: Supervisor | None = None, chronicle=None
) -> str:
    hub = display.hub
    m = Exposition()
    m.counter("display_frames_total", "Frames computed and sent to every sink.", display.frames_total)
    m.gauge("display_viewers", "Mirror viewers connected now.", len(hub.viewers))
    m.counter("display_viewers_dropped_total", "Mirror viewers dropped for falling behind.", hub.dropped_viewers)
    m.counter(
        "display_viewers_aborted_total",
        "Dropped viewers whose connection was cut because it stopped draining.",
        hub.aborted_viewers,
    )
    m.counter("display_lives_total", "Births seen since the display started.", display.lives_total)
    m.gauge("display_upstream_connected", "1 while the mind's stream is open.", int(display.upstream_connected))
    m.counter(
        "display_upstream_disconnects_total", "Times the mind's stream ended or broke.", display.disconnects_total
    )
    m.counter("display_tokens_total", "Tokens received from the mind.", display.tokens_total)
    m.gauge("display_backlog_chars", "Characters waiting for the typewriter.", display.backlog())
    m.counter(
        "display_backlog_dropped_chars_total",
        "Characters dropped over the backlog bound (shown as an ellipsis).",
        display.typewriter.dropped,
    )
    m.counter("display_malformed_events_total", "Upstream events skipped as malformed.", display.malformed_total)
    m.counter("display_unknown_events_total", "Upstream events of unknown type, ignored.", display.unknown_events_total)
    m.counter("display_masked_words_total", "Words masked by the blocklist.", display.censor.masked)
    m.counter("display_panel_errors_total", "Failed panel writes.", display.panel_errors_total)
    m.counter(
        "display_subscriber_errors_total", "Life subscriber calls that raised (logged, skipped).", display.lives.errors
    )
    mind_vitals(m, display)
    if upstream is not None:
        m.counter(
            "display_event_errors_total",
            "Upstream events whose handling raised (logged, skipped).",
            upstream.event_errors,
        )
        m.counter(
            "display_upstream_loop_errors_total",
            "Rounds of the upstream loop that raised (logged).",
            upstream.loop_errors,
        )
    if supervisor is not None:
        m.counter(
            "display_task_restarts_total",
            "Long-running tasks that ended or failed and were restarted.",
            supervisor.restarts,
        )
    if chronicle is not None:
        m.gauge(
            "display_chronicle_failing",
            "1 while the chronicle cannot write (events wait in memory).",
            int(chronicle.failing),
        )
        m.gauge(
            "display_chronicle_pending_events",
            "Events received and not yet written to the chronicle.",
            chronicle.pending,
        )
        m.counter("display_chronicle_write_failures_total", "Chronicle transactions that failed.", chronicle.failures)
        m.counter(
            "display_chronicle_dropped_tokens_total",
            "Tokens not recorded because too many events already waited.",
            chronicle.dropped,
        )
        m.counter(
            "display_chronicle_rejected_events_total", "Events the chronicle could never write.", chronicle.rejected
        )
    return m.text()
