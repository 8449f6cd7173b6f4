"""The display's settings: one class, every field from the environment with the DISPLAY_ prefix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class DisplaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DISPLAY_", extra="ignore")

    # upstream
    mind_url: str = Field(
        "http://mind:8000", description="Base URL of the mind; its SSE stream is GET {mind_url}/stream."
    )
    read_timeout_s: float = Field(
        45.0,
        gt=0,
        description="A stream silent this long (no event, no ping) counts as broken; 3x the mind's ping interval.",
    )
    connect_timeout_s: float = Field(2.0, gt=0, description="Seconds to wait for the mind to accept a connection.")
    reconnect_initial_s: float = Field(
        0.1, gt=0, description="First delay before reconnecting after the stream ends or fails."
    )
    reconnect_max_s: float = Field(
        0.25,
        gt=0,
        description="Upper bound of the doubling reconnect delay; the display retries forever. A resurrection "
        "takes about two seconds: looking four times a second keeps the new life's first word from waiting "
        "on a doubled delay (a refused connection costs nothing).",
    )
    health_interval_s: float = Field(
        1.0,
        gt=0,
        description="Seconds between questions to the mind's /health while its stream is open and no life shows "
        "(the answer tells the mirror whether the mind is loading its model).",
    )
    max_line_bytes: int = Field(
        65536, ge=1024, description="An SSE line longer than this is dropped (and its event skipped)."
    )

    # web mirror
    host: str = Field("0.0.0.0", description="Address the web mirror listens on.")
    port: int = Field(8080, description="Port the web mirror listens on.")
    viewer_queue: int = Field(
        64, ge=1, description="Frames buffered per mirror viewer; a viewer that falls this far behind is dropped."
    )
    max_viewers: int = Field(500, ge=1, description="Mirror viewers served at once; more are refused with 503.")
    ping_s: float = Field(15.0, gt=0, description="Seconds between keep-alive comments on the mirror's frame stream.")

    # grid and pacing
    rows: int = Field(6, ge=1, le=64, description="Rows of cells on the wall.")
    cols: int = Field(16, ge=1, le=256, description="Cells per row on the wall.")
    pacing: bool = Field(True, description="Typewriter pacing; off shows every token as soon as it arrives.")
    senses_on_wall: bool = Field(
        True,
        description="Show the mind's readings (sense events: memory, words, age, written by the system at paragraph "
        "ends, in square brackets) on the wall as well as on the mirror, where they are in a colour of their own; "
        "false keeps the wall to the model's words.",
    )
    pacing_rate: float = Field(16.0, gt=0, description="Characters per second with no backlog.")
    pacing_max_rate: float = Field(30.0, gt=0, description="Characters per second when the backlog is full.")
    pacing_backlog_full: int = Field(
        96, ge=1, description="Backlog (characters) at which the pace reaches pacing_max_rate."
    )
    sentence_pause_s: float = Field(
        0.4, ge=0, description="Extra pause after a sentence end, shrinking as the backlog grows."
    )
    max_backlog: int = Field(
        1000,
        ge=16,
        description="Backlog bound: beyond it the oldest text is dropped and an ellipsis cell marks the gap.",
    )
    blocklist_path: Path | None = Field(
        None,
        description="A word list (one per line, '#' comments, 'prefix*'); its words are masked on the wall, "
        "the mirror and the chronicle. Off when unset.",
    )

    # death
    death_style: Literal["fade", "flatline"] = Field(
        "fade", description="How the wall shows a death: segments fade out, or a flat line across the middle row."
    )
    death_duration_s: float = Field(
        2.0, ge=0, description="Duration of the death animation; its last picture then stays until the next birth."
    )

    # the LED wall (the panel); "" from compose means the default
    panel: Literal["auto", "none", "shift16", "max6954", "ht16k33"] = Field(
        "auto",
        description="Panel chip: 'shift16' (chained 16-bit shift registers, SPI), 'max6954' (SPI, experimental), "
        "'ht16k33' (I2C, 8 digits per chip), 'none', or 'auto' (shift16 when the SPI device exists).",
    )
    spi_bus: int = Field(0, ge=0, description="SPI bus number (/dev/spidev<bus>.<device>).")
    spi_device: int = Field(0, ge=0, description="SPI chip-select number.")
    spi_speed_hz: int = Field(4_000_000, gt=0, description="SPI clock in Hz (the MAX6954 takes up to 26 MHz).")
    spi_mode: int = Field(0, ge=0, le=3, description="SPI mode (clock polarity and phase).")
    wiring: Annotated[list[int] | None, NoDecode] = Field(
        None,
        description="Output pin of each segment A..U, DP (17 entries, -1 = not connected), as a JSON or comma-"
        "separated list; unset = the panel's own default. scripts/wall-test helps find it.",
    )
    cell_order: Literal["rows", "serpentine"] = Field(
        "rows",
        description="How the module chain runs through the cells: row by row, or serpentine (every other row "
        "right to left).",
    )
    brightness: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Panel brightness 0..1: 16 intensity steps on the MAX6954 and HT16K33; fixed by the "
        "current-set resistor on shift16.",
    )
    modules_per_board: int = Field(
        8,
        ge=1,
        description="Modules on one board; on the MAX6954 and HT16K33, digits used per chip (at most 8).",
    )
    refresh_s: float = Field(
        2.0,
        ge=0,
        description="Seconds between re-sends of the chip configuration and the current frame, so a chip that "
        "reset heals by itself; 0 = never.",
    )
    letter_case: Literal["upper", "as-written"] = Field(
        "upper",
        description="Letters on the wall and the mirror: 'upper' (capitals read best on sixteen segments) or "
        "'as-written'. The chronicle always keeps the text as written.",
    )
    gpio_chip: str = Field("/dev/gpiochip0", description="GPIO character device of the /OE line (shift16).")
    oe_gpio: int | None = Field(
        18,
        ge=0,
        description="GPIO line driving the shift registers' /OE, so the wall stays dark until the first frame "
        "is latched and goes dark at shutdown; 'off' = not driven (/OE tied low).",
    )
    oe_lit_level: Literal["high", "low"] = Field(
        "high",
        description="The GPIO level that lets the LEDs light (README: 'high' with the 74AHCT125 circuit).",
    )
    i2c_buses: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [1],
        description="I2C bus numbers (/dev/i2c-N) in chain order; the next bus takes over when one's addresses "
        "are used up.",
    )
    i2c_addresses: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: list(range(0x70, 0x78)),
        description="HT16K33 addresses used on each bus (or each multiplexer channel), in chain order.",
    )
    i2c_mux_address: int | None = Field(
        None,
        description="Address of a TCA9548A multiplexer (e.g. 0x77) on each bus; unset or 'off' = none.",
    )
    i2c_mux_channels: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [0, 1],
        description="Multiplexer channels used, in chain order.",
    )

    # the energy ledger (display.core.energy): what lighting the wall costs, estimated from the frames shown
    segment_ma: float = Field(
        10.0,
        ge=0,
        description="Current through one lit segment while it is driven, in mA (shift16: what the current-set "
        "resistor gives; multiplexed chips: the peak segment current). 10 mA is a common LED drive.",
    )
    supply_v: float = Field(5.0, gt=0, description="The wall's supply voltage, in volts.")
    segment_duty: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Share of the time a lit segment is driven; unset = from the panel: 1 for shift16 (static "
        "drive), 1/8 × the 16-step brightness for HT16K33 and MAX6954 (eight digits multiplexed).",
    )
    grid_g_per_kwh: float | None = Field(
        None,
        ge=0,
        description="Your grid's grams of CO2 per kWh; set, the mirror shows the life's CO2 beside its joules. "
        "Unset: no CO2 figure.",
    )

    # chronicle
    data_dir: Path = Field(Path("/data"), description="Writable volume for the chronicle.")
    chronicle_keep_lives: int = Field(1000, ge=1, description="Lives the chronicle keeps; older ones are deleted.")
    chronicle_max_bytes: int = Field(200_000_000, ge=1, description="Size bound of the chronicle database.")
    export_send_timeout_s: float = Field(
        30.0, gt=0, description="A chronicle export whose client reads nothing for this long is cut off."
    )

    log_level: str = Field("INFO", description="Logging level.")

    @field_validator("blocklist_path", mode="before")
    @classmethod
    def _empty_means_none(cls, v):
        return None if v == "" else v  # compose files often pass an unset variable as ""

    @field_validator(
        "spi_bus",
        "spi_device",
        "spi_speed_hz",
        "spi_mode",
        "cell_order",
        "brightness",
        "modules_per_board",
        "refresh_s",
        "letter_case",
        "gpio_chip",
        "oe_lit_level",
        "panel",
        "segment_ma",
        "supply_v",
        mode="before",
    )
    @classmethod
    def _empty_means_default(cls, v, info):
        # compose passes an unset wall variable as "": the field's own default
        return cls.model_fields[info.field_name].get_default(call_default_factory=True) if v == "" else v

    @field_validator("segment_duty", "grid_g_per_kwh", mode="before")
    @classmethod
    def _empty_is_unset(cls, v):
        return None if isinstance(v, str) and v.strip().lower() in ("", "off", "none") else v

    def light_duty(self) -> float:
        """The duty the lighting estimate uses: the setting, or the panel's (display.core.energy.panel_duty)."""
        from display.core.energy import panel_duty

        return self.segment_duty if self.segment_duty is not None else panel_duty(self.panel, self.brightness)

    @field_validator("oe_gpio", "i2c_mux_address", mode="before")
    @classmethod
    def _number_or_off(cls, v, info):
        if isinstance(v, str):
            v = v.strip().lower()
            if v == "":
                return cls.model_fields[info.field_name].get_default()
            return None if v in ("off", "none") else int(v, 0)  # "0x77" as well as "119"
        return v

    @field_validator("wiring", "i2c_buses", "i2c_addresses", "i2c_mux_channels", mode="before")
    @classmethod
    def _int_list(cls, v, info):
        if isinstance(v, str):
            v = v.strip()
            if not v:
                return cls.model_fields[info.field_name].get_default(call_default_factory=True)
            v = json.loads(v) if v.startswith("[") else [x for x in v.replace(",", " ").split()]
        if isinstance(v, (list, tuple)):
            return [int(x, 0) if isinstance(x, str) else x for x in v]
        return v

    @field_validator("wiring")
    @classmethod
    def _wiring_is_a_permutation(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        if len(v) != 17:
            raise ValueError("wiring needs 17 entries (A..U, DP)")
        pins = [p for p in v if p >= 0]
        if len(set(pins)) != len(pins) or any(p > 15 for p in pins):
            raise ValueError("wiring pins must be distinct and in 0..15 (or -1)")
        return v

    @field_validator("i2c_buses")
    @classmethod
    def _buses_once_each(cls, v: list[int]) -> list[int]:
        return list(dict.fromkeys(v))  # compose names the second bus as the first when there is none

    @field_validator("i2c_addresses")
    @classmethod
    def _i2c_addresses(cls, v: list[int]) -> list[int]:
        if not v or len(set(v)) != len(v) or any(not 0x08 <= a <= 0x77 for a in v):
            raise ValueError("I2C addresses must be distinct 7-bit addresses (0x08..0x77)")
        return v

    @model_validator(mode="after")
    def _mux_not_among_the_chips(self):
        if self.i2c_mux_address is not None and self.i2c_mux_address in self.i2c_addresses:
            raise ValueError("the multiplexer's address must not be one of the HT16K33 addresses")
        return self
