"""The display's settings: one class, every field from the environment with the DISPLAY_ prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DisplaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DISPLAY_", extra="ignore")

    # upstream
    mind_url: str = Field("http://mind:8000", description="Base URL of the mind; its SSE stream is GET {mind_url}/stream.")
    read_timeout_s: float = Field(45.0, gt=0, description="A stream silent this long (no event, no ping) counts as broken; 3x the mind's ping interval.")
    connect_timeout_s: float = Field(2.0, gt=0, description="Seconds to wait for the mind to accept a connection.")
    reconnect_initial_s: float = Field(0.1, gt=0, description="First delay before reconnecting after the stream ends or fails.")
    reconnect_max_s: float = Field(2.0, gt=0, description="Upper bound of the doubling reconnect delay; the display retries forever.")
    max_line_bytes: int = Field(65536, ge=1024, description="An SSE line longer than this is dropped (and its event skipped).")

    # web mirror
    host: str = Field("0.0.0.0", description="Address the web mirror listens on.")
    port: int = Field(8080, description="Port the web mirror listens on.")
    viewer_queue: int = Field(64, ge=1, description="Frames buffered per mirror viewer; a viewer that falls this far behind is dropped.")
    max_viewers: int = Field(500, ge=1, description="Mirror viewers served at once; more are refused with 503.")
    ping_s: float = Field(15.0, gt=0, description="Seconds between keep-alive comments on the mirror's frame stream.")

    # grid and pacing
    rows: int = Field(6, ge=1, le=64, description="Rows of cells on the wall.")
    cols: int = Field(16, ge=1, le=256, description="Cells per row on the wall.")
    pacing: bool = Field(True, description="Typewriter pacing; off shows every token as soon as it arrives.")
    pacing_rate: float = Field(16.0, gt=0, description="Characters per second with no backlog.")
    pacing_max_rate: float = Field(30.0, gt=0, description="Characters per second when the backlog is full.")
    pacing_backlog_full: int = Field(96, ge=1, description="Backlog (characters) at which the pace reaches pacing_max_rate.")
    sentence_pause_s: float = Field(0.4, ge=0, description="Extra pause after a sentence end, shrinking as the backlog grows.")
    max_backlog: int = Field(1000, ge=16, description="Backlog bound: beyond it the oldest text is dropped and an ellipsis cell marks the gap.")
    blocklist_path: Optional[Path] = Field(None, description="A word list (one per line, '#' comments, 'prefix*'); its words are masked on the wall, the mirror and the chronicle. Off when unset.")

    # death
    death_style: Literal["fade", "flatline"] = Field("fade", description="How the wall shows a death: segments fade out, or a flat line across the middle row.")
    death_duration_s: float = Field(2.0, ge=0, description="Duration of the death animation; its last picture then stays until the next birth.")

    # SPI panel
    panel: Literal["auto", "none", "shift16", "max6954"] = Field("auto", description="Panel chip: 'shift16' (chained 16-bit shift registers), 'max6954', 'none', or 'auto' (shift16 when the SPI device exists).")
    spi_bus: int = Field(0, ge=0, description="SPI bus number (/dev/spidev<bus>.<device>).")
    spi_device: int = Field(0, ge=0, description="SPI chip-select number.")
    spi_speed_hz: int = Field(4_000_000, gt=0, description="SPI clock in Hz.")
    spi_mode: int = Field(0, ge=0, le=3, description="SPI mode (clock polarity and phase).")
    wiring: list[int] = Field(
        default_factory=lambda: list(range(16)) + [-1],
        description="Output pin of each segment bit A..U, DP (17 entries, -1 = not connected); JSON list.",
    )
    cell_order: Literal["rows", "serpentine"] = Field("rows", description="How the module chain runs through the cells: row by row, or serpentine (every other row right to left).")
    brightness: float = Field(1.0, ge=0, le=1, description="Panel brightness 0..1 (MAX6954 intensity; shift registers dim by PWM on OE, outside SPI).")
    modules_per_board: int = Field(8, ge=1, description="Modules on one board; encoders work per board.")

    # chronicle
    data_dir: Path = Field(Path("/data"), description="Writable volume for the chronicle.")
    chronicle_keep_lives: int = Field(1000, ge=1, description="Lives the chronicle keeps; older ones are deleted.")
    chronicle_max_bytes: int = Field(200_000_000, ge=1, description="Size bound of the chronicle database.")

    log_level: str = Field("INFO", description="Logging level.")

    @field_validator("blocklist_path", mode="before")
    @classmethod
    def _empty_means_none(cls, v):
        return None if v == "" else v  # compose files often pass an unset variable as ""

    @field_validator("wiring")
    @classmethod
    def _wiring_is_a_permutation(cls, v: list[int]) -> list[int]:
        if len(v) != 17:
            raise ValueError("wiring needs 17 entries (A..U, DP)")
        pins = [p for p in v if p >= 0]
        if len(set(pins)) != len(pins) or any(p > 15 for p in pins):
            raise ValueError("wiring pins must be distinct and in 0..15 (or -1)")
        return v
