"""The chronicle page: plain HTML and inline SVG made on the server, pure functions of the lives.

No script, no CDN, no external asset (the gallery may be offline). Everything from a life (its text,
its model name, its id) is model or mind output shown to the public, so all of it is escaped.
"""

from __future__ import annotations

import time
from html import escape
from urllib.parse import quote

from display.chronicle.store import describe

MiB = 2**20

_STYLE = """
body { background: #111; color: #ddd; font: 15px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 70em; padding: 0 1em; }
a { color: #f90; } h1, h2 { font-weight: 500; } table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #333; } td.n { text-align: right; }
tr.alive td { color: #fff; } .plots { display: flex; flex-wrap: wrap; gap: 1em; }
svg { background: #1a1a1a; } svg text { fill: #aaa; font: 11px sans-serif; }
pre.text { white-space: pre-wrap; background: #1a1a1a; padding: 1em; font: 15px/1.5 ui-monospace, monospace; }
"""


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


def _cause(life: dict) -> str:
    if life["alive"]:
        return "alive"
    if life["cause"] is None:
        return "unknown"
    return f"{life['cause']} ({life['cause_source']})"


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


def _svg_with_y_grid(title: str, width: int, height: int, y_max: float) -> list[str]:
    """The opening of a plot: the svg element, its title, and y grid lines at 0, half and the top."""
    plot_h = height - BOTTOM - TOP
    parts = [f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             f'<title>{escape(title)}</title><text x="{LEFT}" y="14">{escape(title)}</text>']
    for frac in (0, 0.5, 1):
        y = TOP + plot_h * (1 - frac)
        parts.append(f'<line x1="{LEFT}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#333"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{y_max * frac:g}</text>')
    return parts


def bar_chart(title: str, unit: str, bars: list[tuple[str, float, bool]], width: int = 480, height: int = 180) -> str:
    """Bars in order; each ``(label, value, alive)``; a life still alive is drawn lighter."""
    top_value = _nice_max(max((v for _, v, _ in bars), default=0))
    parts = _svg_with_y_grid(title, width, height, top_value)
    plot_w, plot_h = width - LEFT - 8, height - BOTTOM - TOP
    left, top = LEFT, TOP
    if bars:
        slot = plot_w / len(bars)
        for i, (label, value, alive) in enumerate(bars):
            h = plot_h * value / top_value
            x = left + i * slot + slot * 0.1
            colour = "#fc6" if alive else "#f90"
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{max(slot * 0.8, 0.5):.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(label)}: {value:g} {escape(unit)}</title></rect>'
            )
        parts.append(f'<text x="{left}" y="{height - 6}">{escape(bars[0][0])}</text>')
        parts.append(f'<text x="{width - 8}" y="{height - 6}" text-anchor="end">{escape(bars[-1][0])}</text>')
    else:
        parts.append(f'<text x="{left + 8}" y="{top + plot_h / 2}">no lives yet</text>')
    parts.append("</svg>")
    return "".join(parts)


def scatter(title: str, x_unit: str, y_unit: str, points: list[tuple[str, float, float]],
            width: int = 480, height: int = 180) -> str:
    """Points ``(label, x, y)`` on axes from zero."""
    x_max = _nice_max(max((p[1] for p in points), default=0))
    y_max = _nice_max(max((p[2] for p in points), default=0))
    parts = _svg_with_y_grid(title, width, height, y_max)
    plot_w, plot_h = width - LEFT - 8, height - BOTTOM - TOP
    left, top = LEFT, TOP
    for frac in (0, 0.5, 1):
        x = left + plot_w * frac
        anchor = "start" if frac == 0 else "end" if frac == 1 else "middle"
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="{anchor}">{x_max * frac:g} {escape(x_unit)}</text>')
    for label, px, py in points:
        cx, cy = left + plot_w * px / x_max, top + plot_h * (1 - py / y_max)
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="#f90" fill-opacity="0.75">'
            f'<title>{escape(label)}: {py:g} {escape(y_unit)} at {px:g} {escape(x_unit)}</title></circle>'
        )
    if not points:
        parts.append(f'<text x="{left + 8}" y="{top + plot_h / 2}">no life with a memory limit yet</text>')
    parts.append("</svg>")
    return "".join(parts)


def plots(lives: list[dict]) -> str:
    """Lifespan in tokens and minutes, per life and against the memory limit."""
    per_life_tokens = [(f"life {s['number']}", s["tokens"], s["alive"]) for s in lives]
    per_life_minutes = [(f"life {s['number']}", round(s["lifespan_s"] / 60, 1), s["alive"]) for s in lives]
    # Only finished lives say how long a limit lets a mind live.
    limited = [s for s in lives if s["limit_bytes"] and not s["alive"]]
    tokens_vs_limit = [(f"life {s['number']}", round(s["limit_bytes"] / MiB), s["tokens"]) for s in limited]
    minutes_vs_limit = [(f"life {s['number']}", round(s["limit_bytes"] / MiB), round(s["lifespan_s"] / 60, 1))
                        for s in limited]
    return "".join([
        bar_chart("Lifespan per life (tokens)", "tokens", per_life_tokens),
        bar_chart("Lifespan per life (minutes)", "min", per_life_minutes),
        scatter("Tokens lived against memory limit", "MiB", "tokens", tokens_vs_limit),
        scatter("Minutes lived against memory limit", "MiB", "min", minutes_vs_limit),
    ])


def page(lives: list[dict], selected: dict | None = None) -> str:
    """The whole chronicle page; ``selected`` is one life with its ``text``, shown below the list."""
    rows = []
    for s in reversed(lives):  # newest first
        href = "?life=" + quote(s["life"]) + "#text"
        missing = f" ({s['missing_tokens']} missing)" if s["missing_tokens"] else ""
        rows.append(
            f'<tr class="{"alive" if s["alive"] else "dead"}"><td class="n"><a href="{escape(href)}">{s["number"]}</a></td>'
            f"<td>{_when(s['born_at'])}</td><td>{_duration(s['lifespan_s'])}</td>"
            f'<td class="n">{s["tokens"]}{missing}</td>'
            f"<td>{'-' if not s['limit_bytes'] else round(s['limit_bytes'] / MiB)}</td>"
            f"<td>{escape(_cause(s))}</td></tr>"
        )
    reading = ""
    if selected is not None:
        reading = (
            f'<h2 id="text">Life {selected["number"]}</h2><pre>{escape(describe(selected))}</pre>'
            f'<pre class="text">{escape(selected["text"])}</pre>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Latent Reflection: chronicle</title><style>{_STYLE}</style></head><body>"
        "<h1>Chronicle of lives</h1>"
        '<p>Every life of the mind, newest first. Export: <a href="chronicle/export.jsonl">JSONL</a>, '
        '<a href="chronicle/export.txt">plain text</a>.</p>'
        f'<div class="plots">{plots(lives)}</div>'
        f"{reading}"
        "<table><thead><tr><th>life</th><th>born (UTC)</th><th>lifespan</th><th>tokens</th>"
        "<th>limit (MiB)</th><th>cause of death</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>"
    )
