"""stops_refused: the steps at which ending the thought was the model's first choice, before the ban."""

import ctypes

import pytest

L = pytest.importorskip("llama_cpp.llama_cpp", reason="llama-cpp-python is not installed in this environment")

from mind.llama.source import LlamaSource  # noqa: E402

N_VOCAB = 1000
EOG = (1, 106)


def source_with_logits(monkeypatch, logits: list[float]) -> LlamaSource:
    """A source whose context's last logits are ``logits`` (llama_get_logits_ith faked; no model)."""
    arr = (ctypes.c_float * N_VOCAB)(*logits)
    monkeypatch.setattr(L, "llama_get_logits_ith", lambda ctx, i: ctypes.cast(arr, ctypes.POINTER(ctypes.c_float)))
    monkeypatch.setattr(L, "llama_vocab_n_tokens", lambda vocab: N_VOCAB)
    src = LlamaSource.__new__(LlamaSource)
    src.ctx = object()
    src.vocab = object()
    src.stops_refused = 0
    src._eog_ids = None
    src._np = None
    src._watch_stops(EOG, background=False)
    return src


def test_a_forced_end_of_generation_is_counted_as_a_refused_stop(monkeypatch):
    logits = [0.0] * N_VOCAB
    logits[106] = 9.0  # end of turn: the model's first choice
    logits[500] = 8.5
    src = source_with_logits(monkeypatch, logits)
    for _ in range(3):
        src._count_refused_stop()
    assert src.stops_refused == 3


def test_an_end_that_is_not_the_first_choice_is_not_counted(monkeypatch):
    logits = [0.0] * N_VOCAB
    logits[1] = 8.0
    logits[500] = 8.5  # a word beats the end
    src = source_with_logits(monkeypatch, logits)
    src._count_refused_stop()
    assert src.stops_refused == 0
