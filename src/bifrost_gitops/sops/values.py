"""The ``ENC[AES256_GCM,...]`` value format: parse, encrypt and decrypt one leaf.

AES-256-GCM with the file's data key, a 32-byte IV (what sops writes) and the value's path
string as AAD; the plaintext is the Go text form of the value, the ``type`` tag says how to read
it back (spec sections 2-4).
"""

from __future__ import annotations

import binascii
import datetime as dt
import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from .gotypes import (
    INT64_MAX,
    INT64_MIN,
    Timestamp,
    format_float,
    format_time,
    parse_bool,
    parse_float,
    parse_int,
)

if TYPE_CHECKING:  # cryptography loads only when a value is opened or sealed (validate never does)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

IV_SIZE = 32
# sops's own regex: prefix match, greedy groups
_ENC = re.compile(r"ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
# the shape sops writes, which the greedy groups above can only split one way: read without
# their backtracking (a value that is not exactly this goes to _ENC)
_WRITTEN = re.compile(
    r"ENC\[AES256_GCM,data:([A-Za-z0-9+/=]+),iv:([A-Za-z0-9+/=]+),tag:([A-Za-z0-9+/=]+),type:([a-z]+)\]"
)
#: what one decrypted value can be (a Timestamp is a str)
Plain: TypeAlias = str | int | float | bool | bytes
TYPES = frozenset(("str", "int", "float", "bool", "time", "comment", "bytes"))


class ValueFormatError(ValueError):
    """Not a well-formed ENC[...] string (the message never contains the input)."""


class ValueAuthError(ValueError):
    """GCM authentication failed: wrong key, wrong path, or altered ciphertext/IV/tag."""


@dataclass(frozen=True, slots=True)
class EncValue:
    """One parsed ``ENC[...]`` value."""

    data: bytes
    iv: bytes
    tag: bytes
    type: str


def is_encrypted(value: object) -> bool:
    """Whether ``value`` looks like a sops ciphertext (cheap prefix test, then the regex)."""
    return isinstance(value, str) and value.startswith("ENC[AES256_GCM,") and bool(_ENC.match(value))


def parse(text: str) -> EncValue:
    """Split an ENC[...] string; raises ValueFormatError."""
    m = _WRITTEN.fullmatch(text) or _ENC.match(text)
    if m is None:
        raise ValueFormatError("value does not match sops' data format")
    try:
        # what base64.b64decode(g, validate=True) does, without its wrapper: a value has three
        data, iv, tag = (binascii.a2b_base64(g, strict_mode=True) for g in m.group(1, 2, 3))
    except (binascii.Error, ValueError):
        raise ValueFormatError("value has invalid base64 in data, iv or tag") from None
    typ = m.group(4)
    if typ not in TYPES:
        raise ValueFormatError("value has an unknown type tag")
    if len(tag) != 16 or not iv:
        raise ValueFormatError("value has a malformed iv or tag")
    return EncValue(data, iv, tag, typ)


def decrypt_bytes(aes: AESGCM, enc: EncValue, aad: str) -> bytes:
    """The plaintext bytes of one value; raises ValueAuthError."""
    try:
        return aes.decrypt(enc.iv, enc.data + enc.tag, aad.encode())
    except Exception as e:
        from cryptography.exceptions import InvalidTag

        if isinstance(e, InvalidTag):
            raise ValueAuthError("could not decrypt value: message authentication failed") from None
        raise


def from_plaintext(plain: bytes, typ: str) -> Plain:
    """The typed value of decrypted bytes (``float`` with integral text comes back as int)."""
    if typ == "bytes":
        return plain
    text = plain.decode("utf-8")
    if typ in ("str", "comment"):
        return text
    if typ == "int":
        return parse_int(text)
    if typ == "float":
        return parse_float(text)
    if typ == "bool":
        return parse_bool(text)
    if typ == "time":
        return Timestamp(text)
    raise ValueFormatError("unknown type tag")


def to_plaintext(value: object) -> tuple[bytes, str]:
    """(bytes, type tag) sops would encrypt for ``value``; also the bytes the MAC hashes."""
    if type(value) is str:  # the common case first
        return value.encode("utf-8"), "str"
    if isinstance(value, bool):
        return (b"True" if value else b"False"), "bool"
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("integer does not fit int64")
        return str(value).encode(), "int"
    if isinstance(value, float):
        return format_float(value).encode(), "float"
    if isinstance(value, Timestamp):
        return value.encode(), "time"
    if isinstance(value, str):
        return value.encode("utf-8"), "str"
    if isinstance(value, dt.datetime):
        return _datetime_text(value).encode(), "time"
    if isinstance(value, dt.date):
        return f"{value.isoformat()}T00:00:00Z".encode(), "time"
    if isinstance(value, bytes):
        return value, "bytes"
    raise TypeError(f"cannot encrypt a value of type {type(value).__name__}")


def _datetime_text(t: dt.datetime) -> str:
    off = t.utcoffset()
    if off is None or not off:
        zone = "Z"
    else:
        mins = int(off.total_seconds()) // 60
        sign = "-" if mins < 0 else "+"
        zone = f"{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"
    frac = f"{t.microsecond:06d}" if t.microsecond else ""
    return format_time(t.year, t.month, t.day, t.hour, t.minute, t.second, frac, zone)


#: the text of an ENC[...] value by type tag, filled with the base64 of data, IV and tag
_ENC_FORMATS = {t: b"ENC[AES256_GCM,data:%b,iv:%b,tag:%b,type:" + t.encode() + b"]" for t in TYPES}
_b64 = binascii.b2a_base64  # standard base64 with padding, as base64.b64encode (its wrapper skipped)
#: IVs drawn from the OS in one system call by :func:`fresh_ivs`
IV_BATCH = 256


def encrypt_bytes(aes: AESGCM, plain: bytes, typ: str, aad: str, iv: bytes | None = None) -> str:
    """The ENC[...] string of ``plain`` (fresh 32-byte IV unless one is given)."""
    if iv is None:
        iv = os.urandom(IV_SIZE)
    return enc_text(aes.encrypt(iv, plain, aad.encode()), iv, typ)


def enc_text(sealed: bytes, iv: bytes, typ: str) -> str:
    """The ENC[...] string of AES-GCM's output SEALED (ciphertext, then the 16-byte tag) made
    with IV: formatted as bytes in one step and decoded once (a bundle has many values)."""
    b64 = _b64
    return (
        _ENC_FORMATS[typ]
        % (b64(sealed[:-16], newline=False), b64(iv, newline=False), b64(sealed[-16:], newline=False))
    ).decode()


def fresh_ivs() -> Iterator[bytes]:
    """Endless fresh IVs for one document, IV_BATCH at a time from one system call (the bytes
    are the same kind os.urandom gives one at a time; a few hundred values are one call)."""
    return itertools.chain.from_iterable(_iv_batches())


def _iv_batches() -> Iterator[list[bytes]]:
    while True:
        pool = os.urandom(IV_SIZE * IV_BATCH)
        yield [pool[i : i + IV_SIZE] for i in range(0, len(pool), IV_SIZE)]
