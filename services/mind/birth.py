"""What a life needs before its web surface exists: the weights already loading, a memory probe, and
a source that reads its prompt while the web stack is imported.

A resurrection lasts as long as the model load and everything before it. So ``python -m mind``
starts reading the weights first, then parses its settings, makes the source (which reads the prompt
on its own thread) and only then imports FastAPI and uvicorn. llama.cpp's C calls release the GIL,
so Python's start-up runs beside them. This module imports neither pydantic nor the web stack."""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mind.cgroup import CgroupMemory, rss_bytes
from mind.frames import Birth, FrameError
from mind.modelfile import check_gguf
from mind.sources import Background, ContextInfo, ScriptedSource, SourceError, TokenSource

if TYPE_CHECKING:
    from mind.llama.engine import ModelPreload
    from mind.settings import MindSettings

log = logging.getLogger(__name__)


def import_llama_bindings() -> None:
    """Import llama_cpp's ctypes bindings without the package's ``__init__``, which also imports its
    high-level API (numpy, jinja2, ...): a third of a second of every resurrection on a small
    machine, for code the mind never calls. Only for the mind's own process: anything else that
    imports llama_cpp there finds the package without that API. Raises ImportError."""
    if "llama_cpp" not in sys.modules:
        spec = importlib.util.find_spec("llama_cpp")
        if spec is None:
            raise ImportError("No module named 'llama_cpp'")
        sys.modules["llama_cpp"] = importlib.util.module_from_spec(spec)  # the package, __init__ not run
    importlib.import_module("llama_cpp.llama_cpp")


def preload_model(environ: Mapping[str, str]) -> ModelPreload | None:
    """Start reading the weights now. The settings are not parsed yet (pydantic alone takes longer than
    everything before the load), so this reads the two variables it needs from the environment as
    MindSettings would (names in any case, empty means unset); the source checks the guess against
    the parsed settings and loads again if they disagree. None if there is nothing to preload."""
    env = {key.upper(): value for key, value in environ.items() if value}
    if env.get("MIND_SOURCE", "model") != "model":
        return None
    try:
        import_llama_bindings()
        from mind.llama.engine import ModelPreload

        return ModelPreload(env.get("MIND_MODEL_PATH"))
    except Exception:  # noqa: BLE001 - the source meets it again, once logging and settings are in place
        return None


def make_memory_probe(memory: CgroupMemory) -> Callable[[], int | None]:
    """Memory as the kernel will judge it: the cgroup if there is one, else this process's RSS."""

    def probe() -> int | None:
        value = memory.read().memory_bytes
        return value if value is not None else rss_bytes()

    return probe


def begin_life(settings: MindSettings) -> Birth:
    """This life's frame (the lottery's draw) and number. Raises SourceError: a frame that names a fact
    the mind cannot fill is a configuration error, said at startup, never a guess on the wall."""
    try:
        return Birth.begin(
            settings.prompt,
            settings.senses,
            settings.state_dir,
            limit=lambda: CgroupMemory(settings.cgroup_root).read().limit_bytes,
        )
    except FrameError as exc:
        raise SourceError(str(exc)) from exc


def make_source(
    settings: MindSettings, probe: Callable[[], int | None], preload: ModelPreload | None = None
) -> TokenSource:
    birth = begin_life(settings)
    if settings.source == "scripted":
        if preload is not None:
            preload.discard()
        from mind.settings import PROMPTS_DIR  # already imported with the settings themselves

        path = Path(settings.script_path) if settings.script_path else PROMPTS_DIR / "transcript.txt"
        return ScriptedSource(
            path,
            rate=settings.scripted_rate,
            n_ctx_start=settings.n_ctx_start,
            n_ctx_step=settings.n_ctx_step,
            n_ctx_train=settings.n_ctx_max or settings.scripted_n_ctx_train,
            kv_bytes_per_token=settings.scripted_kv_bytes_per_token,
            base_bytes=probe(),
            birth=birth,
        )
    if settings.model_path:
        check_gguf(Path(settings.model_path))  # fail fast, before llama_cpp is even imported
    try:
        from mind.llama.source import LlamaSource  # lazy: the scripted source needs no llama_cpp
    except ImportError as exc:
        raise SourceError(f"llama-cpp-python is not installed: {exc}") from exc

    return LlamaSource.from_settings(settings, probe, preload, birth)


class PreloadedSource:
    """``source`` with its ``load()`` already running on a thread of its own from construction on.
    ``load()`` waits for that and raises what it raised; everything else is ``source`` itself, used by
    the thinker's thread only after the join."""

    def __init__(self, source: TokenSource) -> None:
        self.source = source
        self._load = Background(source.load, "mind-preload")

    @property
    def loaded(self) -> bool:
        """True once the load has ended (well or not)."""
        return self._load.done

    @property
    def name(self) -> str:
        return self.source.name

    def load(self) -> None:
        self._load.result()

    def next_piece(self) -> bytes:
        return self.source.next_piece()

    def info(self) -> ContextInfo:
        return self.source.info()

    def close(self) -> None:
        self._load.wait()
        self.source.close()

    def __getattr__(self, name: str):  # what else the source offers (its birth, frame, sense, ...)
        return getattr(self.source, name)
