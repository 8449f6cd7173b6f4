"""The stream contract checked at the boundary: every field of every event, type and range."""

from __future__ import annotations

import json

import pytest

from display.core import contract
from display.core.contract import Malformed
from display.core.sse import SSEParser

VITALS = {
    "life": "ab12",
    "born_at": 1.7e9,
    "tokens": 10,
    "tokens_per_s": 39.5,
    "n_ctx": 512,
    "n_ctx_train": 32768,
    "memory_bytes": 400_000_000,
    "peak_memory_bytes": 410_000_000,
    "limit_bytes": 450_000_000,
    "limit_in_force": True,
    "tokens_left": 300,
    "shifting": False,
    "cpu_seconds": 12.25,
    "cpu_joules": 11.331,
    "energy_model": "pi4",
}


OPTIONAL_VITALS = ("words", "senses", "stops_refused")
OPTIONAL_BIRTH = (
    "life_number",
    "frame",
    "frame_sha256",
    "frame_text",
    "sampler",
    "seed",
    "senses",
    "tokens_per_s_limit",
)


def test_good_events_pass_with_only_the_contract_s_fields():
    assert contract.token({"life": "ab12", "seq": 0, "text": "I ", "extra": [1] * 1000}) == {
        "life": "ab12",
        "seq": 0,
        "text": "I ",
    }
    assert contract.vitals({**VITALS, "debug": {"x": 1}}) == VITALS | dict.fromkeys(OPTIONAL_VITALS)
    assert contract.birth({"life": "ab12"}) == {
        "life": "ab12",
        "born_at": None,
        "model": None,
        "prompt": None,
        "limit_bytes": None,
    } | dict.fromkeys(OPTIONAL_BIRTH)
    assert contract.death({"life": "ab12", "cause": "failed", "exit_code": 70, "reason": "hung", "tokens": 5}) == {
        "life": "ab12",
        "cause": "failed",
        "exit_code": 70,
        "reason": "hung",
        "tokens": 5,
    }
    # JSON has one number type: an integral float is an integer
    assert contract.vitals({**VITALS, "memory_bytes": 4e8})["memory_bytes"] == 400_000_000


@pytest.mark.parametrize("life", ["", "x" * 65, "ab:12", "ab 12", "ab\n12", "ạb12", "١٢", 12, None, ["ab"], True])
def test_a_life_id_is_1_to_64_safe_ascii_characters(life):
    with pytest.raises(Malformed):
        contract.token({"life": life, "seq": 0, "text": "x"})


@pytest.mark.parametrize(
    "field,value",
    [
        ("memory_bytes", "lots"),
        ("memory_bytes", -1),
        ("memory_bytes", 2**61),
        ("memory_bytes", float("nan")),
        ("memory_bytes", float("inf")),
        ("memory_bytes", 1.5),
        ("memory_bytes", True),
        ("memory_bytes", {"a": 1}),
        ("tokens_per_s", float("nan")),
        ("tokens_per_s", float("-inf")),
        ("tokens_per_s", "fast"),
        ("tokens_per_s", -1),
        ("born_at", "yesterday"),
        ("born_at", float("inf")),
        ("born_at", 1e300),
        ("tokens", "3"),
        ("tokens_left", -5),
        ("limit_in_force", "yes"),
        ("shifting", 1),
        ("n_ctx", [512]),
    ],
)
def test_a_wrong_typed_or_non_finite_vitals_field_makes_the_event_malformed(field, value):
    with pytest.raises(Malformed) as caught:
        contract.vitals({**VITALS, field: value})
    assert field in str(caught.value) and repr(value) not in str(caught.value)  # names the field, not the value


def test_json_non_finite_numbers_are_refused():
    data = json.loads('{"life": "ab12", "memory_bytes": NaN, "limit_bytes": Infinity, "tokens": 1e999}')
    with pytest.raises(Malformed):
        contract.vitals(data)


@pytest.mark.parametrize(
    "token",
    [
        {"life": "ab12", "seq": "0", "text": "x"},
        {"life": "ab12", "seq": -1, "text": "x"},
        {"life": "ab12", "seq": 2**60, "text": "x"},
        {"life": "ab12", "text": "x"},
        {"life": "ab12", "seq": 0},
        {"life": "ab12", "seq": 0, "text": 5},
        {"life": "ab12", "seq": 0, "text": "x" * 5000},
        {"life": "ab12", "seq": 0, "text": json.loads('"\\ud800"')},  # a lone surrogate: no file or page holds it
    ],
)
def test_a_bad_token_is_malformed(token):
    with pytest.raises(Malformed):
        contract.token(token)


def test_a_death_names_a_known_cause_and_a_reason_from_the_vocabulary_or_none():
    with pytest.raises(Malformed):
        contract.death({"life": "ab12", "cause": "RuntimeError: boom"})
    with pytest.raises(Malformed):
        contract.death({"life": "ab12", "cause": "failed", "exit_code": 256})
    free_text = contract.death({"life": "ab12", "cause": "failed", "reason": "Traceback (most recent call last)"})
    assert free_text["reason"] is None


def test_an_event_id_that_is_not_short_printable_ascii_marks_the_event_and_keeps_the_last_good_id():
    parser = SSEParser()
    raw = (
        "id: ab12:1\nevent: token\ndata: {}\n\n"
        "id: ab12:\u0661\u0662\nevent: token\ndata: {}\n\n"
        "id: " + "9" * 200 + "\nevent: token\ndata: {}\n\n"
        "id: ab 12\nevent: token\ndata: {}\n\n"
        "event: token\ndata: {}\n\n"
    ).encode()
    events = parser.feed(raw)
    assert [(e.malformed, e.id) for e in events] == [
        (False, "ab12:1"),
        (True, "ab12:1"),
        (True, "ab12:1"),
        (True, "ab12:1"),
        (False, "ab12:1"),
    ]


BIRTH_16 = {
    "life": "ab12",
    "life_number": 37,
    "frame": "transcript",
    "frame_sha256": "0" * 64,
    "frame_text": "What follows is the inner monologue ...",
    "sampler": {"temperature": 0.9, "top_k": 64, "dry_last_n": -1, "secret": "dropped"},
    "seed": 1234,
    "senses": "gauge",
    "tokens_per_s_limit": 4.0,
}


def test_a_birth_says_what_the_life_is_frame_sampler_seed():
    clean = contract.birth(BIRTH_16)
    assert {k: clean[k] for k in ("life_number", "frame", "frame_sha256", "frame_text", "seed", "senses")} == {
        k: BIRTH_16[k] for k in ("life_number", "frame", "frame_sha256", "frame_text", "seed", "senses")
    }
    assert clean["sampler"]["temperature"] == 0.9 and clean["sampler"]["dry_last_n"] == -1
    assert "secret" not in clean["sampler"]
    assert contract.birth({**BIRTH_16, "senses": "shouting"})["senses"] is None


@pytest.mark.parametrize(
    "bad",
    [
        {"frame_sha256": "ABC"},
        {"frame_sha256": "g" * 64},
        {"sampler": [1]},
        {"sampler": {"temperature": float("nan")}},
        {"sampler": {"top_k": 1.5}},
        {"seed": -2},
        {"frame": "x" * 257},
        {"tokens_per_s_limit": -1},
    ],
)
def test_a_birth_with_a_broken_optional_field_is_malformed(bad):
    with pytest.raises(Malformed):
        contract.birth({**BIRTH_16, **bad})


SENSE = {
    "life": "ab12",
    "seq": 41,
    "text": "[memory 212 MB of 700 MB; 318 words; alive 1 min 14 s]\n\n",
    "tokens": 42,
    "words": 318,
    "age_s": 74.2,
    "memory_bytes": 222_298_112,
    "limit_bytes": 734_003_200,
    "sense_tokens": 27,
}


def test_a_sense_event_carries_the_readings_and_their_numbers():
    assert contract.sense(SENSE) == SENSE | {"life_number": None, "lifespans": None}
    past = contract.sense({**SENSE, "life_number": 3, "lifespans": [4120, 3980]})
    assert past["life_number"] == 3 and past["lifespans"] == [4120, 3980]
    assert "sense" in contract.PARSERS


@pytest.mark.parametrize(
    "bad",
    [{"seq": None}, {"text": None}, {"text": "x" * 513}, {"lifespans": [1] * 33}, {"lifespans": [-1]}, {"age_s": -1}],
)
def test_a_broken_sense_event_is_malformed(bad):
    with pytest.raises(Malformed):
        contract.sense({**SENSE, **bad})
