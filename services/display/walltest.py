"""Bring a new LED wall up: test pictures on the wall and on the mirror at once (scripts/wall-test).

    python -m display.walltest [all] [segments] [cells] [chain] [--ask] [--step S] [--dry-run]

The panel and its settings are the display's own (DISPLAY_* variables, as compose passes them), so
what works here works in the display. Stop the display first: both would drive the same bus.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable

from display.adapters.panels import DEFAULT_WIRING, PanelDriver, build_panel, chain_order, open_panel, panel_kind
from display.core.bringup import (
    Step,
    all_on,
    cell_labels,
    chain_walk,
    each_segment,
    segment_bit,
    segment_name,
    wiring_from_answers,
)
from display.core.font import Font
from display.core.frame import Frame
from display.settings import DisplaySettings

MODES = ("all", "segments", "cells", "chain")


def wiring_in_use(settings: DisplaySettings, kind: str) -> list[int]:
    return list(settings.wiring) if settings.wiring is not None else list(DEFAULT_WIRING[kind])


def steps_for(modes: list[str], settings: DisplaySettings, kind: str, segments: int) -> list[Step]:
    rows, cols = settings.rows, settings.cols
    per_board = min(settings.modules_per_board, 8) if kind != "shift16" else settings.modules_per_board
    make = {
        "all": lambda: all_on(rows, cols, segments),
        "segments": lambda: each_segment(rows, cols, wiring_in_use(settings, kind)),
        "cells": lambda: cell_labels(rows, cols, Font(segments, "upper")),
        "chain": lambda: chain_walk(rows, cols, chain_order(rows, cols, settings.cell_order), segments, per_board),
    }
    return [step for mode in modes for step in make[mode]()]


def dry_panel(settings: DisplaySettings, kind: str) -> PanelDriver:
    """The configured panel over recording fakes: everything but the bytes reaching a bus."""
    from display.adapters.gpio import RecordingLine
    from display.adapters.transport import RecordingI2c, RecordingTransport

    panel = build_panel(
        settings,
        kind,
        spi=RecordingTransport(),
        i2c={b: RecordingI2c() for b in settings.i2c_buses},
        output_enable=RecordingLine(),
    )
    return PanelDriver(panel, settings.refresh_s, name=f"{kind} (dry run)")


def read_answer(prompt: str) -> str:
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        raise EOFError("no more answers on standard input")
    return line.strip()


async def ask_segment(step: Step, answers: dict[int, int | None], reader: Callable[[str], str]) -> None:
    """Which segment lit on the wall for this output? Enter = the one the mirror shows, '-' = none."""
    shown = step.caption.rsplit(" ", 1)[-1]
    while True:
        answer = await asyncio.to_thread(reader, f"  lit on the wall? [Enter = {shown}, a letter, DP, - = none] ")
        try:
            answers[step.pin] = None if answer == "-" else segment_bit(answer or shown)
            return
        except ValueError as e:
            sys.stderr.write(f"  {e}\n")


async def run(
    settings: DisplaySettings,
    modes: list[str],
    panel,
    step_s: float = 1.5,
    chain_step_s: float = 0.5,
    ask: bool = False,
    mirror: bool = True,
    repeat: int = 1,
    out=None,
    reader: Callable[[str], str] = read_answer,
    pause: Callable[[Step, Frame], Awaitable[None]] | None = None,
) -> list[int] | None:
    """Show the steps of `modes` on `panel` and on a mirror; with `ask`, return the wiring found."""
    from display.web.hub import Hub

    out = out or sys.stdout
    kind = panel_kind(settings) or "shift16"
    segments = panel.segments
    hub = Hub(queue_size=settings.viewer_queue, max_viewers=settings.max_viewers)
    server = server_task = None
    if mirror:
        import uvicorn
        from fastapi import FastAPI

        from display.web.mirror import mirror_router

        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        app.include_router(mirror_router(hub, ping_s=settings.ping_s))
        server = uvicorn.Server(
            uvicorn.Config(
                app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=1
            )
        )  # open mirrors must not hold it
        server_task = asyncio.create_task(server.serve())
        print(f"mirror: http://<this machine>:{settings.port}/ shows every picture with its caption", file=out)
    answers: dict[int, int | None] = {}
    steps = steps_for(modes, settings, kind, segments)
    counts = {m: sum(1 for s in steps if s.mode == m) for m in modes}
    seq = 0
    try:
        for _ in range(repeat):
            done = dict.fromkeys(modes, 0)
            for step in steps:
                seq += 1
                done[step.mode] += 1
                frame = Frame(seq, settings.rows, settings.cols, step.masks)
                caption = f"[{step.mode} {done[step.mode]}/{counts[step.mode]}] {step.caption}"
                try:
                    panel.show(frame)
                except Exception as e:  # noqa: BLE001 - say it and go on: the mirror still shows the step
                    print(f"  the panel reports: {e}", file=out)
                hub.publish_frame(frame)
                hub.publish_status({"caption": caption, "connected": False})
                print(caption, file=out, flush=True)
                if pause is not None:
                    await pause(step, frame)
                elif ask and step.mode == "segments":
                    await ask_segment(step, answers, reader)
                else:
                    await asyncio.sleep(chain_step_s if step.mode == "chain" else step_s)
    finally:
        if server is not None:
            server.should_exit = True
            await server_task
    if not answers:
        return None
    current = wiring_in_use(settings, kind)
    found = wiring_from_answers(current, answers)
    lost = [segment_name(s) for s in range(17) if current[s] >= 0 and found[s] < 0]
    print(
        ("the wiring is right: " if found == current else "set this in .env: ")
        + "DISPLAY_WIRING="
        + json.dumps(found, separators=(",", ":")),
        file=out,
    )
    if lost:
        print(f"segments no output lit: {', '.join(lost)}", file=out)
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/wall-test",
        description="Test pictures on the LED wall and on the mirror at once, to find the wiring and the chain "
        "order. Uses the display's settings (DISPLAY_* variables); stop the display first.",
        epilog="modes: all = every segment on every cell; segments = one chip output at a time, its segment "
        "named on the mirror; cells = every cell shows its column, then its row; chain = one cell at a "
        "time along the chain. Default: all four, in that order.",
    )
    parser.add_argument(
        "modes",
        nargs="*",
        choices=[[], *MODES],
        default=[],
        metavar="MODE",
        help="all, segments, cells, chain (default: all four)",
    )
    parser.add_argument("--step", type=float, default=1.5, help="seconds per picture (default 1.5)")
    parser.add_argument("--chain-step", type=float, default=0.5, help="seconds per cell of the chain walk (0.5)")
    parser.add_argument(
        "--ask",
        action="store_true",
        help="segments: after each output, type the segment you saw lit; prints DISPLAY_WIRING",
    )
    parser.add_argument("--repeat", type=int, default=1, help="run the pictures this many times (default 1)")
    parser.add_argument("--no-mirror", action="store_true", help="do not serve the mirror page")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="no bus: the panel's bytes go to a recording fake (try the tool anywhere)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = DisplaySettings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    modes = list(dict.fromkeys(args.modes)) or list(MODES)
    kind = panel_kind(settings)
    try:
        panel = dry_panel(settings, kind or "shift16") if args.dry_run else open_panel(settings) if kind else None
    except ValueError as e:  # a plan that cannot work, e.g. more boards than I2C addresses
        print(f"the panel settings do not fit: {e}", file=sys.stderr)
        return 2
    if panel is None:
        print(
            "no panel to test (see the log above): enable its bus and set DISPLAY_PANEL, or try --dry-run",
            file=sys.stderr,
        )
        return 2
    try:
        asyncio.run(run(settings, modes, panel, args.step, args.chain_step, args.ask, not args.no_mirror, args.repeat))
    except KeyboardInterrupt:
        pass
    except EOFError as e:
        print(str(e), file=sys.stderr)
        return 1
    finally:
        panel.close()  # the wall goes dark
    return 0


if __name__ == "__main__":
    sys.exit(main())
