"""The ``latent`` command: one subcommand per host tool. Each subcommand's module is imported only when
it runs, so ``latent --help`` (and every ``--help``) starts fast and needs neither Docker nor a network.

Results go to stdout, progress and problems to stderr. Exit status: 0 done, 1 something to fix (check-host)
or a failed run, 2 a usage error or a problem with its fix printed.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from latent import __version__

# name: (module, one line for `latent --help`)
COMMANDS = {
    "check-host": (
        "latent.checkhost",
        "check this host, its .env and the compose files; print the fix for each problem",
    ),
    "energy": ("latent.energy", "measure this host's power where it has a sensor (RAPL, INA219), else say so"),
    "fetch-model": ("latent.fetch", "download a GGUF model into ./models (checksum, resume) and print its .env lines"),
    "lifespan": ("latent.lifespan", "predict when the mind dies under a memory limit; calibrate; change it live"),
    "lives": ("latent.lives", "the lives and deaths of the running installation (chronicle and Docker)"),
    "replay": ("latent.replay", "a past life as a film of the wall: an animated GIF, or WebM with ffmpeg"),
    "set-limit": ("latent.setlimit", "write MIND_MEMORY_LIMIT to .env and recreate the mind (a new life)"),
    "wall-test": ("latent.walltest", "test pictures on the LED wall and on the mirror at once (bring a wall up)"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: latent COMMAND [options]     (latent COMMAND --help for its options)",
        "",
        "The host tools of Latent Reflection. Run them in the repository's folder (where compose.yaml is),",
        "or pass --project-dir.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    if args[0] == "--version":
        print(f"latent {__version__}")
        return 0
    name = args[0]
    if name not in COMMANDS:
        print(f"latent: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return module.main(args[1:], prog=f"latent {name}")
    except BrokenPipeError:  # `latent ... | head`: the reader left; that is not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
