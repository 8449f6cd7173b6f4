"""``python -m mind`` as the display's tests and the container run it."""
import signal
import subprocess
import sys

import httpx
import pytest

from mind_helpers import free_port, mind_env, read_events, wait_until


def start(env_extra: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mind"], env=mind_env(**env_extra), cwd="/tmp",
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


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
    proc = start({"MIND_SOURCE": "model", "MIND_MODEL_PATH": str(tmp_path / "absent.gguf"),
                  "MIND_PORT": str(free_port()), "MIND_HOST": "127.0.0.1"})
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 78, out
    assert "absent.gguf" in out and "ERROR" in out


def test_a_file_that_is_not_gguf_exits_with_ex_config(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"<html>not a model</html>")
    proc = start({"MIND_SOURCE": "model", "MIND_MODEL_PATH": str(bad), "MIND_PORT": str(free_port()),
                  "MIND_HOST": "127.0.0.1"})
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 78, out
    assert "not GGUF" in out or "not installed" in out


def test_a_corrupt_gguf_exits_with_ex_config(tmp_path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed in this environment")
    bad = tmp_path / "corrupt.gguf"
    bad.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    proc = start({"MIND_SOURCE": "model", "MIND_MODEL_PATH": str(bad), "MIND_PORT": str(free_port()),
                  "MIND_HOST": "127.0.0.1"})
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 78, out
    assert "corrupt" in out
