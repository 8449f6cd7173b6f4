"""What a life's words were like, judged lexically: pure functions of the text, no model, no I/O.

The judge reads text only; it knows no grammar, so every rule is a rule about words and characters,
and each is written down here so a number can be checked by hand.

- A **token** here is a word token of the judge, not a model token: a run of letters or digits,
  possibly joined by apostrophes (``I'm``, ``don't``), lowercased. Punctuation and markup are not tokens.
- A **paragraph** is a line with at least one token: the text split at line breaks (one or more). The
  mind's frames write one paragraph per line with blank lines between; a model that writes no line
  break writes one paragraph; a ``---`` rule is no paragraph.
- A paragraph is **first person about the speaker** when, counting only the words outside double
  quotes (dialogue is someone else speaking):
  1. it holds a first-person singular subject: ``I`` or one of its contractions (``I'm``, ``I've``,
     ``I'd``, ``I'll``);
  2. first-person singular words (``I``, ``me``, ``my``, ``mine``, ``myself`` and the contractions) are
     at least ``FIRST_PERSON_DENSITY`` (4 %, one in 25) of its tokens: a passing "I think" in a long
     paragraph about something else does not make it about the speaker;
  3. they are at least as many as the third-person personal words (``he``, ``she``, ``they`` and their
     forms): a first-person story about someone else ("I opened the door and she said ...") is about her.
  ``we``/``us`` do not count: the speaker is one.
- **Distinct-word ratio**: distinct tokens / tokens in each full window of ``WINDOW`` (500) tokens, the
  mean over the windows. The ratio falls as a text grows, so only equal windows compare; a text shorter
  than one window is judged as one window of its own length (and reads higher than a long one would).
- **Longest verbatim repeated sentence**: sentences are the text split after ``.``, ``!``, ``?`` (and
  ``…``) followed by whitespace, and at line breaks; whitespace inside a sentence is collapsed, nothing
  else is changed (case and punctuation count). The longest (in characters) that occurs twice or more.
- **Markup per 1,000 tokens**: HTML tags (``<h2>``, ``</p>``), HTML entities (``&nbsp;``), URLs
  (``http://``, ``https://``, ``www.``), Markdown headings (a line starting with ``#``), rules (a line of
  ``---``, ``***`` or ``___``), code fences (a line starting with three backquotes), links
  ``[text](target)`` and ``**`` emphasis markers: the signs of a model that drifted into web
  boilerplate. Each rule counts its matches (a URL inside a link counts as a link and a URL).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

WINDOW = 500  # tokens per distinct-word window
FIRST_PERSON_DENSITY = 0.04  # first-person singular words per token for a paragraph to be about the speaker

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_LINES = re.compile(r"[\r\n]+")
_QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|[\r\n]+")
_SPACE = re.compile(r"\s+")

_I_SUBJECT = frozenset({"i", "i'm", "i've", "i'd", "i'll"})
_FIRST_PERSON = _I_SUBJECT | {"me", "my", "mine", "myself"}
_THIRD_PERSON = frozenset(
    {"he", "him", "his", "himself", "she", "her", "hers", "herself", "they", "them", "their", "theirs", "themselves"}
)

_MARKUP = (
    re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>"),  # HTML tags
    re.compile(r"&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);"),  # HTML entities
    re.compile(r"\bhttps?://\S+|\bwww\.\S+", re.IGNORECASE),  # URLs
    re.compile(r"^[ \t]*#{1,6}[ \t]", re.MULTILINE),  # Markdown headings
    re.compile(r"^[ \t]*(?:-{3,}|\*{3,}|_{3,})[ \t]*$", re.MULTILINE),  # rules
    re.compile(r"^[ \t]*```", re.MULTILINE),  # code fences
    re.compile(r"\[[^\]\n]*\]\([^)\s]*\)"),  # Markdown links
    re.compile(r"\*\*"),  # Markdown emphasis (each pair of stars)
)


def tokens(text: str) -> list[str]:
    """The text's word tokens, lowercased, with curly apostrophes made straight."""
    return [t.lower().replace("’", "'") for t in _TOKEN.findall(text)]


def paragraphs(text: str) -> list[str]:
    """The text's paragraphs: its lines with at least one token, stripped."""
    return [p.strip() for p in _LINES.split(text) if _TOKEN.search(p)]


def is_first_person(paragraph: str) -> bool:
    """True when a paragraph is written in the first person about the speaker (the module's rule)."""
    words = tokens(_QUOTED.sub(" ", paragraph))
    if not words:
        return False
    first = sum(1 for w in words if w in _FIRST_PERSON)
    third = sum(1 for w in words if w in _THIRD_PERSON)
    subject = any(w in _I_SUBJECT for w in words)
    return subject and first >= FIRST_PERSON_DENSITY * len(words) and first >= third


def first_person_share(text: str) -> float | None:
    """The share of paragraphs written in the first person about the speaker; None for a text with none."""
    paras = paragraphs(text)
    if not paras:
        return None
    return sum(1 for p in paras if is_first_person(p)) / len(paras)


def distinct_word_ratio(text: str, window: int = WINDOW) -> float | None:
    """Mean distinct/total tokens over full windows of ``window`` tokens (one short window for a short
    text); None for a text with no tokens."""
    words = tokens(text)
    if not words:
        return None
    if len(words) < window:
        return len(set(words)) / len(words)
    ratios = [len(set(words[i : i + window])) / window for i in range(0, len(words) - window + 1, window)]
    return sum(ratios) / len(ratios)


def sentences(text: str) -> list[str]:
    """The text's sentences, whitespace collapsed, empty ones dropped."""
    return [s for s in (_SPACE.sub(" ", part).strip() for part in _SENTENCE_END.split(text)) if s]


@dataclass(frozen=True, slots=True)
class Repeat:
    """A sentence the text says verbatim more than once."""

    sentence: str
    count: int


def longest_repeat(text: str) -> Repeat | None:
    """The longest sentence (in characters) that occurs at least twice; None when none repeats. Ties go
    to the sentence said first."""
    counts = Counter(sentences(text))
    best: Repeat | None = None
    for sentence, count in counts.items():  # insertion order: first said first
        if count >= 2 and (best is None or len(sentence) > len(best.sentence)):
            best = Repeat(sentence, count)
    return best


def markup_count(text: str) -> int:
    """Occurrences of markup and URLs (the module's list)."""
    return sum(len(pattern.findall(text)) for pattern in _MARKUP)


def markup_per_1000(text: str) -> float | None:
    """Markup and URLs per 1,000 tokens; None for a text with no tokens."""
    n = len(tokens(text))
    return 1000 * markup_count(text) / n if n else None


@dataclass(frozen=True, slots=True)
class Judgement:
    """Everything the judge says about one text."""

    tokens: int
    first_person_share: float | None
    distinct_word_ratio: float | None
    longest_repeat: Repeat | None
    markup_per_1000: float | None


def judge(text: str, window: int = WINDOW) -> Judgement:
    """The judge's four numbers for a text."""
    return Judgement(
        tokens=len(tokens(text)),
        first_person_share=first_person_share(text),
        distinct_word_ratio=distinct_word_ratio(text, window),
        longest_repeat=longest_repeat(text),
        markup_per_1000=markup_per_1000(text),
    )
