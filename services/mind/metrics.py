"""The mind's GET /metrics: its vitals as Prometheus text (underscore names)."""

from __future__ import annotations

from mind.life import Mind


def metrics_text(mind: Mind) -> str:
    v = mind.vitals_detail()
    lines = []

    def metric(name: str, kind: str, help_: str, value) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        if value is None:
            value = "NaN"
        elif isinstance(value, bool):
            value = int(value)
        lines.append(f"{name} {value}")

    # no label with the life's id: every life would start a new series; its birth time tells lives apart
    metric("mind_born_at_seconds", "gauge", "Unix time of this life's birth.", v["born_at"])
    metric("mind_thinking", "gauge", "1 while thinking, 0 while loading.", v["state"] == "thinking")
    metric("mind_tokens_total", "counter", "Tokens thought in this life.", v["tokens"])
    metric("mind_tokens_per_second", "gauge", "Recent thinking speed.", v["tokens_per_s"])
    metric("mind_context_tokens", "gauge", "Context size (n_ctx).", v["n_ctx"])
    metric("mind_context_train_tokens", "gauge", "Largest context before shifting.", v["n_ctx_train"])
    metric("mind_shifting", "gauge", "1 once old thoughts shift out of a full context.", v["shifting"])
    metric("mind_memory_bytes", "gauge", "Memory charged to the mind's cgroup, page cache excluded.", v["memory_bytes"])
    metric("mind_memory_peak_bytes", "gauge", "Peak memory of the cgroup.", v["peak_memory_bytes"])
    metric("mind_memory_limit_bytes", "gauge", "Memory limit in force (NaN: none).", v["limit_bytes"])
    metric("mind_memory_limit_in_force", "gauge", "1 if a memory limit is in force.", v["limit_in_force"])
    metric("mind_tokens_left", "gauge", "Predicted tokens before death (NaN: never).", v["tokens_left"])
    metric("mind_cpu_seconds_total", "counter", "CPU seconds of this life (cgroup or process).", v["cpu_seconds"])
    metric(
        "mind_cpu_joules_total",
        "counter",
        "This life's CPU seconds in joules, estimated by the board's power model (MIND_BOARD).",
        v["cpu_joules"],
    )
    metric("mind_subscribers", "gauge", "Open /stream subscribers.", v["subscribers"])
    metric(
        "mind_subscribers_dropped_total",
        "counter",
        "Subscribers disconnected for falling behind.",
        v["subscribers_dropped"],
    )
    metric(
        "mind_growth_pause_seconds_max",
        "gauge",
        "Longest pause of thinking for a context growth.",
        v.get("max_growth_pause_s"),
    )
    return "\n".join(lines) + "\n"
