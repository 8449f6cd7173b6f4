"""scripts/lifespan without Docker or a model: limits, predictions from saved vitals, errors, the plot."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mind.lifespan import predict_tokens_at_death

ROOT = Path(__file__).resolve().parents[2]
MiB = 1 << 20


def _load_script():
    spec = importlib.util.spec_from_file_location("lifespan_script", ROOT / "scripts" / "lifespan.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["lifespan_script"] = module
    spec.loader.exec_module(module)
    return module


ls = _load_script()

# /vitals of a real mind (Gemma 3 270M, no limit) after its first growth step
VITALS = {
    "life": "0effda773b74bf2e", "born_at": 1795425453.78, "tokens": 316, "tokens_per_s": 38.5, "n_ctx": 768,
    "n_ctx_train": 32768, "memory_bytes": 420000000, "peak_memory_bytes": 430000000, "limit_bytes": None,
    "limit_in_force": False, "tokens_left": None, "shifting": False, "state": "thinking", "cgroup_version": 1,
    "oom_kills": 0, "subscribers": 0, "subscribers_dropped": 0, "n_past": 530, "prompt_tokens": 214,
    "growth_step": 256, "base_bytes": 405181184, "kv_bytes_per_token": 18520.0, "state_bytes_per_token": 9000.0,
    "growths": 1, "last_growth_pause_s": 0.004, "max_growth_pause_s": 0.004,
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


# -- limits ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("700m", 700 * MiB), ("1g", 1 << 30), ("1.5g", 3 << 29), ("480MiB", 480 * MiB), ("480mb", 480 * MiB),
    ("512k", 512 << 10), ("524288000", 524288000), (" 2G ", 2 << 30),
])
def test_limits_are_read_in_dockers_binary_units(text, expected):
    assert ls.parse_size(text) == expected


@pytest.mark.parametrize("text", ["7zz", "", "m", "-5m", "0", "1.2.3g", "700 megs"])
def test_a_limit_that_is_not_a_size_is_refused_with_examples(text):
    with pytest.raises(ls.LifespanError, match="memory size"):
        ls.parse_size(text)


def test_a_list_of_limits_is_comma_separated():
    assert ls.parse_sizes("450m,500m, 550m") == [450 * MiB, 500 * MiB, 550 * MiB]
    with pytest.raises(ls.LifespanError):
        ls.parse_sizes(",")


# -- predictions from saved vitals -----------------------------------------------------------------

def test_predict_from_vitals_agrees_with_the_minds_own_arithmetic(capsys, vitals_file):
    code, out, _ = run(capsys, "predict", "--from-vitals", str(vitals_file), "--limit", "450m", "--limit", "500m",
                       "--json")
    assert code == 0
    doc = json.loads(out)
    got = [p["tokens_at_death"] for p in doc["predictions"]]
    want = [predict_tokens_at_death(
        base_bytes=VITALS["base_bytes"], kv_bytes_per_token=VITALS["kv_bytes_per_token"], n_ctx_start=512,
        growth_step=256, n_ctx_train=32768, limit_bytes=limit, prompt_tokens=214,
        state_bytes_per_token=VITALS["state_bytes_per_token"]) for limit in (450 * MiB, 500 * MiB)]
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
    code, out, _ = run(capsys, "predict", "--from-vitals", str(vitals_file), "--limit", "600m",
                       "--n-ctx-max", "2048", "--json")
    p = json.loads(out)["predictions"][0]
    assert p["tokens_at_death"] is None and p["minutes"] is None
    assert p["max_resident_bytes"] == int(VITALS["base_bytes"] + VITALS["kv_bytes_per_token"] * 2048)


def test_a_slower_machine_gets_its_own_minutes_column(capsys, vitals_file):
    code, out, _ = run(capsys, "predict", "--from-vitals", str(vitals_file), "--limit", "500m",
                       "--tokens-per-s", "1.4")
    assert code == 0
    assert "minutes at 1.4 tok/s" in out and "minutes at 38.5 tok/s" in out
    code, out, _ = run(capsys, "predict", "--from-vitals", str(vitals_file), "--limit", "500m",
                       "--tokens-per-s", "1.4", "--json")
    p = json.loads(out)["predictions"][0]
    assert p["minutes_at_user_tps"] / p["minutes"] == pytest.approx(38.5 / 1.4)


def test_context_settings_change_the_prediction_as_the_mind_sizes_contexts():
    costs = ls.Costs.from_vitals(VITALS)
    # 300 is padded to 512 (llama.cpp's multiples of 256); a prompt longer than the start pushes it on
    assert ls.Plan(300, 100).resolve(costs) == (512, 256, 32768)
    long_prompt = ls.Costs.from_vitals({**VITALS, "prompt_tokens": 600})
    assert ls.Plan(512, 256).resolve(long_prompt)[0] == 768
    assert ls.Plan(512, 256, 4096).resolve(costs)[2] == 4096
    # a step of 700 is really 768: the prediction uses what the mind will do
    got = ls.predict(costs, ls.Plan(512, 700), 480 * MiB).tokens_at_death
    assert got == predict_tokens_at_death(
        base_bytes=costs.base_bytes, kv_bytes_per_token=costs.kv_bytes_per_token, n_ctx_start=512, growth_step=768,
        n_ctx_train=32768, limit_bytes=480 * MiB, prompt_tokens=214, state_bytes_per_token=9000.0)


def test_step_and_start_options_reach_the_prediction(capsys, vitals_file):
    _, out, _ = run(capsys, "predict", "--from-vitals", str(vitals_file), "--limit", "480m", "--json",
                    "--n-ctx-start", "1024", "--step", "512")
    plan = json.loads(out)["plan"]
    assert (plan["n_ctx_start"], plan["growth_step"]) == (1024, 512)


# -- bad input -------------------------------------------------------------------------------------

def test_a_bad_limit_is_a_clear_error_not_a_traceback(capsys, vitals_file):
    code, out, err = run(capsys, "predict", "--from-vitals", str(vitals_file), "--limit", "7zz")
    assert code == 2 and out == ""
    assert "lifespan: error: not a memory size: '7zz'" in err
    assert "Traceback" not in err


def test_a_limit_below_the_base_memory_is_refused(capsys, vitals_file):
    code, _, err = run(capsys, "predict", "--from-vitals", str(vitals_file), "--limit", "300m")
    assert code == 2
    assert "below the mind's base memory" in err and "386.4 MiB" in err


@pytest.mark.parametrize("vitals, message", [
    ({**VITALS, "growths": 0}, "before the mind's first growth step"),
    ({**VITALS, "base_bytes": None, "kv_bytes_per_token": None}, "lack base_bytes, kv_bytes_per_token"),
    ([1, 2], "JSON object"),
    ({**VITALS, "base_bytes": "lots"}, "wrong type"),
])
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
    assert "--tokens-per-s" in run(capsys, "predict", "--limit", "500m", "--tokens-per-s", "0",
                                   "--from-vitals", str(vitals_file))[2]


def test_the_shell_wrapper_runs_the_script(vitals_file):
    r = subprocess.run([str(ROOT / "scripts" / "lifespan"), "predict", "--from-vitals", str(vitals_file),
                        "--limit", "500m"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "tokens at death" in r.stdout and "500.0 MiB" in r.stdout


# -- calibration records and the plot --------------------------------------------------------------

def _record(limit_m, predicted, measured, cause="oom", attempt=1):
    r = ls.LifeRecord(limit_bytes=limit_m * MiB, attempt=attempt, cause=cause, tokens_at_death=measured,
                      predicted_tokens=predicted, predicted_from="own vitals", lifespan_s=61.0, tokens_per_s=38.0)
    r.judge()
    return r


def test_the_error_is_measured_against_the_prediction_and_only_for_oom_deaths():
    assert _record(480, 1000, 1050).error_pct == 5.0
    assert _record(480, 1000, 900).error_pct == -10.0
    assert _record(480, 1000, 300, cause="exit 1").error_pct is None


def test_the_calibration_table_shows_each_life_and_its_error():
    table = ls.calibration_table([_record(480, 1000, 1050), _record(520, 2000, 1900, attempt=2),
                                  _record(560, 3000, 120, cause="exit 139")])
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["limit", "life", "death"]
    assert "+5.0%" in lines[2] and "-5.0%" in lines[3]
    assert "exit 139" in lines[4] and "%" not in lines[4]


def test_the_plot_is_svg_with_one_point_per_judged_life_and_the_identity_line():
    records = [_record(480, 1000, 1050), _record(520, 2000, 1900), _record(560, 3000, None, cause="timeout")]
    svg = ls.calibration_svg(records)
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
    ET.fromstring(ls.calibration_svg([]))


def test_docker_times_give_the_lifespan():
    state = {"StartedAt": "2026-11-23T09:30:01.250000000Z", "FinishedAt": "2026-11-23T09:31:02.750123456Z"}
    assert ls._lifespan_s(state) == pytest.approx(61.5)
    assert ls._lifespan_s({"StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": ""}) is None


def test_a_mind_that_grows_with_both_contexts_alive_is_predicted_with_that_peak(capsys, tmp_path):
    # vitals of a mind that makes the larger context before freeing the old one
    coexist = {**VITALS, "old_context_coexists": True, "context_bytes_per_token": 14352.0,
               "context_fixed_bytes": 7323648, "swa_state_bytes_per_token": 15372.9, "swa_window": 512,
               "state_bytes_per_token": 3084.0, "kv_measured": True}
    path = tmp_path / "v.json"
    path.write_text(json.dumps(coexist))
    code, out, _ = run(capsys, "predict", "--from-vitals", str(path), "--limit", "450m", "--json")
    assert code == 0
    got = json.loads(out)["predictions"][0]["tokens_at_death"]
    assert got == predict_tokens_at_death(
        base_bytes=VITALS["base_bytes"], kv_bytes_per_token=VITALS["kv_bytes_per_token"], n_ctx_start=512,
        growth_step=256, n_ctx_train=32768, limit_bytes=450 * MiB, prompt_tokens=214, state_bytes_per_token=3084.0,
        swa_state_bytes_per_token=15372.9, swa_window=512, old_context_coexists=True,
        context_bytes_per_token=14352.0, context_fixed_bytes=7323648)
    # both contexts at the peak: it dies sooner than a mind that frees the old one first
    alone = json.loads(run(capsys, "predict", "--from-vitals", str(path), "--limit", "450m", "--json")[1])
    path.write_text(json.dumps({**coexist, "old_context_coexists": False}))
    code, out, _ = run(capsys, "predict", "--from-vitals", str(path), "--limit", "450m", "--json")
    assert json.loads(out)["predictions"][0]["tokens_at_death"] > alone["predictions"][0]["tokens_at_death"]
