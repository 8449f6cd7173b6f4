"""The meter (mind.llama.meter) learns the mind's Costs from memory readings around its growths: here
from synthetic readings of a mind whose true costs are known, no model needed."""

from mind.lifespan import Costs, Plan, predict_tokens_at_death
from mind.llama.meter import Meter

MIB = 1 << 20
KIB = 1024
TRUE = Costs(
    base_bytes=300 * MIB + 7 * MIB,  # weights and runtime, plus a context's fixed buffers
    kv_bytes_per_token=18 * KIB,
    state_bytes_per_token=3 * KIB,
    swa_state_bytes_per_token=15 * KIB,
    swa_window=512,
    old_context_coexists=True,
    context_bytes_per_token=14 * KIB,
    context_fixed_bytes=5 * MIB,
)
WEIGHTS = 300 * MIB


class Memory:
    """A probe that reads what the test says memory is."""

    def __init__(self, value: int | None = None) -> None:
        self.value = value

    def __call__(self) -> int | None:
        return self.value


def state_size(n_past: int) -> int:
    return int(TRUE.state_bytes(n_past))


def born(memory: Memory, *, n_ctx: int = 512, prompt: int = 214) -> Meter:
    """A meter that has seen the weights load and the prompt read into the first context."""
    meter = Meter(memory, old_context_coexists=True)
    memory.value = WEIGHTS
    meter.weights_loaded()
    memory.value = int(TRUE.resident_bytes(n_ctx))
    meter.prompt_read(n_ctx=n_ctx, n_past=prompt, state_size=state_size(prompt), swa_window=512)
    return meter


def grow(meter: Meter, memory: Memory, n_old: int, n_new: int, n_past: int) -> None:
    """One growth as the source reports it: memory before, the state carried, then the reading after
    the next decode in the larger context."""
    memory.value = int(TRUE.resident_bytes(n_old))
    before = meter.read()
    meter.grown(n_old=n_old, before=before, state_size=state_size(n_past), n_past=n_past)
    assert meter.settling
    memory.value = int(TRUE.resident_bytes(n_new))
    meter.settle(n_new)
    assert not meter.settling


def test_before_any_growth_the_cost_per_token_is_a_first_estimate_that_counts_fixed_buffers():
    memory = Memory()
    meter = born(memory)
    costs = meter.costs()
    assert meter.model_bytes == WEIGHTS and costs.base_bytes == WEIGHTS
    assert costs.kv_bytes_per_token == (TRUE.resident_bytes(512) - WEIGHTS) / 512 > TRUE.kv_bytes_per_token
    assert not meter.kv_measured
    assert costs.state_bytes_per_token == state_size(214) / 214  # all layers, as the window is not reached


def test_growths_give_the_line_memory_equals_base_plus_kv_per_token_of_context():
    memory = Memory()
    meter = born(memory)
    grow(meter, memory, 512, 768, n_past=512)
    costs = meter.costs()
    assert meter.kv_measured
    assert costs.kv_bytes_per_token == TRUE.kv_bytes_per_token and costs.base_bytes == TRUE.base_bytes
    grow(meter, memory, 768, 1024, n_past=768)
    costs = meter.costs()
    assert costs.kv_bytes_per_token == TRUE.kv_bytes_per_token and costs.base_bytes == TRUE.base_bytes


def test_the_saved_state_splits_into_growing_layers_and_sliding_window_layers_past_the_window():
    memory = Memory()
    meter = born(memory)
    grow(meter, memory, 512, 768, n_past=512)  # at the window: all of it still grows
    assert meter.costs().swa_state_bytes_per_token == 0.0
    grow(meter, memory, 768, 1024, n_past=768)  # past it: the sliding part has stopped
    costs = meter.costs()
    assert costs.state_bytes_per_token == TRUE.state_bytes_per_token
    assert costs.swa_state_bytes_per_token == TRUE.swa_state_bytes_per_token and costs.swa_window == 512


def test_a_context_made_beside_the_old_one_gives_what_a_fresh_context_costs():
    memory = Memory()
    meter = born(memory)
    for n in (768, 1024, 1280):
        fresh = TRUE.context_fixed_bytes + TRUE.context_bytes_per_token * n
        meter.context_made(n, before=500 * MIB, after=int(500 * MIB + fresh))
    costs = meter.costs()
    assert costs.old_context_coexists
    assert costs.context_bytes_per_token == TRUE.context_bytes_per_token
    assert costs.context_fixed_bytes == TRUE.context_fixed_bytes
    meter.context_made(1536, before=None, after=600 * MIB)  # a reading that failed teaches nothing
    assert meter.costs() == costs


def test_learned_costs_predict_the_death_the_true_costs_predict():
    memory = Memory()
    meter = born(memory)
    for n in (768, 1024, 1280):
        meter.context_made(n, 400 * MIB, int(400 * MIB + TRUE.context_fixed_bytes + TRUE.context_bytes_per_token * n))
    grow(meter, memory, 512, 768, n_past=512)
    grow(meter, memory, 768, 1024, n_past=768)
    assert meter.costs() == TRUE
    plan = Plan(n_ctx_start=1024, growth_step=256, n_ctx_train=32768, prompt_tokens=214)
    for limit in (400 * MIB, 450 * MIB, 600 * MIB):
        assert predict_tokens_at_death(meter.costs(), plan, limit) == predict_tokens_at_death(TRUE, plan, limit)


def test_with_no_memory_reading_there_are_no_costs_and_a_growth_teaches_nothing():
    memory = Memory(None)
    meter = Meter(memory, old_context_coexists=False)
    meter.weights_loaded()
    meter.prompt_read(n_ctx=512, n_past=214, state_size=state_size(214), swa_window=0)
    meter.grown(n_old=512, before=None, state_size=state_size(512), n_past=512)
    assert not meter.settling
    meter.settle(768)  # nothing waits: nothing happens
    assert meter.costs() is None and not meter.kv_measured
    assert meter.state_bytes_per_token == state_size(512) / 512  # the state's size needs no probe


def test_a_reading_lost_after_a_growth_keeps_the_previous_fit():
    memory = Memory()
    meter = born(memory)
    grow(meter, memory, 512, 768, n_past=512)
    learned = meter.costs()
    memory.value = int(TRUE.resident_bytes(768))
    meter.grown(n_old=768, before=meter.read(), state_size=state_size(768), n_past=768)
    memory.value = None
    meter.settle(1024)
    assert meter.costs().kv_bytes_per_token == learned.kv_bytes_per_token and not meter.settling


def test_memory_read_at_each_growths_peak_teaches_the_margin_the_model_misses():
    memory = Memory()
    meter = born(memory)
    for n_old, n_new, over in ((512, 768, 4 * MIB), (768, 1024, 2 * MIB), (1024, 1280, 3 * MIB)):
        memory.value = int(TRUE.resident_bytes(n_old))
        before = meter.read()
        peak = int(TRUE.peak_bytes(n_old, n_new) + over)  # what the probe read with both contexts and the state
        meter.grown(n_old=n_old, before=before, state_size=state_size(n_old), n_past=n_old, peak=peak)
        memory.value = int(TRUE.resident_bytes(n_new))
        meter.settle(n_new)
    assert [(o, n) for o, n, _ in meter.growth_peaks] == [(512, 768), (768, 1024), (1024, 1280)]
    costs = meter.costs()
    # the fresh context's cost was never measured here, so the model's peak is the learned one's
    expected = [p - costs.peak_bytes(o, n) for o, n, p in meter.growth_peaks]
    assert costs.margin_bytes == (min(expected) + max(expected)) / 2
    assert costs.margin_spread_bytes == (max(expected) - min(expected)) / 2 > 0
    assert costs.margin_bytes > MIB  # the peaks were above the model: the margin says so
