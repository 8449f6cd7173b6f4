"""The model load says how far it is in the mind's log (llama.cpp's progress callback): a line every 10 %
of the weights read, at INFO, and the callback never aborts the load."""

from __future__ import annotations

import logging

import pytest

L = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed in this environment")

from mind.llama.engine import LoadProgress, load_model  # noqa: E402 - after the importorskip


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "m.gguf"
    with path.open("wb") as f:
        f.write(b"GGUF")
        f.truncate(200 << 20)  # 200 MiB, sparse
    return path


def test_a_line_every_tenth_of_the_weights(weights, caplog):
    progress = LoadProgress(weights)
    with caplog.at_level(logging.INFO, logger="mind.llama.engine"):
        answers = [progress.on_progress(f) for f in (0.0, 0.04, 0.1, 0.33, 0.5, 0.51, 0.99, 1.0)]
    assert all(answers)  # False would abort the load
    lines = [r.getMessage() for r in caplog.records]
    assert [int(line.split()[2]) for line in lines] == [10, 30, 50, 90, 100]
    assert lines[-1].startswith("loading model: 100 % (200 of 200 MiB, ")


def test_the_callback_goes_through_ctypes_and_a_failing_log_never_aborts(weights, monkeypatch):
    progress = LoadProgress(weights)
    assert progress.callback(0.5, None) is True

    def broken(*args, **kwargs):
        raise OSError("log disk full")

    monkeypatch.setattr("mind.llama.engine.log.info", broken)
    assert progress.callback(1.0, None) is True


@pytest.mark.model
def test_the_real_model_load_logs_its_progress_to_the_end(caplog):
    from mind.modelfile import resolve_model_path

    with caplog.at_level(logging.INFO, logger="mind.llama.engine"):
        _, model = load_model(str(resolve_model_path(None)))
    L.llama_cpp.llama_model_free(model)
    percents = [int(r.getMessage().split()[2]) for r in caplog.records if r.getMessage().startswith("loading model: ")]
    # Gemma 3 270M's token embeddings are 70 % of its weights: the first line comes after them, at 70 %
    assert percents == sorted(set(percents)) and len(percents) >= 2 and percents[-1] == 100
    messages = [r.getMessage() for r in caplog.records]
    assert messages.index(next(m for m in messages if m.startswith("loading model: "))) < messages.index(
        next(m for m in messages if m.startswith("model loaded in"))
    )
