"""An optional word blocklist: blocked words are masked before anything shows or records them."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from display.core.font import MASKED

_WORD = re.compile(r"\w+")
HOLD_LIMIT = 64  # a "word" longer than this is released anyway: the hold-back stays bounded


def fold(word: str) -> str:
    """Case- and accent-insensitive form used for matching."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def parse_blocklist(text: str) -> list[str]:
    """One entry per line; `#` starts a comment; a trailing `*` matches every word with that prefix."""
    entries = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            entries.append(entry)
    return entries


class Censor:
    """Masks blocked words in a token stream.

    Tokens split words (`"fu"`, `"ck"`), so while enabled the censor holds back the trailing partial
    word until a word boundary arrives, then releases the text with blocked words masked. Disabled (an
    empty list, the default) it passes text through untouched and holds nothing.
    """

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.words: set[str] = set()
        self.prefixes: tuple[str, ...] = ()
        prefixes = []
        for entry in entries:
            if entry.endswith("*") and len(entry) > 1:
                prefixes.append(fold(entry[:-1]))
            elif entry:
                self.words.add(fold(entry))
        self.prefixes = tuple(prefixes)
        self.enabled = bool(self.words or self.prefixes)
        self._held = ""
        self.masked = 0  # words masked, in total

    def reset(self) -> None:
        self._held = ""

    def blocked(self, word: str) -> bool:
        folded = fold(word)
        return folded in self.words or (bool(self.prefixes) and folded.startswith(self.prefixes))

    def _mask(self, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            if self.blocked(m.group()):
                self.masked += 1
                return MASKED * len(m.group())
            return m.group()

        return _WORD.sub(sub, text)

    def feed(self, text: str) -> str:
        """Text safe to show now (blocked words masked); a trailing partial word is held back."""
        if not self.enabled:
            return text
        buf = self._held + text
        cut = len(buf)
        while cut > 0 and (buf[cut - 1].isalnum() or buf[cut - 1] == "_"):
            cut -= 1
        if len(buf) - cut > HOLD_LIMIT:
            cut = len(buf)
        self._held = buf[cut:]
        return self._mask(buf[:cut])

    def flush(self) -> str:
        """Release what is held (at the end of a life)."""
        held, self._held = self._held, ""
        return self._mask(held) if held else ""
