"""Unwrap (and wrap) the file's data key: age entries via pyrage, Shamir across key groups.

Only age entries are opened natively. Everything else (PGP, cloud KMS, Vault, age plugins) is
left to the sops binary; :class:`NoKeyError` tells the caller to try it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyrage  # type: ignore[import-untyped]

from ..sopsmeta import MASTER_KEYS, groups, recipients
from . import agex25519, shamir
from .errors import NoKeyError, SopsError
from .keys import Keyring

DATA_KEY_SIZE = 32


def _open_group(group: Mapping[str, object], ring: Keyring) -> bytes | None:
    entries = group.get("age")
    if not isinstance(entries, list) or not ring.identities:
        return None
    usable = [e for e in entries if isinstance(e, Mapping) and isinstance(e.get("enc"), str)]
    # entries addressed to one of our X25519 keys first: a failed X25519 try costs as much as a hit
    mine = [e for e in usable if e.get("recipient") in ring.recipients]
    rest = [e for e in usable if e.get("recipient") not in ring.recipients]
    for e in mine:  # the X25519 exchange in process; pyrage below decides anything else
        key = ring.x25519(e["recipient"])
        opened = agex25519.open_armored(e["enc"], key) if key is not None else None
        if opened is not None:
            return opened
    idents = list(ring.identities)
    for e in mine + rest:
        try:
            return bytes(pyrage.decrypt(e["enc"].encode(), idents))
        except Exception:
            continue
    return None


def unwrap(meta: Mapping[str, object], ring: Keyring, file: str | None = None) -> bytes:
    """The 32-byte data key; raises NoKeyError when the available identities cannot open it."""
    gs = groups(meta)
    if not any(isinstance(g.get(kind), list) and g.get(kind) for g in gs for kind in MASTER_KEYS):
        # what `recipients(meta)` being empty says, without describing every key of every file
        raise SopsError("no keys found in file (sops metadata has no master keys)", file=file)
    if len(gs) == 1:
        key = _open_group(gs[0], ring)
        if key is None:
            raise NoKeyError(_no_key_text(meta, ring), file=file)
        if len(key) != DATA_KEY_SIZE:
            raise SopsError("the data key has the wrong size", file=file)
        return key
    threshold = meta.get("shamir_threshold")
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
        threshold = len(gs)
    parts = [p for p in (_open_group(g, ring) for g in gs) if p is not None]
    if len(parts) < threshold:
        raise NoKeyError(
            f"the file is split over {len(gs)} key groups with a Shamir threshold of {threshold}, "
            f"but only {len(parts)} group(s) could be opened; {_no_key_text(meta, ring)}",
            file=file,
        )
    try:
        key = shamir.combine(parts)
    except ValueError as e:
        raise SopsError(f"cannot combine the key group shares: {e}", file=file) from None
    if len(key) != DATA_KEY_SIZE:
        raise SopsError("the data key has the wrong size", file=file)
    return key


def _no_key_text(meta: Mapping[str, object], ring: Keyring) -> str:
    return f"no available key opens the data key; recipients: {', '.join(recipients(meta))}; tried: {ring.describe()}"


def wrap_age(secret: bytes, recipient: str) -> dict[str, str]:
    """One ``{recipient, enc}`` entry: ``secret`` age-encrypted, armored, to one recipient."""
    try:
        r = pyrage.x25519.Recipient.from_str(recipient)
    except Exception:
        raise SopsError(f"not a usable age X25519 recipient: {recipient}") from None
    enc = pyrage.encrypt(secret, [r], armored=True)
    text = enc.decode() if isinstance(enc, bytes) else str(enc)
    if not text.endswith("\n"):
        text += "\n"
    return {"recipient": recipient, "enc": text}


def wrap_groups(data_key: bytes, key_groups: Sequence[Sequence[str]], threshold: int | None) -> list[bytes]:
    """The secret each group wraps: the key itself for one group, else one Shamir share each."""
    if len(key_groups) == 1:
        return [data_key]
    return shamir.split(data_key, len(key_groups), threshold or len(key_groups))
