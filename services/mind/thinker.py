"""The worker thread that makes the source think and publishes every token; it breathes (thinks no
faster than the wall can show) and, at paragraph ends, writes the system's readings (senses) into the
context."""

from __future__ import annotations

import codecs
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable

from mind.broadcast import Broadcaster
from mind.sources import EX_CONFIG, EX_SOFTWARE, SourceError, TokenSource

log = logging.getLogger(__name__)

SENSE_GAP = 24  # tokens at least between two senses: a run of empty lines gets one reading, not many
RECORD_EVERY = 32  # tokens between two writes of the life counter's current count
PARAGRAPH_END = re.compile(r"\n[ \t]*\n[ \t]*$")


class Breath:
    """No more than ``rate`` tokens per second (0: no limit), on a steady schedule: after a slow patch
    (a growth, a busy machine) it catches up for at most one second's worth, never more."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic, sleep=time.sleep) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    def wait(self) -> None:
        if self.rate <= 0:
            return
        now = self._clock()
        if self._next is None:
            self._next = now
        if self._next > now:
            self._sleep(self._next - now)
        self._next = max(self._next, self._clock() - 1.0) + 1.0 / self.rate


class Words:
    """Counts words (runs of non-space) in text that arrives in pieces, and sees paragraph ends."""

    def __init__(self) -> None:
        self.count = 0
        self._in_word = False
        self._tail = ""

    def feed(self, text: str) -> bool:
        """Count ``text``'s words; True if it ends a paragraph (a blank line)."""
        for ch in text:
            if ch.isspace():
                self._in_word = False
            elif not self._in_word:
                self._in_word = True
                self.count += 1
        self._tail = (self._tail + text)[-8:]
        return bool(PARAGRAPH_END.search(self._tail))


class Thinker:
    """Runs ``source`` in one daemon thread. ``on_fatal(exit_code)`` is called if it cannot go on."""

    def __init__(
        self,
        source: TokenSource,
        broadcaster: Broadcaster,
        *,
        birth_data: Callable[[], dict],
        on_fatal: Callable[[int], None],
        tokens_per_s: float = 0.0,
        sense: Callable[[], dict] | None = None,
        record: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep=time.sleep,
    ) -> None:
        self.source = source
        self.broadcaster = broadcaster
        self._birth_data = birth_data
        self._on_fatal = on_fatal
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = "loading"
        self.tokens = 0
        self.seq = 0
        self.words = Words()
        self.sense_tokens = 0  # tokens of the system's readings in the context
        self.senses = 0
        self.breath = Breath(tokens_per_s, clock, sleep)
        self._sense = sense  # the readings at this moment: {"text", ...numbers} (mind.life.Mind.sense_data)
        self._record = record
        self._times: deque[float] = deque(maxlen=512)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mind-thinker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def tokens_per_s(self, window_s: float = 10.0) -> float:
        now = time.monotonic()
        times = [t for t in list(self._times) if now - t <= window_s]
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / max(times[-1] - times[0], 1e-9)

    def _run(self) -> None:
        try:
            self.source.load()
        except SourceError as exc:
            self.state = "failed"
            log.error("the mind cannot start: %s", exc)
            self._on_fatal(EX_CONFIG)
            return
        except Exception:
            self.state = "failed"
            log.exception("the mind failed while loading")
            self._on_fatal(EX_SOFTWARE)
            return
        self.broadcaster.publish("birth", self._birth_data())
        self.state = "thinking"
        log.info("life %s: thinking", self.broadcaster.life)
        # Tokens may end inside a UTF-8 character; hold the bytes until the character is whole.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        life = self.broadcaster.life
        publish = self.broadcaster.publish
        times = self._times
        breathe = self.breath.wait
        words = self.words
        can_sense = getattr(self.source, "can_sense", None)
        can_sense = hasattr(self.source, "sense") if can_sense is None else can_sense
        sense = self._sense if can_sense else None
        since_sense = 0
        try:
            while not self._stop.is_set():
                breathe()
                piece = self.source.next_piece()
                self.tokens += 1
                since_sense += 1
                times.append(time.monotonic())
                text = decoder.decode(piece)
                if text:
                    publish("token", {"life": life, "seq": self.seq, "text": text})
                    self.seq += 1
                    if words.feed(text) and sense is not None and since_sense >= SENSE_GAP:
                        since_sense = 0
                        self._write_sense(sense(), publish)
                if self._record is not None and self.tokens % RECORD_EVERY == 0:
                    self._record(self.tokens)
        except Exception:
            self.state = "failed"
            log.exception("the mind failed while thinking")
            self._on_fatal(EX_SOFTWARE)
        finally:
            self.source.close()

    def _write_sense(self, data: dict, publish) -> None:
        """The readings into the context (they take memory like thoughts do), then out as a sense event."""
        n = self.source.sense(data["text"])
        self.sense_tokens += n
        self.senses += 1
        publish("sense", data | {"seq": self.seq - 1, "sense_tokens": n})
