"""The mechanical change a finding asks for, as data: what ``validate --fix`` acts on.

A finding reaches --fix as its seven plain fields (the cache and the worker processes carry
nothing else: perfile.DiagRow), so the change it asks for travels in its hint. This module is
the one place that writes those hints (structure, loader and valuechecks call it) and reads
them back (`of`), so rewording a hint here rewords what --fix reads, and a message can say
anything without turning a fix off.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from .diagnostics import Diagnostic


class Kind(Enum):
    QUOTE = "quote"  # Y005: quote the scalar so every YAML reader keeps it text
    BOOL = "bool"  # Y009, C002: write the boolean word true or false, plain
    UNQUOTE = "unquote"  # C002: write the whole number without its quotes


class Remedy(NamedTuple):
    """One finding's fix: what to do, and what the finding saw (to tell a stale finding)."""

    kind: Kind
    text: str | None = None  # QUOTE: the scalar as written (None under secrets:, never shown)
    key: str | None = None  # BOOL: the key the value is under
    word: str | None = None  # BOOL: "true" or "false"


_QUOTE = "quote it to keep it text: "
_QUOTE_KEY = "quote it: "
_QUOTE_SECRET = "quote it"
UNQUOTE_HINT = "write the number unquoted"


def quote_hint(raw: str | None) -> str:
    """Y005's hint for a value YAML 1.1 types where text was meant (RAW None: under secrets:)."""
    return _QUOTE_SECRET if raw is None else f'{_QUOTE}"{raw}"'


def quote_key_hint(raw: str) -> str:
    """Y005's hint for a mapping key YAML 1.1 reads as something other than text."""
    return f'{_QUOTE_KEY}"{raw}"'


def bool_hint(key: str, word: str) -> str:
    """Y009's and C002's hint for a bool key: the line to write (WORD: true or false)."""
    return f"write {key}: {word}"


def of(d: Diagnostic) -> Remedy | None:
    """The fix finding D asks for, or None when it names no mechanical change."""
    hint = d.hint
    if hint is None:
        return None
    if d.code == "Y005":
        if hint == _QUOTE_SECRET:
            return Remedy(Kind.QUOTE)
        for prefix in (_QUOTE, _QUOTE_KEY):
            if hint.startswith(prefix + '"') and hint.endswith('"') and len(hint) > len(prefix) + 1:
                return Remedy(Kind.QUOTE, hint[len(prefix) + 1 : -1])
        return None
    if d.code == "C002" and hint == UNQUOTE_HINT:
        return Remedy(Kind.UNQUOTE)
    if d.code in ("Y009", "C002") and hint.startswith("write "):
        key, sep, word = hint[len("write ") :].rpartition(": ")
        if sep and word in ("true", "false"):
            return Remedy(Kind.BOOL, key=key, word=word)
    return None
