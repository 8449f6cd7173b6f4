"""``python -m mind`` as the display's tests and the container run it."""

import json
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from httpx_sse import connect_sse

from mind_helpers import free_port, mind_env, read_events, wait_until


def start(env_extra: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mind"],
        env=mind_env(**env_extra),
        cwd="/tmp",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def health(url):
    try:
        return httpx.get(url + "/health", timeout=2).status_code
    except httpx.TransportError:
        return None


def test_scripted_mind_dies_by_kill_9_and_comes_back_as_a_new_life():
    port = free_port()
    env = {"MIND_SOURCE": "scripted", "MIND_PORT": str(port), "MIND_HOST": "127.0.0.1", "MIND_SCRIPTED_RATE": "50"}
    url = f"http://127.0.0.1:{port}"
    lives = []
    for _ in range(2):
        proc = start(env)
        try:
            wait_until(lambda: health(url) == 200, timeout=30)
            events = read_events(url, 5, kinds=("birth", "token"))
            assert events[0][0] == "birth"
            lives.append(events[0][2]["life"])
            assert "".join(d["text"] for _, _, d in events[1:]).strip()  # the transcript frame, word by word
        finally:
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(10) == -signal.SIGKILL
    assert lives[0] != lives[1]


def test_a_missing_model_exits_with_ex_config_and_says_why(tmp_path):
    proc = start(
        {
            "MIND_SOURCE": "model",
            "MIND_MODEL_PATH": str(tmp_path / "absent.gguf"),
            "MIND_PORT": str(free_port()),
            "MIND_HOST": "127.0.0.1",
        }
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 78, out
    assert "absent.gguf" in out and "ERROR" in out


def test_a_file_that_is_not_gguf_exits_with_ex_config(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"<html>not a model</html>")
    proc = start(
        {"MIND_SOURCE": "model", "MIND_MODEL_PATH": str(bad), "MIND_PORT": str(free_port()), "MIND_HOST": "127.0.0.1"}
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 78, out
    assert "not GGUF" in out or "not installed" in out


def test_a_corrupt_gguf_exits_with_ex_config(tmp_path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed in this environment")
    bad = tmp_path / "corrupt.gguf"
    bad.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    proc = start(
        {"MIND_SOURCE": "model", "MIND_MODEL_PATH": str(bad), "MIND_PORT": str(free_port()), "MIND_HOST": "127.0.0.1"}
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 78, out
    assert "corrupt" in out


def test_sigterm_announces_the_death_to_a_follower_then_exits_with_the_status_it_announced():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(
        {"MIND_SOURCE": "scripted", "MIND_PORT": str(port), "MIND_HOST": "127.0.0.1", "MIND_SCRIPTED_RATE": "50"}
    )
    events, ended = [], threading.Event()

    def follow():
        with httpx.Client(timeout=30) as client, connect_sse(client, "GET", url + "/stream") as source:
            for sse in source.iter_sse():
                if sse.data:
                    events.append((sse.event, json.loads(sse.data)))
        ended.set()  # the mind closed the stream: it did not break

    try:
        wait_until(lambda: health(url) == 200, timeout=30)
        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        wait_until(lambda: sum(kind == "token" for kind, _ in events) >= 20)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code = proc.wait(15)
        took = time.monotonic() - sent
        out = proc.stdout.read()
        assert ended.wait(5), "the stream did not end"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "birth" and kinds[-1] == "death" and kinds.count("death") == 1, kinds[-5:]
    death = events[-1][1]
    tokens = [data for kind, data in events if kind == "token"]
    assert death == {
        "life": events[0][1]["life"],
        "cause": "stopped",
        "exit_code": code,
        "reason": "signal",
        "tokens": tokens[-1]["seq"] + 1,
    }
    assert code == 0 and took < 5, (code, took, out)
    assert f"ends: stopped (signal) after {death['tokens']} tokens; exit status 0" in out


def test_sigterm_with_a_subscriber_that_never_reads_still_exits_promptly():
    # The grace is bounded: a stuck subscriber cannot hold the mind past docker stop's 10 s (whose SIGKILL
    # would end it with another status than the one it announced).
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(
        {
            "MIND_SOURCE": "scripted",
            "MIND_PORT": str(port),
            "MIND_HOST": "127.0.0.1",
            "MIND_SCRIPTED_RATE": "0",  # as fast as it can: the socket's buffers fill at once
            "MIND_TOKENS_PER_S": "0",  # the breath (#10) too
            "MIND_REPLAY_EVENTS": "10000000",  # and the subscriber is never dropped for falling behind
        }
    )
    stuck = socket.socket()
    try:
        wait_until(lambda: health(url) == 200, timeout=30)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", port))
        stuck.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        time.sleep(2)
        assert httpx.get(url + "/vitals", timeout=5).json()["subscribers"] == 1  # stuck, and still there
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code = proc.wait(15)
        took = time.monotonic() - sent
    finally:
        stuck.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    out = proc.stdout.read()
    # about 5 s here: the grace (1 s, the subscriber never takes the death) and uvicorn's bounded wait (3 s)
    assert code == 0 and took < 8, (code, took, out)
    assert "ends: stopped (signal)" in out
    print(f"SIGTERM to exit with a stuck subscriber: {took:.2f} s")
