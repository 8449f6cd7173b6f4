"""The grid: a stream of cell keys laid out in rows x cols, word-wrapped, scrolling line by line."""

from __future__ import annotations

from display.core.font import FULL, Font


class Grid:
    """A typewriter's page of `rows` lines of `cols` cells.

    Text arrives as a stream, one cell key at a time, so a word is not known to be too long until it
    hits the edge: then the partial word moves to the next line. Only a word longer than a whole line
    is broken. When the bottom line is full the page scrolls up by one line.
    """

    def __init__(self, rows: int, cols: int, font: Font = FULL) -> None:
        if rows < 1 or cols < 1:
            raise ValueError("a grid needs at least one row and one column")
        self.rows = rows
        self.cols = cols
        self.font = font  # the wall's glyphs: what its panel can light
        self.clear()

    def clear(self) -> None:
        self.lines: list[list[str]] = [[] for _ in range(self.rows)]
        self.row = 0
        self._space_pending = False  # a space arrived at a full line: the next word starts a new line

    def write(self, keys: str) -> None:
        for key in keys:
            self._put(key)

    def _newline(self) -> None:
        self._space_pending = False
        if self.row < self.rows - 1:
            self.row += 1
        else:
            self.lines.pop(0)
            self.lines.append([])

    def _put(self, key: str) -> None:
        line = self.lines[self.row]
        if key == " ":
            if not line:
                return  # no line starts with a space
            if len(line) >= self.cols:
                self._space_pending = True
            else:
                line.append(" ")
            return
        if len(line) < self.cols:
            line.append(key)
            return
        if self._space_pending:
            self._newline()
            self.lines[self.row].append(key)
            return
        start = len(line)
        while start > 0 and line[start - 1] != " ":
            start -= 1
        if start == 0:  # the word fills the whole line: break it
            self._newline()
            self.lines[self.row].append(key)
            return
        word = line[start:]
        del line[start:]
        while line and line[-1] == " ":
            line.pop()
        self._newline()
        self.lines[self.row].extend(word)
        self.lines[self.row].append(key)

    def text(self) -> list[str]:
        """The visible lines as strings, padded to `cols` (for tests and logs)."""
        return ["".join(line).ljust(self.cols) for line in self.lines]

    def masks(self) -> tuple[int, ...]:
        out: list[int] = []
        mask = self.font.mask
        for line in self.lines:
            out.extend(mask(k) for k in line)
            out.extend((0,) * (self.cols - len(line)))
        return tuple(out)
