import pytest

from mind.sources import ScriptedSource, SourceError, wordish_tokens


def test_wordish_tokens_carry_their_leading_whitespace_and_rebuild_the_text():
    text = "  I am\nhere,  now."
    assert wordish_tokens(text) == ["  I", " am", "\nhere,", "  now."]
    assert "".join(wordish_tokens(text)) == text.rstrip()


def test_scripted_source_cycles_forever_without_gluing_words(script_file):
    src = ScriptedSource(script_file)
    src.load()
    n = len(wordish_tokens(script_file.read_text()))
    pieces = [src.next_piece() for _ in range(3 * n)]
    assert pieces[:n] == pieces[n : 2 * n]
    assert pieces[0].startswith(b" ")


def test_scripted_source_keeps_its_rate_on_a_fake_clock(script_file):
    now = [100.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    src = ScriptedSource(script_file, rate=4.0, clock=lambda: now[0], sleep=sleep)
    src.load()
    for _ in range(9):
        src.next_piece()
    assert now[0] == pytest.approx(102.0)  # 9 tokens at 4/s: the first is immediate


def test_scripted_context_grows_by_steps_then_shifts(script_file):
    src = ScriptedSource(script_file, n_ctx_start=8, n_ctx_step=8, n_ctx_train=24)
    src.load()
    sizes = []
    for _ in range(60):
        src.next_piece()
        sizes.append(src.info().n_ctx)
    assert sorted(set(sizes)) == [8, 16, 24]
    info = src.info()
    assert info.shifting and info.growths == 2 and info.n_past <= 24


def test_a_missing_script_is_a_source_error(tmp_path):
    with pytest.raises(SourceError):
        ScriptedSource(tmp_path / "nope.txt").load()


def test_an_empty_setting_from_compose_means_its_default(monkeypatch):
    from mind.settings import MindSettings

    monkeypatch.setenv("MIND_N_THREADS", "")
    monkeypatch.setenv("MIND_PROMPT", "")
    settings = MindSettings()
    assert settings.n_threads == MindSettings.model_fields["n_threads"].default_factory()
    assert settings.prompt == MindSettings.model_fields["prompt"].default
