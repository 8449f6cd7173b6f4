"""The memory model (mind.lifespan): context sizing, growth peaks, and the death it predicts."""

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mind.lifespan import (
    PREPARE_LEAD,
    ContextSettings,
    Costs,
    Plan,
    fit_line,
    growth_steps,
    margin_from_peaks,
    pad_ctx,
    predict_death,
    predict_tokens_at_death,
    predict_tokens_left,
)

MIB = 1 << 20
KV = 18 * 1024  # bytes per token of context
COSTS = Costs(base_bytes=300 * MIB, kv_bytes_per_token=KV)
PLAN = Plan(n_ctx_start=512, growth_step=512, n_ctx_train=32768)


def predict(limit, costs=COSTS, plan=PLAN):
    return predict_tokens_at_death(costs, plan, limit)


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
    assert predict(peak - 1, plan=replace(PLAN, prompt_tokens=200)) == 2048 - 200


def test_a_smaller_saved_state_lets_the_mind_live_longer():
    limit = 300 * MIB + KV * 2560 + KV * 2048 - 1
    assert predict(limit, costs=replace(COSTS, state_bytes_per_token=KV / 4)) > predict(limit)


def test_growth_steps_stop_at_the_trained_length():
    steps = growth_steps(Costs(base_bytes=0, kv_bytes_per_token=1), Plan(100, 300, 700))
    assert [(s.n_old, s.n_new) for s in steps] == [(100, 400), (400, 700)]
    assert steps[-1].peak_bytes == 700 + 400


def test_a_growth_step_must_grow():
    with pytest.raises(ValueError, match="growth_step"):
        growth_steps(COSTS, replace(PLAN, growth_step=0))


def test_tokens_left_counts_down_from_the_live_state():
    limit = 300 * MIB + KV * 2560 + KV * 2048 - 1
    assert predict_tokens_left(COSTS, replace(PLAN, n_ctx_start=1024), limit, tokens=1000) == 2048 - 1000
    assert predict_tokens_left(COSTS, replace(PLAN, n_ctx_start=2048), limit, tokens=2040) == 8
    assert predict_tokens_left(COSTS, PLAN, None, tokens=10) is None


@given(st.integers(min_value=0, max_value=4000 * MIB), st.integers(min_value=1, max_value=4096))
def test_more_memory_never_means_an_earlier_death(limit, extra):
    a, b = predict(limit), predict(limit + extra * MIB)
    if a is None:
        assert b is None
    elif b is not None:
        assert b >= a


def test_sliding_window_layers_stop_adding_to_the_saved_state_at_their_window():
    # 3 KiB per token for full layers + 15 KiB for sliding layers up to a 512-token window.
    costs = Costs(
        base_bytes=0,
        kv_bytes_per_token=KV,
        state_bytes_per_token=3 * 1024,
        swa_state_bytes_per_token=15 * 1024,
        swa_window=512,
    )
    plan = Plan(n_ctx_start=512, growth_step=512, n_ctx_train=4096)
    steps = growth_steps(costs, plan)
    assert steps[0].peak_bytes == KV * 1024 + 18 * 1024 * 512
    assert steps[2].peak_bytes == KV * 2048 + 3 * 1024 * 1536 + 15 * 1024 * 512
    # A peak that only the all-growing state model would exceed: the window lets the mind live on.
    limit = steps[2].peak_bytes + 1
    assert predict_tokens_at_death(costs, plan, limit) == 2048
    all_growing = replace(costs, swa_state_bytes_per_token=0, state_bytes_per_token=18 * 1024)
    assert predict_tokens_at_death(all_growing, plan, limit) == 1536


def test_preparing_the_next_context_while_the_old_one_lives_raises_the_peak_by_the_old_context():
    freed_first = Costs(base_bytes=100, kv_bytes_per_token=10, state_bytes_per_token=2)
    coexisting = replace(freed_first, old_context_coexists=True)
    plan = Plan(n_ctx_start=256, growth_step=256, n_ctx_train=1024)
    alone, both = growth_steps(freed_first, plan), growth_steps(coexisting, plan)
    assert [c.peak_bytes - f.peak_bytes for f, c in zip(alone, both, strict=True)] == [2560, 5120, 7680]
    assert [c.resident_bytes for c in both] == [f.resident_bytes for f in alone]
    limit = alone[1].peak_bytes
    # the two contexts alone exceed it: the death comes as the larger one is made, ahead of the growth
    assert predict_tokens_at_death(coexisting, plan, limit) == 512 - PREPARE_LEAD
    assert predict_tokens_at_death(freed_first, plan, limit) == 768


def test_a_fresh_context_may_cost_less_than_the_resident_slope():
    costs = Costs(
        base_bytes=100,
        kv_bytes_per_token=10,
        state_bytes_per_token=0,
        old_context_coexists=True,
        context_bytes_per_token=8,
    )
    (step,) = growth_steps(costs, Plan(n_ctx_start=256, growth_step=256, n_ctx_train=512))
    assert step.peak_bytes == 100 + 10 * 256 + 8 * 512 and step.resident_bytes == 100 + 10 * 512


def test_a_fresh_contexts_fixed_cost_adds_to_the_peak_while_both_contexts_live():
    costs = Costs(base_bytes=0, kv_bytes_per_token=10, state_bytes_per_token=0, old_context_coexists=True)
    (step,) = growth_steps(replace(costs, context_fixed_bytes=1000), Plan(256, 256, 512))
    assert step.peak_bytes == 10 * 256 + 1000 + 10 * 512


def test_a_margin_the_measurement_missed_brings_the_death_earlier_by_the_growths_it_covers():
    # peaks rise by KV*512*2 per growth here: a margin of one growth's rise kills one growth earlier
    limit = 300 * MIB + KV * 2560 + KV * 2048  # the growth from 2048 just fits without a margin
    assert predict(limit) == 2560
    assert predict(limit, costs=replace(COSTS, margin_bytes=1)) == 2048
    assert predict(limit, costs=replace(COSTS, margin_bytes=KV * 1024 + 1)) == 1536


def test_an_unsure_margin_gives_a_range_of_deaths_around_the_likeliest():
    limit = 300 * MIB + KV * 2560 + KV * 2048
    costs = replace(COSTS, margin_bytes=KV * 512, margin_spread_bytes=KV * 1024 + 1)
    death = predict_death(costs, PLAN, limit)
    assert (death.low, death.tokens, death.high) == (1536, 2048, 2560)
    assert not death.sure
    assert death.n_ctx == 2048 and death.peak_bytes == 300 * MIB + KV * 2560 + KV * 2048 + KV * 512
    sure = predict_death(replace(costs, margin_spread_bytes=KV), PLAN, limit)
    assert sure.sure and sure.low == sure.tokens == sure.high == 2048


def test_a_range_may_reach_a_life_that_never_ends():
    fits = growth_steps(COSTS, PLAN)[-1].peak_bytes + MIB  # the last growth fits, though barely
    costs = replace(COSTS, margin_bytes=0, margin_spread_bytes=2 * MIB)
    death = predict_death(costs, PLAN, fits)
    assert death.tokens is None and death.high is None and death.low == 32768 - 512


def test_a_limit_the_new_context_alone_exceeds_kills_as_it_is_made_ahead_of_the_growth():
    costs = Costs(base_bytes=0, kv_bytes_per_token=10, state_bytes_per_token=5, old_context_coexists=True)
    plan = Plan(n_ctx_start=256, growth_step=256, n_ctx_train=1024, prompt_tokens=20)
    first = growth_steps(costs, plan)[0]
    assert first.early_bytes == 10 * 256 + 10 * 512 and first.peak_bytes == first.early_bytes + 5 * 256
    # between the two: the state does not fit, the death comes at the growth
    assert predict_tokens_at_death(costs, plan, first.early_bytes) == 256 - 20
    # the contexts alone do not fit: PREPARE_LEAD tokens earlier, as the larger context is made
    assert predict_tokens_at_death(costs, plan, first.early_bytes - 1) == 256 - PREPARE_LEAD - 20
    # made only when the old one is freed: no early death
    alone = replace(costs, old_context_coexists=False)
    assert growth_steps(alone, plan)[0].early_bytes == 10 * 256
    assert predict_tokens_at_death(alone, plan, 10 * 512 + 5 * 256 - 1) == 256 - 20


# -- how the mind sizes its contexts ---------------------------------------------------------------


def test_contexts_are_padded_to_what_llama_cpp_allocates():
    assert [pad_ctx(n) for n in (1, 256, 257, 700)] == [256, 256, 512, 768]
    assert ContextSettings(300, 100, 4000).padded() == ContextSettings(512, 256, 4000)


def test_the_first_context_holds_the_prompt_and_one_more_token():
    settings = ContextSettings(n_ctx_start=512, n_ctx_step=256)
    assert settings.plan(prompt_tokens=214, n_ctx_trained=32768) == Plan(512, 256, 32768, 214)
    assert settings.plan(prompt_tokens=511, n_ctx_trained=32768).n_ctx_start == 768  # 512 would be full at once
    assert settings.plan(prompt_tokens=600, n_ctx_trained=32768).n_ctx_start == 768


def test_growth_stops_at_the_configured_largest_context_or_the_trained_length():
    assert ContextSettings(512, 256, 4096).plan(prompt_tokens=10, n_ctx_trained=32768).n_ctx_train == 4096
    assert ContextSettings(512, 256, 0).plan(prompt_tokens=10, n_ctx_trained=8192).n_ctx_train == 8192
    # a prompt past the cap: the first context is the cap itself (the source refuses such a prompt)
    assert ContextSettings(512, 256, 1024).plan(prompt_tokens=2000, n_ctx_trained=32768).n_ctx_start == 1024


def test_the_mind_settings_take_their_context_defaults_from_the_memory_model():
    from mind.settings import MindSettings

    defaults = {name: MindSettings.model_fields[name].default for name in ("n_ctx_start", "n_ctx_step", "n_ctx_max")}
    assert ContextSettings(**defaults) == ContextSettings()


# -- costs -----------------------------------------------------------------------------------------


def test_costs_read_back_from_vitals_as_the_mind_names_them():
    vitals = {
        "base_bytes": 405181184,
        "kv_bytes_per_token": 18520,
        "state_bytes_per_token": None,
        "swa_state_bytes_per_token": None,
        "swa_window": None,
        "tokens": 316,
    }
    costs = Costs.from_mapping(vitals)
    assert costs == Costs(base_bytes=405181184, kv_bytes_per_token=18520.0)
    assert costs.state_bytes(100) == 18520.0 * 100  # no state size measured: the KV's
    full = Costs(1, 2.0, 3.0, 4.0, 5, True, 6.0, 7, 8.0, 9.0)
    from dataclasses import asdict

    assert Costs.from_mapping(asdict(full)) == full
    with pytest.raises(ValueError):
        Costs.from_mapping({**asdict(full), "base_bytes": "lots"})


def test_a_line_fitted_through_memory_readings_gives_bytes_per_token_and_the_intercept():
    assert fit_line([(512, 1000 + 512 * 18), (768, 1000 + 768 * 18), (1024, 1000 + 1024 * 18)]) == (18.0, 1000)
    assert fit_line([(512, 5120)]) == (10.0, 0)  # one point: a line through 0
    assert fit_line([(512, 9000), (768, 8000)])[0] == 0.0  # memory never shrinks as the context grows


def test_the_margin_is_the_middle_of_what_the_peaks_had_beyond_the_model_and_the_spread_half_their_range():
    costs = Costs(base_bytes=100 * MIB, kv_bytes_per_token=KV, state_bytes_per_token=KV / 4)
    peaks = [
        (512, 768, int(costs.peak_bytes(512, 768) + 3 * MIB)),
        (768, 1024, int(costs.peak_bytes(768, 1024) + 1 * MIB)),
        (1024, 1280, int(costs.peak_bytes(1024, 1280) + 2 * MIB)),
    ]
    margin, spread = margin_from_peaks(costs, peaks)
    assert margin == pytest.approx(2 * MIB, abs=1) and spread == pytest.approx(MIB, abs=1)
    assert margin_from_peaks(costs, []) == (0.0, 0.0)
    below = [(512, 768, int(costs.peak_bytes(512, 768) - MIB))]  # the model may overestimate: a later death
    assert margin_from_peaks(costs, below)[0] == pytest.approx(-MIB, abs=1)
