"""An incremental Server-Sent Events parser with a bound on line length (pure: bytes in, events out).

httpx-sse reads whole lines with no limit; the display must survive a 10 MB line or invalid UTF-8
without unbounded memory, so it parses the byte stream itself. An event id is sent back to the mind
as the Last-Event-ID header of the next connection, so only short printable ASCII is taken: an event
with any other id is marked malformed (and the last good id is kept).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_ID_CHARS = 128
_SAFE_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_ID_CHARS}}}")  # printable ASCII, no spaces: a header value


@dataclass(slots=True)
class SSEEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None
    malformed: bool = False  # part of it was over-long or not UTF-8: skip it


@dataclass(slots=True)
class SSEParser:
    max_line_bytes: int = 65536
    max_event_bytes: int = 262144
    _buf: bytearray = field(default_factory=bytearray)
    _skipping: bool = False  # inside an over-long line: drop bytes until its end
    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _data_bytes: int = 0
    _id: str | None = None
    _malformed: bool = False
    _bad_id: bool = False
    _pending_cr: bool = False
    dropped_lines: int = 0

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        start = 0
        if self._pending_cr and chunk[:1] == b"\n":
            start = 1  # the LF of a CRLF split across chunks
        self._pending_cr = False
        n = len(chunk)
        while start < n:
            cr = chunk.find(b"\r", start)
            lf = chunk.find(b"\n", start)
            ends = [p for p in (cr, lf) if p != -1]
            if not ends:
                self._append(chunk[start:])
                break
            end = min(ends)
            self._append(chunk[start:end])
            line, skipped = bytes(self._buf), self._skipping
            self._buf.clear()
            self._skipping = False
            if chunk[end : end + 1] == b"\r":
                if end + 1 < n:
                    start = end + 2 if chunk[end + 1 : end + 2] == b"\n" else end + 1
                else:
                    self._pending_cr = True
                    start = end + 1
            else:
                start = end + 1
            if skipped:
                self._malformed = True
                continue
            ev = self._line(line)
            if ev is not None:
                events.append(ev)
        return events

    def _append(self, part: bytes) -> None:
        if self._skipping:
            return
        if len(self._buf) + len(part) > self.max_line_bytes:
            self._buf.clear()
            self._skipping = True
            self.dropped_lines += 1
            return
        self._buf.extend(part)

    def _line(self, raw: bytes) -> SSEEvent | None:
        if not raw:
            return self._dispatch()
        if raw[:1] == b":":
            return None  # a comment (ping)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._malformed = True
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_bytes += len(raw)
            if self._data_bytes > self.max_event_bytes:
                self._malformed = True
                self._data.clear()
            else:
                self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" in value:
                pass  # the SSE specification ignores such an id
            elif _SAFE_ID.fullmatch(value):
                self._id = value
            else:
                self._bad_id = True
        return None  # retry and unknown fields are ignored

    def _dispatch(self) -> SSEEvent | None:
        if not self._data and not self._malformed and not self._event:
            self._event, self._bad_id = "", False
            return None
        ev = SSEEvent(
            event=self._event or "message",
            data="\n".join(self._data),
            id=self._id,
            malformed=self._malformed or self._bad_id,
        )
        self._event, self._data, self._data_bytes, self._malformed, self._bad_id = "", [], 0, False, False
        return ev
