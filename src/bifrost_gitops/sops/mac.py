"""The sops MAC: SHA-512 over the leaves' plaintext bytes, stored encrypted under the data key.

The stored MAC's AAD is ``lastmodified`` re-formatted at second precision, so editing either
the MAC or the timestamp fails authentication (spec section 6).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import values
from .errors import IntegrityError, SopsError
from .gotypes import mac_aad

#: fed first when ``mac_only_encrypted`` is set: SHA-256 of "sops"
MAC_ONLY_ENCRYPTED_INIT = hashlib.sha256(b"sops").digest()


class Hasher(Protocol):
    """The part of a hashlib object the MAC walk uses."""

    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def new_hash(mac_only_encrypted: bool) -> Hasher:
    """A SHA-512 hasher primed the way sops primes it."""
    h = hashlib.sha512()
    if mac_only_encrypted:
        h.update(MAC_ONLY_ENCRYPTED_INIT)
    return h


def aad_for(lastmodified: object, file: str | None) -> str:
    """The MAC's AAD from the metadata's ``lastmodified``."""
    aad = mac_aad(str(lastmodified)) if isinstance(lastmodified, str) else None
    if aad is None:
        raise IntegrityError(
            "sops metadata has no valid lastmodified timestamp", file=file, meta_key="lastmodified"
        )
    return aad


def verify(aes: AESGCM, stored: object, lastmodified: object, computed: str, file: str | None) -> None:
    """Raise IntegrityError unless the stored MAC decrypts and equals ``computed``."""
    if not isinstance(stored, str) or not stored:
        raise IntegrityError("MAC mismatch: the file has no MAC", file=file, meta_key="mac")
    aad = aad_for(lastmodified, file)
    try:
        enc = values.parse(stored)
        plain = values.decrypt_bytes(aes, enc, aad)
    except values.ValueFormatError:
        raise IntegrityError("the MAC is not a valid sops value", file=file, meta_key="mac") from None
    except values.ValueAuthError:
        raise IntegrityError(
            "cannot decrypt the MAC: authentication failed (MAC or lastmodified altered)",
            file=file,
            meta_key="mac",
        ) from None
    if plain.decode("ascii", "replace") != computed:
        raise IntegrityError(
            "MAC mismatch: the values do not match the file's MAC (a value was added, removed, "
            "reordered or changed)",
            file=file,
            meta_key="mac",
        )


def seal(aes: AESGCM, computed: str, lastmodified: str) -> str:
    """The ``sops.mac`` value for ``computed`` (upper-case hex digest)."""
    aad = mac_aad(lastmodified)
    if aad is None:
        raise SopsError("lastmodified is not an RFC 3339 timestamp")
    return values.encrypt_bytes(aes, computed.encode(), "str", aad)
