#!/usr/bin/env python3
"""Benchmark the mind against a bare llama-cpp-python sampling loop (same model, threads, sampler, run).

    PYTHONPATH=services .venv/bin/python scripts/bench_mind.py [--tokens 300] [--rounds 2]

Prints, as JSON lines:
  - tokens/s of the bare loop and of the mind serving one SSE subscriber (over real HTTP), alternated
    in rounds, and their ratio (target: >= 0.95);
  - the pause of thinking for one growth step at 2k tokens of context, and the memory per growth step.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services"))

import httpx  # noqa: E402
import llama_cpp as L  # noqa: E402
from httpx_sse import connect_sse  # noqa: E402

from mind.llama_source import LlamaSource, SamplerConfig, build_sampler, context_params, no_mmap_model_params, tokenize  # noqa: E402
from mind.modelfile import resolve_model_path  # noqa: E402
from mind.settings import MindSettings  # noqa: E402


def rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bare_loop(model_path: Path, settings: MindSettings, n_tokens: int, n_ctx: int) -> float:
    """The plainest loop llama-cpp-python allows: sample, detokenize, decode."""
    model = L.llama_model_load_from_file(str(model_path).encode(), no_mmap_model_params())
    vocab = L.llama_model_get_vocab(model)
    ctx = L.llama_init_from_model(model, context_params(n_ctx, settings.n_batch, settings.n_threads))
    sampler = build_sampler(vocab, SamplerConfig.from_settings(settings))
    prompt = tokenize(vocab, settings.prompt_text(), add_special=True, parse_special=False)
    for i in range(0, len(prompt), settings.n_batch):
        chunk = prompt[i:i + settings.n_batch]
        L.llama_decode(ctx, L.llama_batch_get_one((L.llama_token * len(chunk))(*chunk), len(chunk)))
    one = (L.llama_token * 1)()
    piece = (L.ctypes.c_char * 256)()
    times = []
    for _ in range(n_tokens):
        tok = L.llama_sampler_sample(sampler, ctx, -1)
        L.llama_token_to_piece(vocab, tok, piece, 256, 0, False)
        times.append(time.perf_counter())
        one[0] = tok
        L.llama_decode(ctx, L.llama_batch_get_one(one, 1))
    L.llama_sampler_free(sampler)
    L.llama_free(ctx)
    L.llama_model_free(model)
    return (len(times) - 1) / (times[-1] - times[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mind_over_http(model_path: Path, settings: MindSettings, n_tokens: int, n_ctx: int) -> float:
    """``python -m mind`` with one SSE subscriber; tokens/s as the subscriber sees them arrive."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIND_")}
    env.update(PYTHONPATH=str(ROOT / "services"), MIND_PORT=str(port), MIND_HOST="127.0.0.1",
               MIND_MODEL_PATH=str(model_path), MIND_N_CTX_START=str(n_ctx), MIND_N_THREADS=str(settings.n_threads),
               MIND_SEED=str(settings.seed), MIND_LOG_LEVEL="warning")
    proc = subprocess.Popen([sys.executable, "-m", "mind"], env=env, cwd="/tmp")
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
        times = []
        with httpx.Client(timeout=60) as client, connect_sse(client, "GET", url + "/stream") as source:
            for sse in source.iter_sse():
                if sse.event == "token":
                    times.append(time.perf_counter())
                    if len(times) >= n_tokens:
                        break
        return (len(times) - 1) / (times[-1] - times[0])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def growth_at_2k(model_path: Path, settings: MindSettings) -> dict:
    """Think until a 2048-token context is full, then across two growth steps (takes a minute)."""
    src = LlamaSource(model_path=str(model_path), prompt_text=settings.prompt_text(), use_chat=False, cue="",
                      n_ctx_start=2048, n_ctx_step=512, n_ctx_max=0, n_threads=settings.n_threads,
                      n_batch=settings.n_batch, sampling=SamplerConfig.from_settings(settings), probe=rss)
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
        "kv_bytes_per_token": info.kv_bytes_per_token,
        "memory_per_512_step_bytes": [b - a for a, b in zip(memories, memories[1:])],
        "state_bytes_per_token": info.state_bytes_per_token,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-growth", action="store_true")
    args = parser.parse_args()
    settings = MindSettings(seed=1234, **({"n_threads": args.threads} if args.threads else {}))
    model_path = resolve_model_path(settings.model_path)
    n_ctx = 1024  # room for the prompt and every benchmark token: no growth while measuring speed
    ratios = []
    for r in range(args.rounds):
        bare = bare_loop(model_path, settings, args.tokens, n_ctx)
        mind = mind_over_http(model_path, settings, args.tokens, n_ctx)
        ratios.append(mind / bare)
        print(json.dumps({"round": r, "bare_tokens_per_s": round(bare, 2), "mind_tokens_per_s": round(mind, 2),
                          "ratio": round(mind / bare, 3), "threads": settings.n_threads}), flush=True)
    print(json.dumps({"median_ratio": round(statistics.median(ratios), 3), "target": 0.95}), flush=True)
    if not args.skip_growth:
        print(json.dumps({"growth_at_2k": growth_at_2k(model_path, settings)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
