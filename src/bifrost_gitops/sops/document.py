"""Decrypt and encrypt whole sops documents: the package's API.

One pass over the tree in document order does everything a leaf needs (selector decision, AAD,
AES-GCM, MAC bytes), so the cost per file stays close to the cryptographic floor. Results are
built aside and returned only after the MAC verified: never a partial result.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict, cast

from .. import sopsmeta
from ..nodes import Node
from . import binary, datakey, mac, values
from .errors import IntegrityError, NoKeyError, SopsError, without_file
from .gotypes import Timestamp
from .keys import Keyring, default_keyring, make_keyring
from .secret import Secret
from .store import format_of, load_file
from .tree import Rule, make_rule, rule_of

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from typing_extensions import Unpack

VERSION = "3.11.0"
#: a Keyring, pyrage identities (e.g. from parse_identities), or None for sops's own key sources
Identities = Keyring | Sequence[object] | None


def _ring(identities: Identities) -> Keyring:
    if identities is None:
        return default_keyring()
    if isinstance(identities, Keyring):
        return identities
    return make_keyring(list(identities))


def _aes(key: bytes) -> AESGCM:
    """AES-GCM with KEY. cryptography is imported here, on first use: a command that only reads
    the sops metadata (validate) never loads it."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _where(prefix: str) -> str:
    return prefix[:-1].replace(":", ".") if prefix else "(top level)"


def _is_comment_item(v: object) -> bool:
    return isinstance(v, str) and v.endswith(",type:comment]") and values.is_encrypted(v)


class _Decrypter:
    """One document's decryption walk; feeds the MAC as it goes.

    It visits every key and leaf of every file a `secrets check` opens, so the common cases
    (text, a dict, a key seen in an earlier file) are decided first and cheaply."""

    def __init__(self, aes: AESGCM, rule: Rule, mac_only: bool, wrap: bool, file: str | None) -> None:
        self.aes, self.rule, self.mac_only, self.wrap, self.file = aes, rule, mac_only, wrap, file
        self.hash = mac.new_hash(mac_only)
        self.matches = rule.memo  # shared by every document with this rule
        self.when = {m: rule.encrypted(m) for m in (True, False)}
        self.seen: dict[tuple[str, bytes], tuple[bytes, str]] | None = None  # (aad, plain) -> (iv, type)

    def mapping(
        self, node: Mapping[str, object], prefix: str, matched: bool, top: bool = False
    ) -> dict[str, object]:
        out: dict[str, object] = {}
        matches = self.matches
        for k, v in node.items():
            if top and k == "sops":
                continue
            if type(k) is not str and not isinstance(k, str):
                raise SopsError("mapping keys must be strings", file=self.file)
            m = matched or matches.get(k)
            if m is None:
                m = self.rule.matches(k)
            out[k] = self.node(v, prefix + k + ":", m)
        return out

    def node(self, v: object, prefix: str, matched: bool) -> object:
        if type(v) is not str:
            if type(v) is dict or isinstance(v, Mapping):
                return self.mapping(cast("Mapping[str, object]", v), prefix, matched)
            if isinstance(v, list):
                enc = self.when[matched]
                return [
                    self.node(x, prefix, matched)
                    for x in v
                    if not (enc is not False and _is_comment_item(x))  # sops 3.11: comment as list item
                ]
            if v is None:
                return None
        enc = self.when[matched]
        if enc is None:
            enc = values.is_encrypted(v)
        if not enc:
            if not self.mac_only:
                self.hash.update(self.clear_bytes(v, prefix))
            return v
        if v == "":
            return Secret("") if self.wrap else ""
        if not isinstance(v, str):
            raise IntegrityError(
                f"value at {_where(prefix)} should be encrypted but is not", file=self.file, value_at=prefix
            )
        return self.open(v, prefix)

    def open(self, v: str, prefix: str) -> object:
        """One encrypted leaf, decrypted (a Secret when wrapping); its plaintext fed to the MAC."""
        try:
            ev = values.parse(v)
            plain = values.decrypt_bytes(self.aes, ev, prefix)
            value = values.from_plaintext(plain, ev.type)
        except values.ValueFormatError:
            raise IntegrityError(
                f"value at {_where(prefix)} should be encrypted but is not a valid sops value",
                file=self.file,
                value_at=prefix,
            ) from None
        except values.ValueAuthError:
            raise IntegrityError(
                f"value at {_where(prefix)} could not be decrypted: authentication failed "
                "(altered, moved, or encrypted with another data key)",
                file=self.file,
                value_at=prefix,
            ) from None
        except ValueError:
            raise IntegrityError(
                f"value at {_where(prefix)} decrypted to text that is not a valid {ev.type}",
                file=self.file,
                value_at=prefix,
            ) from None
        if ev.type != "comment":
            self.hash.update(plain)
        if self.seen is not None:
            self.seen[(prefix, plain)] = (ev.iv, ev.type)
        return Secret(value) if self.wrap else value

    def clear_bytes(self, v: object, prefix: str) -> bytes:
        try:
            return values.to_plaintext(v)[0]
        except (TypeError, ValueError):
            raise SopsError(f"value at {_where(prefix)} has an unsupported type", file=self.file) from None


def _metadata(data: Mapping[str, object], file: str | None) -> Mapping[str, object]:
    meta = data.get("sops") if isinstance(data, Mapping) else None
    if not isinstance(meta, Mapping):
        raise SopsError("sops metadata not found", file=file)
    return meta


def _decrypt_native(
    data: Mapping[str, object], ring: Keyring, wrap: bool, file: str | None, verify: bool = True
) -> tuple[dict[str, object], bytes, _Decrypter]:
    meta = _metadata(data, file)
    rule = rule_of(meta, file)
    key = datakey.unwrap(meta, ring, file)
    dec = _Decrypter(_aes(key), rule, meta.get("mac_only_encrypted") is True, wrap, file)
    return _finish(dec, data, meta, key, verify)


def _finish(
    dec: _Decrypter, data: Mapping[str, object], meta: Mapping[str, object], key: bytes, verify: bool
) -> tuple[dict[str, object], bytes, _Decrypter]:
    tree = dec.mapping(data, "", False, top=True)
    if verify:
        mac.verify(dec.aes, meta.get("mac"), meta.get("lastmodified"), dec.hash.hexdigest().upper(), dec.file)
    return tree, key, dec


class DecryptOptions(TypedDict, total=False):
    """The keyword options of :func:`decrypt_document` (and :func:`decrypt_file`)."""

    identities: Identities
    wrap: bool
    file: str | None
    fmt: str | None
    use_binary: bool
    timeout: float


def decrypt_document(
    data: Mapping[str, object],
    *,
    identities: Identities = None,
    wrap: bool = False,
    file: str | None = None,
    fmt: str | None = None,
    use_binary: bool = True,
    timeout: float = binary.DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """The clear tree of a parsed sops document (the ``sops`` block removed), MAC verified.

    ``identities``: a Keyring, a list of pyrage identities, or None for sops's key sources.
    ``wrap``: leaves that were encrypted come back as :class:`Secret`. ``file`` names the
    document in errors and picks the format for the sops-binary fallback (``fmt`` overrides),
    which runs when no native age key opens the data key and ``use_binary`` is set.
    Raises NoKeyError, IntegrityError or SopsError; messages never contain values.
    The tree is returned loosely typed: callers walk into the paths they expect.
    """
    ring = _ring(identities)
    try:
        return _decrypt_native(data, ring, wrap, file)[0]
    except NoKeyError as native:
        if not use_binary:
            raise
        env = dict(os.environ)
        if identities is not None:
            explicit = [str(i) for i in ring.identities if type(i).__module__.endswith("x25519")]
            if explicit:
                env["SOPS_AGE_KEY"] = "\n".join(explicit)
        try:
            clear = binary.decrypt(
                data, fmt or (format_of(file) if file else "yaml"), file=file, env=env, timeout=timeout
            )
        except NoKeyError as bin_err:
            raise NoKeyError(
                f"{without_file(native, file)}; sops binary: {without_file(bin_err, file)}", file=file
            ) from None
        if not wrap:
            return clear
        return cast("dict[str, object]", _wrap_like(data, clear, rule_of(_metadata(data, file), file)))


def _wrap_like(enc: object, clear: Node, rule: Rule, prefix: str = "", matched: bool = False) -> object:
    """Wrap the leaves of ``clear`` that are encrypted in ``enc`` (for the binary fallback)."""
    if isinstance(enc, Mapping) and isinstance(clear, dict):
        return {
            k: _wrap_like(enc.get(k), v, rule, prefix + k + ":", matched or rule.matches(k))
            for k, v in clear.items()
        }
    if isinstance(enc, list) and isinstance(clear, list):
        items = [x for x in enc if not _is_comment_item(x)]
        if len(items) == len(clear):
            return [_wrap_like(e, c, rule, prefix, matched) for e, c in zip(items, clear, strict=True)]
        return [Secret(c) if values.is_encrypted(e) else c for e, c in zip(items, clear, strict=False)]
    if clear is not None and (values.is_encrypted(enc) or (enc == "" and rule.encrypted(matched))):
        return Secret(clear)
    return clear


def decrypt_file(path: str | os.PathLike[str], **options: Unpack[DecryptOptions]) -> dict[str, Any]:
    """:func:`load_file` + :func:`decrypt_document` (same keyword options)."""
    p = os.fspath(path)
    options.setdefault("file", p)
    return decrypt_document(load_file(p), **options)


# --- encryption ---------------------------------------------------------------------------


class _Encrypter:
    """One document's encryption walk; feeds the MAC as it goes.

    A sealed bundle holds a few hundred thousand leaves, nearly all of them text to encrypt, so
    text is tested first and goes straight to :meth:`seal`, with the cipher's method, the IVs
    and the hash bound once per document (no type dispatch, no to_plaintext for text)."""

    def __init__(
        self,
        aes: AESGCM,
        rule: Rule,
        mac_only: bool,
        reuse: Mapping[tuple[str, bytes], tuple[bytes, str]],
    ) -> None:
        self.rule, self.mac_only, self.reuse = rule, mac_only, reuse
        self.hash = mac.new_hash(mac_only)
        self.update = self.hash.update
        self.encrypt = aes.encrypt
        self.ivs = values.fresh_ivs()
        self.matches = rule.memo  # shared by every document with this rule, as _Decrypter's
        # whether a leaf is encrypted, by whether a key on its path matched (comment rules:
        # unencrypted_comment_regex encrypts everything, encrypted_comment_regex nothing)
        by_comment = rule.field == "unencrypted_comment_regex"
        decided = {m: rule.encrypted(m) for m in (True, False)}
        self.when = {m: by_comment if e is None else e for m, e in decided.items()}

    def mapping(self, node: Mapping[str, object], prefix: str, matched: bool) -> dict[str, object]:
        out: dict[str, object] = {}
        matches, when, seal = self.matches, self.when, self.seal
        for k, v in node.items():
            if type(k) is not str and not isinstance(k, str):
                raise SopsError(f"key {k!r} under {_where(prefix)} is not a string")
            m = matched or matches.get(k)
            if m is None:
                m = self.rule.matches(k)
            if type(v) is str and v and when[m]:  # most leaves: text to encrypt
                out[k] = seal(v.encode(), "str", f"{prefix}{k}:")
            else:
                out[k] = self.node(v, f"{prefix}{k}:", m)
        return out

    def node(self, v: object, prefix: str, matched: bool) -> object:
        t = type(v)  # exact types first: the ABC test below is slow, and most leaves are plain
        if t is str:
            if v and self.when[matched]:
                return self.seal(cast("str", v).encode(), "str", prefix)
            if v and not self.mac_only:
                self.update(cast("str", v).encode())
            return v
        if t is dict:
            return self.mapping(cast("dict[str, object]", v), prefix, matched)
        if v is None:
            return None
        if t is list or isinstance(v, list | tuple):
            return [self.node(x, prefix, matched) for x in cast("list[object]", v)]
        if isinstance(v, Mapping):
            return self.mapping(v, prefix, matched)
        return self.other(v, prefix, matched)

    def other(self, v: object, prefix: str, matched: bool) -> object:
        """A leaf that is not plain text: a Secret, None, a number, a bool, a time, bytes."""
        secret = isinstance(v, Secret)
        if secret:
            v = cast("Secret[object]", v).reveal()
        if v is None:
            return None
        try:
            plain, typ = values.to_plaintext(v)
        except (TypeError, ValueError) as e:
            raise SopsError(f"value at {_where(prefix)} cannot be stored: {e}") from None
        if typ == "time" and isinstance(v, dt.date):  # a datetime is a date too
            v = Timestamp(plain.decode())
        if not self.when[matched]:
            if secret:
                raise SopsError(
                    f"refusing to write the secret at {_where(prefix)} in clear (not selected for encryption)"
                )
            if not self.mac_only:
                self.update(plain)
            return v
        return "" if v == "" else self.seal(plain, typ, prefix)

    def seal(self, plain: bytes, typ: str, prefix: str) -> str:
        """The ENC[...] text of one leaf (hashed for the MAC); its IV kept when the previous
        version of the file had this value at this path."""
        self.update(plain)
        old = self.reuse.get((prefix, plain)) if self.reuse else None
        if old is not None and (old[1] == typ or {old[1], typ} == {"int", "float"}):
            iv, typ = old
        else:
            iv = next(self.ivs)
        return values.enc_text(self.encrypt(iv, plain, prefix.encode()), iv, typ)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_ORDER_SINGLE = ("kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "age", "lastmodified", "mac", "pgp")


def encrypt_document(
    data: Mapping[str, object],
    *,
    recipients: Sequence[str] = (),
    key_groups: Sequence[Sequence[str]] | None = None,
    shamir_threshold: int | None = None,
    unencrypted_suffix: str | None = None,
    encrypted_suffix: str | None = None,
    unencrypted_regex: str | None = None,
    encrypted_regex: str | None = None,
    unencrypted_comment_regex: str | None = None,
    encrypted_comment_regex: str | None = None,
    mac_only_encrypted: bool = False,
    previous: Mapping[str, object] | None = None,
    identities: Identities = None,
    lastmodified: str | None = None,
    data_key: bytes | None = None,
) -> dict[str, Any]:
    """``data`` encrypted for age ``recipients`` (or ``key_groups`` + Shamir), with a ``sops`` block.

    At most one selector may be given (default ``unencrypted_suffix: _unencrypted``). Values may
    be :class:`Secret`; a Secret that the selector leaves clear is refused. With ``previous`` (the
    file's current encrypted content) whose data key ``identities`` can open, its data key, its
    age entries for recipients kept, its non-age master keys, and the IV of every value whose
    path and plaintext are unchanged are reused, so unchanged lines stay byte-identical.
    ``data_key`` is the key of a new document (default: random; a caller that encrypts more,
    such as comments, passes its own). Returned loosely typed, like the decrypted trees.
    """
    if "sops" in data:
        raise SopsError("the document already has a top-level sops key (already encrypted?)")
    rule = make_rule(
        unencrypted_suffix=unencrypted_suffix,
        encrypted_suffix=encrypted_suffix,
        unencrypted_regex=unencrypted_regex,
        encrypted_regex=encrypted_regex,
        unencrypted_comment_regex=unencrypted_comment_regex,
        encrypted_comment_regex=encrypted_comment_regex,
    )
    groups = [list(g) for g in key_groups] if key_groups else [list(recipients)]
    if not all(groups) or not groups:
        raise SopsError("no recipients given")
    if len(groups) > 1 and not 2 <= (shamir_threshold or len(groups)) <= len(groups):
        raise SopsError("shamir_threshold must be between 2 and the number of key groups")

    data_key, reuse, prev_meta = _from_previous(previous, identities, data_key)
    aes = _aes(data_key)
    enc = _Encrypter(aes, rule, mac_only_encrypted, reuse)
    tree = enc.mapping(data, "", False)

    secrets_ = datakey.wrap_groups(data_key, groups, shamir_threshold)
    prev_age: dict[str, Mapping[str, object]] = {}
    if prev_meta is not None and len(groups) == 1 and len(sopsmeta.groups(prev_meta)) == 1:
        for e in _entries(prev_meta.get("age")):
            if isinstance(e, Mapping) and isinstance(e.get("recipient"), str):
                prev_age[e["recipient"]] = e
    wrapped = [
        [
            dict(prev_age[r]) if r in prev_age else datakey.wrap_age(s, r)
            for r in dict.fromkeys(g)  # duplicate recipients dropped, like sops
        ]
        for g, s in zip(groups, secrets_, strict=True)
    ]
    stamp = lastmodified or _now()
    meta: dict[str, object] = {}
    if len(groups) > 1:
        meta["shamir_threshold"] = shamir_threshold or len(groups)
        meta["key_groups"] = [{"hc_vault": [], "age": g} for g in wrapped]
    parts: dict[str, object] = {"age": wrapped[0]} if len(groups) == 1 else {}
    if prev_meta is not None and len(groups) == 1 and len(sopsmeta.groups(prev_meta)) == 1:
        for kind in sopsmeta.MASTER_KEYS:
            if kind != "age" and prev_meta.get(kind):
                parts[kind] = prev_meta[kind]
    parts["lastmodified"] = stamp
    parts["mac"] = mac.seal(aes, enc.hash.hexdigest().upper(), stamp)
    for field in _ORDER_SINGLE:
        if field in parts:
            meta[field] = parts[field]
    meta[rule.field] = rule.value
    if mac_only_encrypted:
        meta["mac_only_encrypted"] = True
    meta["version"] = VERSION
    tree["sops"] = meta
    return tree


def _entries(found: object) -> Iterable[object]:
    """A master key list of the metadata as sops wrote it (``found or []``; the file opened, so it is a list)."""
    return cast("Iterable[object]", found or [])


def _from_previous(
    previous: Mapping[str, object] | None, identities: Identities, new_key: bytes | None = None
) -> tuple[bytes, dict[tuple[str, bytes], tuple[bytes, str]], Mapping[str, object] | None]:
    """(data key, IVs to reuse, previous metadata) from an existing encrypted document; for a
    new one, NEW_KEY or a random key."""
    if previous is None:
        if new_key is not None and len(new_key) != datakey.DATA_KEY_SIZE:
            raise SopsError("the data key must be 32 bytes")
        return new_key or os.urandom(datakey.DATA_KEY_SIZE), {}, None
    meta = _metadata(previous, None)
    try:
        key = datakey.unwrap(meta, _ring(identities))
        dec = _Decrypter(_aes(key), rule_of(meta), meta.get("mac_only_encrypted") is True, False, None)
        dec.seen = {}
        _finish(dec, previous, meta, key, True)
    except (NoKeyError, IntegrityError):
        others = [r for r in sopsmeta.recipients(meta) if not r.startswith("age:")]
        if others:
            raise SopsError(
                "cannot open the previous version to keep its non-age keys ("
                + ", ".join(others)
                + "); re-encrypt it with the sops binary"
            ) from None
        return os.urandom(datakey.DATA_KEY_SIZE), {}, None
    assert dec.seen is not None
    return key, dec.seen, meta
