"""A mind whose source crawls at its memory limit, for the real-cgroup stall test (test_stall.py).

    PYTHONPATH=services python tests/mind/crawling_mind.py FILE     (MIND_* settings in the environment)

Run inside a memory cgroup. It thinks the scripted text at MIND_SCRIPTED_RATE for CRAWL_AFTER tokens;
then it fills its memory with anonymous pages to CRAWL_FILL of the limit, and from then on every token
costs CRAWL_TOKEN_S seconds of reading FILE through a page cache the limit leaves no room for. The
kernel reclaims at the limit all the while (its own code pages among what it evicts) and never kills:
what calibration saw of a life stuck at its limit. The app and the server are the mind's own."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from mind.app import create_app
from mind.cgroup import CgroupMemory
from mind.death import serve
from mind.settings import MindSettings
from mind.sources import ScriptedSource

log = logging.getLogger("crawling_mind")
CHUNK = 4 << 20


class CrawlingSource(ScriptedSource):
    def __init__(self, path: Path, memory: CgroupMemory, file: Path, **kw) -> None:
        super().__init__(path, **kw)
        self.memory, self.file = memory, file
        self.after = int(os.environ.get("CRAWL_AFTER", "250"))
        self.fill = float(os.environ.get("CRAWL_FILL", "0.95"))
        self.token_s = float(os.environ.get("CRAWL_TOKEN_S", "1.5"))
        self.ballast: list[bytes] = []
        self.served = 0
        self.buffer = bytearray(1 << 20)

    def next_piece(self) -> bytes:
        if self.served >= self.after:
            if not self.ballast:
                self._fill()
            self._crawl()
        self.served += 1
        return super().next_piece()

    def _fill(self) -> None:
        reading = self.memory.read()
        target = int(self.fill * reading.limit_bytes)
        while (reading := self.memory.read()).memory_bytes < target:
            self.ballast.append(b"\x01" * min(CHUNK, target - reading.memory_bytes))  # written: resident
        with self.file.open("rb") as f:  # its pages are the writer's: drop them, so ours are charged to us
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        log.warning("crawling: memory %d of %d bytes", reading.memory_bytes, reading.limit_bytes)

    def _crawl(self) -> None:
        # Every pass reads back what the last one had to give up: refaults, as with evicted code pages.
        until = time.monotonic() + self.token_s
        while time.monotonic() < until:
            with self.file.open("rb", buffering=0) as f:
                while f.readinto(self.buffer) and time.monotonic() < until:
                    pass


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = MindSettings()
    memory = CgroupMemory(settings.cgroup_root)
    script = Path(__file__).resolve().parents[2] / "services/mind/prompts/transcript.txt"
    source = CrawlingSource(script, memory, Path(sys.argv[1]), rate=settings.scripted_rate)
    return serve(create_app(settings, source, memory=memory), settings)


if __name__ == "__main__":
    sys.exit(main())
