"""A life's first second (mind.birth): the weights load before anything heavy is imported, the prompt is
read while the web stack is imported, and failures end the life as they did before."""

import subprocess
import sys
import threading

import pytest

from mind.birth import PreloadedSource, preload_model
from mind.broadcast import Broadcaster
from mind.sources import EX_CONFIG, EX_SOFTWARE, ContextInfo, SourceError
from mind.thinker import Thinker
from mind_helpers import free_port, mind_env, wait_until

# What `python -m mind` must not have imported when the model load starts (and numpy, jinja2: ever).
HEAVY = ("pydantic", "pydantic_settings", "fastapi", "starlette", "uvicorn", "sse_starlette", "numpy", "jinja2")


class GatedSource:
    """Its load() says when it began and waits for the gate."""

    name = "gated"

    def __init__(self, error: BaseException | None = None):
        self.began = threading.Event()
        self.gate = threading.Event()
        self.error = error
        self.loads = 0
        self.closed = False

    def load(self):
        self.loads += 1
        self.began.set()
        self.gate.wait(10)
        if self.error:
            raise self.error

    def next_piece(self):
        threading.Event().wait(0.01)
        return b" word"

    def info(self):
        return ContextInfo(n_ctx=16, n_ctx_train=16, n_past=0, prompt_tokens=0, growth_step=16, shifting=False)

    def close(self):
        self.closed = True


def test_the_load_begins_at_construction_and_load_waits_for_it():
    src = GatedSource()
    pre = PreloadedSource(src)
    assert src.began.wait(5), "the load did not start on its own"
    assert not pre.loaded
    done = threading.Event()
    threading.Thread(target=lambda: (pre.load(), done.set()), daemon=True).start()
    assert not done.wait(0.2), "load() returned before the source had loaded"
    src.gate.set()
    assert done.wait(5)
    assert pre.loaded and src.loads == 1 and pre.name == "gated"
    pre.close()
    assert src.closed


@pytest.mark.parametrize(
    "error, code", [(SourceError("model file not found"), EX_CONFIG), (MemoryError("no room"), EX_SOFTWARE)]
)
def test_a_failed_preload_is_fatal_to_the_thinker_as_before(error, code):
    src = GatedSource(error)
    src.gate.set()
    codes = []
    t = Thinker(PreloadedSource(src), Broadcaster("x"), birth_data=dict, on_fatal=codes.append)
    t.start()
    wait_until(lambda: codes)
    assert codes == [code] and t.state == "failed"


def test_nothing_is_preloaded_for_the_scripted_source_whatever_the_case_of_the_name():
    assert preload_model({"MIND_SOURCE": "scripted"}) is None
    assert preload_model({"mind_source": "scripted", "MIND_MODEL_PATH": "/nowhere.gguf"}) is None


def test_a_preload_of_a_corrupt_model_raises_when_taken_and_a_changed_path_loads_again(tmp_path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed in this environment")
    bad = tmp_path / "corrupt.gguf"
    bad.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    preload = preload_model({"MIND_MODEL_PATH": str(bad), "MIND_SOURCE": ""})  # empty means unset
    assert preload is not None and preload.model_path == str(bad)
    with pytest.raises(SourceError, match="corrupt"):
        preload.take(str(bad))
    # Settings that name another file than the environment did: the preload is not used.
    other = preload_model({"mind_model_path": str(bad)})
    assert other is not None and other.model_path == str(bad)
    assert other.take(str(tmp_path / "other.gguf")) is None


def run_probe(env_extra: dict, until: str, spy: str, timeout: float) -> str:
    """Run `python -m mind` with a logging spy that, at each message starting with one of `spy`'s
    |-separated prefixes, prints which HEAVY modules are imported; stop once `until` is logged."""
    probe = (
        "import logging, runpy, sys\n"
        f"HEAVY, SPY = {HEAVY!r}, {tuple(spy.split('|'))!r}\n"
        "class Spy(logging.Handler):\n"
        "    def emit(self, record):\n"
        "        msg = record.getMessage()\n"
        "        for prefix in SPY:\n"
        "            if msg.startswith(prefix):\n"
        "                print('SPY', prefix, sorted(m for m in HEAVY if m in sys.modules), flush=True)\n"
        "logging.getLogger('mind').addHandler(Spy())  # the root stays for basicConfig\n"
        "runpy.run_module('mind', run_name='__main__')\n"
    )
    port = free_port()
    env = mind_env(MIND_PORT=str(port), MIND_HOST="127.0.0.1", **env_extra)
    proc = subprocess.Popen(
        [sys.executable, "-c", probe], env=env, cwd="/tmp", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        wait_until(lambda: any(until in line for line in lines) or proc.poll() is not None, timeout=timeout)
    finally:
        proc.kill()
        proc.wait(10)
        reader.join(5)
    return "".join(lines)


def test_python_m_mind_makes_the_source_load_before_importing_the_web_stack(script_file):
    out = run_probe(
        {"MIND_SOURCE": "scripted", "MIND_SCRIPT_PATH": str(script_file)},
        until="web surface ready",
        spy="web surface ready",
        timeout=60,
    )
    # The scripted source loads at once on its own thread: done before uvicorn and FastAPI were.
    assert "web surface ready; model loaded" in out, out
    assert "'fastapi'" in out.split("SPY web surface ready")[1].splitlines()[0], out


@pytest.mark.model
def test_python_m_mind_loads_the_weights_before_any_heavy_import_and_never_imports_numpy():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed in this environment")
    out = run_probe({"MIND_N_THREADS": "1"}, until="prompt read", spy="loading model|prompt read", timeout=300)
    assert "SPY loading model []" in out, out
    read = next(line for line in out.splitlines() if line.startswith("SPY prompt read"))
    assert "numpy" not in read and "jinja2" not in read and "fastapi" in read, out
    # the web surface was up while the weights were still loading, in any order with the load's end
    assert out.index("SPY loading model") < out.index("web surface ready"), out
