#!/usr/bin/env python3
"""The energy ledger's numbers on this machine: what the wall lights, and what the mind's thinking costs.

    .venv/bin/python scripts/bench_energy.py wall [--text FILE] [--repeat 3]
    .venv/bin/python scripts/bench_energy.py mind [--seconds 60] [--threads 2]

``wall``: the text (default: the transcript frame, repeated) through the display's own typewriter and
wall at the default pace, in simulated time; every frame's lit segments counted for as long as it stays
up (display.core.energy.LightMeter). Prints the time-weighted lit segments and the watts and joules per
minute at the default settings (10 mA, 5 V) for each panel's duty.

``mind``: runs `python -m mind` with the real model on 127.0.0.1, reads its /vitals once it is ready
(the model loaded: the birth's cost) and again --seconds later (the steady cost per token): tokens, CPU
seconds (from its cgroup, or its own process time outside a container) and the joules of the Pi 4 and
Pi 5 power models. The CPU seconds are this machine's, so the joules say what this machine's work would
cost at a Pi's watts per busy core, not what a Pi would spend (a Pi is slower per token).
Prints one JSON line each.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services"))


def wall(args: argparse.Namespace) -> dict:
    from display.core.energy import LightMeter, light_joules, panel_duty
    from display.core.font import Font, to_cells
    from display.core.pacing import Typewriter
    from display.core.wall import Wall

    text = (
        Path(args.text).read_text(encoding="utf-8")
        if args.text
        else (ROOT / "services" / "mind" / "prompts" / "transcript.txt").read_text(encoding="utf-8")
    )
    keys = to_cells(" ".join([text] * args.repeat))
    w, typer = Wall(6, 16, Font(case="upper")), Typewriter()
    now = 0.0
    meter = LightMeter(now)
    w.birth()
    meter.show(0, now)
    fed, frames = 0, 0
    while fed < len(keys) or len(typer):
        if len(typer) < 48 and fed < len(keys):  # the mind keeps a little ahead of the wall, as it does
            typer.push(keys[fed : fed + 16])
            fed += 16
        out, wait = typer.release(now)
        if out:
            frame = w.write(out)
            if frame is not None:
                frames += 1
                meter.show(sum(m.bit_count() for m in frame.masks), now)
        now += wait if wait is not None else 0.0
    seconds = meter.segment_seconds(now)
    average = seconds / now
    out = {"frames": frames, "seconds": round(now, 1), "lit_segments_avg": round(average, 1)}
    for panel in ("shift16", "ht16k33"):
        duty = panel_duty(panel, 1.0)
        out[f"{panel}_watts"] = round(light_joules(seconds, 10.0, 5.0, duty) / now, 3)
        out[f"{panel}_joules_per_minute"] = round(light_joules(seconds, 10.0, 5.0, duty) / now * 60, 1)
    return out


def mind(args: argparse.Namespace) -> dict:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "services"),
        "MIND_PORT": str(port),
        "MIND_HOST": "127.0.0.1",
        "MIND_N_THREADS": str(args.threads),
        "MIND_STATE_DIR": tempfile.mkdtemp(prefix="bench-energy-"),
    }
    proc = subprocess.Popen([sys.executable, "-m", "mind"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        first = httpx.get(f"http://127.0.0.1:{port}/vitals", timeout=5).json()  # loaded, the frame read
        time.sleep(args.seconds)
        v = httpx.get(f"http://127.0.0.1:{port}/vitals", timeout=5).json()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    from mind.energy import PI4, PI5, cpu_joules

    tokens, cpu = v["tokens"], v["cpu_seconds"]
    steady_tokens, steady_cpu = tokens - first["tokens"], cpu - first["cpu_seconds"]
    return {
        "load_average": os.getloadavg()[0],
        "birth_cpu_seconds": first["cpu_seconds"],
        "steady_tokens": steady_tokens,
        "steady_tokens_per_s": round(steady_tokens / args.seconds, 2),
        "steady_cpu_seconds_per_token": round(steady_cpu / steady_tokens, 4) if steady_tokens else None,
        "steady_pi4_joules_per_token": round(cpu_joules(steady_cpu, PI4) / steady_tokens, 4) if steady_tokens else None,
        "tokens": tokens,
        "cpu_seconds": cpu,
        "cpu_source": v["cpu_source"],
        "cpu_seconds_per_token": round(cpu / tokens, 4) if tokens else None,
        "pi4_joules": round(cpu_joules(cpu, PI4), 1),
        "pi5_joules": round(cpu_joules(cpu, PI5), 1),
        "pi4_joules_per_token": round(cpu_joules(cpu, PI4) / tokens, 4) if tokens else None,
        "vitals_cpu_joules": v["cpu_joules"],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    w = sub.add_parser("wall")
    w.add_argument("--text")
    w.add_argument("--repeat", type=int, default=3)
    m = sub.add_parser("mind")
    m.add_argument("--seconds", type=float, default=60.0)
    m.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    print(json.dumps(wall(args) if args.what == "wall" else mind(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
