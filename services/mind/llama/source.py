"""The real source: a GGUF model through llama.cpp (mind.llama.engine).

Memory grows with thought: the mind starts with a small context and, when it fills, saves the
sequence state, creates a larger context and restores the state into it (exact, no re-reading of the
past). By default the larger context is made in the background a few tokens ahead, so thinking pauses
only for the copy. At the largest context it shifts the oldest thoughts out instead."""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import secrets
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

import llama_cpp.llama_cpp as L

from mind.frames import DEFAULT_BANS, Birth, FilledFrame, FrameError
from mind.lifespan import CTX_PAD, PREPARE_LEAD, ContextSettings
from mind.llama.cache import FileCache, model_fingerprint
from mind.llama.engine import (
    ModelPreload,
    SamplerConfig,
    VocabRules,
    build_sampler,
    chat_prompt,
    create_context,
    exact_tokens,
    line_ends,
    load_model,
    number_starts,
    restore_state,
    save_state,
    scan_vocab,
    tokenize,
)
from mind.llama.frame_state import FrameStateCache, Reading, read_plan
from mind.llama.meter import Meter
from mind.sources import Background, ContextInfo, SourceError

if TYPE_CHECKING:  # pydantic is not imported yet when `python -m mind` starts reading the weights
    from mind.settings import MindSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """The next, larger context, being made on a thread of its own beside the current one."""

    n_ctx: int
    before: int | None  # memory before it was begun
    work: Background  # returns (the context or None, memory once it exists)


def model_title(model, path) -> str:
    """The model's own name (GGUF general.name), else its file's name."""
    buf = ctypes.create_string_buffer(256)
    n = L.llama_model_meta_val_str(model, b"general.name", buf, len(buf))
    name = buf.value.decode("utf-8", "replace").strip() if n > 0 else ""
    return name or path.stem


class LlamaSource:
    def __init__(
        self,
        *,
        model_path: str | None,
        prompt_text: str | None = None,
        use_chat: bool = False,
        birth: Birth | None = None,
        bans: tuple[str, ...] = DEFAULT_BANS,
        n_ctx_start: int,
        n_ctx_step: int,
        n_ctx_max: int,
        n_threads: int,
        n_batch: int,
        sampling: SamplerConfig,
        probe: Callable[[], int | None] = lambda: None,
        prepare_ahead: bool = True,
        preload: ModelPreload | None = None,
        cache: FileCache | None = None,
    ) -> None:
        self._model_path = model_path
        self._cache = cache
        self._frames: FrameStateCache | None = None
        self._preload = preload
        if (prompt_text is None) == (birth is None):
            raise ValueError("a source reads either a frame's text or a birth's frame, filled at load")
        self._prompt_text = prompt_text
        self._use_chat = use_chat
        self.birth = birth
        self.frame: FilledFrame | None = None  # the frame as filled at load
        self.bans = bans
        self.rules: VocabRules | None = None
        self.stops_refused = 0  # steps at which ending the thought was the most likely choice
        self._logits_of = None  # the last logits as an array (numpy), for stops_refused
        self._eog_ids = None
        self._np = None  # numpy, once imported (see _watch_stops)
        self.context_settings = ContextSettings(n_ctx_start, n_ctx_step, n_ctx_max)
        padded = self.context_settings.padded()
        if padded != self.context_settings:
            start, step = padded.n_ctx_start, padded.n_ctx_step
            log.warning("llama.cpp sizes contexts in multiples of %d: start %d, step %d", CTX_PAD, start, step)
        self.growth_step = padded.n_ctx_step
        self.n_threads = n_threads
        self.n_batch = n_batch
        # a seed of its own, so a life can say which one it was (birth event)
        self.sampling = sampling if sampling.seed >= 0 else dataclasses.replace(sampling, seed=secrets.randbelow(2**31))
        self.prepare_ahead = prepare_ahead
        self.meter = Meter(probe, old_context_coexists=prepare_ahead)
        self.name = "unloaded"
        self.model = self.vocab = self.ctx = self.sampler = None
        self.n_ctx = self.n_ctx_train = self.n_past = self.prompt_tokens = 0
        self.reading: Reading | None = None  # how the frame was read (how much came from the cache)
        self.shifting = False
        self.growths = 0
        self.growth_pauses: list[float] = []
        self._prepared: Prepared | None = None
        self._history = array("i")  # tokens in the context, for a re-read if the cache cannot shift
        self._pending: int | None = None  # the token sampled last, decoded at the next call
        self._one = (L.llama_token * 1)()
        self._piece = ctypes.create_string_buffer(256)

    @classmethod
    def from_settings(
        cls,
        s: MindSettings,
        probe: Callable[[], int | None],
        preload: ModelPreload | None = None,
        birth: Birth | None = None,
    ) -> LlamaSource:
        if birth is None:
            from mind.birth import begin_life

            birth = begin_life(s)
        return cls(
            model_path=s.model_path,
            birth=birth,
            use_chat=s.use_chat(birth.frame.name),
            bans=s.bans(birth.frame.bans),
            n_ctx_start=s.n_ctx_start,
            n_ctx_step=s.n_ctx_step,
            n_ctx_max=s.n_ctx_max,
            n_threads=s.n_threads,
            n_batch=s.n_batch,
            sampling=SamplerConfig.from_settings(s),
            probe=probe,
            prepare_ahead=s.growth_prepare_ahead,
            preload=preload,
            cache=s.file_cache(),
        )

    # -- life --------------------------------------------------------------------------------------

    def load(self) -> None:
        taken = self._preload.take(self._model_path) if self._preload is not None else None
        self._preload = None
        path, self.model = taken or load_model(self._model_path)
        self.name = path.name
        self.vocab = L.llama_model_get_vocab(self.model)
        scan = Background(lambda: self._vocab_rules(path), "mind-vocab")  # beside the frame's reading

        if self.birth is not None:
            try:
                self.frame = self.birth.fill(model_title(self.model, path), L.llama_model_n_params(self.model))
            except FrameError as exc:
                raise SourceError(str(exc)) from exc
            text = self.frame.text
        else:
            text = self._prompt_text
        chat = None
        if self._use_chat:
            head, opening = FilledFrame("", text).split()
            chat = chat_prompt(self.model, head, opening)
            if chat is None:
                log.warning("the model has no chat template; using the frame as a plain document")
        tokens = tokenize(self.vocab, chat or text, add_special=True, parse_special=chat is not None)
        plan = self.context_settings.plan(
            prompt_tokens=len(tokens), n_ctx_trained=L.llama_model_n_ctx_train(self.model)
        )
        self.prompt_tokens, self.n_ctx_train = plan.prompt_tokens, plan.n_ctx_train
        if self.prompt_tokens + 1 >= self.n_ctx_train:
            raise SourceError(f"the prompt ({self.prompt_tokens} tokens) does not fit the context ({self.n_ctx_train})")

        started = time.monotonic()
        self.meter.weights_loaded()
        self.ctx = self._create_context(plan.n_ctx_start)
        if self.ctx is None:
            raise RuntimeError(f"cannot allocate the first context ({plan.n_ctx_start} tokens)")
        self.n_ctx = L.llama_n_ctx(self.ctx)
        if self._cache is not None:
            self._frames = FrameStateCache(self._cache, path)
        self.reading = reading = self._read_frame(tokens)
        self.rules = rules = scan.result()
        biases = [
            (t, b)
            for text_, b in (self.birth.frame.biases if self.birth else ())
            for t in exact_tokens(self.vocab, text_)
        ]
        self.sampler = build_sampler(
            self.vocab, self.sampling, list(rules.banned), biases, whole_context=self.n_ctx_train
        )
        self.meter.prompt_read(
            n_ctx=self.n_ctx,
            n_past=self.n_past,
            state_size=L.llama_state_seq_get_size(self.ctx, 0),
            swa_window=max(0, L.llama_model_n_swa(self.model)),
        )
        setup_s = time.monotonic() - started - reading.seconds
        # "prompt read" is a milestone of a resurrection (scripts/bench_resurrection.py, which reads
        # the first number too).
        log.info(
            "prompt read: %d tokens in %.3f s (%d restored from the frame cache in %.3f s); context and "
            "sampler %.2f s; model %s, context %d of %d, base memory %s bytes",
            self.prompt_tokens,
            reading.seconds,
            reading.restored,
            reading.restore_seconds,
            setup_s,
            self.name,
            self.n_ctx,
            self.n_ctx_train,
            self.meter.model_bytes,
        )
        self._watch_stops(rules.eog)  # after the milestone: its import is not part of a birth

    def _vocab_rules(self, path) -> VocabRules:
        """What the sampler bans, from the cache if it knows this model and ban list (the scan of the
        vocabulary takes about a second here, longer on a Pi: only a model's first life pays it)."""
        fingerprint = model_fingerprint(path, self._cache, compute=False) if self._cache is not None else None
        if fingerprint is None:  # no cache, or a model whose file is not hashed yet (its first life)
            return scan_vocab(self.vocab, self.bans)
        key = {"model": fingerprint, "what": "vocabulary rules 1", "bans": list(self.bans)}
        cached = self._cache.get("model-tokens", key)
        rules = VocabRules.unpack(cached) if cached is not None else None
        if rules is None:
            rules = scan_vocab(self.vocab, self.bans)
            self._cache.put("model-tokens", key, rules.pack())
        return rules

    def _watch_stops(self, eog: tuple[int, ...], background: bool = True) -> None:
        """Read the logits before the ban applies: numpy finds the best token of 262k in ~0.1 ms.
        numpy (llama_cpp's own dependency) costs a few tenths of a CPU second to import, which a birth
        does not wait for: it is imported on a thread of its own once the frame is read, and the first
        step or two, before it is ready, are not watched."""

        def ready() -> None:
            import numpy as np

            self._n_vocab = L.llama_vocab_n_tokens(self.vocab)
            self._eog_ids = np.array(eog, dtype=np.int64)
            self._np = np  # last: the step loop reads it as "ready"

        if background:
            threading.Thread(target=ready, name="mind-stops", daemon=True).start()
        else:
            ready()

    def _count_refused_stop(self) -> None:
        if self._np is None or self._eog_ids is None or not len(self._eog_ids):
            return
        ptr = L.llama_get_logits_ith(self.ctx, -1)
        if not ptr:
            return
        logits = self._np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))
        if logits[self._eog_ids].max() >= logits.max():
            self.stops_refused += 1

    def close(self) -> None:
        if self._frames is not None:
            self._frames.wait()
        if self._preload is not None:
            self._preload.discard()
            self._preload = None
        if self._prepared is not None:
            ctx, _ = self._prepared.work.result()
            self._prepared = None
            if ctx is not None:
                L.llama_free(ctx)
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
            if self.meter.settling:
                self.meter.settle(self.n_ctx)
        self._count_refused_stop()
        token = L.llama_sampler_sample(self.sampler, self.ctx, -1)
        self._pending = token
        n = L.llama_token_to_piece(self.vocab, token, self._piece, len(self._piece), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = L.llama_token_to_piece(self.vocab, token, buf, -n, 0, False)
            return buf.raw[:n]
        return self._piece.raw[:n]

    def sense(self, text: str) -> int:
        """Write ``text`` (the system's readings, not the model's) into the context after the last token;
        the next piece continues after it. Returns its tokens (they fill memory like any thought)."""
        if self._pending is not None:
            if self.n_past >= self.n_ctx:
                self._make_room()
            self._decode_one(self._pending)
            self._pending = None
        tokens = tokenize(self.vocab, text, add_special=False, parse_special=False)
        if self.n_past + len(tokens) > self.n_ctx:
            self._make_room()
        if self.n_past + len(tokens) <= self.n_ctx and len(tokens) <= self.n_batch:
            self._decode_batch(tokens)  # one decode: a sense costs about one token's time
        else:
            for token in tokens:
                if self.n_past >= self.n_ctx:
                    self._make_room()
                self._decode_one(token)
        self._maybe_prepare()
        return len(tokens)

    @property
    def last_token(self) -> int | None:
        return self._pending

    def info(self) -> ContextInfo:
        return ContextInfo(
            n_ctx=self.n_ctx,
            n_ctx_train=self.n_ctx_train,
            n_past=self.n_past,
            prompt_tokens=self.prompt_tokens,
            growth_step=self.growth_step,
            shifting=self.shifting,
            growths=self.growths,
            last_growth_pause_s=self.growth_pauses[-1] if self.growth_pauses else None,
            max_growth_pause_s=max(self.growth_pauses) if self.growth_pauses else None,
            costs=self.meter.costs(),
            kv_measured=self.meter.kv_measured,
            model_bytes=self.meter.model_bytes,
            growth_peaks=self.meter.growth_peaks,
        )

    # -- context -----------------------------------------------------------------------------------

    def _create_context(self, n_ctx: int):
        """A fresh context of ``n_ctx`` tokens, or None if llama.cpp cannot allocate it."""
        return create_context(self.model, n_ctx, self.n_batch, self.n_threads)

    def _read_frame(self, tokens: list[int]) -> Reading:
        """The frame into the first context, in the batches of its plan (mind.llama.frame_state), from
        the cache as far as it can; its state is kept for the next life if that is worth it."""
        n_batch = L.llama_n_batch(self.ctx)
        plan = read_plan(line_ends(self.vocab, tokens), n_batch, number_starts(self.vocab, tokens))
        started = time.monotonic()
        restored = self._frames.restore(self.ctx, tokens, plan, n_batch) if self._frames is not None else 0
        restore_s = time.monotonic() - started
        self.n_past = restored
        self._history.extend(tokens[:restored])
        for begin, end in pairwise(plan):
            if begin >= restored:
                self._decode_batch(tokens[begin:end])
        reading = Reading(tokens, plan, restored, restore_s, time.monotonic() - started)
        if self._frames is not None:
            self._frames.keep_if_worth_it(self.ctx, reading, n_batch)
        return reading

    def _decode(self, tokens: list[int]) -> None:
        for i in range(0, len(tokens), self.n_batch):
            self._decode_batch(tokens[i : i + self.n_batch])

    def _decode_batch(self, chunk: list[int]) -> None:
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
            self._grow(min(self.n_ctx + self.growth_step, self.n_ctx_train))
        if self.n_past >= self.n_ctx:
            self._shift()

    def _maybe_prepare(self) -> None:
        """A few tokens before the context is full, start creating the larger one in another thread
        (allocating and zeroing it is most of a growth's cost), so thinking pauses only for the copy."""
        if (
            self.prepare_ahead
            and self._prepared is None
            and self.n_ctx < self.n_ctx_train
            and self.n_past >= self.n_ctx - PREPARE_LEAD
        ):
            n_new = min(self.n_ctx + self.growth_step, self.n_ctx_train)

            def make() -> tuple[object, int | None]:
                started = time.perf_counter()
                ctx = self._create_context(n_new)
                log.info("made the context of %d tokens in %.2f s", n_new, time.perf_counter() - started)
                return ctx, self.meter.read()  # what a fresh context of n_new tokens really costs

            # Logged with "made" and "context grew": a life that dies at its limit ends after the step it
            # died in (making the larger context, or copying its state over at the growth).
            log.info("making the context of %d tokens ahead of its growth, at position %d", n_new, self.n_past)
            self._prepared = Prepared(n_new, self.meter.read(), Background(make, "mind-grow"))

    def _grow(self, n_new: int) -> None:
        n_old = self.n_ctx
        prepared, self._prepared = self._prepared, None
        if prepared is not None:
            n_new = prepared.n_ctx
            new_ctx, after = prepared.work.result()
            if new_ctx is None:
                self._cannot_grow(n_new, n_old)
                return
            before = prepared.before
            self.meter.context_made(n_new, before, after)
        else:
            new_ctx, before = None, self.meter.read()
        t0 = time.perf_counter()
        state = save_state(self.ctx)
        # The peak the memory model describes, read as it happens (a file read: some microseconds).
        peak = self.meter.read() if new_ctx is not None else None
        # Unless the new context exists already, free the old one first: the two never coexist, only
        # the saved state and the new one.
        L.llama_free(self.ctx)
        self.ctx = new_ctx or self._create_context(n_new)
        if self.ctx is None:
            self.ctx = self._create_context(n_old)
            if self.ctx is None:
                raise RuntimeError(f"cannot even recreate the context of {n_old} tokens")
            self._cannot_grow(n_new, n_old)
        restore_state(self.ctx, state)
        if peak is None:
            peak = self.meter.read()
        pause = time.perf_counter() - t0
        saved = len(state)
        del state
        self.n_ctx = L.llama_n_ctx(self.ctx)
        if self.n_ctx == n_old:
            return
        self.growths += 1
        self.growth_pauses.append(pause)
        self.meter.grown(n_old=n_old, before=before, state_size=saved, n_past=self.n_past, peak=peak)
        log.info(
            "context grew %d -> %d tokens; thinking paused %.1f ms (saved state %d bytes)",
            n_old,
            self.n_ctx,
            pause * 1000,
            saved,
        )

    def _cannot_grow(self, n_new: int, n_old: int) -> None:
        log.error(
            "cannot allocate a context of %d tokens: the mind stays at %d tokens and will shift "
            "old thoughts out from now on",
            n_new,
            n_old,
        )
        self.n_ctx_train = n_old

    def _shift(self) -> None:
        n_keep = self.prompt_tokens
        n_discard = (self.n_past - n_keep) // 2
        mem = L.llama_get_memory(self.ctx)
        if not self.shifting:
            log.info("context is at its largest (%d tokens): the oldest thoughts now shift out", self.n_ctx)
        self.shifting = True
        del self._history[n_keep : n_keep + n_discard]
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
