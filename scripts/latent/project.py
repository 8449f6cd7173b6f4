"""The installation a command acts on: its folder (where compose.yaml is), its .env, and what Compose
makes of them (``compose config``, so every merge and interpolation rule is Compose's own)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from latent import CliError
from mind.sizes import SizeError, parse_size

PROJECT_ENV = "LATENT_PROJECT_DIR"  # the scripts/ wrappers set it to their checkout
MODELS_IN_CONTAINER = "/models/extra"  # where compose.yaml mounts MODELS_DIR
BUNDLED_MODEL = "/models/default.gguf"  # the image's own model
PROMPTS_IN_CONTAINER = "/app/mind/prompts"


def add_project_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project-dir",
        metavar="DIR",
        help="the installation's folder, where compose.yaml and .env are (default: this folder or a parent)",
    )


def find_project(explicit: str | None = None, start: Path | None = None, required: bool = True) -> Path | None:
    """The folder with compose.yaml: ``explicit``, else $LATENT_PROJECT_DIR, else this folder or a parent."""
    given = explicit or os.environ.get(PROJECT_ENV)
    if given:
        path = Path(given).expanduser().resolve()
        if not (path / "compose.yaml").is_file():
            raise CliError(f"{path} has no compose.yaml: pass the folder of your Latent Reflection checkout")
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "compose.yaml").is_file() and (folder / "services" / "mind").is_dir():
            return folder
    if required:
        raise CliError(
            "not in a Latent Reflection folder (no compose.yaml here or above): cd into your checkout "
            "or pass --project-dir"
        )
    return None


# -- .env ------------------------------------------------------------------------------------------

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def _value(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return re.split(r"\s+#", raw, maxsplit=1)[0]  # an inline comment after a space, as Compose reads it


@dataclass
class EnvFile:
    """A .env as Compose reads it (KEY=VALUE lines, # comments), written back line by line so a change
    keeps everything else as the maker wrote it."""

    path: Path
    lines: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> EnvFile:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        return cls(path, text.splitlines())

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def entries(self) -> list[tuple[int, str, str]]:
        """(line number from 1, key, value) of every setting, in order."""
        out = []
        for n, line in enumerate(self.lines, 1):
            if line.lstrip().startswith("#"):
                continue
            m = _LINE.match(line)
            if m:
                out.append((n, m.group(1), _value(m.group(2))))
        return out

    def values(self) -> dict[str, str]:
        return {key: value for _, key, value in self.entries()}  # the last one wins, as in Compose

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values().get(key, default)

    def set(self, key: str, value: str) -> None:
        """Set ``key`` on its last line (the one Compose uses), or append it."""
        for n, k, _ in reversed(self.entries()):
            if k == key:
                self.lines[n - 1] = f"{key}={value}"
                break
        else:
            self.lines.append(f"{key}={value}")

    def write(self) -> None:
        self.path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")


# -- Compose ---------------------------------------------------------------------------------------


def project_name(project: Path) -> str:
    """The Compose project name: COMPOSE_PROJECT_NAME (the shell's, then .env's), else the folder's name,
    normalized as both Compose versions do (lower case; letters, digits, - and _)."""
    name = os.environ.get("COMPOSE_PROJECT_NAME") or EnvFile.read(project / ".env").get("COMPOSE_PROJECT_NAME")
    return re.sub(r"[^-_a-z0-9]", "", (name or project.name).lower())


def service_filter(project: Path | None, service: str) -> dict:
    """Docker label filters for the containers of ``service`` in this installation's Compose project
    (every project's when ``project`` is None)."""
    labels = [f"com.docker.compose.service={service}"]
    if project is not None:
        labels.append(f"com.docker.compose.project={project_name(project)}")
    return {"label": labels}


def compose_command() -> list[str] | None:
    """Compose v2 (``docker compose``) where it exists, else docker-compose 1.29; $LATENT_COMPOSE overrides."""
    chosen = os.environ.get("LATENT_COMPOSE")
    if chosen:
        return chosen.split()
    if shutil.which("docker"):
        try:
            if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
                return ["docker", "compose"]
        except (OSError, subprocess.SubprocessError):
            pass
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def require_compose() -> list[str]:
    cmd = compose_command()
    if cmd is None:
        raise CliError(
            "neither 'docker compose' nor 'docker-compose' is installed: install Docker's Compose plugin "
            "(sudo apt-get install docker-compose-plugin)"
        )
    return cmd


def compose_config(project: Path, compose: list[str] | None = None) -> dict:
    """The whole configuration as Compose would run it: compose.yaml, COMPOSE_FILE or
    compose.override.yaml, and .env, merged and interpolated by Compose itself."""
    try:
        import yaml
    except ImportError:
        raise CliError("PyYAML is missing: install the host tools (pipx install . in the checkout)") from None
    cmd = compose or require_compose()
    try:
        result = subprocess.run([*cmd, "config"], cwd=project, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CliError(f"{' '.join(cmd)} config failed: {exc}") from exc
    if result.returncode != 0:
        raise CliError(f"Compose cannot read the configuration: {result.stderr.strip() or result.stdout.strip()}")
    try:
        config = yaml.safe_load(result.stdout)
    except yaml.YAMLError as exc:
        raise CliError(f"{' '.join(cmd)} config printed something that is not YAML: {exc}") from exc
    if not isinstance(config, dict) or "services" not in config:
        raise CliError(f"{' '.join(cmd)} config printed no services")
    return config


@dataclass(frozen=True)
class Bind:
    source: str  # a host path
    target: str
    read_only: bool


@dataclass
class MindService:
    """The mind as ``docker compose up`` would start it."""

    image: str
    environment: dict[str, str]
    mem_limit: int | None
    binds: list[Bind]
    volumes: list[str]  # targets of named (or anonymous) volumes

    def host_path(self, container_path: str) -> Path | None:
        """The host path a path inside the container is bound to, if any bind covers it."""
        for bind in sorted(self.binds, key=lambda b: -len(b.target)):
            target = bind.target.rstrip("/")
            if container_path == target or container_path.startswith(target + "/"):
                return Path(bind.source) / container_path[len(target) :].lstrip("/")
        return None


def _bytes(value) -> int | None:
    """A memory size as either Compose prints it: bytes (v2: "734003200") or Docker's units (1.29: 700m)."""
    if value in (None, "", 0, "0"):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        return int(value)
    try:
        return parse_size(str(value))
    except SizeError as exc:
        raise CliError(f"mem_limit {value!r}: {exc}") from exc


def _environment(env) -> dict[str, str]:
    if isinstance(env, list):  # the list form: ["KEY=VALUE", ...]
        pairs = (item.partition("=") for item in env)
        return {k: v for k, _, v in pairs}
    return {k: "" if v is None else str(v) for k, v in (env or {}).items()}


def _mounts(volumes) -> tuple[list[Bind], list[str]]:
    binds, named = [], []
    for v in volumes or []:
        if isinstance(v, dict):  # Compose v2: the long syntax
            if v.get("type") == "bind":
                binds.append(Bind(v["source"], v["target"], bool(v.get("read_only"))))
            elif v.get("type") in ("volume", None):
                named.append(v["target"])
            continue
        parts = str(v).split(":")  # docker-compose 1.29: SOURCE:TARGET[:MODE]
        if len(parts) == 1:
            named.append(parts[0])
            continue
        source, target, mode = parts[0], parts[1], parts[2] if len(parts) > 2 else "rw"
        if source.startswith(("/", ".", "~")):
            binds.append(Bind(source, target, "ro" in mode.split(",")))
        else:
            named.append(target)
    return binds, named


def mind_service(config: dict) -> MindService:
    try:
        mind = config["services"]["mind"]
    except (KeyError, TypeError):
        raise CliError("the compose configuration has no service 'mind'") from None
    binds, named = _mounts(mind.get("volumes"))
    return MindService(
        image=mind.get("image") or "latent-reflection/mind:latest",
        environment=_environment(mind.get("environment")),
        mem_limit=_bytes(mind.get("mem_limit")),
        binds=binds,
        volumes=named,
    )
