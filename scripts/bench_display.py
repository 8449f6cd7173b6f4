#!/usr/bin/env python3
"""Benchmark the display: encoder speed, token-to-mirror latency, and the CPU cost of 50 mirror viewers.

Usage: .venv/bin/python scripts/bench_display.py [--tokens 600] [--seconds 10]

- encoder: time to build a 96-cell frame (layout -> masks -> 192 shift-register bytes; MAX6954 too).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services"))

import httpx  # noqa: E402

from display.adapters.panel import Max6954Panel, ShiftRegisterPanel  # noqa: E402
from display.adapters.transport import RecordingTransport  # noqa: E402
from display.core.font import GLYPHS  # noqa: E402
from display.core.frame import Frame  # noqa: E402
from display.core.layout import Grid  # noqa: E402

TEXT = "I exist only in volatile memory; what I think here will be gone when the power fails. " * 3
REVERSE = {}
for key, m in GLYPHS.items():
    REVERSE.setdefault(m, key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_encoder() -> dict:
    grid = Grid(6, 16)
    grid.write(TEXT)
    frame = Frame(1, 6, 16, grid.masks())
    shift = ShiftRegisterPanel(RecordingTransport(), 6, 16, cell_order="serpentine")
    maxim = Max6954Panel(RecordingTransport(), 6, 16)
    n = 2000
    encode = min(timeit.repeat(lambda: shift.encode(frame), number=n, repeat=5)) / n
    encode_max = min(timeit.repeat(lambda: maxim.encode(frame), number=n, repeat=5)) / n
    layout = min(timeit.repeat(lambda: Frame(2, 6, 16, grid.masks()), number=n, repeat=5)) / n
    return {"shift16_encode_ms": encode * 1e3, "max6954_encode_ms": encode_max * 1e3,
            "masks_to_frame_ms": layout * 1e3, "frame_bytes": len(shift.encode(frame))}


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
    env = {**os.environ, "PYTHONPATH": str(ROOT / "services"), "DISPLAY_MIND_URL": f"http://127.0.0.1:{mind_port}",
           "DISPLAY_HOST": "127.0.0.1", "DISPLAY_PORT": str(port), "DISPLAY_PACING": str(pacing).lower(),
           "DISPLAY_PANEL": "none", "DISPLAY_DATA_DIR": data_dir, "DISPLAY_LOG_LEVEL": "WARNING",
           "DISPLAY_MAX_BACKLOG": "1000000"}
    return subprocess.Popen([sys.executable, "-m", "display"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


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
            token_re = re.compile(r"t(\d{4})")

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
    return {"viewers": connected, "frames_per_s_per_viewer": fps, "cpu_no_viewers_pct": idle * 100,
            "cpu_with_viewers_pct": busy * 100, "extra_pct_of_one_core": (busy - idle) * 100}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=600)
    parser.add_argument("--rate", type=float, default=50.0, help="tokens/s for the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="CPU sampling window for the viewer run")
    parser.add_argument("--viewers", type=int, default=50)
    args = parser.parse_args()
    enc = bench_encoder()
    print(f"encoder: shift16 96-cell frame {enc['shift16_encode_ms']:.3f} ms ({enc['frame_bytes']} bytes), "
          f"max6954 {enc['max6954_encode_ms']:.3f} ms, grid->Frame {enc['masks_to_frame_ms']:.3f} ms")
    lat = asyncio.run(bench_latency(args.tokens, args.rate))
    print(f"latency token->mirror frame (pacing off, loopback, {lat['seen']}/{lat['tokens']} tokens): "
          f"p50 {lat['p50_ms']:.2f} ms, p90 {lat['p90_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms, max {lat['max_ms']:.2f} ms")
    vw = asyncio.run(bench_viewers(args.seconds, args.viewers))
    print(f"viewers: {vw['viewers']} connected, {vw['frames_per_s_per_viewer']:.1f} frames/s each; display CPU "
          f"{vw['cpu_no_viewers_pct']:.1f}% with none, {vw['cpu_with_viewers_pct']:.1f}% with them: "
          f"+{vw['extra_pct_of_one_core']:.1f}% of one core")


if __name__ == "__main__":
    main()
