"""Untrusted text made safe for the output it lands in: terminal/log, GitHub workflow commands,
markdown, HTML and JSON.

Names and values come from repositories (a fork's pull request) and from Bifrost servers.
Printed raw, a name can hold terminal escapes, a newline that starts a forged log line, a
GitHub workflow command (``::add-mask::``, ``::stop-commands::``), a bidi override that
shows text in another order, or an HTML comment that hides the rest of a PR comment.
Every renderer passes such text through one of these functions; nothing else escapes.
"""

from __future__ import annotations

import html
import json
import re

#: Characters that are never shown as themselves: C0 controls, DEL, C1 controls, line and
#: paragraph separators, bidi embeddings/overrides/isolates and marks, zero-width characters
#: and the byte-order mark (text that reads differently from what it is).
UNSAFE_CHARS = (
    "\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
)
#: Lone surrogates too: a file name that is not UTF-8 reaches us as one (surrogateescape), and
#: printed raw it is an invalid byte, or a crash on a strict UTF-8 stream.
_UNSAFE = re.compile(f"[{UNSAFE_CHARS}\ud800-\udfff]")
#: GitHub Actions reads a line as a workflow command when it starts (after blanks) with "::",
#: and the runner's old syntax "##[" anywhere in a line. Escaped text holds no line break, so
#: "::" can only start a line where it starts the text or follows a blank: only there is it
#: broken (``http://[::1]`` stays readable).
_COMMAND = re.compile(r"(?:^|(?<=\s))::|##\[")


def has_unsafe(text: str) -> bool:
    """True when TEXT holds a character that `term` would have to escape."""
    return _UNSAFE.search(text) is not None


def _code(ch: str) -> str:
    n = ord(ch)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def term(text: str) -> str:
    """Text for a terminal or a CI log line: unsafe characters as visible ``\\xNN``/``\\uNNNN``
    escapes, and workflow-command markers broken (a leading ``::`` shows as ``:\\x3a``)."""
    text = _UNSAFE.sub(lambda m: _code(m.group()), text)
    return _COMMAND.sub(lambda m: m.group()[0] + _code(m.group()[1]) + m.group()[2:], text)


def gh_data(text: str) -> str:
    """The message of a GitHub workflow command (after ``::``): one line, nothing unsafe."""
    text = _UNSAFE.sub(lambda m: m.group() if m.group() in "\r\n" else _code(m.group()), text)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def gh_property(text: str) -> str:
    """A property value of a GitHub workflow command (``file=``, ``title=``)."""
    return gh_data(text).replace(":", "%3A").replace(",", "%2C")


def html_text(text: str) -> str:
    """Text inside HTML (or markdown's inline HTML): tags, entities and quotes escaped."""
    return html.escape(term(text), quote=True)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>-])")


def md_text(text: str) -> str:
    """Plain text in markdown (a table cell, a heading): no markup, no HTML, one line. Quotes
    stay as they are: an entity such as ``&#x27;`` would show as such once ``#`` is escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(term(text), quote=False))


def md_code(text: str) -> str:
    """An inline code span in markdown that stays one span and one table cell."""
    text = term(text).replace("|", "\\|")
    if not text:  # a bare `` would pair with the next backticks on the line and open a span there
        return "` `"
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def to_json(doc: object, indent: int | None = 2, sort_keys: bool = False) -> str:
    """JSON with every non-ASCII character escaped, so it is safe in a terminal and a CI log
    too: DEL (ASCII, so json leaves it raw) and the runner's "##[" marker are written as
    ``\\u`` escapes, which changes no value (both can only stand inside a string)."""
    text = json.dumps(doc, indent=indent, sort_keys=sort_keys, ensure_ascii=True)
    return text.replace("\x7f", "\\u007f").replace("##[", "##\\u005b")


#: UNSAFE_CHARS spelled in ASCII (``\uXXXX``) for a JSON Schema ``pattern``: the same class in
#: Python, ECMAScript (editors) and Rust regex engines, with no invisible character in the file.
UNSAFE_PATTERN = "[" + "".join("-" if c == "-" else f"\\u{ord(c):04x}" for c in UNSAFE_CHARS) + "]"

_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def first_unsafe(text: str) -> str | None:
    """The first character of TEXT that `term` would have to escape, or None."""
    m = _UNSAFE.search(text)
    return m.group() if m else None


def describe(ch: str) -> str:
    """What an unsafe character is, for a finding: 'a control character', 'a bidi control'..."""
    n = ord(ch)
    if n < 0x20 or 0x7F <= n <= 0x9F:
        return "a control character"
    if ch in "\u2028\u2029":
        return "a line or paragraph separator"
    if _BIDI.match(ch):
        return "a bidi control"
    if 0xD800 <= n <= 0xDFFF:
        return "a byte that is not UTF-8"
    return "an invisible character"


def script_json(doc: object) -> str:
    """JSON to embed in an HTML ``<script type="application/json">`` block: `to_json` (all
    non-ASCII, U+2028/2029 included, as ``\\u`` escapes) with ``<``, ``>`` and ``&`` escaped
    too, so no name can close the script (``</script>``) or open a comment (``<!--``)."""
    text = to_json(doc, indent=None)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
