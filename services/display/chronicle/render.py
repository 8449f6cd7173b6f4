"""The chronicle as people read it: the page (plain HTML and inline SVG made on the server) and the
exports, all functions of the lives the store returns.

No script, no CDN, no external asset (the gallery may be offline). Everything from a life (its text,
its model name, its id) is model or mind output shown to the public, so all of it is escaped.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable, Iterator
from html import escape
from urllib.parse import quote, urlencode

MiB = 2**20

_STYLE = """
body { background: #111; color: #ddd; font: 15px/1.45 system-ui, sans-serif; margin: 1.5em auto;
       max-width: 70em; padding: 0 1em; }
a { color: #f90; } h1, h2 { font-weight: 500; } table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #333; } td.n { text-align: right; }
tr.alive td { color: #fff; } .plots { display: flex; flex-wrap: wrap; gap: 1em; }
table.frames { margin: 1em 0 1.5em; } p.filter { color: #fc6; }
svg { background: #1a1a1a; } svg text { fill: #aaa; font: 11px sans-serif; }
pre.text { white-space: pre-wrap; background: #1a1a1a; padding: 1em; font: 15px/1.5 ui-monospace, monospace; }
"""


def _utc(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _mib(n: int | None) -> str:
    return "none" if n is None else f"{n / 2**20:.0f} MiB"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _frame_name(s: dict) -> str:
    """A life's frame as shown: its name and the start of its sha256 (an edited frame is another frame)."""
    name = s.get("frame") or "-"
    sha = s.get("frame_sha256")
    return f"{name} ({sha[:8]})" if sha else name


def describe(s: dict) -> str:
    """A life's header as plain text."""
    end = "still alive" if s["alive"] else f"died {_utc(s['died_at'])}"
    cause = "-" if s["alive"] else s["cause_words"]
    missing = f", {s['missing_tokens']} never received" if s["missing_tokens"] else ""
    lines = [
        f"=== Life {s['number']} ({s['life']}) ===",
        f"born {_utc(s['born_at'])}, {end}, lived {s['lifespan_s'] / 60:.1f} min",
        f"{s['tokens']} tokens{missing}; cause of death: {cause}",
        f"model {s['model'] or '-'}; memory limit {_mib(s['limit_bytes'])}, peak {_mib(s['peak_memory_bytes'])}"
        + _energy_line(s),
    ]
    if s.get("frame") or s.get("frame_sha256") or s.get("sampler") or s.get("seed") is not None:
        sampler = s.get("sampler") or {}
        # JSON's spelling (true, not True); a setting the mind left unset is not listed
        settings = ", ".join(f"{k} {json.dumps(v)}" for k, v in sorted(sampler.items()) if v is not None) or "-"
        seed = "-" if s.get("seed") is None else s["seed"]
        lines.append(f"frame {s.get('frame') or '-'} (sha256 {s.get('frame_sha256') or '-'}); seed {seed}")
        lines.append(f"sampler: {settings}")
    if s.get("stops_refused") is not None:
        lines.append(f"stops refused: {s['stops_refused']}")
    if s.get("judged_tokens"):
        repeat = s.get("words_repeat_chars") or 0
        markup = s.get("words_markup")
        lines.append(
            f"words: distinct-word ratio {_ratio(s.get('words_distinct'))} "
            f"(first 500 tokens {_ratio(s.get('words_distinct_first'))}, "
            f"last 500 {_ratio(s.get('words_distinct_last'))}); "
            f"first-person share {_ratio(s.get('words_first_person'))}; "
            f"longest repeated sentence {repeat} characters; "
            f"markup {'-' if markup is None else f'{markup:.1f}'} per 1,000 words"
        )
    return "\n".join(lines)


def _joules(j: float | None) -> str:
    return "-" if j is None else f"{j:,.0f} J" if j >= 10 else f"{j:.2f} J"


def _energy_line(s: dict) -> str:
    """The life's energy ledger (estimates), or nothing for a life recorded before there was one."""
    thinking, lighting = s.get("thinking_joules"), s.get("lighting_joules")
    if thinking is None and lighting is None:
        return ""
    cpu = "" if s.get("cpu_seconds") is None else f" ({s['cpu_seconds']:,.0f} CPU s)"
    per_token = "" if s.get("joules_per_token") is None else f"; {s['joules_per_token']:.3f} J per token"
    return f"\nenergy, estimated: thinking {_joules(thinking)}{cpu}, lighting {_joules(lighting)}{per_token}"


def export_jsonl(lives: Iterable[tuple[dict, Iterator[str]]]) -> Iterator[str]:
    """Every life as one JSON line (summary, prompt, text), a batch of tokens at a time."""
    for head, chunks in lives:
        # The text is one JSON string written in pieces: JSON escapes each character alone.
        yield json.dumps(head, ensure_ascii=False)[:-1] + ', "text": "'
        for chunk in chunks:
            yield json.dumps(chunk, ensure_ascii=False)[1:-1]
        yield '"}\n'


def export_text(lives: Iterable[tuple[dict, Iterator[str]]]) -> Iterator[str]:
    """Every life as plain text: a header, then what it thought."""
    for head, chunks in lives:
        yield describe(head) + "\n\n"
        yield from chunks
        yield "\n\n"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


def _cause(life: dict) -> str:
    return "alive" if life["alive"] else life["cause_words"]


def _label(value: float) -> str:
    """A number on an axis: whole numbers with thousands separators, others short."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.3g}"


def _nice_max(value: float) -> float:
    """A round number at or above ``value``, for an axis."""
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    for m in (1, 2, 2.5, 5, 10):
        if m * step >= value:
            return m * step
    return 10 * step


LEFT, BOTTOM, TOP = 48, 22, 22  # plot margins, px
MAX_SLOT = 40  # px per bar at most


def _svg_with_y_grid(title: str, width: int, height: int, y_max: float) -> list[str]:
    """The opening of a plot: the svg element, its title, and y grid lines at 0, half and the top."""
    plot_h = height - BOTTOM - TOP
    parts = [
        f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<title>{escape(title)}</title><text x="{LEFT}" y="14">{escape(title)}</text>',
    ]
    for frac in (0, 0.5, 1):
        y = TOP + plot_h * (1 - frac)
        parts.append(f'<line x1="{LEFT}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#333"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{_label(y_max * frac)}</text>')
    return parts


def bar_chart(
    title: str,
    unit: str,
    bars: list[tuple[str, float, bool]],
    width: int = 480,
    height: int = 180,
    empty: str = "no lives yet",
) -> str:
    """Bars in order; each ``(label, value, alive)``; a life still alive is drawn lighter."""
    top_value = _nice_max(max((v for _, v, _ in bars), default=0))
    parts = _svg_with_y_grid(title, width, height, top_value)
    plot_w, plot_h = width - LEFT - 8, height - BOTTOM - TOP
    left, top = LEFT, TOP
    if bars:
        slot = min(plot_w / len(bars), MAX_SLOT)  # a few lives are narrow bars from the left, not slabs
        for i, (label, value, alive) in enumerate(bars):
            h = plot_h * value / top_value
            x = left + i * slot + slot * 0.1
            colour = "#fc6" if alive else "#f90"
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{max(slot * 0.8, 0.5):.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(label)}: {value:g} {escape(unit)}</title></rect>'
            )
        # The axis names its ends: the oldest life under the first bar, the newest under the last (at the
        # plot's edges when the bars fill it); one life is named once, under its bar.
        ends = [(0, bars[0][0])] if len(bars) == 1 else [(0, bars[0][0]), (len(bars) - 1, bars[-1][0])]
        for i, label in ends:
            if slot < MAX_SLOT:
                x, anchor = (left, "start") if i == 0 else (width - 8, "end")
            else:
                x, anchor = left + (i + 0.5) * slot, "middle"
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{height - 6}" text-anchor="{anchor}">{escape(label)}</text>'
            )
    else:
        parts.append(f'<text x="{left + 8}" y="{top + plot_h / 2}">{escape(empty)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def scatter(
    title: str,
    x_unit: str,
    y_unit: str,
    points: list[tuple],
    width: int = 480,
    height: int = 180,
    empty: str = "no life with a memory limit yet",
) -> str:
    """Points ``(label, x, y)`` or ``(label, x, y, alive)`` on axes from zero; a life still alive is a
    hollow point (its lifespan so far is only a lower bound)."""
    x_max = _nice_max(max((p[1] for p in points), default=0))
    y_max = _nice_max(max((p[2] for p in points), default=0))
    parts = _svg_with_y_grid(title, width, height, y_max)
    plot_w, plot_h = width - LEFT - 8, height - BOTTOM - TOP
    left, top = LEFT, TOP
    for frac in (0, 0.5, 1):
        x = left + plot_w * frac
        anchor = "start" if frac == 0 else "end" if frac == 1 else "middle"
        parts.append(
            f'<text class="axis" x="{x:.1f}" y="{height - 6}" text-anchor="{anchor}">'
            f"{_label(x_max * frac)} {escape(x_unit)}</text>"
        )
    for label, px, py, *rest in points:
        alive = bool(rest and rest[0])
        cx, cy = left + plot_w * px / x_max, top + plot_h * (1 - py / y_max)
        look = 'fill="none" stroke="#fc6" stroke-width="1.5"' if alive else 'fill="#f90" fill-opacity="0.75"'
        so_far = " so far (alive)" if alive else ""
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" {look}>'
            f"<title>{escape(label)}: {py:g} {escape(y_unit)}{so_far} at {px:g} {escape(x_unit)}</title></circle>"
        )
    if any(p[3] for p in points if len(p) > 3):
        parts.append(f'<text x="{width - 8}" y="14" text-anchor="end">○ alive, so far</text>')
    if not points:
        parts.append(f'<text x="{left + 8}" y="{top + plot_h / 2}">{escape(empty)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def plots(lives: list[dict], filtered: bool = False) -> str:
    """Lifespan in tokens and minutes, per life and against the memory limit."""
    per_life_tokens = [(f"life {s['number']}", s["tokens"], s["alive"]) for s in lives]
    per_life_minutes = [(f"life {s['number']}", round(s["lifespan_s"] / 60, 1), s["alive"]) for s in lives]
    # A finished life says how long a limit lets a mind live; the living one is shown apart (so far).
    limited = [s for s in lives if s["limit_bytes"]]
    tokens_vs_limit = [(f"life {s['number']}", round(s["limit_bytes"] / MiB), s["tokens"], s["alive"]) for s in limited]
    minutes_vs_limit = [
        (f"life {s['number']}", round(s["limit_bytes"] / MiB), round(s["lifespan_s"] / 60, 1), s["alive"])
        for s in limited
    ]
    # a filter that matches nothing is not an installation with no past
    no_lives = "no life matches" if filtered else "no lives yet"
    no_limit = "no life here had a memory limit" if filtered else "no life with a memory limit yet"
    return "".join(
        [
            bar_chart("Lifespan per life (tokens)", "tokens", per_life_tokens, empty=no_lives),
            bar_chart("Lifespan per life (minutes)", "min", per_life_minutes, empty=no_lives),
            scatter("Tokens lived against memory limit", "MiB", "tokens", tokens_vs_limit, empty=no_limit),
            scatter("Minutes lived against memory limit", "MiB", "min", minutes_vs_limit, empty=no_limit),
        ]
    )


def replay_links(life: dict) -> str:
    """Links that replay the life on the mirror (its frames made from the stored tokens)."""
    href = "./?replay=" + quote(life["life"])
    return (
        f'Replay it on the wall: <a href="{escape(href)}">as it was shown</a>, '
        f'<a href="{escape(href)}&amp;speed=4">four times faster</a>; '
        f"as a film: <code>scripts/replay {life['number']}</code>"
    )


def _median(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def frame_table(lives: list[dict]) -> list[dict]:
    """One row per frame (its name and sha256: an edited frame is another frame), most lives first.

    Lifespans are the medians of the finished lives (a living one has not finished its span);
    ``stops_refused`` is the total over the lives that report it; the words are medians over the lives
    judged so far (display.core.judge, once a life is over), the first and last 500 tokens over the
    lives long enough to have both apart."""
    groups: dict[tuple, list[dict]] = {}
    for s in lives:
        groups.setdefault((s.get("frame"), s.get("frame_sha256")), []).append(s)
    rows = []
    for (frame, sha), group in groups.items():
        done = [s for s in group if not s["alive"]]
        judged = [s for s in done if s.get("judged_tokens") is not None]
        edges = [s for s in judged if s.get("words_distinct_first") is not None]
        stops = [s["stops_refused"] for s in group if s.get("stops_refused") is not None]
        rows.append(
            {
                "frame": frame,
                "frame_sha256": sha,
                "lives": len(group),
                "alive": len(group) - len(done),
                "median_tokens": _median(s["tokens"] for s in done),
                "median_minutes": _median(s["lifespan_s"] / 60 for s in done),
                "stops_refused": sum(stops) if stops else None,
                "judged": len(judged),
                "distinct": _median(s.get("words_distinct") for s in judged),
                "first_person": _median(s.get("words_first_person") for s in judged),
                "edges": len(edges),
                "distinct_first": _median(s.get("words_distinct_first") for s in edges),
                "distinct_last": _median(s.get("words_distinct_last") for s in edges),
                "first_person_first": _median(s.get("words_first_person_first") for s in edges),
                "first_person_last": _median(s.get("words_first_person_last") for s in edges),
            }
        )
    rows.sort(key=lambda r: (-r["lives"], r["frame"] or "", r["frame_sha256"] or ""))
    return rows


def _query(filters: dict, **more) -> str:
    """A link's query: the page's filters, and more."""
    params = {k: v for k, v in {**filters, **more}.items() if v is not None}
    return "?" + urlencode(params) if params else "?"


def _change(first: float | None, last: float | None) -> str:
    return "-" if first is None or last is None else f"{first:.2f} → {last:.2f}"


def _frame_rows(lives: list[dict], filters: dict) -> str:
    rows = []
    for r in frame_table(lives):
        name = {"frame": r["frame"], "frame_sha256": r["frame_sha256"]}
        shown = escape(_frame_name(name))
        cell = f'<a href="{escape(_query({**filters, "frame": r["frame"]}))}">{shown}</a>' if r["frame"] else shown
        alive = f" ({r['alive']} alive)" if r["alive"] else ""
        tokens, minutes = r["median_tokens"], r["median_minutes"]
        rows.append(
            f'<tr><td>{cell}</td><td class="n">{r["lives"]}{alive}</td>'
            f'<td class="n">{"-" if tokens is None else f"{tokens:,.0f}"}</td>'
            f'<td class="n">{"-" if minutes is None else f"{minutes:,.1f}"}</td>'
            f'<td class="n">{"-" if r["stops_refused"] is None else r["stops_refused"]}</td>'
            f'<td class="n">{_ratio(r["distinct"])}</td><td class="n">{_ratio(r["first_person"])}</td>'
            f'<td class="n">{_change(r["distinct_first"], r["distinct_last"])}</td>'
            f'<td class="n">{_change(r["first_person_first"], r["first_person_last"])}</td></tr>'
        )
    return (
        "<h2>Frames compared</h2>"
        '<table class="frames"><thead><tr><th>frame</th><th>lives</th><th>median tokens</th>'
        "<th>median minutes</th><th>stops refused</th><th>distinct-word ratio</th><th>first-person share</th>"
        "<th>distinct words, first → last 500 tokens</th><th>first person, first → last 500 tokens</th>"
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        "<p>Medians over the finished lives; the words are judged once a life is over (distinct words per "
        "500 words, paragraphs written in the first person about the speaker: docs/chronicle.md).</p>"
    )


def page(lives: list[dict], selected: dict | None = None, filters: dict | None = None) -> str:
    """The whole chronicle page; ``selected`` is one life with its ``text``, shown below the list;
    ``filters`` (``frame``, ``model``, ``limit``) are the ones the lives were chosen by."""
    filters = {k: v for k, v in (filters or {}).items() if v is not None}
    rows = []
    for s in reversed(lives):  # newest first
        href = _query(filters, life=s["life"]) + "#text"
        missing = f" ({s['missing_tokens']} missing)" if s["missing_tokens"] else ""
        limit = round(s["limit_bytes"] / MiB) if s["limit_bytes"] else None
        frame = escape(_frame_name(s))
        if s.get("frame"):
            frame = f'<a href="{escape(_query({**filters, "frame": s["frame"]}))}">{frame}</a>'
        model = escape(s["model"] or "-")
        if s["model"]:
            model = f'<a href="{escape(_query({**filters, "model": s["model"]}))}">{model}</a>'
        limit_cell = "-" if limit is None else f'<a href="{escape(_query({**filters, "limit": limit}))}">{limit}</a>'
        rows.append(
            f'<tr class="{"alive" if s["alive"] else "dead"}">'
            f'<td class="n"><a href="{escape(href)}">{s["number"]}</a></td>'
            f"<td>{_when(s['born_at'])}</td><td>{_duration(s['lifespan_s'])}</td>"
            f'<td class="n">{s["tokens"]}{missing}</td>'
            f"<td>{frame}</td><td>{model}</td><td>{limit_cell}</td>"
            f"<td>{escape(_cause(s))}</td></tr>"
        )
    reading = ""
    if selected is not None:
        reading = (
            f'<h2 id="text">Life {selected["number"]}</h2><pre>{escape(describe(selected))}</pre>'
            f"<p>{replay_links(selected)}</p>"
            f'<pre class="text">{escape(selected["text"])}</pre>'
        )
    chosen = ""
    if filters:
        named = {"frame": "frame", "model": "model", "limit": "memory limit (MiB)"}
        said = ", ".join(f"{named.get(k, k)} {escape(str(v))}" for k, v in filters.items())
        count = f"{len(lives)} {'life' if len(lives) == 1 else 'lives'}"
        chosen = f'<p class="filter">Only the lives of {said}: {count}. <a href="?">All lives</a>.</p>'
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Latent Reflection: chronicle</title><style>{_STYLE}</style></head><body>"
        "<h1>Chronicle of lives</h1>"
        '<p>Every life of the mind, newest first. Export: <a href="chronicle/export.jsonl">JSONL</a>, '
        '<a href="chronicle/export.txt">plain text</a>.</p>'
        f"{chosen}"
        f'<div class="plots">{plots(lives, filtered=bool(filters))}</div>'
        f"{_frame_rows(lives, filters)}"
        f"{reading}"
        "<table><thead><tr><th>life</th><th>born (UTC)</th><th>lifespan</th><th>tokens</th>"
        "<th>frame</th><th>model</th><th>limit (MiB)</th><th>cause of death</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>"
    )
