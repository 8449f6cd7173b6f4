"""The frame's state from the cache with the real PyPI model: exactly the start of a life that read
its frame, with its own seed. Slow, marked ``model``."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from mind.frames import load_frame
from mind.llama.cache import FileCache

L = pytest.importorskip("llama_cpp.llama_cpp", reason="llama-cpp-python is not installed in this environment")

from mind.llama.engine import VocabRules  # noqa: E402

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
# the shipped frame as the mind reads it: its settings lines (bans, biases) left out, its facts unfilled
FRAME = load_frame("transcript").template
N = 50  # tokens thought per life


def frame(last_line: str) -> str:
    return f"{FRAME.rstrip()}\n\n{last_line}\n"


A = frame("Life 1. The room reads 21 degrees; the wall is dark.")
B = frame("Life 2. The room reads 19 degrees; someone is reading.")


def life(prompt: str, cache: FileCache | None, seed: int = 7, n_ctx_start: int = 512) -> dict:
    """A life's birth and first N pieces: how its frame was read, the logits of its first token."""
    from mind.llama.engine import SamplerConfig, end_of_generation_tokens
    from mind.llama.source import LlamaSource

    src = LlamaSource(
        model_path=None,
        prompt_text=prompt,
        use_chat=False,
        n_ctx_start=n_ctx_start,
        n_ctx_step=256,
        n_ctx_max=0,
        n_threads=1,
        n_batch=64,
        sampling=SamplerConfig(seed=seed),
        cache=cache,
    )
    src.load()
    try:
        n_vocab = L.llama_vocab_n_tokens(src.vocab)
        logits = ctypes.string_at(L.llama_get_logits_ith(src.ctx, -1), 4 * n_vocab)
        restored = src.reading.restored
        read_text = b"".join(token_text(src.vocab, t) for t in src.reading.tokens[restored:]).decode()
        pieces = [src.next_piece() for _ in range(N)]
        eog = end_of_generation_tokens(src.vocab)
        return {
            "reading": src.reading,
            "read_text": read_text,
            "logits": logits,
            "pieces": pieces,
            "n_past": src.n_past,
            "eog": eog,
        }
    finally:
        src.close()  # waits for the frame's state to be written


def token_text(vocab, token: int) -> bytes:
    buf = ctypes.create_string_buffer(256)
    n = L.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
    return buf.raw[:n]


@pytest.fixture
def cache(tmp_path) -> FileCache:
    return FileCache(tmp_path / "cache", max_bytes=256 << 20)


def frame_entries(cache: FileCache) -> list:
    return list(cache.entries("frame-state"))


def test_a_life_restored_from_the_cache_starts_exactly_as_one_that_read_its_frame(cache):
    uncached = life(A, None)
    first = life(A, cache)  # a miss: reads the frame, keeps its state
    assert first["reading"].restored == 0 and len(frame_entries(cache)) == 1
    second = life(A, cache)
    n = len(second["reading"].tokens)
    # up to its last batch, which begins with a number ("21 degrees"), read in one pass for its logits
    assert second["reading"].restored == second["reading"].plan[-2] > n - 16
    assert second["read_text"].lstrip() == "21 degrees; the wall is dark.\n"
    assert second["n_past"] == uncached["n_past"] == n + N - 1
    assert first["logits"] == uncached["logits"]
    assert second["logits"] == uncached["logits"]  # bit for bit
    assert second["pieces"] == uncached["pieces"]  # the same seed thinks the same thoughts
    # the end-of-generation tokens (a scan of the vocabulary) are kept too, once the model is known
    (rules,) = [VocabRules.unpack(cache.read(e)) for e in cache.entries("model-tokens")]
    assert sorted(rules.eog) == sorted(second["eog"]) and second["eog"]


def test_a_frame_that_differs_in_its_last_line_restores_the_rest_and_reads_only_from_there(cache):
    life(A, cache)
    uncached = life(B, None)
    cached = life(B, cache)
    reading = cached["reading"]
    assert reading.restored in reading.plan  # restored up to a batch's beginning: the life's number ...
    assert cached["read_text"] == "2. The room reads 19 degrees; someone is reading.\n"  # ... and only the rest is read
    assert cached["logits"] == uncached["logits"]  # bit for bit
    assert cached["pieces"] == uncached["pieces"]
    # one entry still: a frame whose last line changes at every birth does not fill the cache
    assert len(frame_entries(cache)) == 1


def test_lives_restored_from_the_cache_with_seeds_unset_think_differently(cache):
    life(A, cache, seed=-1)
    one, two = life(A, cache, seed=-1), life(A, cache, seed=-1)
    assert one["reading"].restored == two["reading"].restored == one["reading"].plan[-2]
    assert one["logits"] == two["logits"]  # the same state before the first token ...
    assert one["pieces"] != two["pieces"]  # ... and each life samples with its own seed


def test_a_corrupt_entry_is_read_again_from_the_frame_and_rewritten(cache):
    reference = life(A, cache)
    (entry,) = frame_entries(cache)
    data = bytearray(entry.path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of the state
    entry.path.write_bytes(bytes(data))
    fallback = life(A, cache)
    assert fallback["reading"].restored == 0
    assert fallback["logits"] == reference["logits"] and fallback["pieces"] == reference["pieces"]
    (rewritten,) = frame_entries(cache)
    assert cache.read(rewritten) is not None
    assert life(A, cache)["reading"].restored == reference["reading"].plan[-2]


def test_a_different_context_at_birth_is_a_miss(cache):
    life(A, cache, n_ctx_start=512)
    other = life(A, cache, n_ctx_start=768)
    assert other["reading"].restored == 0
    assert len(frame_entries(cache)) == 2  # each context size has its own entry


def test_an_edited_frame_is_kept_once_the_edit_has_stayed(cache):
    life(A, cache)
    edited = A.replace("Each word it thinks", "Every word it thinks")  # early in the frame
    assert edited != A
    first = life(edited, cache)
    assert 0 < first["reading"].restored < first["reading"].plan[-3]
    assert len(frame_entries(cache)) == 1  # one life with the edit could be a per-life change ...
    life(edited, cache)
    assert len(frame_entries(cache)) == 2  # ... two in a row are an edit: kept
    assert life(edited, cache)["reading"].restored == first["reading"].plan[-2]
