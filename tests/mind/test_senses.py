"""Readings written by the system at paragraph ends: into the context, and out as sense events whose
numbers are the vitals of that moment."""

import threading

import pytest

from mind.app import create_app
from mind.cgroup import CgroupMemory
from mind.frames import Birth
from mind.senses import sense_line
from mind.settings import MindSettings
from mind.sources import ContextInfo
from mind.thinker import SENSE_GAP
from mind_helpers import read_events, serve

PARAGRAPH = [b" I"] + [b" think"] * (SENSE_GAP + 4) + [b".", b"\n\n"]


class ParagraphSource:
    """Paragraphs of SENSE_GAP + 7 tokens, each ended by a blank-line token; keeps what it is told."""

    name = "paragraphs"

    def __init__(self, birth=None):
        self.birth = birth
        self.i = 0
        self.sensed: list[tuple[int, str]] = []  # (tokens thought before it, the text written)
        self.n_past = 0
        self.lock = threading.Lock()

    def load(self):
        pass

    def next_piece(self) -> bytes:
        piece = PARAGRAPH[self.i % len(PARAGRAPH)]
        self.i += 1
        self.n_past += 1
        threading.Event().wait(0.002)
        return piece

    def sense(self, text: str) -> int:
        self.sensed.append((self.i, text))
        self.n_past += 7
        return 7

    def info(self):
        return ContextInfo(
            n_ctx=4096, n_ctx_train=4096, n_past=self.n_past, prompt_tokens=0, growth_step=256, shifting=False
        )

    def close(self):
        pass


def fixed_memory(tmp_path) -> CgroupMemory:
    for name, text in {
        "cgroup.controllers": "memory",
        "memory.current": str(212 << 20),
        "memory.max": str(700 << 20),
    }.items():
        (tmp_path / name).write_text(text + "\n")
    return CgroupMemory(tmp_path, proc_cgroup="0::/\n")


def settings(**kw) -> MindSettings:
    return MindSettings(**({"source": "scripted", "tokens_per_s": 0.0, "vitals_interval_s": 0.2} | kw))


@pytest.mark.parametrize("senses", ["gauge", "gauge+past"])
def test_readings_arrive_at_paragraph_ends_with_the_vitals_of_that_moment(tmp_path, senses):
    birth = Birth.begin("transcript", senses, str(tmp_path / "state"), limit=lambda: 700 << 20)
    source = ParagraphSource(birth)
    app = create_app(settings(senses=senses), source, memory=fixed_memory(tmp_path), on_fatal=lambda c: None)
    with serve(app) as url:
        events = read_events(url, 3 * (len(PARAGRAPH) + 1) + 2, kinds=("token", "sense"))
    texts: list[str] = []
    senses_seen = []
    for kind, _, data in events:
        if kind == "token":
            assert data["seq"] == len(texts)
            texts.append(data["text"])
            continue
        senses_seen.append(data)
        thought = "".join(texts)
        assert thought.endswith("\n\n")  # at a paragraph end
        assert data["seq"] == len(texts) - 1  # after the token that ended it
        assert data["tokens"] == len(texts)  # the vitals' token count at that moment
        assert data["words"] == len(thought.split())
        assert (data["memory_bytes"], data["limit_bytes"]) == (212 << 20, 700 << 20)
        assert data["sense_tokens"] == 7
        assert data["text"] == sense_line(data) and "memory 212 MB of 700 MB" in data["text"]
        if senses == "gauge+past":
            assert data["life_number"] == 1 and data["lifespans"] == []
            assert data["text"].startswith("[life 1; ")
        else:
            assert "life_number" not in data
    assert len(senses_seen) >= 2
    # the very lines the subscribers saw went into the mind's own context, right after their token
    assert [text for _, text in source.sensed[: len(senses_seen)]] == [s["text"] for s in senses_seen]
    assert [n for n, _ in source.sensed[: len(senses_seen)]] == [s["tokens"] for s in senses_seen]
    # their tokens count in the memory prediction's context, and in the vitals
    mind = app.state.mind
    assert mind.thinker.sense_tokens == 7 * mind.thinker.senses


def test_no_readings_with_senses_off(tmp_path):
    source = ParagraphSource()
    app = create_app(settings(senses="off"), source, memory=fixed_memory(tmp_path), on_fatal=lambda c: None)
    with serve(app) as url:
        events = read_events(url, 3 * len(PARAGRAPH), kinds=("token", "sense"))
    assert {kind for kind, _, _ in events} == {"token"}
    assert source.sensed == []


def test_a_reading_says_its_numbers_in_words():
    data = {"memory_bytes": 212 << 20, "limit_bytes": 700 << 20, "words": 318, "age_s": 74.2}
    assert sense_line(data) == "[memory 212 MB of 700 MB; 318 words; alive 1 min 14 s]\n\n"
    past = data | {"life_number": 37, "lifespans": [4120, 3980], "limit_bytes": None}
    assert sense_line(past) == (
        "[life 37; memory 212 MB, no limit; 318 words; alive 1 min 14 s; last lives 4120, 3980 tokens]\n\n"
    )
