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

from .. import escape

REDACTED = "<redacted>"
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
_OUTER: tuple[Callable[[str], str], ...] = tuple(_ENCODERS[i] for i in (0, 1, 4, 7, 8))

_HEX = re.compile(r"%[0-9A-F]{2}|\\u[0-9a-f]{4}|\\x[0-9a-f]{2}")


def _other_case(form: str) -> str:
    """The same escapes with hex digits in the other case (``%C3%A9``/``%c3%a9``, ``\\u00e9``/``\\u00E9``)."""

    def swap(m: re.Match[str]) -> str:
        k = 1 if m.group().startswith("%") else 2
        return m.group()[:k] + m.group()[k:].swapcase()

    return _HEX.sub(swap, form)


def _base64(secret: str) -> set[str]:
    """The base64 text that holds SECRET wherever it sits in an encoded stream (3 alignments)."""
    data = secret.encode("utf-8", "surrogatepass")
    found: set[str] = set()
    for k in range(3):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            text = enc(b"\0" * k + data).decode("ascii")
            start, end = -(-8 * k // 6), 8 * (k + len(data)) // 6
            if end - start >= SHORT:
                found.add(text[start:end])
    return found


def forms(secret: str) -> set[str]:
    """Every form of SECRET :class:`Scrubber` looks for."""
    first = {secret, *(enc(secret) for enc in _ENCODERS)}
    every = first | {outer(f) for f in first for outer in _OUTER}
    every |= {_other_case(f) for f in every}
    if len(secret) >= SHORT:
        every |= _base64(secret)
    return {f for f in every if f}


class Scrubber:
    """The secret values of a run; thread-safe. Holds nothing printable (no repr of values)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._cache: tuple[list[str], list[str], frozenset[str]] | None = None

    def __repr__(self) -> str:
        return f"Scrubber({len(self._secrets)} values)"

    def add(self, values: Iterable[object]) -> None:
        """Values to cut out: text, and numbers as they are written (booleans are not secret)."""
        with self._lock:
            for v in values:
                if isinstance(v, bool):
                    continue
                if isinstance(v, (int, float)):
                    v = json.dumps(v)
                if isinstance(v, str) and v and v not in self._secrets:
                    self._secrets.add(v)
                    self._cache = None

    def _compiled(self) -> tuple[list[str], list[str], frozenset[str]]:
        """(forms to replace, longest first; forms of short secrets; pieces of long secrets)."""
        with self._lock:
            if self._cache is None:
                replace: set[str] = set()
                short: set[str] = set()
                pieces: set[str] = set()
                for secret in self._secrets:
                    every = forms(secret)
                    if len(secret) < SHORT:
                        short |= every
                    else:
                        pieces.update(f[i : i + SHORT] for f in every for i in range(len(f) - SHORT + 1))
                    # short secrets are cut out too (from 4 characters), for text that is shown anyway
                    replace |= {f for f in every if len(f) >= 4}
                self._cache = (
                    sorted(replace, key=len, reverse=True),
                    sorted(short, key=len, reverse=True),
                    frozenset(pieces),
                )
            return self._cache

    def scrub(self, text: str) -> str:
        """TEXT with every form of every secret (of 4 characters or more) replaced."""
        replace, _short, _pieces = self._compiled()
        for form in replace:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def clean(self, text: str) -> str | None:
        """Server TEXT scrubbed, or None when a secret may still be in it: show nothing then."""
        if len(text) > MAX_TEXT:
            return None
        _replace, short, pieces = self._compiled()
        if any(form in text for form in short):
            return None
        text = self.scrub(text)
        if any(text[i : i + SHORT] in pieces for i in range(len(text) - SHORT + 1)):
            return None
        return text
