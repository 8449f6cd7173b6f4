"""The worker thread that makes the source think and publishes every token."""
from __future__ import annotations

import codecs
import logging
import threading
import time
from collections import deque
from typing import Callable, Optional

from .broadcast import Broadcaster
from .sources import EX_CONFIG, EX_SOFTWARE, SourceError, TokenSource

log = logging.getLogger(__name__)


class Thinker:
    """Runs ``source`` in one daemon thread. ``on_fatal(exit_code)`` is called if it cannot go on."""

    def __init__(
        self, source: TokenSource, broadcaster: Broadcaster, *, birth_data: Callable[[], dict],
        on_fatal: Callable[[int], None],
    ) -> None:
        self.source = source
        self.broadcaster = broadcaster
        self._birth_data = birth_data
        self._on_fatal = on_fatal
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.state = "loading"
        self.tokens = 0
        self.seq = 0
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
        try:
            while not self._stop.is_set():
                piece = self.source.next_piece()
                self.tokens += 1
                times.append(time.monotonic())
                text = decoder.decode(piece)
                if text:
                    publish("token", {"life": life, "seq": self.seq, "text": text})
                    self.seq += 1
        except Exception:
            self.state = "failed"
            log.exception("the mind failed while thinking")
            self._on_fatal(EX_SOFTWARE)
        finally:
            self.source.close()
