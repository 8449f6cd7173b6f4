#!/usr/bin/env python3
"""Remake the README's pictures from a real life: .venv/bin/python scripts/pictures.py [--out docs/img]

Nothing is staged. The real mind (the PyPI model, or MIND_MODEL_PATH) thinks as a subprocess inside a
memory cgroup of this script's own; the real display (in this process, its chronicle in a temporary
folder, no panel) follows it. Once the mind thinks, the script sets the cgroup's limit a little above
the memory the mind holds (--headroom), so the kernel kills it a few growth steps later, as Docker's
limit does in the installation. Headless Chromium photographs the mirror mid-life and during the death,
then the chronicle page; the vitals the display received draw memory against tokens.

Writes into --out: mirror-life.png, mirror-death.png, chronicle.png, memory.svg. Needs root (or a
delegated cgroup v2 subtree) for the cgroup, Debian's chromium and chromedriver, and the test venv
(selenium, llama-cpp-python, the model): scripts/setup. About two minutes on two cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from html import escape
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "services", ROOT / "tests" / "mind", ROOT / "tests" / "display"):
    sys.path.insert(0, str(extra))

from display.app import create_app  # noqa: E402
from display.settings import DisplaySettings  # noqa: E402
from display_helpers import chromium_driver, free_port, has_chromium, serve, wait_for  # noqa: E402
from mind.lifespan import PREPARE_LEAD  # noqa: E402
from mind_helpers import can_make_memory_cgroup, memory_cgroup, mind_env  # noqa: E402

log = logging.getLogger("pictures")
MiB = 1 << 20


class Vitals:
    """A life subscriber: every vitals event the display receives, in order."""

    def __init__(self) -> None:
        self.points: list[dict] = []
        self.deaths: list = []

    def on_birth(self, birth: dict) -> None:
        pass

    def on_token(self, token: dict) -> None:
        pass

    def on_vitals(self, vitals: dict) -> None:
        if vitals.get("tokens") is not None and vitals.get("memory_bytes") is not None:
            self.points.append(vitals)

    def on_death(self, death) -> None:
        self.deaths.append(death)

    def on_resume(self, life: str) -> None:
        pass


def gone(mind: subprocess.Popen) -> bool:
    return mind.poll() is not None


def inner(mind_url: str, test) -> dict | None:
    """The mind's own /vitals (n_past, growths: more than its events carry) if ``test`` holds for them."""
    try:
        v = httpx.get(mind_url + "/vitals", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None
    return v if v.get("n_ctx") is not None and test(v) else None


def tail(mind_log, chars: int = 1500) -> str:
    mind_log.flush()
    return Path(mind_log.name).read_text(errors="replace")[-chars:]


def browser(width: int, height: int):
    return chromium_driver(width, height)


def memory_plot(points: list[dict], limit: int, limit_at: int, title: str, width: int = 720, height: int = 360) -> str:
    """Memory (MiB) against tokens: the measured vitals as a line, each context growth marked, the limit."""
    left, right, top, bottom = 64, 16, 40, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    x_max = max(p["tokens"] for p in points) or 1
    lo = min(p["memory_bytes"] for p in points)
    y_lo = (lo // (16 * MiB)) * 16 * MiB
    y_hi = (limit // (8 * MiB) + 1) * 8 * MiB

    def xy(tokens: float, memory: float) -> tuple[float, float]:
        return left + plot_w * tokens / x_max, top + plot_h * (1 - (memory - y_lo) / (y_hi - y_lo))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        '<rect width="100%" height="100%" fill="#0a0a0a"/>',
        f'<text x="{left}" y="22" fill="#ddd" font-size="14">{escape(title)}</text>',
    ]
    for i in range(5):  # y grid
        memory = y_lo + (y_hi - y_lo) * i / 4
        _, y = xy(0, memory)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#2a2a2a"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" fill="#aaa" text-anchor="end">{memory / MiB:.0f}</text>')
    for i in range(5):  # x ticks
        tokens = x_max * i / 4
        x, _ = xy(tokens, y_lo)
        parts.append(
            f'<text x="{x:.1f}" y="{height - bottom + 16}" fill="#aaa" text-anchor="middle">{tokens:.0f}</text>'
        )
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 8}" fill="#aaa" text-anchor="middle">tokens</text>')
    parts.append(
        f'<text x="14" y="{top + plot_h / 2}" fill="#aaa" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + plot_h / 2})">memory (MiB)</text>'
    )
    _, y = xy(0, limit)
    x0, _ = xy(limit_at, limit)
    parts.append(
        f'<line x1="{x0:.1f}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e0a040" stroke-dasharray="6 4"/>'
    )
    parts.append(
        f'<text x="{x0 + 6:.1f}" y="{y - 6:.1f}" fill="#e0a040">'
        f"memory limit {limit / MiB:.0f} MiB: the kernel kills the mind here</text>"
    )
    line = " ".join("{:.1f},{:.1f}".format(*xy(p["tokens"], p["memory_bytes"])) for p in points)
    parts.append(f'<polyline points="{line}" fill="none" stroke="#ff4a1c" stroke-width="2"/>')
    last_ctx = points[0].get("n_ctx")
    for p in points[1:]:  # a context growth: n_ctx steps up, and memory with it
        if p.get("n_ctx") and last_ctx and p["n_ctx"] > last_ctx:
            x, y = xy(p["tokens"], p["memory_bytes"])
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#ff6a2a"/>')
            parts.append(
                f'<text x="{x + 4:.1f}" y="{y + 16:.1f}" fill="#a89080" font-size="10">n_ctx {p["n_ctx"]}</text>'
            )
        last_ctx = p.get("n_ctx") or last_ctx
    x, y = xy(points[-1]["tokens"], points[-1]["memory_bytes"])
    parts.append(f'<text x="{x - 4:.1f}" y="{y - 8:.1f}" fill="#ddd" text-anchor="end">death</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="folder for the pictures")
    parser.add_argument(
        "--headroom", type=int, default=24, help="MiB of limit above the memory held when thinking starts"
    )
    parser.add_argument("--step", type=int, default=256, help="tokens of context per growth (MIND_N_CTX_STEP)")
    parser.add_argument("--width", type=int, default=960, help="browser window width, px")
    parser.add_argument("--height", type=int, default=600, help="browser window height, px")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the death")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="pictures: %(message)s")
    for name in ("display", "uvicorn", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if not has_chromium():
        log.error("needs Debian's chromium and chromedriver: apt-get install chromium chromium-driver")
        return 2
    if not can_make_memory_cgroup():
        log.error("cannot make a memory cgroup here: run as root (or with a delegated cgroup v2 subtree)")
        return 2
    from mind.modelfile import resolve_model_path

    model = resolve_model_path(os.environ.get("MIND_MODEL_PATH") or None)
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="pictures-") as tmp, memory_cgroup("pictures") as cg:
        port = free_port()
        vitals = Vitals()
        settings = DisplaySettings(
            mind_url=f"http://127.0.0.1:{port}",
            data_dir=Path(tmp),
            panel="none",
            death_duration_s=6.0,  # a slow fade: the death's picture is taken in the middle of it
            reconnect_initial_s=0.1,
            reconnect_max_s=0.5,
            health_interval_s=0.5,
        )
        app = create_app(settings, subscribers=[vitals])
        env = mind_env(
            MIND_HOST="127.0.0.1",
            MIND_PORT=str(port),
            MIND_MODEL_PATH=str(model),
            MIND_N_CTX_START=str(args.step),
            MIND_N_CTX_STEP=str(args.step),
            MIND_VITALS_INTERVAL_S="0.5",
            MIND_TOKENS_PER_S="8",  # faster than the wall shows, yet the backlog drains between the readings
            MIND_STATE_DIR=str(Path(tmp) / "state"),  # nothing of this run outlives it
        )
        mind_log = open(Path(tmp) / "mind.log", "wb")
        cmd = cg.join([sys.executable, "-m", "mind"])
        with serve(app) as url:
            display = app.state.display
            page = browser(args.width, args.height)
            mind = subprocess.Popen(cmd, env=env, cwd=tmp, stdout=mind_log, stderr=subprocess.STDOUT)
            try:
                page.get(url + "/")
                log.info("the mind loads %s (pid %d, cgroup %s)", model.name, mind.pid, cg)
                # The limit is set just after a growth and the life's picture taken before the next one:
                # memory only jumps at a growth (the next context is made beside the old one), so the life
                # cannot die between the two. By then the first step's lazy imports (numpy, for
                # stops_refused) are in its memory too, and the headroom is counted above them.
                mind_url = f"http://127.0.0.1:{port}"
                start = wait_for(
                    lambda: gone(mind) or inner(mind_url, lambda v: v["tokens"] >= 64),
                    timeout=300,
                    what="the mind thinking 64 tokens",
                )
                if mind.poll() is not None:
                    log.error(
                        "the mind exited with %d before thinking; its log ends:\n%s", mind.returncode, tail(mind_log)
                    )
                    return 1
                grown = wait_for(
                    lambda: gone(mind) or inner(mind_url, lambda v: v["growths"] > start["growths"]),
                    timeout=args.timeout,
                    interval=0.05,
                    what="the next growth of its context",
                )
                if mind.poll() is not None:
                    log.error(
                        "the mind exited with %d before its limit was set; its log ends:\n%s",
                        mind.returncode,
                        tail(mind_log),
                    )
                    return 1
                held = grown["memory_bytes"]
                limit = (held + args.headroom * MiB) // 4096 * 4096
                limit_at = grown["tokens"]
                cg.set_limit(limit)
                log.info(
                    "thinking, context just grown to %d tokens, holding %.1f MiB: limit set to %.1f MiB",
                    grown["n_ctx"],
                    held / MiB,
                    limit / MiB,
                )
                # A wall of this life's words that the wall has caught up with, or as many as come before
                # the next growth is prepared (which the limit does not hold): waiting for the wall after
                # that point let a loaded CI machine's mind die before its picture.
                wait_for(
                    lambda: (
                        gone(mind)
                        or inner(
                            mind_url,
                            lambda v: (
                                (v["tokens"] >= limit_at + 120 and display.backlog() < 200)
                                or v["n_ctx"] - v["n_past"] <= 2 * PREPARE_LEAD
                            ),
                        )
                    ),
                    timeout=args.timeout,
                    interval=0.05,
                    what="a wall of words under the limit",
                )
                time.sleep(1.5)  # the page redraws its status every second (PREPARE_LEAD tokens take 4 s)
                if mind.poll() is not None or display.wall.state != "alive":
                    # the picture of a life would show its death: say so rather than write a false one
                    log.error(
                        "the life ended before its picture was taken (mind %s, wall %s): give it more --headroom",
                        "gone" if mind.poll() is not None else "thinking",
                        display.wall.state,
                    )
                    log.error("its log ends:\n%s", tail(mind_log))
                    return 1
                page.save_screenshot(str(args.out / "mirror-life.png"))
                log.info("mirror-life.png at %d tokens", vitals.points[-1]["tokens"])

                wait_for(lambda: display.wall.state == "dying", timeout=args.timeout, interval=0.05, what="the death")
                time.sleep(1.2)  # a fifth into the fade
                page.save_screenshot(str(args.out / "mirror-death.png"))
                code = mind.wait(30)
                ended = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
                log.info("mirror-death.png; the mind ended: %s, %d OOM kills in its cgroup", ended, cg.oom_kills())

                wait_for(lambda: len(app.state.chronicle.lives()) >= 1 and vitals.deaths, what="the chronicle")
                time.sleep(6)  # the death written, the fade over
                page.set_window_size(args.width + 320, args.height + 500)  # the plots side by side, the table
                page.get(url + "/chronicle")
                page.save_screenshot(str(args.out / "chronicle.png"))
            finally:
                page.quit()
                if mind.poll() is None:
                    mind.kill()
                    mind.wait(10)
                mind_log.close()
        points = vitals.points
        title = f"One life of {model.stem}: memory against tokens (death after {points[-1]['tokens']})"
        (args.out / "memory.svg").write_text(memory_plot(points, limit, limit_at, title), encoding="utf-8")
    log.info("wrote %s: mirror-life.png, mirror-death.png, chronicle.png, memory.svg", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
