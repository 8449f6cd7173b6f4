"""Record an externally known cause of death in the chronicle, from outside the display.

For a script that watches ``docker events`` on the host (the display itself never touches the Docker
socket): on the mind container's ``oom`` event, run

    PYTHONPATH=services python -m display.chronicle record-cause --db /path/to/chronicle.db \\
        --cause oom --source docker --at <event time, Unix seconds>

The life marked is the one named by ``--life``, or else the life alive at ``--at`` (default: now):
born by then and not yet dead (see ``mark_cause``); a mind killed before its birth reached the display
matches none. Prints the life id marked, or nothing and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from display.chronicle.store import mark_cause


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m display.chronicle", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    record = sub.add_parser("record-cause", help="mark how a life ended (outranks the inference from vitals)")
    record.add_argument("--db", type=Path, required=True, help="the chronicle's SQLite file")
    record.add_argument("--cause", default="oom", help="cause of death (default: oom)")
    record.add_argument("--source", default="docker", help="who says so (default: docker)")
    record.add_argument("--life", help="the life's id (default: the life alive at --at)")
    record.add_argument("--at", type=float, help="Unix time of the death (default: now)")
    args = parser.parse_args(argv)
    if not args.db.exists():
        parser.error(f"no chronicle at {args.db}")
    marked = mark_cause(args.db, args.cause, args.source, life=args.life, at=args.at)
    if marked is None:
        return 1
    print(marked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
