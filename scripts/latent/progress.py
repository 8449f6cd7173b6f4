"""Progress on stderr for the long steps (a download, a measuring run, a life): one line redrawn in place
on a terminal; on a pipe or a log file, a plain line now and then, so a CI log or `2>log` stays readable."""

from __future__ import annotations

import sys
import time
from typing import TextIO

MiB = 1 << 20


def bar(fraction: float | None, width: int = 24) -> str:
    """``[#########---------------]``; an empty frame when the fraction is unknown."""
    if fraction is None:
        return "[" + " " * width + "]"
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Line:
    """A progress line. ``update`` redraws it (on a terminal at most ``redraw_s`` apart; elsewhere a new
    line at most every ``every_s``); ``note`` prints a line that stays; ``close`` ends the bar."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 10.0, redraw_s: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every_s = every_s
        self.redraw_s = redraw_s
        self.started = time.monotonic()
        self._last = -1e9
        self._shown = ""

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def update(self, text: str, fraction: float | None = None, force: bool = False) -> None:
        line = f"{bar(fraction)} {text}" if fraction is not None else text
        now = time.monotonic()
        if not force and now - self._last < (self.redraw_s if self.tty else self.every_s):
            return
        self._last = now
        if self.tty:
            pad = max(0, len(self._shown) - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._shown = line
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        self._clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._shown:
            self.stream.write("\n")
            self.stream.flush()
        self._shown = ""

    def _clear(self) -> None:
        if self.tty and self._shown:
            self.stream.write("\r" + " " * len(self._shown) + "\r")
            self._shown = ""
