"""Scalar typing and text forms as sops's Go code has them (go-yaml v3, strconv, time).

sops types YAML scalars with go-yaml v3, not YAML 1.1: ``yes``/``on`` are strings, ``0o17`` and
``0123`` are ints, unquoted timestamps are times. The type decides the ``type:`` tag and the bytes
that are encrypted and hashed into the MAC, so a native implementation must type the same way.
"""

from __future__ import annotations

import calendar
import math
import re
from decimal import Decimal

from ..nodes import Scalar

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1


class Timestamp(str):
    """A YAML timestamp, kept as its canonical RFC 3339 text (Go ``time.MarshalText``).

    A ``str`` so that downstream code sees timestamps as text (like the repository loader does),
    while sops writers still know to tag it ``type:time`` and to leave it unquoted.
    """

    __slots__ = ()


_RESOLVE_MAP: dict[str, Scalar] = {}
for _words, _value in (
    (("true", "True", "TRUE"), True),
    (("false", "False", "FALSE"), False),
    (("", "~", "null", "Null", "NULL"), None),
    ((".nan", ".NaN", ".NAN"), math.nan),
    ((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    (("-.inf", "-.Inf", "-.INF"), -math.inf),
):
    for _w in _words:
        _RESOLVE_MAP[_w] = _value

_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?\Z")
_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def _go_parse_int(text: str) -> int | None:
    """strconv.ParseInt/ParseUint(text, 0, 64) without the range check (None if invalid)."""
    sign = 1
    s = text
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    base = 10
    if len(s) > 1 and s[0] == "0":
        p = s[1].lower()
        if p in "xob":
            base = {"x": 16, "o": 8, "b": 2}[p]
            s = s[2:]
        else:
            base = 8
            s = s[1:]
    if not s or any(c not in _DIGITS[base] for c in s):
        return None
    return sign * int(s, base)


def resolve_plain(text: str) -> Scalar:
    """The value go-yaml v3 gives an untagged plain scalar (str, int, float, bool, None, Timestamp).

    Raises ValueError for integers that only fit uint64: sops cannot walk them.
    """
    if text in _RESOLVE_MAP:
        return _RESOLVE_MAP[text]
    c = text[0]
    if c == ".":
        return float(text) if _DOT_FLOAT.match(text) else text
    if c not in "+-0123456789":
        return text
    ts = parse_timestamp(text)
    if ts is not None:
        return ts
    plain = text.replace("_", "")
    n = _go_parse_int(plain)
    if n is not None:
        if INT64_MIN <= n <= INT64_MAX:
            return n
        if 0 <= n <= UINT64_MAX:
            raise ValueError("integer does not fit int64 (sops cannot encrypt uint64 values)")
    if _YAML_FLOAT.match(plain):
        return float(plain)
    return text


_TS = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    r"(?:([Tt ])([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[.,]([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})?)?\Z"
)


def parse_timestamp(text: str) -> Timestamp | None:
    """go-yaml v3's timestamp parsing (its four Go layouts), as canonical RFC 3339 text."""
    m = _TS.match(text)
    if m is None:
        return None
    y, mo, d, sep, hh, mi, ss, frac, zone = m.groups()
    if sep is None:
        hh = mi = ss = "0"
    elif sep in "Tt" and zone is None:
        return None  # the T layouts require a zone
    elif sep == " " and zone is not None:
        return None  # the space layout has no zone
    year, month, day, hour, minute, second = int(y), int(mo), int(d), int(hh), int(mi), int(ss)
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    return Timestamp(format_time(year, month, day, hour, minute, second, frac or "", zone or "Z"))


def format_time(y: int, mo: int, d: int, h: int, mi: int, s: int, frac: str, zone: str) -> str:
    """Go RFC3339Nano: fraction only when non-zero, trailing zeros cut; Z for a zero offset."""
    frac = frac[:9].rstrip("0")
    if zone in ("+00:00", "-00:00"):
        zone = "Z"
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{'.' + frac if frac else ''}{zone}"


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(Z|z|[+-][0-9]{2}:[0-9]{2})\Z"
)


def mac_aad(lastmodified: str) -> str | None:
    """The MAC's AAD: ``lastmodified`` re-formatted as Go ``time.RFC3339`` (seconds, zone kept)."""
    m = _RFC3339.match(lastmodified)
    if m is None:
        return None
    y, mo, d, h, mi, s, _frac, zone = m.groups()
    zone = "Z" if zone in ("Z", "z", "+00:00", "-00:00") else zone
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}{zone}"


def format_float(x: float) -> str:
    """Go ``strconv.FormatFloat(x, 'f', -1, 64)``: shortest digits, never an exponent."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    return format(Decimal(repr(x)).normalize(), "f")


_ATOI = re.compile(r"[+-]?[0-9]+\Z")
_PARSE_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)\Z", re.IGNORECASE
)
_TRUE = frozenset(("1", "t", "T", "TRUE", "true", "True"))
_FALSE = frozenset(("0", "f", "F", "FALSE", "false", "False"))


def parse_int(text: str) -> int:
    """Go ``strconv.Atoi`` on 64-bit."""
    if not _ATOI.match(text):
        raise ValueError("not an integer")
    n = int(text)
    if not INT64_MIN <= n <= INT64_MAX:
        raise ValueError("integer out of range")
    return n


def parse_float(text: str) -> float | int:
    """Go ``strconv.ParseFloat``; integral text comes back as int (what ``sops -d`` re-reads)."""
    if not _PARSE_FLOAT.match(text):
        raise ValueError("not a number")
    if _ATOI.match(text):
        return int(text)
    return float(text)


def parse_bool(text: str) -> bool:
    """Go ``strconv.ParseBool``."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not a boolean")
