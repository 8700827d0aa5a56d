"""The `secrets` commands as library calls: set one secret, check every encrypted file.

They sit on top of repo.load (to know integrations, schemas and mapping files) and the native
sops package (to open and re-seal files); nothing here prints or returns a secret value.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, NamedTuple

from . import loader, secrettarget, sops, sopsfile, sopsrules, storable
from .diagnostics import Diagnostic, error
from .loader import Path
from .repo import Result
from .secrettarget import SecretsError as SecretsError  # where callers have found it
from .secrettarget import Target
from .sops import datakey
from .sops.errors import without_file

# --- secrets set ---------------------------------------------------------------------------


def set_secret(
    result: Result,
    integration: str,
    key: str,
    value: str,
    org: str | None = None,
    keyring: sops.Keyring | None = None,
) -> str:
    """Write VALUE, encrypted, as INTEGRATION's KEY (``oauth.<key>`` for its OAuth provider's),
    the default or ORG's override; returns the file changed (see :func:`write_secret`)."""
    target = secrettarget.find(result.catalog, integration, key, org)
    write_secret(result, target, value, keyring)
    return target.path


def write_secret(result: Result, target: Target, value: str, keyring: sops.Keyring | None = None) -> None:
    """Write VALUE, encrypted, at TARGET (from :mod:`.secrettarget`).

    An encrypted file keeps its own recipients and selector (as `sops edit` does) and its data
    key, so every other value's ciphertext stays byte-identical; a clear file is encrypted
    following the `.sops.yaml` creation rule for its path. Comments and untouched lines are kept.
    """
    rel, block, key = target.path, target.block, target.key
    path = os.path.join(result.root, rel)
    source = sopsfile.read(path)  # the one read: parsed, searched, spliced into and compared with
    current = source.tree()
    if "sops" in current:
        clear = sops.decrypt_document(current, identities=keyring, file=rel)
        options = _options_of(current["sops"])
        data_key = _data_key(current["sops"], keyring)
        if data_key is None and "#ENC[" in source.text:
            raise SecretsError(
                f"{rel}: its comments are encrypted with the file's data key, which only the sops "
                f"binary could open here: a value set now would leave them unreadable; use "
                f"`sops set {rel} ...`, or an age key that opens the file"
            )
    else:
        clear, options = current, _options_from_rules(result.root, path)
        data_key = os.urandom(32)  # a new file's data key: its comments are encrypted with it too
    node = clear
    for part in block:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[key] = value
    previous = current if "sops" in current else None
    sealed = sops.encrypt_document(
        clear, previous=previous, identities=keyring, data_key=None if previous else data_key, **options
    )
    if any(isinstance(sealed.get(k), str) and sealed[k].startswith("ENC[") for k in ("apiVersion", "kind")):
        raise SecretsError(
            f"the sops rule for {rel} would encrypt the whole document (apiVersion, kind): "
            "set encrypted_regex: ^secrets$ in .sops.yaml"
        )
    if sops.store.format_of(path) == "json":
        text = sops.dump_json(sealed)
    else:
        indent = sopsrules.yaml_indent(sopsrules.find_config(os.path.dirname(path)))
        text = sopsfile.new_text(source, sealed, indent)
        if data_key is not None:  # the comments sops encrypts, encrypted (they are not in the MAC)
            from .sops.comments import seal_comments  # with cryptography: not for validate

            text = seal_comments(text, sealed["sops"], data_key)
    _check_clear_values_kept(source, rel, text, block)
    sopsfile.write(path, text)


def _check_clear_values_kept(
    source: sopsfile.Source, rel: str, new_text: str, block: tuple[str, ...]
) -> None:
    """Refuse a rewrite that would change how a clear value reads.

    sops types YAML the Go way, so an unquoted date or hex number comes back in another form
    (2024-01-01T00:00:00Z, 16); users must not find their config silently changed."""
    before, _ = loader.parse(source.raw, rel)
    after, _ = loader.parse(new_text, rel)
    if before is None or after is None:
        return

    def clear(doc: loader.Document) -> dict[Path, object]:
        return {p: v for p, v in _leaves(doc.data) if p[: len(block)] != block and p[:1] != ("sops",)}

    old, new = clear(before), clear(after)
    changed = sorted(".".join(map(str, p)) for p in old.keys() | new.keys() if old.get(p) != new.get(p))
    if changed:
        raise SecretsError(
            f"{rel}: rewriting the file would change how {', '.join(changed[:5])} read "
            "(sops rewrites unquoted dates and hex/octal numbers): quote them, then try again"
        )


def _leaves(node: object, path: Path = ()) -> list[tuple[Path, object]]:
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(node, list):
        return [leaf for i, v in enumerate(node) for leaf in _leaves(v, (*path, i))]
    return [(path, node)]


def _data_key(meta: dict[str, Any], keyring: sops.Keyring | None) -> bytes | None:
    """The file's data key when an age key opens it natively (else comments are left as they are)."""
    try:
        return datakey.unwrap(meta, keyring or sops.default_keyring())
    except sops.SopsError:
        return None


def _options_of(meta: dict[str, Any]) -> sopsrules.EncryptOptions:
    """Recipients and selector an encrypted file already has."""
    opts: sopsrules.EncryptOptions = {"mac_only_encrypted": bool(meta.get("mac_only_encrypted"))}
    for k in sopsrules.SELECTORS:
        if meta.get(k):
            opts[k] = meta[k]
    groups = sops.age_recipients(meta)
    if len(groups) > 1:
        opts["key_groups"] = groups
        opts["shamir_threshold"] = meta.get("shamir_threshold")
    else:
        opts["recipients"] = groups[0] if groups else []
    return opts


def _options_from_rules(root: str, path: str) -> sopsrules.EncryptOptions:
    config = sopsrules.find_config(os.path.dirname(path))
    if config is None:
        raise SecretsError(f"no {sopsrules.CONFIG_NAME} found for {os.path.relpath(path, root)}")
    try:
        rule = sopsrules.rule_for(config, path)
    except sopsrules.RulesError as e:
        raise SecretsError(str(e)) from None
    if rule.other_keys:
        raise SecretsError(
            f"{os.path.relpath(config, root)}: the rule for this file asks for non-age keys (pgp, kms, ...); "
            "encrypt it once with `sops --encrypt --in-place`, then `secrets set` can update it"
        )
    if not rule.recipients:
        raise SecretsError(f"{os.path.relpath(config, root)}: the rule for this file names no age recipient")
    return sopsrules.encrypt_options(rule)


# --- secrets check / recipients ------------------------------------------------------------


def encrypted_files(result: Result) -> list[str]:
    """Repository-relative paths of our documents that carry sops metadata."""
    return sorted(doc.path for doc in _encrypted(result))


def _encrypted(result: Result) -> Iterator[loader.Document]:
    """Our documents that carry sops metadata, in catalog order. Their facts say which they are,
    so a warm run leaves the others unloaded; a sops block that is no mapping has no age facts,
    but it is a K003 finding, so flagged files are looked at too."""
    flagged = {d.path for d in result.diagnostics}
    for p in result.catalog.documents():
        if (p.facts.age is not None or p.path in flagged) and "sops" in p.doc.data:
            yield p.doc


#: fewer encrypted files than this are opened in this process: workers cost more than they save
PARALLEL_MIN = 200
#: what forked workers inherit instead of receiving it: (root, the keys, the files to open)
_SHARED: tuple[str, sops.Keyring, list[_ToOpen]] | None = None


class _ToOpen(NamedTuple):
    """One encrypted file for check_files: its document, and whether the load found nothing in
    it (only then may it be opened from the load's parse, see _open)."""

    doc: loader.Document
    clean: bool


def check_files(result: Result, keyring: sops.Keyring | None = None, jobs: int = 1) -> list[Diagnostic]:
    """Open every encrypted file, verify its MAC and that Bifrost can store each value (K007).

    A file no key opens is K004 (exit 2). With JOBS > 1 the files are opened in up to JOBS forked
    processes (the age unwrap of each file's data key is most of the work); the findings and
    their order are the same as with one job."""
    ring = keyring or sops.default_keyring()
    flagged = {d.path for d in result.diagnostics}
    todo = sorted(
        (_ToOpen(doc, doc.path not in flagged) for doc in _encrypted(result)), key=lambda t: t.doc.path
    )
    if jobs > 1 and len(todo) >= PARALLEL_MIN:
        return _check_forked(result.root, ring, todo, jobs)
    return _check(result.root, ring, todo)


def _check_forked(root: str, ring: sops.Keyring, todo: list[_ToOpen], jobs: int) -> list[Diagnostic]:
    """check_files over forked workers, which inherit the files to open and are sent only where
    their share starts and ends (the pool is imported here: `secrets set` does not use one)."""
    global _SHARED
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from .parallel import CHUNKS_PER_JOB, can_fork

    if can_fork():
        size = -(-len(todo) // (jobs * CHUNKS_PER_JOB))  # several chunks per worker: the load evens out
        shares = [(i, i + size) for i in range(0, len(todo), size)]
        _SHARED = (root, ring, todo)
        try:
            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
                return [d for found in pool.map(_check_share, shares) for d in found]
        except (BrokenProcessPool, OSError):
            pass  # no workers (a sandbox, out of processes): opened here
        finally:
            _SHARED = None
    return _check(root, ring, todo)


def _check_share(share: tuple[int, int]) -> list[Diagnostic]:
    assert _SHARED is not None, "a worker forked by check_files"
    root, ring, todo = _SHARED
    return _check(root, ring, todo[share[0] : share[1]])


def _check(root: str, ring: sops.Keyring, todo: list[_ToOpen]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for one in todo:
        doc = one.doc
        rel = doc.path
        try:
            out += storable.findings(doc, _open(doc, root, ring, one.clean))
        except sops.IntegrityError as e:
            out.append(
                error(
                    "K005",
                    rel,
                    integrity_pos(doc, e),
                    f"integrity check failed: {without_file(e, rel)}",
                    "the file was altered outside sops; restore it from git or re-encrypt it",
                )
            )
        except sops.NoKeyError as e:
            out.append(error("K004", rel, (0, 0), without_file(e, rel), e.hint))
        except sops.SopsError as e:
            out.append(error("K003", rel, (0, 0), without_file(e, rel)))
    return out


def _open(doc: loader.Document, root: str, ring: sops.Keyring, clean: bool) -> dict[str, Any]:
    """DOC decrypted (``wrap``: encrypted leaves are Secrets), MAC verified.

    A file whose MAC covers only the encrypted values is decrypted from the parse the load
    already made: its clear values, the one place where our YAML 1.1 typing and sops's go-yaml
    typing differ, are not hashed, and the encrypted ones are ENC[...] text either way. Anything
    this cannot settle goes to the sops store's own parse of the file, which then decides the
    result or the error, exactly as before: a file the load flagged (CLEAN false), a sops block
    with a value YAML 1.1 typed that go-yaml may read otherwise, a merge key, a failure."""
    if clean and _same_either_way(doc):
        try:
            return sops.decrypt_document(
                doc.data, identities=ring, file=doc.path, wrap=True, use_binary=False
            )
        except sops.SopsError:
            pass  # the error as sops reads the file: from its own parse
    return sops.decrypt_file(os.path.join(root, doc.path), identities=ring, file=doc.path, wrap=True)


#: sops-block scalars YAML 1.1 and go-yaml type alike (the rest of the block must be text)
_SAME_TYPED = {("boolean", "true"), ("boolean", "false")}


def _same_either_way(doc: loader.Document) -> bool:
    """Whether sops reading DOC's file would decrypt the same values under the same MAC."""
    meta = doc.data.get("sops")
    if not isinstance(meta, dict) or meta.get("mac_only_encrypted") is not True or doc.notes:
        return False
    if not doc.path.endswith((".yaml", ".yml")):
        return False
    for path, (kind, text) in doc.implicit.items():
        if (
            path[:1] == ("sops",)
            and (kind, text) not in _SAME_TYPED
            and not (kind == "integer" and text.isdigit())
        ):
            return False
    # a merge key: YAML 1.1 merges, sops reads a key "<<" (asked of the packed positions a
    # worker or the cache left: unpacking them cost more than opening the file's data key)
    return not doc.on_a_path("<<")


def integrity_pos(doc: loader.Document, e: sops.IntegrityError) -> loader.Pos:
    """Where an altered file went wrong: the value that failed, else the sops block's key that
    did (``mac:``), else the whole file (the sops binary says no more than its exit code)."""
    if e.value_at is not None:
        return doc.pos(_keys_of(doc.data, e.value_at))
    if e.meta_key is not None:
        return doc.key_pos(("sops", e.meta_key))
    return (0, 0)


def _keys_of(data: Any, prefix: str) -> Path:
    """The document path named by a sops key path (``a:b:``; a key may hold ``:`` itself, so the
    document says where each name ends). Lists share their parent's path in sops: the walk stops
    there, at the list."""
    path: list[str | int] = []
    while prefix and isinstance(data, dict):
        keys = [k for k in data if isinstance(k, str) and prefix.startswith(k + ":")]
        if not keys:
            break
        key = max(keys, key=len)  # "a:b" before "a" when both could start "a:b:c:"
        path.append(key)
        data, prefix = data[key], prefix[len(key) + 1 :]
    return tuple(path)


# --- secrets keygen ------------------------------------------------------------------------


def keygen(path: str | None = None) -> tuple[str, str]:
    """Make an age identity in a sops keys file (mode 0600); returns (path, public recipient).

    For users without age-keygen: the file format is the same, and sops finds the default path.
    An existing file is never overwritten (it may hold the only copy of a key)."""
    import datetime

    import pyrage  # type: ignore[import-untyped]

    from .sops.keys import default_keys_path

    path = path or default_keys_path(os.environ)
    if os.path.exists(path):
        raise SecretsError(f"{path} exists; not overwritten (pass -o NEW_FILE)")
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    created = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"# created: {created}\n# public key: {recipient}\n{identity}\n")
    return path, recipient
