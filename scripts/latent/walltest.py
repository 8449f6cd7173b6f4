"""Bring the LED wall up: test pictures on the wall and, at the same moment, on the mirror.

    latent wall-test [--docker | --venv] [all] [segments] [cells] [chain] [--ask] [--step S] [--dry-run] ...

--docker (the default where the display image exists) runs `python -m display.walltest` in the display
image through Compose, with the devices, groups and DISPLAY_* settings of compose.pi.yaml and .env; the
display service is stopped meanwhile and started again after. --venv runs it from the checkout's .venv
with the DISPLAY_* variables of this shell. Every other argument goes to display.walltest: the pictures
all (every segment), segments (one chip output at a time; --ask finds DISPLAY_WIRING), cells (each cell
shows its column, then its row), chain (one module at a time along the chain); --step S, --chain-step S,
--repeat N, --no-mirror, --dry-run (no bus). `latent wall-test -- --help` shows display.walltest's own help.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from latent import CliError
from latent.project import PROJECT_ENV, find_project, require_compose

IMAGE = "latent-reflection/display:latest"


def _image_exists() -> bool:
    try:
        return subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def main(argv: Sequence[str] | None = None, prog: str = "latent wall-test") -> int:
    args = list(argv or [])
    head = args[: args.index("--")] if "--" in args else args
    if "-h" in head or "--help" in head:
        print(f"usage: {prog} [--docker | --venv] [--project-dir DIR] [display.walltest arguments]\n\n{__doc__}")
        return 0
    where, project_dir = "auto", None
    while args and args[0] in ("--docker", "--venv", "--project-dir"):
        flag = args.pop(0)
        if flag == "--project-dir":
            if not args:
                print("wall-test: --project-dir needs a folder", file=sys.stderr)
                return 2
            project_dir = args.pop(0)
        else:
            where = flag[2:]
    if args and args[0] == "--":
        args.pop(0)
    try:
        project = find_project(project_dir or os.environ.get(PROJECT_ENV))
        if where == "auto":
            where = "docker" if _image_exists() else "venv"
        if where == "venv":
            python = project / ".venv" / "bin" / "python"
            if not python.exists():
                raise CliError("no .venv here: run scripts/setup, or use --docker")
            env = {**os.environ, "PYTHONPATH": str(project / "services")}
            return subprocess.run([str(python), "-m", "display.walltest", *args], cwd=project, env=env).returncode
        compose = require_compose()
    except CliError as exc:
        print(f"wall-test: {exc}", file=sys.stderr)
        return 2
    running = subprocess.run([*compose, "ps", "-q", "display"], cwd=project, capture_output=True, text=True).stdout
    live = subprocess.run(["docker", "ps", "-q", "--no-trunc"], capture_output=True, text=True).stdout
    stopped = bool(running.strip()) and running.strip() in live
    if stopped:
        print("wall-test: stopping the display while the test pictures run (started again after)", file=sys.stderr)
        subprocess.run([*compose, "stop", "display"], cwd=project, stdout=sys.stderr)
    try:
        # --service-ports publishes the mirror's port; -T only when there is no terminal to answer --ask on
        tty = [] if sys.stdin.isatty() else ["-T"]
        cmd = [*compose, "run", "--rm", "--service-ports", *tty, "display", "python", "-m", "display.walltest", *args]
        return subprocess.run(cmd, cwd=project).returncode
    finally:
        if stopped:
            print("wall-test: starting the display again", file=sys.stderr)
            subprocess.run([*compose, "start", "display"], cwd=project, stdout=sys.stderr)
