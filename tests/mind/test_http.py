"""The HTTP surface over a real uvicorn on 127.0.0.1, with the scripted source (no model)."""

import socket
import threading
import time

import httpx
import pytest

from mind.app import create_app
from mind.cgroup import CgroupMemory
from mind.lifespan import Costs, Plan, predict_tokens_left
from mind.settings import MindSettings
from mind.sources import ScriptedSource
from mind_helpers import read_events, serve, wait_until

CONTRACT_VITALS = {
    "life",
    "born_at",
    "tokens",
    "tokens_per_s",
    "n_ctx",
    "n_ctx_train",
    "memory_bytes",
    "peak_memory_bytes",
    "limit_bytes",
    "limit_in_force",
    "tokens_left",
    "shifting",
    "cpu_seconds",
    "cpu_joules",
    "energy_model",
    "words",
    "senses",
    "stops_refused",
}
BIRTH = {"life", "born_at", "model", "prompt", "limit_bytes", "life_number", "frame", "frame_sha256", "frame_text"}
BIRTH |= {"sampler", "seed", "senses", "tokens_per_s_limit"}


def settings(**kw):
    base = dict(
        source="scripted",
        scripted_rate=200.0,
        vitals_interval_s=0.2,
        ping_s=1.0,
        n_ctx_start=32,
        n_ctx_step=32,
        scripted_n_ctx_train=128,
        tokens_per_s=0.0,  # the breath off: these tests want tokens fast
    )
    base.update(kw)
    return MindSettings(**base)


def app_with(script_file, **kw):
    s = settings(**kw)
    src = ScriptedSource(
        script_file,
        rate=s.scripted_rate,
        n_ctx_start=s.n_ctx_start,
        n_ctx_step=s.n_ctx_step,
        n_ctx_train=s.scripted_n_ctx_train,
    )
    return create_app(s, src, on_fatal=lambda code: None)


def test_stream_begins_with_birth_then_tokens_in_order(script_file):
    app = app_with(script_file)
    with serve(app) as url:
        events = read_events(url, 40, kinds=("birth", "token"))
    life = app.state.mind.life
    kind, eid, birth = events[0]
    assert kind == "birth" and eid == f"{life}:0"
    assert set(birth) == BIRTH and birth["life"] == life
    tokens = [d for k, _, d in events[1:]]
    assert [t["seq"] for t in tokens] == list(range(len(tokens)))
    ids = [int(e[1].split(":")[1]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    text = "".join(t["text"] for t in tokens)
    assert text.startswith(" I am a small machine. I think in words")
    assert "Naïve café thoughts — with accents" in text


def test_resuming_with_last_event_id_gives_only_what_came_after(script_file):
    app = app_with(script_file)
    with serve(app) as url:
        first = read_events(url, 20, kinds=("token",))
        last_id = first[-1][1]
        time.sleep(0.3)
        resumed = read_events(url, 10, headers={"Last-Event-ID": last_id}, kinds=("birth", "token"))
        other = read_events(url, 1, headers={"Last-Event-ID": "someotherlife:5"}, kinds=("birth", "token"))
    assert resumed[0][0] == "token"
    assert resumed[0][2]["seq"] == first[-1][2]["seq"] + 1  # nothing lost, nothing repeated
    assert other[0][0] == "birth"


def test_vitals_event_and_endpoint_carry_the_contract_fields(script_file):
    app = app_with(script_file)
    with serve(app) as url:
        ((_, _, vitals),) = read_events(url, 1, kinds=("vitals",))
        detail = httpx.get(url + "/vitals").json()
    assert set(vitals) == CONTRACT_VITALS
    assert CONTRACT_VITALS <= set(detail)
    assert vitals["memory_bytes"] > 0 and vitals["n_ctx"] >= 32 and vitals["n_ctx_train"] == 128
    assert vitals["tokens"] > 0 and vitals["life"] == app.state.mind.life
    assert vitals["limit_in_force"] == (vitals["limit_bytes"] is not None)
    # the energy ledger: this life's CPU seconds, priced by the default board (Pi 4: 0.925 W per busy core)
    assert vitals["energy_model"] == "pi4" and vitals["cpu_seconds"] > 0
    assert vitals["cpu_joules"] == pytest.approx(vitals["cpu_seconds"] * 0.925, abs=0.002)
    assert detail["cpu_source"] in ("cgroup", "process") and detail["board_joules"] > detail["cpu_joules"]


def test_vitals_name_every_cost_of_the_memory_model_and_predict_from_them(script_file, tmp_path):
    # A v2 memory cgroup of our own making: 100 MiB used of a 200 MiB limit.
    for name, text in {
        "cgroup.controllers": "memory",
        "memory.current": str(100 << 20),
        "memory.max": str(200 << 20),
    }.items():
        (tmp_path / name).write_text(text + "\n")
    memory = CgroupMemory(tmp_path, proc_cgroup="0::/\n")
    src = ScriptedSource(
        script_file,
        rate=50.0,
        n_ctx_start=32,
        n_ctx_step=32,
        n_ctx_train=4096,
        kv_bytes_per_token=1 << 16,
        base_bytes=50 << 20,
    )
    app = create_app(
        settings(scripted_n_ctx_train=4096, tokens_per_s=4.0), src, memory=memory, on_fatal=lambda code: None
    )
    with serve(app) as url:
        wait_until(lambda: app.state.mind.thinker.state == "thinking")
        detail = httpx.get(url + "/vitals").json()
    costs = Costs.from_mapping(detail)  # what scripts/lifespan reads back from a saved /vitals
    assert costs == Costs(base_bytes=50 << 20, kv_bytes_per_token=1 << 16, state_bytes_per_token=1 << 16)
    plan = Plan(detail["n_ctx"], detail["growth_step"], detail["n_ctx_train"], detail["prompt_tokens"])
    assert detail["limit_bytes"] == 200 << 20
    assert detail["tokens_left"] == predict_tokens_left(costs, plan, 200 << 20, detail["tokens"]) > 0
    # and in minutes at the breath's pace (4 tokens/s)
    assert detail["minutes_left"] == round(detail["tokens_left"] / 4.0 / 60, 1)


def test_context_grows_then_shifts_and_vitals_say_so(script_file):
    app = app_with(script_file, scripted_rate=0.0)
    with serve(app) as url:
        v = wait_until(lambda: (lambda v: v if v["shifting"] else None)(httpx.get(url + "/vitals").json()))
    assert v["n_ctx"] == 128 and v["growths"] == 3


def test_health_is_503_while_loading_and_200_when_thinking(script_file):
    release = threading.Event()

    class SlowSource(ScriptedSource):
        def load(self):
            release.wait(20)
            super().load()

    app = create_app(settings(), SlowSource(script_file, rate=100.0), on_fatal=lambda c: None)
    with serve(app) as url:
        assert httpx.get(url + "/health").status_code == 503
        release.set()
        wait_until(lambda: httpx.get(url + "/health").status_code == 200)


def test_metrics_are_prometheus_text(script_file):
    app = app_with(script_file)
    with serve(app) as url:
        wait_until(lambda: app.state.mind.thinker.tokens > 5)
        r = httpx.get(url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    lines = [line for line in r.text.splitlines() if line and not line.startswith("#")]
    values = dict(line.rsplit(" ", 1) for line in lines)
    assert float(values["mind_tokens_total"]) > 5
    assert float(values["mind_cpu_seconds_total"]) > 0
    assert float(values["mind_cpu_joules_total"]) == pytest.approx(
        float(values["mind_cpu_seconds_total"]) * 0.925, abs=0.01
    )
    assert float(values["mind_born_at_seconds"]) == app.state.mind.vitals_detail()["born_at"]
    assert all(name.replace("_", "").isalnum() for name in values)  # no labels: no series per life
    assert app.state.mind.life not in r.text


def test_many_subscribers_see_the_same_thoughts(script_file):
    app = app_with(script_file)
    results = [None] * 6
    with serve(app) as url:

        def reader(i):
            results[i] = read_events(url, 30, kinds=("token",), headers={"Last-Event-ID": f"{app.state.mind.life}:0"})

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(6)]
        [t.start() for t in threads]
        [t.join(30) for t in threads]
    texts = [[d["text"] for _, _, d in r] for r in results]
    assert all(t == texts[0] for t in texts) and len(texts[0]) == 30


def _never_reading_subscriber(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fill up quickly
    s.connect((host, int(port)))
    s.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    return s


def test_a_subscriber_that_never_reads_neither_stalls_thinking_nor_other_subscribers(script_file):
    app = app_with(script_file, scripted_rate=400.0, replay_events=64, send_timeout_s=1.0)
    mind = app.state.mind
    with serve(app) as url:
        wait_until(lambda: mind.thinker.state == "thinking")
        stuck = _never_reading_subscriber(url)
        try:
            wait_until(lambda: mind.broadcaster.subscribers == 1)
            t0, n0 = time.monotonic(), mind.thinker.tokens
            events = read_events(url, 800, kinds=("token",))  # two seconds of thought
            rate = (mind.thinker.tokens - n0) / (time.monotonic() - t0)
            seqs = [d["seq"] for _, _, d in events]
            assert seqs == list(range(seqs[0], seqs[0] + 800))
            assert rate > 0.6 * 400  # a stall would be near zero; the margin is for a noisy machine
            # What the mind holds for the stuck one is a cursor into a bounded ring.
            assert len(mind.broadcaster._ring) <= 64
        finally:
            stuck.close()


def test_a_subscriber_left_behind_by_the_ring_is_disconnected_not_waited_for(script_file):
    app = app_with(script_file, scripted_rate=0.0, replay_events=64, send_timeout_s=30.0)
    mind = app.state.mind
    with serve(app) as url:
        wait_until(lambda: mind.thinker.state == "thinking")
        stuck = _never_reading_subscriber(url)
        try:
            n0 = mind.thinker.tokens
            wait_until(lambda: mind.broadcaster.dropped >= 1, timeout=20)
            n1 = mind.thinker.tokens
            assert n1 - n0 > 64  # it was dropped for falling behind the ring, while the mind went on
            wait_until(lambda: mind.thinker.tokens > n1 + 1000)
            assert mind.broadcaster.subscribers == 0
        finally:
            stuck.close()


def test_a_last_event_id_this_life_never_sent_gets_the_birth_and_the_replay(script_file):
    # Ahead of the newest event, or digits that are not ASCII ("²" made int() raise, "١٢" read as 12):
    # an unknown id, so the client starts from the birth instead of waiting silently or failing.
    app = app_with(script_file)
    life = app.state.mind.life
    with serve(app) as url:
        wait_until(lambda: app.state.mind.thinker.seq >= 20)
        for n in ("999999", "99999999999999999999999", "²", "١٢", "1٢"):
            header = f"{life}:{n}".encode()  # as raw bytes: the server reads them as Latin-1
            events = read_events(url, 3, headers={"Last-Event-ID": header}, kinds=("birth", "token"), timeout=5)
            assert events[0][0] == "birth", n
            assert [d["seq"] for _, _, d in events[1:]] == [0, 1], n
        caught_up = f"{life}:{app.state.mind.broadcaster._n}"  # the newest id is known: resume after it
        (event,) = read_events(url, 1, headers={"Last-Event-ID": caught_up}, kinds=("birth", "token"), timeout=5)
    assert event[0] == "token" and int(event[1].split(":")[1]) > int(caught_up.split(":")[1])


def test_vitals_never_say_thinking_without_the_context(script_file):
    # The thinker starts thinking while /vitals is being answered (here: as the CPU is read, after the
    # context was judged absent). The answer is of one moment: "loading" with no context, never
    # "thinking" with none (latent lifespan predict took that for a measured mind and failed on it).
    app = app_with(script_file)
    mind = app.state.mind
    mind.source.load()
    assert mind.thinker.state == "loading"
    read_cpu = mind.cpu.life_seconds

    def thinking_begins():
        mind.thinker.state = "thinking"
        return read_cpu()

    mind.cpu.life_seconds = thinking_begins
    v = mind.vitals_detail()
    assert (v["state"], v["n_ctx"]) == ("loading", None), v
    mind.cpu.life_seconds = read_cpu
    v = mind.vitals_detail()
    assert v["state"] == "thinking" and v["n_ctx"] == 32 and v["prompt_tokens"] is not None, v
