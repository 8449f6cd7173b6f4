"""Panels know a chip protocol; they get a transport and show Frames. Three chips: chained 16-bit
shift registers (shift16, SPI), the MAX6954 (SPI) and the HT16K33 (I2C). `open_panel` builds the
configured one and runs it in a PanelDriver (its own thread, with periodic refresh)."""

from __future__ import annotations

import logging
from pathlib import Path

from display.adapters.panels import ht16k33, max6954, shift16
from display.adapters.panels.base import ChipPanel, Wiring, chain_order
from display.adapters.panels.driver import PanelDriver, PanelError
from display.core.font import ALL_SEGMENTS

log = logging.getLogger(__name__)

DEFAULT_WIRING = {
    "shift16": shift16.DEFAULT_WIRING,
    "max6954": max6954.DEFAULT_WIRING,
    "ht16k33": ht16k33.DEFAULT_WIRING,
}

__all__ = [
    "ChipPanel",
    "PanelDriver",
    "PanelError",
    "Wiring",
    "chain_order",
    "open_panel",
    "build_panel",
    "panel_kind",
    "wall_segments",
    "DEFAULT_WIRING",
]


def panel_kind(settings) -> str | None:
    """The chip the settings name; 'auto' is shift16 when its SPI device exists. None: no panel."""
    if settings.panel == "auto":
        return "shift16" if spi_path(settings).exists() else None
    return None if settings.panel == "none" else settings.panel


def spi_path(settings) -> Path:
    return Path(f"/dev/spidev{settings.spi_bus}.{settings.spi_device}")


def wiring_of(settings, kind: str) -> tuple[int, ...]:
    return tuple(settings.wiring) if settings.wiring is not None else DEFAULT_WIRING[kind]


def wall_segments(settings) -> int:
    """The segments the configured wall can light, device present or not: the mirror shows the same."""
    kind = panel_kind(settings)
    return ALL_SEGMENTS if kind is None else Wiring(wiring_of(settings, kind)).segments


def build_panel(settings, kind: str, spi=None, i2c: dict | None = None, output_enable=None) -> ChipPanel:
    """The chip panel over the given transports (tests and scripts/wall-test pass fakes)."""
    wiring = wiring_of(settings, kind)
    if kind == "shift16":
        return shift16.ShiftRegisterPanel(
            spi,
            settings.rows,
            settings.cols,
            wiring,
            settings.cell_order,
            settings.modules_per_board,
            output_enable,
            lit_level=settings.oe_lit_level == "high",
        )
    if kind == "max6954":
        return max6954.Max6954Panel(
            spi,
            settings.rows,
            settings.cols,
            wiring,
            settings.cell_order,
            settings.brightness,
            min(settings.modules_per_board, 8),
        )
    if kind == "ht16k33":
        per_chip = min(settings.modules_per_board, 8)
        count = -(-settings.rows * settings.cols // per_chip)
        boards = ht16k33.plan_boards(
            count, settings.i2c_buses, settings.i2c_addresses, settings.i2c_mux_address, settings.i2c_mux_channels
        )
        return ht16k33.Ht16k33Panel(
            i2c,
            boards,
            settings.rows,
            settings.cols,
            wiring,
            settings.cell_order,
            settings.brightness,
            per_chip,
            settings.i2c_mux_address,
        )
    raise ValueError(f"unknown panel {kind!r}")


def _output_enable(settings):
    """The /OE line, dark from the moment it is requested; None when not driven or not available."""
    if settings.oe_gpio is None:
        log.info("shift16: /OE is not driven (DISPLAY_OE_GPIO unset): tie it low; brightness is fixed")
        return None
    from display.adapters.gpio import GpioLine

    dark = settings.oe_lit_level != "high"
    try:
        return GpioLine(settings.gpio_chip, settings.oe_gpio, value=dark)
    except Exception:
        log.exception(
            "cannot drive /OE on %s line %d: the wall lights only if /OE is tied low",
            settings.gpio_chip,
            settings.oe_gpio,
        )
        return None


def open_panel(settings) -> PanelDriver | None:
    """The configured panel on its real bus, or None (web mirror only) when there is none."""
    kind = panel_kind(settings)
    if kind is None:
        if settings.panel == "none":
            log.info("panel disabled by settings: web mirror only")
        else:
            log.warning("no SPI device %s: running with the web mirror only", spi_path(settings))
        return None
    from display.adapters.transport import SmbusTransport, SpiTransport

    spi, i2c, oe = None, None, None
    try:
        if kind == "ht16k33":
            missing = [f"/dev/i2c-{b}" for b in settings.i2c_buses if not Path(f"/dev/i2c-{b}").exists()]
            if missing:
                log.warning("no I2C device %s: running with the web mirror only", ", ".join(missing))
                return None
            i2c = {b: SmbusTransport(b) for b in settings.i2c_buses}
            where = ", ".join(f"/dev/i2c-{b}" for b in settings.i2c_buses)
        else:
            if not spi_path(settings).exists():
                log.warning("no SPI device %s: running with the web mirror only", spi_path(settings))
                return None
            spi = SpiTransport(settings.spi_bus, settings.spi_device, settings.spi_speed_hz, settings.spi_mode)
            where = str(spi_path(settings))
            if kind == "shift16":
                oe = _output_enable(settings)
        panel = build_panel(settings, kind, spi=spi, i2c=i2c, output_enable=oe)
    except Exception:
        log.exception("cannot open the %s panel: running with the web mirror only", kind)
        for t in [spi, oe, *(i2c or {}).values()]:
            if t is not None:
                t.close()
        return None
    if kind == "max6954":
        log.warning("the MAX6954 panel is experimental: segment B (a2) cannot be lit with decode off")
    log.info("panel %s on %s, refresh every %s s", kind, where, settings.refresh_s or "never")
    return PanelDriver(panel, settings.refresh_s, name=kind)
