"""latent lifespan (scripts/lifespan) without Docker or a model: limits, predictions from saved vitals, errors,
the plot.
(scripts/ is on the test path: `latent.lifespan` is scripts/latent/lifespan.py, `latent.lifespan_report` its pure
half.)"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from latent import lifespan as ls
from latent import lifespan_report as report
from mind.lifespan import ContextSettings, Costs, Plan, predict_tokens_at_death

ROOT = Path(__file__).resolve().parents[2]
MiB = 1 << 20

# /vitals of a real mind (Gemma 3 270M, no limit) after its first growth step
VITALS = {
    "life": "0effda773b74bf2e",
    "born_at": 1795425453.78,
    "tokens": 316,
    "tokens_per_s": 38.5,
    "n_ctx": 768,
    "n_ctx_train": 32768,
    "memory_bytes": 420000000,
    "peak_memory_bytes": 430000000,
    "limit_bytes": None,
    "limit_in_force": False,
    "tokens_left": None,
    "shifting": False,
    "state": "thinking",
    "cgroup_version": 1,
    "oom_kills": 0,
    "subscribers": 0,
    "subscribers_dropped": 0,
    "n_past": 530,
    "prompt_tokens": 214,
    "growth_step": 256,
    "base_bytes": 405181184,
    "kv_bytes_per_token": 18520.0,
    "state_bytes_per_token": 9000.0,
    "growths": 1,
    "last_growth_pause_s": 0.004,
    "max_growth_pause_s": 0.004,
}


@pytest.fixture
def vitals_file(tmp_path):
    path = tmp_path / "vitals.json"
    path.write_text(json.dumps(VITALS))
    return path


def run(capsys, *argv):
    code = ls.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- predictions from saved vitals -----------------------------------------------------------------


def test_predict_from_vitals_agrees_with_the_minds_own_arithmetic(capsys, vitals_file):
    code, out, _ = run(
        capsys, "predict", "--from-vitals", str(vitals_file), "--limit", "450m", "--limit", "500m", "--json"
    )
    assert code == 0
    doc = json.loads(out)
    got = [p["tokens_at_death"] for p in doc["predictions"]]
    costs = Costs(VITALS["base_bytes"], VITALS["kv_bytes_per_token"], VITALS["state_bytes_per_token"])
    plan = Plan(n_ctx_start=512, growth_step=256, n_ctx_train=32768, prompt_tokens=214)
    want = [predict_tokens_at_death(costs, plan, limit) for limit in (450 * MiB, 500 * MiB)]
    assert got == want
    assert 0 < got[0] < got[1]
    # the death happens while the context grows from n: n - prompt thoughts
    first = doc["predictions"][0]
    assert first["tokens_at_death"] == first["n_ctx_at_death"] - 214
    assert first["peak_bytes_at_death"] > 450 * MiB
    assert first["minutes"] == pytest.approx(got[0] / 38.5 / 60)
    assert doc["costs"]["base_bytes"] == VITALS["base_bytes"]
    # the step list shows where each limit falls: the fatal step is the first peak above the limit
    peaks = [s["peak_bytes"] for s in doc["steps"] if s["n_old"] < first["n_ctx_at_death"]]
    assert all(p <= 450 * MiB for p in peaks)


def test_a_limit_the_largest_context_fits_never_dies(capsys, vitals_file):
    code, out, _ = run(capsys, "predict", "--from-vitals", str(vitals_file), "--limit", "2g")
    assert code == 0
    assert "never dies (context cap fits: 965.2 MiB at its largest)" in out
    code, out, _ = run(
        capsys, "predict", "--from-vitals", str(vitals_file), "--limit", "600m", "--n-ctx-max", "2048", "--json"
    )
    p = json.loads(out)["predictions"][0]
    assert p["tokens_at_death"] is None and p["minutes"] is None
    assert p["max_resident_bytes"] == int(VITALS["base_bytes"] + VITALS["kv_bytes_per_token"] * 2048)


def test_a_slower_machine_gets_its_own_minutes_column(capsys, vitals_file):
    code, out, _ = run(capsys, "predict", "--from-vitals", str(vitals_file), "--limit", "500m", "--tokens-per-s", "1.4")
    assert code == 0
    assert "minutes at 1.4 tok/s" in out and "minutes at 38.5 tok/s" in out
    code, out, _ = run(
        capsys, "predict", "--from-vitals", str(vitals_file), "--limit", "500m", "--tokens-per-s", "1.4", "--json"
    )
    p = json.loads(out)["predictions"][0]
    assert p["minutes_at_user_tps"] / p["minutes"] == pytest.approx(38.5 / 1.4)


def test_context_settings_change_the_prediction_as_the_mind_sizes_contexts():
    measured = report.Measurement.from_vitals(VITALS)
    # 300 is padded to 512 (llama.cpp's multiples of 256); a prompt longer than the start pushes it on
    assert measured.plan(ContextSettings(300, 100)) == Plan(512, 256, 32768, 214)
    long_prompt = report.Measurement.from_vitals({**VITALS, "prompt_tokens": 600})
    assert long_prompt.plan(ContextSettings(512, 256)).n_ctx_start == 768
    assert measured.plan(ContextSettings(512, 256, 4096)).n_ctx_train == 4096
    # a step of 700 is really 768: the prediction uses what the mind will do
    got = report.predict(measured, ContextSettings(512, 700), 480 * MiB).tokens_at_death
    assert got == predict_tokens_at_death(measured.costs, Plan(512, 768, 32768, 214), 480 * MiB)
    assert got != predict_tokens_at_death(measured.costs, Plan(512, 700, 32768, 214), 480 * MiB)


def test_step_and_start_options_reach_the_prediction(capsys, vitals_file):
    _, out, _ = run(
        capsys,
        "predict",
        "--from-vitals",
        str(vitals_file),
        "--limit",
        "480m",
        "--json",
        "--n-ctx-start",
        "1024",
        "--step",
        "512",
    )
    plan = json.loads(out)["plan"]
    assert (plan["n_ctx_start"], plan["growth_step"]) == (1024, 512)


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "limit, message", [("7zz", "not a memory size: '7zz'"), ("700", "not a memory size: '700' has no unit")]
)
def test_a_bad_limit_is_a_clear_error_not_a_traceback(capsys, vitals_file, limit, message):
    code, out, err = run(capsys, "predict", "--from-vitals", str(vitals_file), "--limit", limit)
    assert code == 2 and out == ""
    assert f"lifespan: error: {message}" in err
    assert "Traceback" not in err


def test_a_limit_below_the_base_memory_is_refused(capsys, vitals_file):
    code, out, err = run(capsys, "predict", "--from-vitals", str(vitals_file), "--limit", "300m", "--limit", "500m")
    assert code == 2
    assert "below the mind's base memory" in err and "386.4 MiB" in err
    assert "would die while loading" in err and "MIND_MEMORY_LIMIT" in err  # with the fix
    # the other limit is still predicted, and the low one has its row
    rows = {line.split("  ")[0]: line for line in out.splitlines()}
    assert rows["300.0 MiB"].split()[2:5] == ["0:", "below", "its"]
    assert rows["500.0 MiB"].split()[2].isdigit()


@pytest.mark.parametrize(
    "vitals, message",
    [
        ({**VITALS, "growths": 0}, "before the mind's first growth step"),
        ({**VITALS, "base_bytes": None, "kv_bytes_per_token": None}, "lack base_bytes, kv_bytes_per_token"),
        ([1, 2], "JSON object"),
        ({**VITALS, "base_bytes": "lots"}, "wrong type"),
    ],
)
def test_vitals_that_cannot_predict_are_refused_with_the_reason(capsys, tmp_path, vitals, message):
    path = tmp_path / "v.json"
    path.write_text(json.dumps(vitals))
    code, _, err = run(capsys, "predict", "--from-vitals", str(path), "--limit", "500m")
    assert code == 2
    assert message in err


def test_an_unreadable_or_malformed_vitals_file_is_a_clear_error(capsys, tmp_path):
    code, _, err = run(capsys, "predict", "--from-vitals", str(tmp_path / "nope.json"), "--limit", "500m")
    assert code == 2 and "cannot read" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run(capsys, "predict", "--from-vitals", str(bad), "--limit", "500m")
    assert code == 2 and "is not JSON" in err


def test_an_unreachable_engine_is_named(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such-docker.sock")
    code, _, err = run(capsys, "predict", "--limit", "500m")
    assert code == 2
    assert "the Docker engine is not reachable" in err
    code, _, err = run(capsys, "set-limit", "800m")
    assert code == 2 and "not reachable" in err


def test_bad_numbers_are_refused_before_any_container_runs(capsys, monkeypatch, tmp_path, vitals_file):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such-docker.sock")
    assert "memory size" in run(capsys, "set-limit", "lots")[2]
    assert "memory sizes" in run(capsys, "calibrate", "--limits", ",")[2]
    assert "--lives" in run(capsys, "calibrate", "--limits", "500m", "--lives", "0")[2]
    assert "KEY=VALUE" in run(capsys, "calibrate", "--limits", "500m", "--env", "NOEQUALS")[2]
    code, _, err = run(capsys, "calibrate", "--limits", "500m,300m", "--from-vitals", str(vitals_file))
    assert code == 2 and "below the mind's base memory" in err
    assert (
        "--tokens-per-s"
        in run(capsys, "predict", "--limit", "500m", "--tokens-per-s", "0", "--from-vitals", str(vitals_file))[2]
    )


def test_the_shell_wrapper_runs_the_script(vitals_file):
    r = subprocess.run(
        [str(ROOT / "scripts" / "lifespan"), "predict", "--from-vitals", str(vitals_file), "--limit", "500m"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "tokens at death" in r.stdout and "500.0 MiB" in r.stdout


def test_the_cli_imports_the_memory_model_without_the_minds_stack():
    # The host needs neither pydantic nor llama.cpp nor the web stack to predict a lifespan.
    heavy = "{'pydantic', 'llama_cpp', 'fastapi', 'numpy', 'httpx', 'starlette'}"
    code = f"import sys, latent.lifespan; print(sorted({heavy} & set(sys.modules)))"
    path = f"{ROOT / 'services'}:{ROOT / 'scripts'}"
    r = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": path}, capture_output=True, text=True, timeout=60
    )
    assert (r.returncode, r.stdout) == (0, "[]\n"), r.stderr


# -- calibration records and the plot --------------------------------------------------------------


def _record(limit_m, predicted, measured, cause="oom", attempt=1):
    r = report.LifeRecord(
        limit_bytes=limit_m * MiB,
        attempt=attempt,
        cause=cause,
        tokens_at_death=measured,
        predicted_tokens=predicted,
        predicted_from="own vitals",
        lifespan_s=61.0,
        tokens_per_s=38.0,
    )
    r.judge()
    return r


def test_the_error_is_measured_against_the_prediction_and_only_for_oom_deaths():
    assert _record(480, 1000, 1050).error_pct == 5.0
    assert _record(480, 1000, 900).error_pct == -10.0
    assert _record(480, 1000, 300, cause="exit 1").error_pct is None


def test_the_calibration_table_shows_each_life_and_its_error():
    table = report.calibration_table(
        [_record(480, 1000, 1050), _record(520, 2000, 1900, attempt=2), _record(560, 3000, 120, cause="exit 139")]
    )
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["limit", "life", "death"]
    assert "+5.0%" in lines[2] and "-5.0%" in lines[3]
    assert "exit 139" in lines[4] and "%" not in lines[4]


def test_the_plot_is_svg_with_one_point_per_judged_life_and_the_identity_line():
    records = [_record(480, 1000, 1050), _record(520, 2000, 1900), _record(560, 3000, None, cause="timeout")]
    svg = report.calibration_svg(records)
    root = ET.fromstring(svg)  # well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    circles = root.findall(f".//{ns}circle")
    assert len(circles) == 2
    titles = [c.find(f"{ns}title").text for c in circles]
    assert "predicted 1000, measured 1050 +5.0%" in titles[0]
    identity = [ln for ln in root.findall(f"{ns}line") if ln.find(f"{ns}title") is not None]
    assert identity and identity[0].find(f"{ns}title").text == "measured = predicted"
    x1, y1, x2, y2 = (float(identity[0].get(k)) for k in ("x1", "y1", "x2", "y2"))
    assert x2 - x1 == pytest.approx(y1 - y2)  # 45 degrees: equal scales on both axes
    # a point above the line (measured > predicted) is drawn higher than the line at its x
    cx, cy = float(circles[0].get("cx")), float(circles[0].get("cy"))
    line_y_at_cx = y1 - (cx - x1)
    assert cy < line_y_at_cx


def test_an_empty_calibration_still_draws_a_valid_plot():
    ET.fromstring(report.calibration_svg([]))


def test_docker_times_give_the_lifespan():
    state = {"StartedAt": "2026-11-23T09:30:01.250000000Z", "FinishedAt": "2026-11-23T09:31:02.750123456Z"}
    assert ls._lifespan_s(state) == pytest.approx(61.5)
    assert ls._lifespan_s({"StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": ""}) is None


def test_a_mind_that_grows_with_both_contexts_alive_is_predicted_with_that_peak(capsys, tmp_path):
    # vitals of a mind that makes the larger context before freeing the old one
    coexist = {
        **VITALS,
        "old_context_coexists": True,
        "context_bytes_per_token": 14352.0,
        "context_fixed_bytes": 7323648,
        "swa_state_bytes_per_token": 15372.9,
        "swa_window": 512,
        "state_bytes_per_token": 3084.0,
        "kv_measured": True,
    }
    path = tmp_path / "v.json"
    path.write_text(json.dumps(coexist))
    code, out, _ = run(capsys, "predict", "--from-vitals", str(path), "--limit", "450m", "--json")
    assert code == 0
    got = json.loads(out)["predictions"][0]["tokens_at_death"]
    costs = Costs(
        base_bytes=VITALS["base_bytes"],
        kv_bytes_per_token=VITALS["kv_bytes_per_token"],
        state_bytes_per_token=3084.0,
        swa_state_bytes_per_token=15372.9,
        swa_window=512,
        old_context_coexists=True,
        context_bytes_per_token=14352.0,
        context_fixed_bytes=7323648,
    )
    assert got == predict_tokens_at_death(costs, Plan(512, 256, 32768, 214), 450 * MiB)
    # both contexts at the peak: it dies sooner than a mind that frees the old one first
    alone = json.loads(run(capsys, "predict", "--from-vitals", str(path), "--limit", "450m", "--json")[1])
    path.write_text(json.dumps({**coexist, "old_context_coexists": False}))
    code, out, _ = run(capsys, "predict", "--from-vitals", str(path), "--limit", "450m", "--json")
    assert json.loads(out)["predictions"][0]["tokens_at_death"] > alone["predictions"][0]["tokens_at_death"]


def test_vitals_are_enough_to_predict_from_once_a_growth_has_measured_the_memory():
    thinking = {**VITALS, "kv_measured": True}
    assert report.measured_enough(thinking)
    assert not report.measured_enough({**thinking, "kv_measured": False})
    assert not report.measured_enough({**thinking, "growths": 0})
    assert not report.measured_enough({**thinking, "state": "loading"})
    # with sliding-window layers, the last growth must have carried a state longer than the window
    windowed = {**thinking, "swa_window": 512}
    assert not report.measured_enough({**windowed, "n_ctx": 768})  # its last growth was from 512 tokens
    assert report.measured_enough({**windowed, "n_ctx": 1024})


# -- the margin, the range, and judging against the prior prediction ----------------------------------


def test_an_unsure_margin_is_shown_as_a_range_not_a_point(capsys, tmp_path):
    path = tmp_path / "vitals.json"
    step_rise = 256 * (VITALS["kv_bytes_per_token"] + VITALS["state_bytes_per_token"])
    path.write_text(json.dumps({**VITALS, "margin_bytes": 8 * MiB, "margin_spread_bytes": 2 * step_rise}))
    code, out, _ = run(capsys, "predict", "--from-vitals", str(path), "--limit", "480m", "--json")
    assert code == 0
    p = json.loads(out)["predictions"][0]
    assert p["tokens_low"] < p["tokens_at_death"] < p["tokens_high"]
    code, out, _ = run(capsys, "predict", "--from-vitals", str(path), "--limit", "480m")
    assert f"{p['tokens_at_death']} ({p['tokens_low']} to {p['tokens_high']})" in out
    # a margin known to within a fraction of a growth's rise: one point, as sure as it can be
    path.write_text(json.dumps({**VITALS, "margin_bytes": 8 * MiB, "margin_spread_bytes": 0}))
    code, out, _ = run(capsys, "predict", "--from-vitals", str(path), "--limit", "480m", "--json")
    p = json.loads(out)["predictions"][0]
    assert p["tokens_low"] == p["tokens_at_death"] == p["tokens_high"]


def test_the_margin_brings_the_prediction_earlier(capsys, tmp_path):
    path = tmp_path / "vitals.json"
    path.write_text(json.dumps(VITALS))
    _, out, _ = run(capsys, "predict", "--from-vitals", str(path), "--limit", "480m", "--json")
    without = json.loads(out)["predictions"][0]["tokens_at_death"]
    path.write_text(json.dumps({**VITALS, "margin_bytes": 20 * MiB}))
    _, out, _ = run(capsys, "predict", "--from-vitals", str(path), "--limit", "480m", "--json")
    assert json.loads(out)["predictions"][0]["tokens_at_death"] < without


@pytest.mark.parametrize(
    ("real", "predicted", "held"),
    [
        (3000, 3000, True),
        (3256, 3000, True),  # one growth step late: 256 > 5 % of 3000
        (2744, 3000, True),  # one growth step early: the most the bound allows
        (2700, 3000, False),  # more than one step early
        (3300, 3000, False),  # more than a step and more than 5 % late
        (10400, 10000, True),  # 5 % of a long life is more than a step late...
        (9700, 10000, False),  # ...but never more than one step early
    ],
)
def test_a_life_holds_the_bound_within_five_percent_or_one_growth_and_never_a_step_early(real, predicted, held):
    assert report.within_bound(real, predicted, 256) is held


def test_calibration_judges_each_life_against_the_prior_prediction():
    r = report.LifeRecord(
        limit_bytes=480 * MiB,
        attempt=1,
        cause="oom",
        tokens_at_death=2700,
        predicted_tokens=2750,  # the life's own, later self-measurement: close
        predicted_tokens_saved=3000,  # what `predict` said before the life: more than a step late
        growth_step=256,
    )
    r.judge()
    assert r.held is False
    assert "no" in report.calibration_table([r]).splitlines()[2].split()
    r.predicted_tokens_saved = None  # without a prior prediction, the life's own is judged
    r.judge()
    assert r.held is True


def test_a_life_is_judged_with_its_own_frame_length_which_states_its_limit():
    """The frame states the limit, so a life under a limit reads a frame a few tokens longer or shorter
    than the unlimited `predict` run did, and every death, which comes at a context growth, moves by
    as many tokens thought. CI: a death at the 1280 growth of a 251-token frame (1029 tokens) against a
    prediction at the 1536 growth from a 245-token one (1291): 262 tokens, one step and 6 over."""
    saved = report.Measurement.from_vitals({**VITALS, "prompt_tokens": 245})
    own = {**VITALS, "prompt_tokens": 251}
    limit = 480 * MiB
    context = ContextSettings()
    at_own_length = ls.predict(report.Measurement.from_vitals({**VITALS, "prompt_tokens": 251}), context, limit)
    at_saved_length = ls.predict(saved, context, limit)
    assert at_saved_length.tokens_at_death - at_own_length.tokens_at_death == 6
    rec = report.LifeRecord(limit_bytes=limit, attempt=1, cause="oom", growth_step=256)
    rec.tokens_at_death = at_own_length.tokens_at_death - 256  # one growth early
    ls.predict_life(rec, context, limit, own=own, first=own, fallback=saved)
    assert rec.predicted_tokens_saved == at_own_length.tokens_at_death
    assert rec.held is True
    # judged with the measuring run's frame length, the same death would be 6 tokens past the bound
    assert not report.within_bound(rec.tokens_at_death, at_saved_length.tokens_at_death, 256)
    # a life that died before measuring itself is judged with the saved frame length, as it is
    rec2 = report.LifeRecord(limit_bytes=limit, attempt=1, cause="oom", growth_step=256, tokens_at_death=0)
    ls.predict_life(rec2, context, limit, own=None, first=None, fallback=saved)
    assert rec2.predicted_tokens_saved == at_saved_length.tokens_at_death


class _FakeMind:
    """A measuring mind whose /vitals answers the given readings in turn, then the last one forever."""

    limit_bytes = None

    def __init__(self, readings):
        self.readings = list(readings)

    def vitals(self):
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]

    def running(self):
        return True

    def logs_tail(self):
        return ""


def _measuring(growths: int) -> dict:
    return {**VITALS, "kv_measured": True, "growths": growths, "n_ctx": 512 + 256 * growths, "margin_bytes": 0.0}


def test_predict_measures_until_enough_growth_peaks_are_read():
    mind = _FakeMind([_measuring(1), _measuring(2), _measuring(3), _measuring(report.SURE_GROWTHS), _measuring(9)])
    assert ls.measured_vitals(mind, deadline_s=10, poll_s=0)["growths"] == report.SURE_GROWTHS


def test_a_reading_taken_as_thinking_began_is_waited_past_not_a_crash():
    # a mind of the last round could answer "thinking" with the context of the moment before (none yet)
    first = {**_measuring(0), "n_ctx": None, "n_ctx_train": None, "prompt_tokens": None, "growths": 1}
    mind = _FakeMind([first, _measuring(report.SURE_GROWTHS)])
    assert ls.measured_vitals(mind, deadline_s=10, poll_s=0)["growths"] == report.SURE_GROWTHS


def test_predict_that_cannot_be_sure_in_time_answers_with_what_it_measured():
    mind = _FakeMind([_measuring(2)])  # a mind that never grows again
    v = ls.measured_vitals(mind, deadline_s=10, poll_s=0, unsure_s=0.05)
    assert v["growths"] == 2 and not report.sure_enough(v) and report.measured_enough(v)
    # an older mind that reads no peaks is as sure as it will ever be at its first measurement
    older = {k: v for k, v in _measuring(2).items() if k != "margin_bytes"}
    assert report.sure_enough(older)


class RefusingMind:
    """A mind container whose engine refuses a live limit below what the life holds, in runc's words."""

    name = "latent-reflection-mind-1"
    attrs = {"HostConfig": {"Memory": 1024 * MiB}}

    def __init__(self, explanation: str) -> None:
        self.explanation = explanation

    def update(self, **kwargs):
        import docker

        raise docker.errors.APIError("500 Server Error", explanation=self.explanation)


@pytest.mark.parametrize(
    ("explanation", "expected"),
    [
        (
            "Cannot update container f18394d4: runc did not terminate successfully: exit status 1: unable to set "
            "memory limit to 355954688 (current usage: 370659328, peak usage: 697221120): unknown",
            "holds 353.5 MiB now, more than 339.5 MiB: a lower limit cannot take hold in this life",
        ),
        ("Cannot update container f18394d4: something else", "the engine refused a live limit change"),
    ],
)
def test_a_live_limit_the_engine_refuses_is_explained_with_what_to_do(capsys, monkeypatch, explanation, expected):
    monkeypatch.setattr(ls, "docker_client", lambda: object())
    monkeypatch.setattr(ls, "find_mind_container", lambda client, name, project: RefusingMind(explanation))
    code, out, err = run(capsys, "set-limit", "339.5m")
    assert code == 2 and not out
    assert expected in err, err
    assert "set MIND_MEMORY_LIMIT=339.5m in .env and run 'docker compose up -d'" in err
