"""The in-process age X25519 unwrap (sops/agex25519.py): it opens what sops and pyrage write,
refuses (None, so pyrage decides) anything altered or outside its one shape, and the data key
path uses it without changing a result or an error."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pyrage  # type: ignore[import-untyped]
import pytest

from bifrost_gitops import sops, sopsmeta
from bifrost_gitops.sops import agex25519

from ._sops_helpers import R1


def armored(plain: bytes, *recipients: Any) -> str:
    out = pyrage.encrypt(plain, [r.to_public() for r in recipients], armored=True)
    return out.decode() if isinstance(out, bytes) else str(out)


def rearmor(raw: bytes) -> str:
    body = base64.b64encode(raw).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join(["-----BEGIN AGE ENCRYPTED FILE-----", *lines, "-----END AGE ENCRYPTED FILE-----", ""])


def dearmor(text: str) -> bytes:
    return base64.b64decode("".join(text.strip().splitlines()[1:-1]))


@pytest.fixture
def ident() -> Any:
    return pyrage.x25519.Identity.generate()


def test_opens_what_pyrage_writes_for_one_or_several_recipients(ident: Any) -> None:
    other = pyrage.x25519.Identity.generate()
    key, other_key = agex25519.key_of(ident), agex25519.key_of(other)
    assert key is not None and other_key is not None
    for size in (1, 32, 1000):
        plain = os.urandom(size)
        text = armored(plain, other, ident)  # pyrage adds a grease stanza too
        assert agex25519.open_armored(text, key) == plain
        assert agex25519.open_armored(text, other_key) == plain
    stranger = agex25519.key_of(pyrage.x25519.Identity.generate())
    assert stranger is not None and agex25519.open_armored(text, stranger) is None


def test_opens_the_data_keys_the_real_sops_wrote(vectors: Path) -> None:
    ring = sops.make_keyring(sops.parse_identities((vectors / "keys.txt").read_text()))
    key = ring.x25519(R1)
    assert key is not None and "AGE-SECRET" not in repr(key)
    opened = 0
    for path in sorted(vectors.glob("?*.sops.yaml")):  # not .sops.yaml, the rules
        doc = sops.load_file(str(path))
        for group in sopsmeta.groups(doc["sops"]):
            for entry in group.get("age") or []:  # type: ignore[attr-defined]
                if entry["recipient"] == R1:
                    got = agex25519.open_armored(entry["enc"], key)
                    assert got is not None and got == bytes(
                        pyrage.decrypt(entry["enc"].encode(), [*ring.identities])
                    )
                    opened += 1
    assert opened >= 5


def test_altered_or_unusual_files_are_left_to_pyrage(ident: Any) -> None:
    key = agex25519.key_of(ident)
    assert key is not None
    text = armored(os.urandom(32), ident)
    raw = dearmor(text)
    head, payload = raw.split(b"\n--- ", 1)
    mac_line, body = payload.split(b"\n", 1)
    flipped_payload = head + b"\n--- " + mac_line + b"\n" + body[:-1] + bytes([body[-1] ^ 1])
    flipped_header = raw.replace(
        b"age-encryption.org/v1\n-> X25519 ", b"age-encryption.org/v1\n-> X25519  ", 1
    )
    big = armored(os.urandom(70_000), ident)  # two payload chunks
    for bad in (
        rearmor(flipped_payload),  # the payload's tag fails
        rearmor(flipped_header),  # the header changed: its MAC fails
        rearmor(raw.replace(b"\n--- ", b"\n---  ", 1)),  # a malformed MAC line
        text.replace("\n", "\r\n"),  # not the armor age writes
        text.replace("-----END AGE ENCRYPTED FILE-----", ""),
        rearmor(raw)[:-40] + "\n-----END AGE ENCRYPTED FILE-----\n",  # cut short
        big,
    ):
        assert agex25519.open_armored(bad, key) is None
    assert bytes(pyrage.decrypt(big.encode(), [ident])) and len(dearmor(big)) > 65536


def test_only_x25519_identities_become_keys(ident: Any, tmp_path: Path) -> None:
    assert agex25519.key_of(object()) is None
    ring = sops.make_keyring([ident])
    assert ring.x25519(str(ident.to_public())) is not None
    assert ring.x25519(R1) is None


def test_the_data_key_opens_in_process_and_pyrage_still_decides_the_rest(
    ident: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = sops.make_keyring([ident])
    doc = sops.encrypt_document({"secrets": {"a": "b"}}, recipients=[str(ident.to_public())])
    calls: list[int] = []
    real = pyrage.decrypt

    def counting(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(pyrage, "decrypt", counting)
    assert sops.decrypt_document(doc, identities=ring, use_binary=False) == {"secrets": {"a": "b"}}
    assert calls == []  # opened in process
    entry = doc["sops"]["age"][0]
    entry["enc"] = rearmor(dearmor(entry["enc"]).replace(b"\n--- ", b"\n---  ", 1))
    with pytest.raises(sops.NoKeyError, match="no available key opens the data key"):
        sops.decrypt_document(doc, identities=ring, use_binary=False)
    assert calls == [1]  # the altered file went to pyrage, which refused it as before


def test_a_file_without_master_keys_is_not_a_missing_key(ident: Any) -> None:
    doc = sops.encrypt_document({"secrets": {"a": "b"}}, recipients=[str(ident.to_public())])
    ring = sops.make_keyring([pyrage.x25519.Identity.generate()])
    with pytest.raises(sops.NoKeyError):
        sops.decrypt_document(doc, identities=ring, use_binary=False)
    empty: list[object] | None
    for empty in ([], None):
        doc["sops"]["age"] = empty
        with pytest.raises(sops.SopsError, match="no keys found in file") as caught:
            sops.decrypt_document(doc, identities=ring, use_binary=False)
        assert not isinstance(caught.value, sops.NoKeyError)


def forge(ident: Any, plain: bytes, before: bytes = b"", after: bytes = b"") -> str:
    """An age file to IDENT with extra stanza text BEFORE and AFTER its X25519 stanza, its header
    MAC valid: what someone holding only the public recipient can write."""
    import hmac

    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
        return hmac.digest(hmac.digest(salt, ikm, "sha256"), info + b"\x01", "sha256")

    def b64(raw: bytes) -> bytes:
        return base64.b64encode(raw).rstrip(b"=")

    key = agex25519.key_of(ident)
    assert key is not None
    eph = X25519PrivateKey.generate()
    share = eph.public_key().public_bytes_raw()
    file_key = os.urandom(16)
    wrap = hkdf(eph.exchange(key.private.public_key()), share + key.public, b"age-encryption.org/v1/X25519")
    body = ChaCha20Poly1305(wrap).encrypt(bytes(12), file_key, None)
    head = (
        b"age-encryption.org/v1\n"
        + before
        + b"-> X25519 "
        + b64(share)
        + b"\n"
        + b64(body)
        + b"\n"
        + after
        + b"---"
    )
    mac = hmac.digest(hkdf(file_key, b"", b"header"), head, "sha256")
    nonce = os.urandom(16)
    payload = ChaCha20Poly1305(hkdf(file_key, nonce, b"payload")).encrypt(bytes(11) + b"\x01", plain, None)
    return rearmor(head + b" " + b64(mac) + b"\n" + nonce + payload)


def test_only_what_age_itself_accepts_opens_in_process(ident: Any) -> None:
    key = agex25519.key_of(ident)
    assert key is not None
    plain = os.urandom(32)
    grease = b"-> x-grease a b\n" + b64line(os.urandom(48)) + b"\n" + b64line(b"") + b"\n"
    for fine in (forge(ident, plain), forge(ident, plain, before=grease), forge(ident, plain, after=grease)):
        assert agex25519.open_armored(fine, key) == plain == bytes(pyrage.decrypt(fine.encode(), [ident]))
    for bad in (
        forge(ident, plain, before=b"-> X25519 short\n" + b64line(os.urandom(32)) + b"\n"),  # malformed share
        forge(ident, plain, before=b"-> X25519\n\n"),  # no share at all
        forge(
            ident, plain, before=b"-> scrypt c2FsdA 10\n" + b64line(os.urandom(32)) + b"\n"
        ),  # scrypt: alone
        forge(ident, plain, before=b"-> \n\n"),  # an empty stanza type
    ):
        assert agex25519.open_armored(bad, key) is None
        with pytest.raises(pyrage.DecryptError):
            pyrage.decrypt(bad.encode(), [ident])


def b64line(raw: bytes) -> bytes:
    return base64.b64encode(raw).rstrip(b"=")
