"""Cut secret values out of text a Bifrost server sends back, in every form it may quote them.

A server that echoes a request body in an error message may quote a secret raw, JSON-escaped
(``\\"``, ``\\\\``, ``\\n``, ``\\u00e9``, or non-ASCII kept as is), URL-encoded, as a Python repr
(of the text or of its UTF-8 bytes), HTML-escaped or in base64, and sometimes one of those inside
another (the body's JSON text quoted as a JSON string). Each form of each secret is replaced by
``<redacted>``. When that cannot be trusted (a secret shorter than :data:`SHORT`, which plain
text may hold by chance, shows up in any form, or a piece of :data:`SHORT` characters of a
longer secret survives: a server that cut the value short or re-encoded it some other way), the
server's message is not shown at all (:meth:`Scrubber.clean` returns None).
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from typing import NamedTuple

from .. import escape
from ..bundleformat import REDACTED

#: Secrets shorter than this are matched whole only, and their presence withholds the message;
#: longer ones are also looked for in pieces this long.
SHORT = 8
#: Server text longer than this is not searched: it is withheld (real error messages are short).
MAX_TEXT = 8192


def _py(text: str, quote: str, ascii_only: bool) -> str:
    """TEXT as Python's repr()/ascii() writes it between QUOTE characters."""
    out = []
    for ch in text:
        if ch in ("\\", quote):
            out.append("\\" + ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif (ascii_only and ord(ch) > 0x7E) or not ch.isprintable():
            n = ord(ch)
            out.append(f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}")
        else:
            out.append(ch)
    return "".join(out)


def _py_bytes(text: str, quote: str) -> str:
    """TEXT's UTF-8 bytes as Python's bytes repr writes them between QUOTE characters."""
    out = []
    for b in text.encode("utf-8", "surrogatepass"):
        ch = chr(b)
        if ch in ("\\", quote):
            out.append("\\" + ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif 0x20 <= b < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def _json(text: str, ascii_only: bool) -> str:
    return json.dumps(text, ensure_ascii=ascii_only)[1:-1]


#: Encoders a server (or a framework under it) applies to a string it quotes.
_ENCODERS: tuple[Callable[[str], str], ...] = (
    lambda s: _json(s, True),
    lambda s: _json(s, False),
    lambda s: _json(s, True).replace("/", "\\/"),  # PHP and some Java encoders
    lambda s: _json(s, True).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"),  # Go
    lambda s: urllib.parse.quote(s, safe=""),
    lambda s: urllib.parse.quote(s, safe="/"),
    lambda s: urllib.parse.quote(s, safe="!~*'()"),  # JavaScript's encodeURIComponent
    lambda s: urllib.parse.quote_plus(s, safe=""),
    lambda s: _py(s, "'", False),
    lambda s: _py(s, '"', False),
    lambda s: _py(s, "'", True),
    lambda s: _py(s, '"', True),
    lambda s: _py_bytes(s, "'"),
    lambda s: _py_bytes(s, '"'),
    lambda s: html.escape(s, quote=True),
    escape.term,
)
#: Encoders applied a second time, on top of any of the above (a JSON body quoted as a string).
_OUTER: tuple[Callable[[str], str], ...] = tuple(_ENCODERS[i] for i in (0, 1, 4, 7, 8, 12))

_HEX = re.compile(r"%[0-9A-F]{2}|\\u[0-9a-f]{4}|\\x[0-9a-f]{2}")


def _other_case(form: str) -> str:
    """The same escapes with hex digits in the other case (``%C3%A9``/``%c3%a9``, ``\\u00e9``/``\\u00E9``)."""

    def swap(m: re.Match[str]) -> str:
        k = 1 if m.group().startswith("%") else 2
        return m.group()[:k] + m.group()[k:].swapcase()

    return _HEX.sub(swap, form)


def _base64(text: str) -> set[str]:
    """The base64 text that holds TEXT wherever it sits in an encoded stream (3 alignments)."""
    data = text.encode("utf-8", "surrogatepass")
    found: set[str] = set()
    for k in range(3):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            text = enc(b"\0" * k + data).decode("ascii")
            start, end = -(-8 * k // 6), 8 * (k + len(data)) // 6
            if end - start >= SHORT:
                found.add(text[start:end])
    return found


class Forms(NamedTuple):
    #: the secret as each encoder writes it once (pieces of these are looked for too)
    first: frozenset[str]
    #: those, one encoding inside another, other-case hex escapes, base64
    every: frozenset[str]


def forms(secret: str) -> Forms:
    """Every form of SECRET :class:`Scrubber` looks for."""
    first = {secret, *(enc(secret) for enc in _ENCODERS)}
    every = first | {outer(f) for f in first for outer in _OUTER}
    every |= {_other_case(f) for f in every}
    if len(secret) >= SHORT:  # base64 of the text, and of it as JSON and URLs quote it
        for f in first:
            every |= _base64(f)
    return Forms(frozenset(f for f in first if f), frozenset(f for f in every if f))


class _Index(NamedTuple):
    #: forms of SHORT characters or more, by their first SHORT characters
    anchored: dict[str, tuple[str, ...]]
    #: forms of 4 to SHORT-1 characters (cut out, but shorter ones are not)
    small: tuple[str, ...]
    #: every form of a secret shorter than SHORT: its presence withholds a server message
    short: tuple[str, ...]
    #: every piece of SHORT characters of the first forms of longer secrets
    pieces: frozenset[str]


class Scrubber:
    """The secret values of a run; thread-safe. Holds nothing printable (no repr of values)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._forms: dict[str, Forms] = {}
        self._index: _Index | None = None

    def __repr__(self) -> str:
        return f"Scrubber({len(self._forms)} values)"

    def add(self, values: Iterable[object]) -> None:
        """Values to cut out: text, and numbers as they are written (booleans are not secret)."""
        with self._lock:
            for v in values:
                if isinstance(v, bool):
                    continue
                text = json.dumps(v) if isinstance(v, (int, float)) else v
                if isinstance(text, str) and text and text not in self._forms:
                    self._forms[text] = forms(text)
                    self._index = None

    def _indexed(self) -> _Index:
        with self._lock:
            if self._index is None:
                anchored: dict[str, set[str]] = {}
                small: set[str] = set()
                short: set[str] = set()
                pieces: set[str] = set()
                for secret, f in self._forms.items():
                    if len(secret) < SHORT:
                        short |= f.every
                    else:
                        pieces.update(x[i : i + SHORT] for x in f.first for i in range(len(x) - SHORT + 1))
                    for x in f.every:
                        if len(x) >= SHORT:
                            anchored.setdefault(x[:SHORT], set()).add(x)
                        elif len(x) >= 4:
                            small.add(x)
                self._index = _Index(
                    {k: tuple(v) for k, v in anchored.items()},
                    tuple(small),
                    tuple(short),
                    frozenset(pieces),
                )
            return self._index

    def scrub(self, text: str) -> str:
        """TEXT with every form of every secret (of 4 characters or more) replaced."""
        index = self._indexed()
        found = {x for x in index.small if x in text}
        for i in range(len(text) - SHORT + 1):
            found.update(index.anchored.get(text[i : i + SHORT], ()))
        for form in sorted(found, key=len, reverse=True):
            text = text.replace(form, REDACTED)
        return text

    def clean(self, text: str) -> str | None:
        """Server TEXT scrubbed, or None when a secret may still be in it: show nothing then."""
        if len(text) > MAX_TEXT:
            return None
        index = self._indexed()
        if any(form in text for form in index.short):
            return None
        text = self.scrub(text)
        if any(text[i : i + SHORT] in index.pieces for i in range(len(text) - SHORT + 1)):
            return None
        return text
