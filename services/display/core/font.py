"""The 16-segment font: text in, one segment mask per cell out.

Segment order everywhere (dmadison/LED-Segment-ASCII): bit 0 = A ... bit 15 = U, bit 16 = DP.
A/B top halves, C/D right side, E/F bottom halves, G/H left side (clockwise from top left),
K/M/N upper diagonal/centre/diagonal, P/U right/left middle halves, R/S/T lower diagonal/centre/diagonal.

Text that is not printable ASCII is folded (an explicit map, then NFKD with combining marks dropped);
what still does not fit becomes one visible replacement glyph. One grapheme cluster never fills more
than one cell, so no input can expand on the wall.

A Font is the glyph table one wall can show: built from the segments its panel can light (a mask, given
as data: the core never looks at a panel) and a letter case. The frame is made with it, so the mirror
draws exactly what the wall lights.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Literal

SEGMENTS = "ABCDEFGHKMNPRSTU"  # bit i -> SEGMENTS[i]; bit 16 is DP
DP = 1 << 16
ALL_SEGMENTS = (1 << 17) - 1

# ---------------------------------------------------------------------------------------------
# The table below is data from dmadison/LED-Segment-ASCII (16-Segment/16-Segment-ASCII_HEX.txt,
# commit 497bffc094c866caa2cb729c33de9450d517ba22), index = ASCII code - 32. Its licence:
#
#   MIT License
#
#   Copyright (c) 2017 David Madison
#
#   Permission is hereby granted, free of charge, to any person obtaining a copy
#   of this software and associated documentation files (the "Software"), to deal
#   in the Software without restriction, including without limitation the rights
#   to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
#   copies of the Software, and to permit persons to whom the Software is
#   furnished to do so, subject to the following conditions:
#
#   The above copyright notice and this permission notice shall be included in all
#   copies or substantial portions of the Software.
#
#   THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
#   IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
#   FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
#   AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
#   LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
#   OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
#   SOFTWARE.
# ---------------------------------------------------------------------------------------------
ASCII_16SEG: tuple[int, ...] = (
    0x00000,  # (space)
    0x1000C,  # !
    0x00204,  # "
    0x0AA3C,  # #
    0x0AABB,  # $
    0x0EE99,  # %
    0x09371,  # &
    0x00200,  # '
    0x01400,  # (
    0x04100,  # )
    0x0FF00,  # *
    0x0AA00,  # +
    0x04000,  # ,
    0x08800,  # -
    0x10000,  # .
    0x04400,  # /
    0x044FF,  # 0
    0x0040C,  # 1
    0x08877,  # 2
    0x0083F,  # 3
    0x0888C,  # 4
    0x090B3,  # 5
    0x088FB,  # 6
    0x0000F,  # 7
    0x088FF,  # 8
    0x088BF,  # 9
    0x02200,  # :
    0x04200,  # ;
    0x09400,  # <
    0x08830,  # =
    0x04900,  # >
    0x12807,  # ?
    0x00AF7,  # @
    0x088CF,  # A
    0x02A3F,  # B
    0x000F3,  # C
    0x0223F,  # D
    0x080F3,  # E
    0x080C3,  # F
    0x008FB,  # G
    0x088CC,  # H
    0x02233,  # I
    0x0007C,  # J
    0x094C0,  # K
    0x000F0,  # L
    0x005CC,  # M
    0x011CC,  # N
    0x000FF,  # O
    0x088C7,  # P
    0x010FF,  # Q
    0x098C7,  # R
    0x088BB,  # S
    0x02203,  # T
    0x000FC,  # U
    0x044C0,  # V
    0x050CC,  # W
    0x05500,  # X
    0x088BC,  # Y
    0x04433,  # Z
    0x02212,  # [
    0x01100,  # \
    0x02221,  # ]
    0x05000,  # ^
    0x00030,  # _
    0x00100,  # `
    0x0A070,  # a
    0x0A0E0,  # b
    0x08060,  # c
    0x0281C,  # d
    0x0C060,  # e
    0x0AA02,  # f
    0x0A2A1,  # g
    0x0A0C0,  # h
    0x02000,  # i
    0x02260,  # j
    0x03600,  # k
    0x000C0,  # l
    0x0A848,  # m
    0x0A040,  # n
    0x0A060,  # o
    0x082C1,  # p
    0x0A281,  # q
    0x08040,  # r
    0x0A0A1,  # s
    0x080E0,  # t
    0x02060,  # u
    0x04040,  # v
    0x05048,  # w
    0x05500,  # x
    0x00A1C,  # y
    0x0C020,  # z
    0x0A212,  # {
    0x02200,  # |
    0x02A21,  # }
    0x0CC00,  # ~
    0x00000,  # (del)
)
# --------------------------------------------------------------------------- end of MIT data

# Cell keys beyond ASCII; the layout works on strings of cell keys (one character = one cell).
REPLACEMENT = "\ufffd"
ELLIPSIS = "\u2026"
ESZETT = "\u00df"
MASKED = "*"  # what a blocked word's letters become

# dmadison's no-decimal-point set (16-Segment-ASCII_HEX-NDP.txt, same commit and licence) is the table
# above without DP, except '.', which moves to segment R. Derived here rather than copied a second time.
SEGMENT_R = 1 << 12
NDP_DOT = 1 << 4  # segment E, the right half of the bottom bar: the full stop on a panel without DP
ASCII_16SEG_NDP: tuple[int, ...] = tuple(
    SEGMENT_R if chr(32 + i) == "." else m & ~DP for i, m in enumerate(ASCII_16SEG)
)

LetterCase = Literal["upper", "as-written"]


def glyph_table(segments: int = ALL_SEGMENTS, case: LetterCase = "as-written") -> dict[str, int]:
    """Every cell key's mask as a panel that lights only `segments` shows it.

    Without DP the NDP set is used and '.' is drawn with segment E, so it stays visible; every other
    glyph keeps only the segments the panel has. `case="upper"` draws every letter as a capital (the
    text itself is unchanged).
    """
    dp = bool(segments & DP)
    table = ASCII_16SEG if dp else ASCII_16SEG_NDP
    glyphs = {chr(32 + i): m & segments for i, m in enumerate(table[:95])}  # DEL is no cell
    if not dp:
        # ours, not the NDP set's: its '.' on R (a half diagonal) read as a backslash on the mirror;
        # the right half of the bottom bar reads as a full stop
        glyphs["."] = NDP_DOT & segments or glyphs["."]
    # Our own glyphs (not from the MIT table).
    glyphs[REPLACEMENT] = (0x000FF | 0x00100 | 0x00400 | 0x01000 | 0x04000) & segments  # boxed X: "missing"
    # E, F and the dot: three marks along the baseline; without DP, the two halves of the bottom bar
    glyphs[ELLIPSIS] = (0x00010 | 0x00020 | DP) & segments
    glyphs[ESZETT] = 0x008DF & segments  # A B C D E G H P: a B with its lower left opened
    if case == "upper":
        for code in range(ord("a"), ord("z") + 1):
            glyphs[chr(code)] = glyphs[chr(code).upper()]
    return glyphs


class Font:
    """The glyphs of one wall: what its panel can light, in the chosen letter case."""

    def __init__(self, segments: int = ALL_SEGMENTS, case: LetterCase = "as-written") -> None:
        self.segments = segments & ALL_SEGMENTS
        self.case = case
        self.glyphs = glyph_table(self.segments, case)
        self._replacement = self.glyphs[REPLACEMENT]

    def mask(self, key: str) -> int:
        """The segment mask of one cell key; anything unknown shows the replacement glyph."""
        return self.glyphs.get(key, self._replacement)


FULL = Font()
GLYPHS: dict[str, int] = FULL.glyphs  # every segment, as written: the reference table

# Folded before NFKD: punctuation whose NFKD form is not ASCII (or not the readable one).
EXPLICIT: dict[str, str] = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u00b4\u02bc", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\u00ad", "-"),
    "\u2039": "<",
    "\u203a": ">",
    "\u2026": ELLIPSIS,
    "\u00df": ESZETT,
    "\u1e9e": ESZETT,
    "\u2022": "*",
    "\u00b7": ".",
    "\u00d7": "x",
    "\u00f7": "/",
    "\u00f8": "o",
    "\u00d8": "O",
    "\u0142": "l",
    "\u0141": "L",
    "\u0111": "d",
    "\u0110": "D",
    "\u0131": "i",
    "\u00e6": "e",
    "\u00c6": "E",
    "\u0153": "e",
    "\u0152": "E",
    "\u00f0": "d",
    "\u00fe": "p",
}

_ZWJ = "\u200d"


def _extends(ch: str) -> bool:
    """True if `ch` continues the grapheme cluster before it (an approximation of UAX #29)."""
    o = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or 0xFE00 <= o <= 0xFE0F  # variation selectors
        or 0xE0100 <= o <= 0xE01EF
        or 0x1F3FB <= o <= 0x1F3FF  # emoji skin tones
        or 0xE0020 <= o <= 0xE007F  # emoji tag sequences
        or ch == _ZWJ
    )


def _is_regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def graphemes(text: str) -> Iterator[str]:
    """Split `text` into (approximate) grapheme clusters: base + marks, ZWJ sequences, flag pairs, CRLF."""
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        if text[i] == "\r" and j < n and text[j] == "\n":
            j += 1
        elif _is_regional(text[i]) and j < n and _is_regional(text[j]):
            j += 1
        while j < n and _extends(text[j]):
            # a ZWJ glues the next character onto this cluster
            j += 2 if text[j] == _ZWJ and j + 1 < n else 1
        yield text[i:j]
        i = j


def fold_cluster(cluster: str) -> str:
    """One grapheme cluster -> one cell key, or "" for invisible ones (controls, zero-width)."""
    base = cluster[0]
    if " " <= base <= "~":
        return base  # printable ASCII; trailing combining marks are dropped
    if base.isspace():
        return " "
    if base in EXPLICIT:
        return EXPLICIT[base]
    if unicodedata.category(base) in ("Cc", "Cf", "Cs") and len(cluster) == 1:
        return ""  # controls, zero-width marks, lone surrogates: nothing to show
    folded = "".join(c for c in unicodedata.normalize("NFKD", cluster) if not unicodedata.combining(c))
    if len(folded) == 1 and " " <= folded <= "~":
        return folded
    if folded and folded.isspace():
        return " "
    return REPLACEMENT


def to_cells(text: str) -> str:
    """Text -> a string of cell keys (each a key of GLYPHS), one per visible grapheme cluster."""
    if text.isascii() and text.isprintable():
        return text  # the common case, fast
    return "".join(fold_cluster(c) for c in graphemes(text))


def mask(key: str) -> int:
    """The segment mask of one cell key in the full font, as written."""
    return FULL.mask(key)
