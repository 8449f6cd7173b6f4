"""Set the mind's memory limit (its lifespan) and restart it with it:  latent set-limit 900m

The value goes into .env (MIND_MEMORY_LIMIT), so it survives reboots and `docker compose up`; the mind
is recreated at once (a new life). Sizes are Docker's binary units, decimals allowed (1.5g); a bare
number is refused. For a live change without a restart: latent lifespan set-limit 900m
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence

from latent import CliError
from latent.project import EnvFile, add_project_argument, find_project, require_compose
from mind.sizes import SizeError, docker_size, parse_size


def main(argv: Sequence[str] | None = None, prog: str = "latent set-limit") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("size", help="the new limit: 700m, 1.5g, 2g (Docker's units, binary)")
    parser.add_argument("--no-restart", action="store_true", help="only write .env; the next `up` uses it")
    add_project_argument(parser)
    args = parser.parse_args(argv)
    try:
        limit = docker_size(parse_size(args.size))  # as every Compose reads it: 1.5g is 1536m
        project = find_project(args.project_dir)
        env = EnvFile.read(project / ".env")
        env.set("MIND_MEMORY_LIMIT", limit)
        env.write()
        if args.no_restart:
            print(f"MIND_MEMORY_LIMIT={limit} written to {env.path}")
            return 0
        print(f"MIND_MEMORY_LIMIT={limit} written to {env.path}; recreating the mind (a new life begins)")
        compose = require_compose()
    except (CliError, SizeError) as exc:
        print(f"set-limit: {exc}", file=sys.stderr)
        return 2
    return subprocess.run([*compose, "up", "-d", "--no-build", "mind"], cwd=project).returncode
