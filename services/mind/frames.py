"""Prompt frames: templates filled at birth with what is true of this installation.

A frame is a text file (services/mind/prompts/NAME.txt, or a path). Placeholders name facts the mind
knows at birth; a placeholder it does not know is an error at startup, never a guess on the wall:

    {model}         the model's name (its GGUF general.name, else the file's name)
    {parameters}    its parameter count in words ("268 million")
    {cores}         the processor cores this process may use
    {memory}        the machine's memory ("3.8 gigabytes")
    {memory_limit}  "limited to 700 megabytes", or "not limited" when no limit is in force
    {life}          the life number, from the mind's own counter (MIND_STATE_DIR/lives.json)
    {senses}        a sentence saying what the bracketed readings are, or nothing with MIND_SENSES=off

Lines starting with ``#!`` are settings of the frame, stripped from its text:

    #! ban < </ http # *** --     token texts kept out of the thought (a token containing one is banned)
    #! bias " I" 1.5              a logit bias for the tokens whose text is exactly this (JSON string)

The last paragraph of a frame is the opening of the thought: the first words the mind thinks. A chat
model gets the rest as its system prompt and this paragraph as the start of its own turn. Per-life
parts ({life}) belong on the frame's last line: the frame's cached state (mind.llama.frame_state) is
restored up to the last line end that every life shares, so a new life reads only that line. Stdlib
only: the mind reads its frame before pydantic loads."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
FACTS = ("model", "parameters", "cores", "memory", "memory_limit", "life", "senses")
DEFAULT_BANS = ("<", "</", "http", "#", "***", "--", "==", "__", "[", "]")
SENSES_SENTENCE = {
    "off": "",
    "gauge": " Between its paragraphs the machine itself writes the model's readings in square brackets: "
    "memory used, words thought so far, and time alive.",
    "gauge+past": " Between its paragraphs the machine itself writes the model's readings in square brackets: "
    "the life number, memory used, words thought so far, time alive, and how many tokens its last lives "
    "lasted.",
}
LIVES_FILE = "lives.json"
KEEP_LIFESPANS = 5


class FrameError(ValueError):
    """A frame that cannot be used as it is: unreadable, or naming a fact the mind cannot fill."""


@dataclass(frozen=True)
class Frame:
    """A frame as written: its name, its text without ``#!`` lines, and its token rules."""

    name: str
    template: str
    bans: tuple[str, ...] | None = None  # None: the defaults
    biases: tuple[tuple[str, float], ...] = ()

    def placeholders(self) -> set[str]:
        names = set()
        for _, name, spec, conv in string.Formatter().parse(self.template):
            if name is None:
                continue
            if not name.isidentifier() or spec or conv:
                raise FrameError(f"frame {self.name!r}: the placeholder {{{name}}} is not a plain fact name")
            names.add(name)
        return names

    def check(self) -> None:
        """Raise FrameError if the frame names a fact the mind does not know."""
        unknown = sorted(self.placeholders() - set(FACTS))
        if unknown:
            raise FrameError(
                f"frame {self.name!r} asks for {', '.join('{' + u + '}' for u in unknown)}, which the mind "
                f"cannot fill (it knows {', '.join('{' + f + '}' for f in FACTS)}); a frame states only what is true"
            )

    def fill(self, facts: dict[str, str]) -> FilledFrame:
        self.check()
        missing = sorted(n for n in self.placeholders() if facts.get(n) is None)
        if missing:
            raise FrameError(
                f"frame {self.name!r} needs {', '.join('{' + m + '}' for m in missing)}, which is not known "
                "in this life"
            )
        text = self.template.format_map({k: v for k, v in facts.items() if v is not None})
        return FilledFrame(self.name, text)


@dataclass(frozen=True)
class FilledFrame:
    name: str
    text: str
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.text.encode("utf-8")).hexdigest())

    def split(self) -> tuple[str, str]:
        """(everything before the last paragraph, the last paragraph: the thought's opening words)."""
        head, sep, opening = self.text.rstrip("\n").rpartition("\n\n")
        return (head, opening) if sep else ("", opening)


def parse_frame(name: str, raw: str) -> Frame:
    lines, bans, biases = [], None, []
    for line in raw.splitlines():
        if not line.startswith("#!"):
            lines.append(line)
            continue
        word, _, rest = line[2:].strip().partition(" ")
        if word == "ban":
            bans = (bans or ()) + tuple(rest.split())
        elif word == "bias":
            text, _, value = rest.rpartition(" ")
            try:
                biases.append((json.loads(text), float(value)))
            except (ValueError, TypeError):
                raise FrameError(f'frame {name!r}: "#! bias" wants a JSON string and a number: {line!r}') from None
        else:
            raise FrameError(f"frame {name!r}: unknown setting line {line!r} (known: #! ban, #! bias)")
    text = "\n".join(lines).strip("\n")
    if not text:
        raise FrameError(f"frame {name!r} is empty")
    return Frame(name, text, bans, tuple(biases))


def frame_path(name: str) -> Path:
    candidate = PROMPTS_DIR / f"{name}.txt"
    if "/" not in name and candidate.exists():
        return candidate
    return Path(name)


def frame_names(setting: str) -> list[str]:
    """MIND_PROMPT as a list: one frame, or several separated by commas (the lottery)."""
    names = [n.strip() for n in setting.split(",") if n.strip()]
    if not names:
        raise FrameError("MIND_PROMPT names no frame")
    return names


def draw_frame(setting: str, rng: random.Random | None = None) -> Frame:
    """One frame for this life: the lottery over MIND_PROMPT's names, each read and checked."""
    names = frame_names(setting)
    frames = [load_frame(n) for n in names]  # every frame checked, not only the one drawn
    return (rng or random.SystemRandom()).choice(frames)


def load_frame(name: str) -> Frame:
    path = frame_path(name)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FrameError(f"cannot read prompt frame {name!r} ({path}): {exc}") from exc
    frame = parse_frame(name, raw)
    frame.check()
    return frame


# -- the life counter --------------------------------------------------------------------------------


class LifeCounter:
    """The mind's own count of its lives, and how many tokens the last ones lasted: numbers only, in
    MIND_STATE_DIR/lives.json. A life never reads a past thought; it may know how many came before.
    The current life's tokens are written as it goes (a death by the kernel leaves no time to)."""

    def __init__(self, state_dir: str | os.PathLike) -> None:
        self.path = Path(state_dir) / LIVES_FILE
        self.life: int | None = None
        self.lifespans: list[int] = []
        self._written = -1

    def begin(self) -> int | None:
        """Count this life; its number, or None if the file cannot be written (logged)."""
        data = self._read()
        spans = [int(x) for x in data.get("lifespans", []) if isinstance(x, int) and x >= 0]
        current = data.get("current")
        if isinstance(current, int) and current > 0:
            spans.append(current)
        life = data.get("life") if isinstance(data.get("life"), int) else 0
        self.lifespans = spans[-KEEP_LIFESPANS:]
        self.life = life + 1
        if not self._write(0):
            self.life = None
        return self.life

    def record(self, tokens: int) -> None:
        """The current life has thought ``tokens`` so far."""
        if self.life is not None and tokens != self._written:
            self._write(tokens)

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("the life counter %s is unreadable (%s); counting from it anew", self.path, exc)
            return {}

    def _write(self, tokens: int) -> bool:
        data = {"life": self.life, "current": tokens, "lifespans": self.lifespans}
        tmp = self.path.with_name(f".{LIVES_FILE}.{os.getpid()}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot write the life counter %s: %s", self.path, exc)
            return False
        self._written = tokens
        return True


# -- facts ---------------------------------------------------------------------------------------------


def in_words(n: float) -> str:
    """268098176 -> '268 million'."""
    for size, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million"), (1e3, "thousand")):
        if n >= size:
            value = n / size
            return f"{value:.0f} {word}" if value >= 10 else f"{value:.1f} {word}".replace(".0 ", " ")
    return str(int(n))


def size_in_words(n: int) -> str:
    """734003200 -> '700 megabytes' (binary units, as memory limits are set)."""
    for shift, word in ((40, "terabytes"), (30, "gigabytes"), (20, "megabytes"), (10, "kilobytes")):
        if n >= 1 << shift:
            value = n / (1 << shift)
            text = f"{value:.0f}" if value >= 10 or math.isclose(value, round(value)) else f"{value:.1f}"
            return f"{text} {word}"
    return f"{n} bytes"


def machine_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass
class Birth:
    """What a life is born with besides its model: the frame drawn for it and its number."""

    frame: Frame
    senses: str
    counter: LifeCounter | None
    life_number: int | None
    limit: Callable[[], int | None]  # the memory limit in force, read when the frame is filled

    @classmethod
    def begin(cls, prompt: str, senses: str, state_dir: str, limit: Callable[[], int | None]) -> Birth:
        """Draw this life's frame and count the life. Raises FrameError."""
        frame = draw_frame(prompt)
        counter = LifeCounter(state_dir)
        number = counter.begin()
        if number is None and "life" in frame.placeholders():
            raise FrameError(
                f"frame {frame.name!r} states the life number, but the counter in {state_dir} cannot be written"
            )
        return cls(frame, senses, counter, number, limit)

    def facts(self, model_name: str | None = None, n_params: int | None = None) -> dict[str, str | None]:
        limit = self.limit()
        memory = machine_memory()
        return {
            "model": model_name,
            "parameters": in_words(n_params) if n_params else None,
            "cores": str(cores()),
            "memory": size_in_words(memory) if memory else None,
            "memory_limit": f"limited to {size_in_words(limit)}" if limit else "not limited",
            "life": str(self.life_number) if self.life_number is not None else None,
            "senses": SENSES_SENTENCE.get(self.senses, ""),
        }

    def fill(self, model_name: str | None = None, n_params: int | None = None) -> FilledFrame:
        return self.frame.fill(self.facts(model_name, n_params))
