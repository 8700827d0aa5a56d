"""Colour for people reading a terminal: the one place that decides whether to use it, and
the one place that holds its escape codes.

Text renderers escape untrusted text with :func:`~bifrost_gitops.escape.term` first and colour
the result afterwards, so a name can neither close a colour nor forge one (its ESC shows as
``\\x1b``). Machine formats (JSON, markdown, GitHub annotations) are never coloured.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import IO, Literal

Choice = Literal["auto", "always", "never"]
CHOICES: tuple[Choice, ...] = ("auto", "always", "never")


class Style(StrEnum):
    """An SGR escape sequence; NONE leaves a line as it is."""

    NONE = ""
    RED = "\x1b[31m"
    GREEN = "\x1b[32m"
    YELLOW = "\x1b[33m"
    BOLD = "\x1b[1m"
    DIM = "\x1b[2m"
    RED_BOLD = "\x1b[1;31m"


RESET = "\x1b[0m"


def _set(value: str | None) -> bool:
    """FORCE_COLOR / CLICOLOR_FORCE convention: set, not empty and not "0"."""
    return value is not None and value not in ("", "0")


def wanted(stream: IO[str], choice: Choice = "auto", environ: Mapping[str, str] | None = None) -> bool:
    """Whether output to STREAM gets colour: ``--color always|never`` decide; else NO_COLOR
    (any non-empty value) turns it off, FORCE_COLOR or CLICOLOR_FORCE turn it on even when
    STREAM is not a terminal, and otherwise a terminal (not TERM=dumb) gets it."""
    if choice != "auto":
        return choice == "always"
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if _set(env.get("FORCE_COLOR")) or _set(env.get("CLICOLOR_FORCE")):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty()) and env.get("TERM") != "dumb"


def paint(text: str, style: Style, on: bool) -> str:
    """TEXT (already escaped for the terminal) in STYLE when colour is ON."""
    return f"{style}{text}{RESET}" if on and style and text else text


def lines(rows: Iterable[tuple[str, Style]], on: bool) -> str:
    """Raw lines with their style as terminal text: each line escaped whole, then coloured."""
    from .escape import term

    return "".join(paint(term(text), style, on) + "\n" for text, style in rows)
