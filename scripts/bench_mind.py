#!/usr/bin/env python3
"""Benchmark the mind against a bare llama-cpp-python sampling loop (same model, threads, sampler, run).

    .venv/bin/python scripts/bench_mind.py [--tokens 100] [--rounds 8] [--threads N]

Prints, as JSON lines:
  - tokens/s of the bare loop and of the mind serving one SSE subscriber (over real HTTP), taking
    turns in one run, and their ratios (target: median >= 0.95);
  - the pause of thinking for one growth step at 2k tokens of context, and the memory per growth step.
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

import httpx
import llama_cpp as L
from httpx_sse import connect_sse

from mind.lifespan import pad_ctx
from mind.llama.engine import (
    SamplerConfig,
    build_sampler,
    context_params,
    llama_log_callback,
    no_mmap_model_params,
    tokenize,
)
from mind.llama.source import LlamaSource
from mind.modelfile import resolve_model_path
from mind.settings import MindSettings

ROOT = Path(__file__).resolve().parents[1]


def rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class BareLoop:
    """The plainest loop llama-cpp-python allows: sample, detokenize, decode."""

    def __init__(self, model_path: Path, settings: MindSettings, n_ctx: int) -> None:
        L.llama_log_set(llama_log_callback, None)
        self.model = L.llama_model_load_from_file(str(model_path).encode(), no_mmap_model_params())
        self.vocab = L.llama_model_get_vocab(self.model)
        self.ctx = L.llama_init_from_model(self.model, context_params(n_ctx, settings.n_batch, settings.n_threads))
        self.sampler = build_sampler(self.vocab, SamplerConfig.from_settings(settings))
        prompt = tokenize(self.vocab, settings.prompt_text(), add_special=True, parse_special=False)
        for i in range(0, len(prompt), settings.n_batch):
            chunk = prompt[i : i + settings.n_batch]
            arr = (L.llama_token * len(chunk))(*chunk)  # must outlive the decode: the batch only points at it
            if L.llama_decode(self.ctx, L.llama_batch_get_one(arr, len(chunk))) != 0:
                raise RuntimeError("prompt decode failed")
        self.one = (L.llama_token * 1)()
        self.piece = ctypes.create_string_buffer(256)

    def tokens_per_s(self, n_tokens: int) -> float:
        times = []
        for _ in range(n_tokens):
            tok = L.llama_sampler_sample(self.sampler, self.ctx, -1)
            L.llama_token_to_piece(self.vocab, tok, self.piece, 256, 0, False)
            times.append(time.perf_counter())
            self.one[0] = tok
            if L.llama_decode(self.ctx, L.llama_batch_get_one(self.one, 1)) != 0:
                raise RuntimeError("decode failed")
        return (len(times) - 1) / (times[-1] - times[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compare(model_path: Path, settings: MindSettings, n_tokens: int, rounds: int, n_ctx: int) -> list[dict]:
    """Both loaded at once; they take turns (the mind is SIGSTOPped while the bare loop runs), so the
    machine's noise hits both alike. The mind's speed is what its one SSE subscriber receives."""
    bare = BareLoop(model_path, settings, n_ctx)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIND_")}
    env.update(
        PYTHONPATH=str(ROOT / "services"),
        MIND_PORT=str(port),
        MIND_HOST="127.0.0.1",
        MIND_MODEL_PATH=str(model_path),
        MIND_N_CTX_START=str(n_ctx),
        MIND_N_THREADS=str(settings.n_threads),
        MIND_SEED=str(settings.seed),
        MIND_TOKENS_PER_S="0",  # as fast as it can: this measures speed
        MIND_LOG_LEVEL="warning",
    )
    proc = subprocess.Popen([sys.executable, "-m", "mind"], env=env, cwd="/tmp")
    results = []
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the mind did not start")
            time.sleep(0.1)
        with httpx.Client(timeout=120) as client, connect_sse(client, "GET", url + "/stream") as source:
            events = source.iter_sse()
            for r in range(rounds):
                proc.send_signal(signal.SIGSTOP)
                time.sleep(0.2)
                bare_rate = bare.tokens_per_s(n_tokens)
                proc.send_signal(signal.SIGCONT)
                times = []
                for sse in events:
                    if sse.event == "token":
                        times.append(time.perf_counter())
                        if len(times) > n_tokens:
                            break
                # Skip the first token: it may have been waiting in the socket while the mind was stopped.
                times = times[1:]
                mind_rate = (len(times) - 1) / (times[-1] - times[0])
                results.append(
                    {
                        "round": r,
                        "bare_tokens_per_s": round(bare_rate, 2),
                        "mind_tokens_per_s": round(mind_rate, 2),
                        "ratio": round(mind_rate / bare_rate, 3),
                    }
                )
                print(json.dumps(results[-1]), flush=True)
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait()
    return results


def growth_at_2k(model_path: Path, settings: MindSettings) -> dict:
    """Think until a 2048-token context is full, then across two growth steps (takes a minute)."""
    src = LlamaSource(
        model_path=str(model_path),
        prompt_text=settings.prompt_text(),
        use_chat=False,
        n_ctx_start=2048,
        n_ctx_step=512,
        n_ctx_max=0,
        n_threads=settings.n_threads,
        n_batch=settings.n_batch,
        sampling=SamplerConfig.from_settings(settings),
        probe=rss,
    )
    src.load()
    if src.n_ctx != 2048:
        raise RuntimeError(f"prompt of {src.prompt_tokens} tokens does not fit 2048")
    memories = [rss()]
    while src.growths < 2:
        before = src.growths
        src.next_piece()
        if src.growths != before:
            memories.append(rss())
    info = src.info()
    src.close()
    return {
        "context_before_first_growth": 2048,
        "prompt_tokens": info.prompt_tokens,
        "growth_pauses_ms": [round(p * 1000, 2) for p in src.growth_pauses],
        "kv_bytes_per_token": info.costs.kv_bytes_per_token,
        "memory_per_512_step_bytes": [b - a for a, b in itertools.pairwise(memories)],
        "state_bytes_per_token": info.costs.state_bytes_per_token,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=100, help="tokens per turn")
    parser.add_argument("--rounds", type=int, default=8, help="turns of each")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-growth", action="store_true")
    args = parser.parse_args()
    settings = MindSettings(seed=1234, tokens_per_s=0, **({"n_threads": args.threads} if args.threads else {}))
    model_path = resolve_model_path(settings.model_path)
    # Room for the prompt and every benchmark token in both: no growth while measuring speed.
    n_ctx = pad_ctx(400 + args.tokens * (args.rounds + 1))
    results = compare(model_path, settings, args.tokens, args.rounds, n_ctx)
    ratios = [r["ratio"] for r in results]
    print(
        json.dumps(
            {
                "median_ratio": round(statistics.median(ratios), 3),
                "ratios": ratios,
                "target": 0.95,
                "threads": settings.n_threads,
                "tokens_per_round": args.tokens,
            }
        ),
        flush=True,
    )
    if not args.skip_growth:
        print(json.dumps({"growth_at_2k": growth_at_2k(model_path, settings)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
