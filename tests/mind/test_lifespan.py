from hypothesis import given, strategies as st

from mind.lifespan import growth_steps, predict_tokens_at_death, predict_tokens_left

MIB = 1 << 20
KV = 18 * 1024  # bytes per token of context


def predict(limit, **kw):
    args = dict(base_bytes=300 * MIB, kv_bytes_per_token=KV, n_ctx_start=512, growth_step=512,
                n_ctx_train=32768, limit_bytes=limit)
    args.update(kw)
    return predict_tokens_at_death(**args)


def test_no_limit_means_the_mind_never_dies():
    assert predict(None) is None


def test_a_limit_the_largest_context_fits_under_means_it_never_dies():
    assert predict(300 * MIB + KV * 32768 * 2 + MIB) is None


def test_a_first_context_that_does_not_fit_means_death_at_birth():
    assert predict(300 * MIB + KV * 100) == 0


def test_death_comes_at_the_first_growth_whose_transient_peak_exceeds_the_limit():
    # Growth 2048 -> 2560 peaks at base + kv*2560 + state*2048.
    peak = 300 * MIB + KV * 2560 + KV * 2048
    assert predict(peak) == 2560  # that peak fits: it dies one growth later, holding 2560 tokens
    assert predict(peak - 1) == 2048


def test_the_transient_peak_not_the_resident_size_kills():
    resident_after = 300 * MIB + KV * 2560
    # The resident size after growing fits, the peak while the state is copied does not.
    assert predict(resident_after + KV * 2040) == 2048


def test_prompt_tokens_are_not_thoughts():
    peak = 300 * MIB + KV * 2560 + KV * 2048
    assert predict(peak - 1, prompt_tokens=200) == 2048 - 200


def test_a_smaller_saved_state_lets_the_mind_live_longer():
    limit = 300 * MIB + KV * 2560 + KV * 2048 - 1
    assert predict(limit, state_bytes_per_token=KV / 4) > predict(limit)


def test_growth_steps_stop_at_the_trained_length():
    steps = growth_steps(base_bytes=0, kv_bytes_per_token=1, n_ctx_start=100, growth_step=300, n_ctx_train=700)
    assert [(s.n_old, s.n_new) for s in steps] == [(100, 400), (400, 700)]
    assert steps[-1].peak_bytes == 700 + 400


def test_tokens_left_counts_down_from_the_live_state():
    kw = dict(prompt_tokens=0, base_bytes=300 * MIB, kv_bytes_per_token=KV, growth_step=512, n_ctx_train=32768,
              limit_bytes=300 * MIB + KV * 2560 + KV * 2048 - 1)
    assert predict_tokens_left(tokens=1000, n_ctx=1024, **kw) == 2048 - 1000
    assert predict_tokens_left(tokens=2040, n_ctx=2048, **kw) == 8


@given(st.integers(min_value=0, max_value=4000 * MIB), st.integers(min_value=1, max_value=4096))
def test_more_memory_never_means_an_earlier_death(limit, extra):
    a, b = predict(limit), predict(limit + extra * MIB)
    if a is None:
        assert b is None
    elif b is not None:
        assert b >= a


def test_sliding_window_layers_stop_adding_to_the_saved_state_at_their_window():
    # 3 KiB per token for full layers + 15 KiB for sliding layers up to a 512-token window.
    kw = dict(base_bytes=0, kv_bytes_per_token=KV, n_ctx_start=512, growth_step=512, n_ctx_train=4096,
              state_bytes_per_token=3 * 1024, swa_state_bytes_per_token=15 * 1024, swa_window=512)
    steps = growth_steps(**kw)
    assert steps[0].peak_bytes == KV * 1024 + 18 * 1024 * 512
    assert steps[2].peak_bytes == KV * 2048 + 3 * 1024 * 1536 + 15 * 1024 * 512
    # A peak that only the all-growing state model would exceed: the window lets the mind live on.
    limit = steps[2].peak_bytes + 1
    assert predict_tokens_at_death(limit_bytes=limit, **kw) == 2048
    assert predict_tokens_at_death(limit_bytes=limit, **{**kw, "swa_state_bytes_per_token": 0,
                                                         "state_bytes_per_token": 18 * 1024}) == 1536


def test_preparing_the_next_context_while_the_old_one_lives_raises_the_peak_by_the_old_context():
    kw = dict(base_bytes=100, kv_bytes_per_token=10, n_ctx_start=256, growth_step=256, n_ctx_train=1024,
              state_bytes_per_token=2)
    freed_first = growth_steps(**kw)
    coexisting = growth_steps(old_context_coexists=True, **kw)
    assert [c.peak_bytes - f.peak_bytes for f, c in zip(freed_first, coexisting)] == [2560, 5120, 7680]
    assert [c.resident_bytes for c in coexisting] == [f.resident_bytes for f in freed_first]
    limit = freed_first[1].peak_bytes
    assert predict_tokens_at_death(limit_bytes=limit, old_context_coexists=True, **kw) == 512
    assert predict_tokens_at_death(limit_bytes=limit, **kw) == 768


def test_a_fresh_context_may_cost_less_than_the_resident_slope():
    kw = dict(base_bytes=100, kv_bytes_per_token=10, n_ctx_start=256, growth_step=256, n_ctx_train=512,
              state_bytes_per_token=0, old_context_coexists=True)
    (step,) = growth_steps(context_bytes_per_token=8, **kw)
    assert step.peak_bytes == 100 + 10 * 256 + 8 * 512 and step.resident_bytes == 100 + 10 * 512
