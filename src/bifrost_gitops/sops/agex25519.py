"""Open an age file wrapped to one of our X25519 keys in process, without pyrage's per-call cost.

Every sops file wraps its data key in its own small age file (its ``enc``), so one X25519
exchange per file is inherent. pyrage adds about 90 us around it per call (it derives the key's
public half again and parses the general case); a 5,000-file ``secrets check`` spends half its
decryption time there. This module opens only the one shape sops and age write for an X25519
recipient (armored, well-formed stanzas, one payload chunk), strictly per the age v1 format
(age-encryption.org/v1): header MAC and payload tag verified. Anything else, or any failure,
gives None and the caller asks pyrage, which then decides the result or the error as before.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

_BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----"
_END = "-----END AGE ENCRYPTED FILE-----"
_INTRO = b"age-encryption.org/v1\n"
_X25519_INFO = b"age-encryption.org/v1/X25519"
_COLUMNS = 64  # armor and stanza body lines
_CHUNK = 64 * 1024
_TAG = 16
_FILE_KEY = 16
_ARG = re.compile(rb"[\x21-\x7e]+")  # a stanza argument: visible ASCII, not empty
#: a stanza: "-> " and its arguments, then its body: lines of 64 columns, the last one shorter
_STANZA = re.compile(rb"-> ([^\n]*)\n((?:[A-Za-z0-9+/]{64}\n)*)([A-Za-z0-9+/]{0,63})\n")
_MAC_LINE = re.compile(rb"--- ([A-Za-z0-9+/]{43})\n")
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


@dataclass(frozen=True, eq=False)
class X25519Key:
    """One of our age X25519 identities as a ready key (never printed: repr hides it)."""

    private: X25519PrivateKey
    public: bytes  # the 32-byte public share, part of every wrap key's salt
    recipient: str  # the same as age1...

    def __repr__(self) -> str:
        return "X25519Key(...)"


def key_of(identity: object) -> X25519Key | None:
    """IDENTITY (a pyrage x25519 identity) as an X25519Key; None when it is not one we can read
    back exactly (its public half must come out as the identity's own recipient)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    to_public = getattr(identity, "to_public", None)
    if to_public is None:
        return None
    recipient = str(to_public())
    secret = _bech32_bytes(str(identity).lower(), "age-secret-key-")
    public = _bech32_bytes(recipient, "age")
    if secret is None or public is None or len(secret) != 32:
        return None
    private = X25519PrivateKey.from_private_bytes(secret)
    if private.public_key().public_bytes_raw() != public:
        return None
    return X25519Key(private, public, recipient)


def _bech32_bytes(text: str, hrp: str) -> bytes | None:
    """The data of a BIP-173 bech32 string with human-readable part HRP; None if it is not one."""
    sep = text.rfind("1")
    if text[:sep] != hrp or len(text) - sep < 7:
        return None
    try:
        values = [_BECH32.index(c) for c in text[sep + 1 :]]
    except ValueError:
        return None
    if _polymod([ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp] + values) != 1:
        return None
    acc = bits = 0
    out = bytearray()
    for v in values[:-6]:
        acc, bits = (acc << 5) | v, bits + 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if bits >= 5 or acc & ((1 << bits) - 1):
        return None  # padding that a canonical encoder would not write
    return bytes(out)


def _polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA-256 (RFC 5869), 32 bytes: one expand block (an empty salt is 32 zero bytes)."""
    prk = hmac.digest(salt, ikm, "sha256")
    return hmac.digest(prk, info + b"\x01", "sha256")


def _b64_raw(data: bytes) -> bytes | None:
    """Canonical unpadded base64 (as age writes its header), else None."""
    try:
        raw = binascii.a2b_base64(data + b"=" * (-len(data) % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    return raw if binascii.b2a_base64(raw, newline=False).rstrip(b"=") == data else None


def _dearmor(text: str) -> bytes | None:
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if len(lines) < 3 or lines[0] != _BEGIN or lines[-1] != _END:
        return None
    body = lines[1:-1]
    if any(len(line) != _COLUMNS for line in body[:-1]) or not 0 < len(body[-1]) <= _COLUMNS:
        return None
    joined = "".join(body).encode("ascii", "replace")
    try:
        raw = base64.b64decode(joined, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw) == joined else None


@dataclass(frozen=True)
class _Header:
    stanzas: list[tuple[list[bytes], bytes]]  # (arguments, body)
    signed: bytes  # the header bytes the MAC covers (up to and including "---")
    mac: bytes
    payload: bytes


def _header(data: bytes) -> _Header | None:
    if not data.startswith(_INTRO):
        return None
    pos, stanzas = len(_INTRO), []
    while (m := _STANZA.match(data, pos)) is not None:
        args = m[1].split(b" ")
        raw = _b64_raw(m[2].replace(b"\n", b"") + m[3])
        if raw is None or not all(_ARG.fullmatch(a) for a in args):
            return None
        stanzas.append((args, raw))
        pos = m.end()
    m = _MAC_LINE.match(data, pos)
    mac = _b64_raw(m[1]) if m is not None and stanzas else None
    if m is None or mac is None or len(mac) != 32:
        return None
    return _Header(stanzas, data[: pos + 3], mac, data[m.end() :])


def open_armored(text: str, key: X25519Key) -> bytes | None:
    """The plaintext of the armored age file TEXT when KEY opens one of its X25519 stanzas and
    the header MAC and payload verify; None otherwise (the caller then asks pyrage)."""
    public, chacha, invalid_tag = _crypto()
    data = _dearmor(text)
    header = _header(data) if data is not None else None
    if header is None:
        return None
    if any(args[0] == b"scrypt" for args, _ in header.stanzas):
        return None  # age allows no other stanza beside an scrypt one
    for args, body in header.stanzas:
        if args[0] != b"X25519":
            continue  # another kind of recipient (or grease)
        share = _b64_raw(args[1]) if len(args) == 2 else None
        if share is None or len(share) != 32 or len(body) != _FILE_KEY + _TAG:
            return None  # a malformed X25519 stanza makes the whole file invalid in age
        try:
            shared = key.private.exchange(public(share))
        except ValueError:  # a low-order share: the all-zero secret
            return None
        wrap = _hkdf(shared, share + key.public, _X25519_INFO)
        try:
            file_key = chacha(wrap).decrypt(bytes(12), body, None)
        except invalid_tag:
            continue  # wrapped to another key
        return _payload(header, file_key)
    return None


def _payload(header: _Header, file_key: bytes) -> bytes | None:
    """The payload of a one-chunk file, header MAC and chunk tag verified."""
    _, chacha, invalid_tag = _crypto()
    mac = hmac.digest(_hkdf(file_key, b"", b"header"), header.signed, "sha256")
    if not hmac.compare_digest(mac, header.mac):
        return None
    nonce, chunk = header.payload[:16], header.payload[16:]
    if len(nonce) != 16 or not _TAG < len(chunk) <= _CHUNK + _TAG:
        return None  # empty, or more than one chunk: pyrage's
    try:
        return chacha(_hkdf(file_key, nonce, b"payload")).decrypt(bytes(11) + b"\x01", chunk, None)
    except invalid_tag:
        return None


class _Crypto(NamedTuple):
    public: Callable[[bytes], X25519PublicKey]  # X25519PublicKey.from_public_bytes
    chacha: type[ChaCha20Poly1305]
    invalid_tag: type[InvalidTag]


@functools.cache
def _crypto() -> _Crypto:
    """cryptography's pieces, imported on first use (validate never opens a file) and then kept
    at hand: an import statement on every file opened costs more than the lookup."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    return _Crypto(X25519PublicKey.from_public_bytes, ChaCha20Poly1305, InvalidTag)
