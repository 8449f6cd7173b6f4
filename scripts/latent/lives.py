"""Show the lives and deaths of the running installation.

    latent lives            the chronicle (from the mirror) and Docker's view of the mind
    latent lives --follow   also print each birth, OOM kill and restart as Docker reports it, and
                            record each OOM kill in the chronicle as confirmed by Docker

Reads the chronicle over HTTP (the mirror's port: MIRROR_PORT in .env, default 8080) and Docker through
its SDK. The display never touches the Docker socket; this command, run by you on the host, is what
tells the chronicle that Docker saw the kernel kill the mind.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from collections.abc import Sequence
from datetime import datetime

from latent import CliError
from latent.project import EnvFile, add_project_argument, find_project, project_name, service_filter


def human_bytes(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.0f} MiB"


def when(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def show_chronicle(url: str) -> None:
    try:
        with urllib.request.urlopen(f"{url}/chronicle/lives", timeout=5) as r:
            lives = json.load(r)
    except OSError as exc:
        print(f"chronicle: the mirror at {url} does not answer ({exc})")
        return
    print(f"{'#':>4} {'life':<10} {'born':<19} {'lifespan':>9} {'tokens':>7} {'peak':>9} {'limit':>9}  cause")
    for life in lives:
        span = f"{life['lifespan_s'] / 60:.1f} min"
        cause = "alive" if life["alive"] else life.get("cause_words") or life["cause"]
        print(
            f"{life['number']:>4} {life['life'][:10]:<10} {when(life['born_at']):<19} {span:>9} "
            f"{life['tokens']:>7} {human_bytes(life['peak_memory_bytes']):>9} "
            f"{human_bytes(life['limit_bytes']):>9}  {cause}"
        )


def find_mind(client, project):
    found = client.containers.list(all=True, filters=service_filter(project, "mind"))
    if not found:
        where = f" of project {project_name(project)}" if project is not None else ""
        raise CliError(f"no mind container{where}: start the installation with docker compose up -d")
    return found[0]


def show_docker(mind) -> None:
    state = mind.attrs["State"]
    limit = mind.attrs["HostConfig"].get("Memory") or None
    print(
        f"\nmind container {mind.name}: {state['Status']}, restarts {mind.attrs['RestartCount']}, "
        f"limit {human_bytes(limit)}, last exit {state.get('ExitCode')}"
        f"{' (OOM-killed)' if state.get('OOMKilled') else ''}"
    )
    if not limit:
        print("  WARNING: no memory limit in force: the mind will never die. Run latent check-host.")


def confirm_oom(display, at: float) -> str | None:
    """Mark the life alive at `at` as OOM-killed, confirmed by Docker, inside the ``display`` container:
    that life's id, or None when no life was alive then."""
    code, out = display.exec_run(
        [
            "python",
            "-m",
            "display.chronicle",
            "record-cause",
            "--db",
            "/data/chronicle.sqlite3",
            "--cause",
            "oom",
            "--source",
            "docker",
            "--at",
            f"{at:.3f}",
        ]
    )
    return out.decode().strip() if code == 0 else None


def record_oom(client, project, at: float) -> str:
    """Mark the life alive at `at` as OOM-killed, confirmed by Docker, in the running display."""
    found = client.containers.list(filters=service_filter(project, "display"))
    if not found:
        return "(no display running: not recorded)"
    life = confirm_oom(found[0], at)
    return f"recorded for life {life}" if life is not None else "(no life to record it for)"


def follow(client, project, mind) -> None:
    print("\nfollowing Docker events for the mind (Ctrl-C to stop)...")
    for ev in client.events(decode=True, filters={"container": mind.id, "type": "container"}):
        action = ev.get("Action", "")
        if action == "oom":
            at = ev.get("timeNano", 0) / 1e9 or float(ev.get("time", time.time()))
            print(f"{time.strftime('%H:%M:%S')}  oom     {record_oom(client, project, at)}", flush=True)
        elif action in ("die", "start", "restart", "update"):
            code = ev.get("Actor", {}).get("Attributes", {}).get("exitCode")
            note = {
                "die": f"death, exit {code}",
                "start": "birth (Docker restarted it)",
                "update": "limit changed",
            }.get(action, action)
            print(f"{time.strftime('%H:%M:%S')}  {action:<7} {note}", flush=True)


def mirror_url(project) -> str:
    port = os.environ.get("MIRROR_PORT") or (
        EnvFile.read(project / ".env").get("MIRROR_PORT") if project is not None else None
    )
    return f"http://127.0.0.1:{port or '8080'}"


def main(argv: Sequence[str] | None = None, prog: str = "latent lives") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="the mirror's base URL (default: http://127.0.0.1:MIRROR_PORT)")
    parser.add_argument("--follow", action="store_true", help="print births and deaths as they happen")
    add_project_argument(parser)
    args = parser.parse_args(argv)
    try:
        project = find_project(args.project_dir, required=False)
        show_chronicle(args.url or mirror_url(project))
        try:
            import docker
        except ImportError:
            raise CliError(
                "the Docker SDK is missing: install the host tools (pipx install . in the checkout)"
            ) from None
        try:
            client = docker.from_env()
            mind = find_mind(client, project)
        except docker.errors.DockerException as exc:
            raise CliError(f"Docker is not reachable: {exc}") from exc
        show_docker(mind)
        if args.follow:
            try:
                follow(client, project, mind)
            except KeyboardInterrupt:
                pass
    except CliError as exc:
        print(f"lives: {exc}", file=sys.stderr)
        return 2
    return 0
