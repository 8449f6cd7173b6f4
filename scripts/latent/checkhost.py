"""Check that this host can run the installation honestly, and print the exact fix for what is not:
Docker and Compose, the memory cgroup and swap, the .env as Compose will read it (the model path as
the container sees it, the memory limit, the prompt, settings Compose would silently ignore), the
models folder, and for the LED wall (COMPOSE_FILE with compose.pi.yaml) the SPI, I2C and GPIO devices
and their group ids.

Exit status: 0 all good (warnings allowed), 1 something must be fixed (each problem printed with its fix).
"""

from __future__ import annotations

import argparse
import grp
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from latent import CliError
from latent.project import (
    BUNDLED_MODEL,
    MODELS_IN_CONTAINER,
    PROMPTS_IN_CONTAINER,
    EnvFile,
    MindService,
    add_project_argument,
    compose_command,
    compose_config,
    find_project,
    mind_service,
)
from mind.sizes import SizeError, docker_size, format_size, parse_size

MiB = 1 << 20
# What the runtime adds to the weights before any context (the default model: 241 MiB of weights, a base
# of 386 MiB measured): a limit must leave at least this much above the model file.
RUNTIME_BYTES = 150 * MiB
BUNDLED_MODEL_BYTES = 253_000_000  # the image's model (Gemma 3 270M, Q4_K_M), about
# Variables a .env may hold that the compose files do not pass on, yet Compose itself reads.
COMPOSE_OWN = {"COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "COMPOSE_PATH_SEPARATOR", "DOCKER_HOST"}


@dataclass
class Report:
    lines: list[tuple[str, str]] = field(default_factory=list)  # (ok | warn | FIX, text)

    def ok(self, text: str) -> None:
        self.lines.append(("ok", text))

    def warn(self, text: str) -> None:
        self.lines.append(("warn", text))

    def fix(self, text: str) -> None:
        self.lines.append(("FIX", text))

    @property
    def problems(self) -> int:
        return sum(1 for kind, _ in self.lines if kind == "FIX")

    def render(self) -> str:
        return "\n".join(f"  {kind:<5} {text}" for kind, text in self.lines)


@dataclass
class Host:
    """Where the host's facts are read from (tests point these at a fake tree)."""

    sys_fs: Path = Path("/sys/fs/cgroup")
    dev: Path = Path("/dev")
    boot: Path = Path("/boot")
    proc_swaps: Path = Path("/proc/swaps")

    def cmdline(self) -> Path:
        firmware = self.boot / "firmware" / "cmdline.txt"
        return firmware if firmware.exists() else self.boot / "cmdline.txt"

    def swap_on(self) -> bool:
        try:
            return len(self.proc_swaps.read_text().splitlines()) > 1
        except OSError:
            return False


# -- Docker and the kernel -------------------------------------------------------------------------


def docker_info() -> tuple[dict | None, str]:
    """(the engine's `docker info`, or None and why)."""
    try:
        import docker
    except ImportError:
        return None, "the Docker SDK is missing: install the host tools (pipx install . in the checkout)"
    try:
        return docker.from_env().info(), ""
    except Exception as exc:  # noqa: BLE001 - any failure to reach the engine has the same fix
        return None, str(exc)


def check_docker(report: Report, info: dict | None, why: str) -> None:
    if info is not None:
        report.ok(f"Docker engine reachable ({info.get('ServerVersion', '?')})")
    else:
        report.fix(
            f"Docker engine not reachable ({why}): install Docker Engine, then: sudo usermod -aG docker $USER; "
            "log out and in"
        )
    compose = compose_command()
    if compose:
        report.ok(f"Compose present ({' '.join(compose)})")
    else:
        report.fix("Compose missing: sudo apt-get install docker-compose-plugin (or docker-compose)")


def check_cgroup(report: Report, host: Host, info: dict | None) -> None:
    """The memory cgroup: without it Docker silently ignores mem_limit and the mind never dies."""
    fix = f"append ' cgroup_enable=memory' to the single line of {host.cmdline()}, then reboot"
    controllers = host.sys_fs / "cgroup.controllers"
    if controllers.exists():
        if "memory" in controllers.read_text().split():
            report.ok("memory cgroup enabled (cgroup v2)")
        else:
            report.fix(f"memory cgroup disabled: {fix}")
    elif (host.sys_fs / "memory").is_dir():
        report.ok("memory cgroup enabled (cgroup v1)")
    else:
        report.fix(f"memory cgroup disabled: {fix}")
    if info is not None and info.get("MemoryLimit") is False:
        report.fix(f"Docker reports no memory limit support: {fix}")
    # Swap: with swap accounting off, memswap_limit is ignored and a dying mind crawls on the SD card.
    if host.swap_on():
        if info is not None and info.get("SwapLimit") is False:
            report.fix(
                "swap is on but Docker cannot limit it: the mind will swap instead of dying. Turn swap off: "
                "sudo dphys-swapfile swapoff && sudo systemctl disable dphys-swapfile (or: sudo swapoff -a)"
            )
        else:
            report.ok("swap is on, and Docker limits it (memswap_limit = mem_limit keeps the mind off it)")
    else:
        report.ok("no swap")


# -- .env and what Compose makes of it --------------------------------------------------------------


def documented_keys(project: Path) -> set[str]:
    """Every variable .env.example documents or a compose file uses: what a .env may set."""
    keys = set(COMPOSE_OWN)
    example = project / ".env.example"
    if example.exists():
        keys |= set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", example.read_text(encoding="utf-8"), re.M))
    for path in project.glob("compose*.yaml"):
        keys |= set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", path.read_text(encoding="utf-8")))
    return keys


def check_env_file(report: Report, project: Path, env: EnvFile) -> None:
    if not env.exists:
        report.ok("no .env: compose.yaml's defaults (cp .env.example .env to change them)")
        return
    known = documented_keys(project)
    for n, key, _ in env.entries():
        if key not in known:
            hint = (
                "; other MIND_*/DISPLAY_* settings go in compose.override.yaml (see compose.override.example.yaml)"
                if key.startswith(("MIND_", "DISPLAY_"))
                else ""
            )
            report.warn(f".env line {n}: {key} is not a variable the compose files read: Compose ignores it{hint}")
    raw = env.get("MIND_MEMORY_LIMIT")
    if raw is not None:
        try:
            parse_size(raw)
        except SizeError as exc:
            report.fix(f".env MIND_MEMORY_LIMIT={raw}: {exc}")


def model_fix(path: str, models_dir: Path) -> str:
    """The MIND_MODEL_PATH a maker meant, when ``path`` is not one the container can see."""
    name = Path(path).name or "NAME.gguf"
    if (models_dir / name).is_file():
        return f"set MIND_MODEL_PATH={MODELS_IN_CONTAINER}/{name} in .env (the container sees {models_dir} there)"
    return (
        f"put the file in {models_dir} (latent fetch-model does) and set MIND_MODEL_PATH={MODELS_IN_CONTAINER}/{name}"
    )


def check_model(report: Report, service: MindService, models_dir: Path) -> int | None:
    """The model file as the container will see it; its size on this host if known."""
    path = service.environment.get("MIND_MODEL_PATH") or BUNDLED_MODEL
    if path == BUNDLED_MODEL:
        report.ok(f"model: the image's own ({BUNDLED_MODEL})")
        return BUNDLED_MODEL_BYTES
    host = service.host_path(path)
    if host is None:
        report.fix(
            f"MIND_MODEL_PATH={path} does not exist inside the container (it sees only {BUNDLED_MODEL} and "
            f"your models folder at {MODELS_IN_CONTAINER}/): the mind would exit 78 and restart forever; "
            + model_fix(path, models_dir)
        )
        return None
    if not host.is_file():
        there = sorted(p.name for p in host.parent.glob("*.gguf")) if host.parent.is_dir() else []
        report.fix(
            f"MIND_MODEL_PATH={path} is {host} on this host, which does not exist"
            + (f" (the folder holds {', '.join(there)})" if there else "")
            + f": {model_fix(path, models_dir)}"
        )
        return None
    with host.open("rb") as f:
        if f.read(4) != b"GGUF":
            report.fix(f"{host} is not a GGUF file (MIND_MODEL_PATH={path}): fetch it again (latent fetch-model)")
            return None
    size = host.stat().st_size
    report.ok(f"model: {path} ({host}, {format_size(size)})")
    return size


def check_limit(report: Report, service: MindService, model_bytes: int | None) -> None:
    limit = service.mem_limit
    if limit is None:
        report.fix("the mind has no mem_limit in the compose configuration: it would never die; set MIND_MEMORY_LIMIT")
        return
    if model_bytes is not None and limit < model_bytes + RUNTIME_BYTES:
        need = docker_size(-(-(model_bytes + RUNTIME_BYTES + 256 * MiB) // (50 * MiB)) * 50 * MiB)
        report.fix(
            f"MIND_MEMORY_LIMIT {format_size(limit)} is below the model's weights ({format_size(model_bytes)}) "
            "plus the runtime: the mind would die while loading, over and over; "
            f"set MIND_MEMORY_LIMIT={need} or more (latent set-limit {need}; latent lifespan predict measures it)"
        )
    else:
        report.ok(f"memory limit {format_size(limit)}")


def check_prompt(report: Report, project: Path, service: MindService) -> None:
    prompt = service.environment.get("MIND_PROMPT") or "transcript"
    frames = project / "services" / "mind" / "prompts"
    if "/" not in prompt:
        if (frames / f"{prompt}.txt").is_file():
            report.ok(f"prompt frame: {prompt}")
        else:
            names = ", ".join(sorted(p.stem for p in frames.glob("*.txt")))
            report.fix(f"MIND_PROMPT={prompt}: no {frames}/{prompt}.txt; the frames are: {names}")
        return
    host = service.host_path(prompt)
    if host is None or not host.is_file():
        report.fix(
            f"MIND_PROMPT={prompt} does not exist inside the container: put the file in {frames} and set "
            f"MIND_PROMPT={PROMPTS_IN_CONTAINER}/{Path(prompt).name} (or its name without .txt)"
        )
    else:
        report.ok(f"prompt frame: {prompt}")


def check_models_dir(report: Report, models_dir: Path) -> None:
    if not models_dir.exists():
        report.fix(
            f"the models folder {models_dir} does not exist: Docker would create it owned by root; "
            f"mkdir -p {models_dir}"
        )
    elif not os.access(models_dir, os.W_OK):
        report.warn(
            f"the models folder {models_dir} is not writable by you (owned by uid {models_dir.stat().st_uid}): "
            f"latent fetch-model cannot put a model there; sudo chown $USER {models_dir}"
        )


# -- the LED wall ----------------------------------------------------------------------------------


def wall_enabled(env: EnvFile) -> bool:
    files = os.environ.get("COMPOSE_FILE") or env.get("COMPOSE_FILE") or ""
    return "compose.pi.yaml" in files


def group_gid(name: str) -> int | None:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def check_wall(report: Report, host: Host, env: EnvFile) -> None:
    values = env.values()

    def setting(key: str, default: str) -> str:
        return os.environ.get(key) or values.get(key) or default  # the shell's value wins, as in Compose

    spi = host.dev / f"spidev{setting('SPI_BUS', '0')}.{setting('SPI_CS', '0')}"
    if not wall_enabled(env):
        if list(host.dev.glob("spidev*")) or list(host.dev.glob("i2c-*")):
            report.warn(
                "SPI or I2C is present but the wall is off: to drive it, set COMPOSE_FILE=compose.yaml:compose.pi.yaml "
                "in .env"
            )
        else:
            report.ok("the LED wall is off (the web mirror only); COMPOSE_FILE=compose.yaml:compose.pi.yaml drives it")
        return
    i2c = [host.dev / f"i2c-{setting('I2C_BUS', '1')}", host.dev / f"i2c-{setting('I2C_BUS_2', '1')}"]
    gpio = host.dev / f"gpiochip{setting('GPIO_CHIP', '0')}"
    devices = [
        (
            spi,
            "SPI",
            "SPI_GID",
            "spi",
            "sudo raspi-config nonint do_spi 0 (or dtparam=spi=on in /boot/firmware/config.txt)",
        ),
        *(
            (
                d,
                "I2C",
                "I2C_GID",
                "i2c",
                "sudo raspi-config nonint do_i2c 0 (or dtparam=i2c_arm=on in /boot/firmware/config.txt)",
            )
            for d in dict.fromkeys(i2c)
        ),
        (gpio, "GPIO", "GPIO_GID", "gpio", "check GPIO_CHIP (ls /dev/gpiochip*)"),
    ]
    for device, bus, gid_key, group, enable in devices:
        if not device.exists():
            report.fix(
                f"{device} is missing and compose.pi.yaml passes it to the display: Docker refuses to start it. "
                f"Enable {bus}: {enable}, then reboot"
            )
            continue
        owner = device.stat().st_gid
        gid = owner if owner != 0 else group_gid(group)
        configured = setting(gid_key, {"SPI_GID": "999", "I2C_GID": "998", "GPIO_GID": "997"}[gid_key])
        if gid is None:
            report.warn(f"{device}: no '{group}' group on this host; the display (uid 10001) may not open it")
        elif str(gid) != configured.strip():
            report.fix(
                f"{device} belongs to group {gid} but {gid_key}={configured}: the display cannot open it; "
                f"set {gid_key}={gid} in .env"
            )
        else:
            report.ok(f"{device} present, group {gid} ({gid_key})")


# -- the command -----------------------------------------------------------------------------------


def check(project: Path, host: Host | None = None, info: tuple[dict | None, str] | None = None) -> Report:
    host = host or Host()
    report = Report()
    engine, why = info if info is not None else docker_info()
    check_docker(report, engine, why)
    check_cgroup(report, host, engine)
    env = EnvFile.read(project / ".env")
    check_env_file(report, project, env)
    models_dir = (project / (env.get("MODELS_DIR") or "./models")).resolve()
    check_models_dir(report, models_dir)
    if compose_command():
        try:
            service = mind_service(compose_config(project))
        except CliError as exc:
            report.fix(f"{exc}")
            service = None
        if service is not None:
            model_bytes = check_model(report, service, models_dir)
            check_limit(report, service, model_bytes)
            check_prompt(report, project, service)
    check_wall(report, host, env)
    return report


def main(argv: Sequence[str] | None = None, prog: str = "latent check-host") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_project_argument(parser)
    args = parser.parse_args(argv)
    try:
        project = find_project(args.project_dir)
    except CliError as exc:
        print(f"check-host: {exc}", file=sys.stderr)
        return 2
    mem = 0
    try:
        mem = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1]) * 1024
    except (OSError, StopIteration, ValueError):
        pass
    print(f"Latent Reflection host check ({os.uname().machine}, {format_size(mem) if mem else '? memory'}, {project})")
    report = check(project)
    print(report.render())
    if report.problems:
        print(f"{report.problems} thing(s) to fix")
        return 1
    print("all good")
    return 0
