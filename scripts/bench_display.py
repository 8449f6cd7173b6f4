#!/usr/bin/env python3
"""Benchmark the display: the panels, token-to-mirror latency, and the CPU cost of 50 mirror viewers.

Usage: .venv/bin/python scripts/bench_display.py [--tokens 600] [--seconds 10] [--panels-only]

- panels: time to encode and send one 96-cell frame on each panel, over a recording transport (the
  bus itself is not there: its time is computed from the bytes and the clock, and printed as such);
  a whole frame, a one-cell change (MAX6954 and HT16K33 send only what changed), and a refresh
  (configuration + whole frame), whose CPU share at the default interval is its cost; the event
  loop's share of a frame (the hand-over to the panel thread).
- latency: a scripted SSE mind in this process writes a token; the display (`python -m display`,
  pacing off, a separate process) turns it into a frame; a /frames client in this process receives
  it. Both timestamps come from the same clock. Loopback only.
- viewers: the display process's CPU time over --seconds with 0 and then 50 /frames viewers, with
  pacing on (a realistic frame rate); the difference is the viewers' cost in % of one core.
Results are printed to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

import httpx

from display.adapters.gpio import RecordingLine
from display.adapters.panels import PanelDriver, build_panel
from display.adapters.transport import RecordingI2c, RecordingTransport
from display.core.font import GLYPHS, Font
from display.core.frame import Frame
from display.core.layout import Grid
from display.settings import DisplaySettings

ROOT = Path(__file__).resolve().parents[1]
TEXT = "I exist only in volatile memory; what I think here will be gone when the power fails. " * 3
REVERSE = {}
for key, m in GLYPHS.items():
    REVERSE.setdefault(m, key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def i2c_clocks(data_bytes: int) -> int:
    """SCL clocks of one I2C write: START, the address byte and the data bytes (9 clocks each with its
    ACK), STOP; START and STOP taken as one clock each."""
    return 1 + 9 * (1 + data_bytes) + 1


def bus_ms(kind: str, writes: list, spi_hz: float, i2c_hz: float = 400e3) -> float:
    """Computed from the bytes and the clock, not measured: the time the writes need on the bus."""
    if kind == "ht16k33":
        return sum(i2c_clocks(len(data)) for _, data in writes) / i2c_hz * 1e3
    return sum(8 * len(data) for data in writes) / spi_hz * 1e3


def bench_panel(settings: DisplaySettings, kind: str, repeat: int, n: int) -> dict:
    """One panel over recording fakes: a whole frame, a one-cell change, a refresh."""
    spi, buses = RecordingTransport(), {1: RecordingI2c(), 3: RecordingI2c()}
    panel = build_panel(settings, kind, spi=spi, i2c=buses, output_enable=RecordingLine())
    grid = Grid(6, 16, Font(panel.segments, "upper"))
    blank = Frame(0, 6, 16, grid.masks())
    grid.write(TEXT)
    full = Frame(1, 6, 16, grid.masks())
    grid.write("I")  # the typewriter's usual step: one more cell
    step = Frame(2, 6, 16, grid.masks())
    panel.start()

    def cpu_ms(*actions) -> float:  # per action, best of `repeat`
        def run() -> None:
            for action in actions:
                action()

        return min(timeit.repeat(run, number=n, repeat=repeat)) / n / len(actions) * 1e3

    def writes(before, action) -> list:
        before()
        spi.writes.clear()
        for bus in buses.values():
            bus.writes.clear()
        action()
        return spi.writes + [w for bus in buses.values() for w in bus.writes]

    # every cell changes (to the text and back to blank), then a one-cell step, then a refresh
    whole = cpu_ms(lambda: panel.show(full), lambda: panel.show(blank))
    change = cpu_ms(lambda: panel.show(full), lambda: panel.show(step))
    refresh = cpu_ms(lambda: panel.refresh(full))
    return {
        "panel": kind,
        "whole_ms": whole,
        "change_ms": change,
        "refresh_ms": refresh,
        "whole": writes(lambda: panel.show(blank), lambda: panel.show(full)),
        "change": writes(lambda: panel.show(full), lambda: panel.show(step)),
        "refresh_writes": writes(lambda: None, lambda: panel.refresh(full)),
    }


def bench_panels(repeat: int = 5, n: int = 300) -> list[dict]:
    """Encode + send on each panel over recording fakes: a whole frame, a one-cell change, a refresh."""
    settings = DisplaySettings(cell_order="serpentine", i2c_buses=[1, 3])
    out = [bench_panel(settings, kind, repeat, n) for kind in ("shift16", "max6954", "ht16k33")]
    # what the event loop pays per frame now: the hand-over to the panel thread
    driver = PanelDriver(
        build_panel(settings, "shift16", spi=RecordingTransport(), output_enable=RecordingLine()), refresh_s=0
    )
    grid = Grid(6, 16, Font(case="upper"))
    grid.write(TEXT)
    frames = iter([Frame(i, 6, 16, grid.masks()) for i in range(n * repeat)])
    handoff = min(timeit.repeat(lambda: driver.show(next(frames)), number=n, repeat=repeat)) / n
    driver.close()
    out.append({"panel": "hand-over", "show_us": handoff * 1e6})
    return out


def print_panels(rows: list[dict], spi_hz: float = 4e6, refresh_s: float = 2.0) -> None:
    print(
        "panels, 6x16 wall: CPU to encode and send over a recording transport (measured); time on the bus "
        "(computed from bytes and clock: SPI 4 MHz, I2C 400 kHz)"
    )
    for r in rows:
        if r["panel"] == "hand-over":
            print(f"  event loop per frame (PanelDriver.show: hand-over to the panel thread): {r['show_us']:.1f} us")
            continue
        kind = r["panel"]

        def size(ws: list) -> int:
            return sum(len(w[1] if isinstance(w, tuple) else w) for w in ws)

        print(
            f"  {kind}: whole frame {r['whole_ms']:.3f} ms CPU, {len(r['whole'])} writes of {size(r['whole'])} "
            f"bytes, bus {bus_ms(kind, r['whole'], spi_hz):.2f} ms | one-cell change {r['change_ms']:.3f} ms CPU, "
            f"{len(r['change'])} writes of {size(r['change'])} bytes, bus {bus_ms(kind, r['change'], spi_hz):.3f} ms"
            f" | refresh {r['refresh_ms']:.3f} ms CPU = {100 * r['refresh_ms'] / 1e3 / refresh_s:.3f} % of a core "
            f"every {refresh_s:g} s, bus {bus_ms(kind, r['refresh_writes'], spi_hz):.2f} ms"
        )


class ScriptedMind:
    """An SSE mind on 127.0.0.1 that emits numbered tokens and remembers when it wrote each."""

    def __init__(self, rate: float, tokens: int) -> None:
        self.rate = rate
        self.tokens = tokens
        self.emitted: dict[int, float] = {}
        self.port = free_port()
        self.done = asyncio.Event()

    async def handle(self, reader, writer) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
        life = "bench"
        birth = {"life": life, "born_at": time.time(), "model": "bench", "prompt": "", "limit_bytes": None}
        writer.write(f"id: {life}:0\nevent: birth\ndata: {json.dumps(birth)}\n\n".encode())
        await writer.drain()
        await asyncio.sleep(1.0)  # let /frames viewers settle
        try:
            for i in range(self.tokens):
                data = json.dumps({"life": life, "seq": i, "text": f"t{i % 10000:04d} "})
                writer.write(f"id: {life}:{i + 1}\nevent: token\ndata: {data}\n\n".encode())
                await writer.drain()
                self.emitted[i] = time.perf_counter()
                await asyncio.sleep(1.0 / self.rate)
            self.done.set()
            while True:
                writer.write(b": ping\n\n")
                await writer.drain()
                await asyncio.sleep(1)
        except (ConnectionError, asyncio.CancelledError):
            pass


def start_display(mind_port: int, port: int, pacing: bool, data_dir: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "services"),
        "DISPLAY_MIND_URL": f"http://127.0.0.1:{mind_port}",
        "DISPLAY_HOST": "127.0.0.1",
        "DISPLAY_PORT": str(port),
        "DISPLAY_PACING": str(pacing).lower(),
        "DISPLAY_PANEL": "none",
        "DISPLAY_DATA_DIR": data_dir,
        "DISPLAY_LOG_LEVEL": "WARNING",
        "DISPLAY_MAX_BACKLOG": "1000000",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "display"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def wait_healthy(port: int) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("display did not start")


def frame_text(masks: list[int]) -> str:
    return "".join(REVERSE.get(m, "?") for m in masks)


async def follow(port: int, on_frame, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(30)) as client:
        async with client.stream("GET", f"http://127.0.0.1:{port}/frames") as response:
            event = None
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "frame":
                    on_frame(line[6:])
                if stop.is_set():
                    return


async def bench_latency(tokens: int, rate: float) -> dict:
    mind = ScriptedMind(rate, tokens)
    server = await asyncio.start_server(mind.handle, "127.0.0.1", mind.port)
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        proc = start_display(mind.port, port, pacing=False, data_dir=data_dir)
        try:
            await wait_healthy(port)
            latencies: dict[int, float] = {}
            token_re = re.compile(r"[tT](\d{4})")  # the wall's letters may be capitals

            def on_frame(data: str) -> None:
                now = time.perf_counter()
                text = frame_text(json.loads(data)["masks"])
                for m in token_re.finditer(text):
                    i = int(m.group(1))
                    if i in mind.emitted and i not in latencies:
                        latencies[i] = now - mind.emitted[i]

            stop = asyncio.Event()
            viewer = asyncio.create_task(follow(port, on_frame, stop))
            await asyncio.wait_for(mind.done.wait(), timeout=tokens / rate + 60)
            await asyncio.sleep(0.5)
            stop.set()
            viewer.cancel()
        finally:
            proc.terminate()
            proc.wait(10)
            server.close()
    ms = sorted(v * 1e3 for v in latencies.values())
    q = statistics.quantiles(ms, n=100)
    return {"tokens": tokens, "seen": len(ms), "p50_ms": q[49], "p90_ms": q[89], "p99_ms": q[98], "max_ms": ms[-1]}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_viewers(seconds: float, viewers: int) -> dict:
    mind = ScriptedMind(rate=6.0, tokens=100000)  # ~6 tokens/s of ~6 chars: the typewriter runs steadily
    server = await asyncio.start_server(mind.handle, "127.0.0.1", mind.port)
    port = free_port()
    frames = [0]
    with tempfile.TemporaryDirectory() as data_dir:
        proc = start_display(mind.port, port, pacing=True, data_dir=data_dir)
        try:
            await wait_healthy(port)
            await asyncio.sleep(2.0)
            c0, t0 = cpu_seconds(proc.pid), time.perf_counter()
            await asyncio.sleep(seconds)
            idle = (cpu_seconds(proc.pid) - c0) / (time.perf_counter() - t0)
            stop = asyncio.Event()

            def count(_data: str) -> None:
                frames[0] += 1

            tasks = [asyncio.create_task(follow(port, count, stop)) for _ in range(viewers)]
            await asyncio.sleep(2.0)
            async with httpx.AsyncClient() as client:
                metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            connected = int(re.search(r"^display_viewers (\d+)", metrics, re.M).group(1))
            f0, c0, t0 = frames[0], cpu_seconds(proc.pid), time.perf_counter()
            await asyncio.sleep(seconds)
            elapsed = time.perf_counter() - t0
            busy = (cpu_seconds(proc.pid) - c0) / elapsed
            fps = (frames[0] - f0) / elapsed / viewers
            stop.set()
            for t in tasks:
                t.cancel()
        finally:
            proc.terminate()
            proc.wait(10)
            server.close()
    return {
        "viewers": connected,
        "frames_per_s_per_viewer": fps,
        "cpu_no_viewers_pct": idle * 100,
        "cpu_with_viewers_pct": busy * 100,
        "extra_pct_of_one_core": (busy - idle) * 100,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=600)
    parser.add_argument("--rate", type=float, default=50.0, help="tokens/s for the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="CPU sampling window for the viewer run")
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--panels-only", action="store_true", help="only the panels (a few seconds)")
    args = parser.parse_args()
    print_panels(bench_panels())
    if args.panels_only:
        return
    lat = asyncio.run(bench_latency(args.tokens, args.rate))
    print(
        f"latency token->mirror frame (pacing off, loopback, {lat['seen']}/{lat['tokens']} tokens): "
        f"p50 {lat['p50_ms']:.2f} ms, p90 {lat['p90_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms, "
        f"max {lat['max_ms']:.2f} ms"
    )
    vw = asyncio.run(bench_viewers(args.seconds, args.viewers))
    print(
        f"viewers: {vw['viewers']} connected, {vw['frames_per_s_per_viewer']:.1f} frames/s each; display CPU "
        f"{vw['cpu_no_viewers_pct']:.1f}% with none, {vw['cpu_with_viewers_pct']:.1f}% with them: "
        f"+{vw['extra_pct_of_one_core']:.1f}% of one core"
    )


if __name__ == "__main__":
    main()
