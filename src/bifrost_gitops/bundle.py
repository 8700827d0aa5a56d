"""The compiled bundle: one resolved JSON document per organization, written deterministically.

Layout and names: bifrost_gitops.bundleformat (index.json, global.json, orgs/<org>.json,
deploy.json).

Secrets modes: ``seal`` (each file is a SOPS JSON document encrypted to the runtime's age
recipients; `sops -d` opens it), ``plain`` (clear, mode 0600, only on request), ``redact``
(secret values replaced by a marker; needs no keys). A sealed file whose clear content did
not change is carried over byte for byte, so recompiling changes nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import functools
import hashlib
import hmac
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

from . import deploymanifest, gcpause, sops, storable
from .atomic import new_file_mode
from .bundleformat import (
    CLIENT_CREDENTIALS_KEY,
    DEPLOY_FILE,
    DEPLOY_KEY,
    FORMAT,
    GLOBAL_FILE,
    GLOBAL_SCOPE,
    INDEX_FILE,
    KIND,
    MODES,
    ORGS_DIR,
    ORGS_KEY,
    OWN_CONNECTION_KEY,
    SourceInfo,
    org_file,
    peek_index,
)
from .bundleformat import REDACTED as REDACTED  # bundle.REDACTED: what --secrets redact writes
from .catalog import Catalog, oauth_of
from .deploymanifest import manifest
from .errors import BifrostGitopsError
from .jsontext import indented
from .nodes import Json
from .orginputs import OrgInputs
from .resolve import Resolved, ResolvedOAuth, Reveal, SecretRef, organizations, resolve_org
from .resolve import revealed as _value

#: a bundle file's clear content (an org file, global.json), or one of its records
Record: TypeAlias = dict[str, Json]
#: one bundle file to write: index key, file, how to make its clear record, extra index
#: fields, and (org files) the digest of its inputs
Target: TypeAlias = tuple[str, str, Callable[[], Mapping[str, object]], dict[str, Json], bytes | None]


class BundleError(BifrostGitopsError):
    """The bundle cannot be written or read (usage/environment: exit 2)."""


# --- opening repository secrets ------------------------------------------------------------


class SecretOpener:
    """Decrypts repository files on demand, once each, and hands out single values."""

    def __init__(
        self,
        root: str,
        catalog: Catalog,
        keyring: sops.Keyring | None = None,
        raw: Callable[[str], bytes] | None = None,
    ):
        self.root = root
        self.keyring = keyring
        self.raw = raw  # a file's bytes by repository path (git objects); default: the work tree
        self.docs = {p.path: p for p in catalog.documents()}  # a document loads when first opened
        self.opened: dict[str, dict[str, Any]] = {}  # file -> its tree, encrypted leaves as Secrets

    def __call__(self, ref: SecretRef) -> Json:
        """The clear value at REF; raises SopsError (UnstorableSecret: K007 findings for every
        value of the file Bifrost cannot store, so nothing downstream meets NaN or bytes)."""
        tree = self.opened.get(ref.file)
        if tree is None:
            doc = self.docs[ref.file].doc
            if doc.data.get("sops", {}).get("mac_only_encrypted"):
                # clear values are outside the MAC, so our own parse of the file will do
                wrapped = sops.decrypt_document(doc.data, identities=self.keyring, file=ref.file, wrap=True)
            elif self.raw is not None:  # the MAC covers clear values as sops types them
                data = sops.loads(self.raw(ref.file), sops.store.format_of(ref.file), file=ref.file)
                wrapped = sops.decrypt_document(data, identities=self.keyring, file=ref.file, wrap=True)
            else:
                wrapped = sops.decrypt_file(
                    os.path.join(self.root, ref.file), identities=self.keyring, file=ref.file, wrap=True
                )
            bad = storable.findings(doc, wrapped)
            if bad:
                raise storable.UnstorableSecret(bad)
            tree = self.opened[ref.file] = wrapped  # kept wrapped: only the values asked for are revealed
        node: Any = tree
        for part in ref.path:  # the path resolve found in this file: it leads to a value
            node = node[part]
        return cast("Json", sops.reveal(node))


# --- records -------------------------------------------------------------------------------


def integration_data(r: Resolved, reveal: Reveal | None) -> Record:
    """Bifrost's IntegrationData for one resolution (secrets revealed, or redacted when no reveal)."""
    return {
        "integration_id": r.integration_id,
        "entity_id": r.entity_id,
        "entity_name": r.entity_name,
        "config": {k: _value(v, reveal) for k, v in r.config.items()},
        "config_secret_keys": list(r.config_secret_keys),
        "oauth": _oauth(r.oauth, reveal) if r.oauth else None,
    }


def _oauth(o: ResolvedOAuth, reveal: Reveal | None) -> Record:
    return {
        "connection_name": o.connection_name,
        "client_id": o.client_id,
        "client_secret": _value(o.client_secret, reveal),
        "authorization_url": o.authorization_url,
        "token_url": o.token_url,
        "scopes": list(o.scopes),
        "access_token": _value(o.access_token, reveal),
        "refresh_token": _value(o.refresh_token, reveal),
        "expires_at": _value(o.expires_at, reveal),
    }


def client_credentials(catalog: Catalog) -> Record:
    """What the runtime needs to mint a client-credentials token as Bifrost's ``get`` does:
    the token URL template (``{entity_id}`` unfilled) and the audience, by integration name.
    Only client-credentials integrations appear; the secret stays in the integration's record."""
    out: Record = {}
    for name, parsed in sorted(catalog.integrations.items()):
        settings = oauth_of(catalog, parsed.model)
        if settings is not None and settings.flow == "client_credentials":
            out[name] = {"token_url": settings.token_url, "audience": settings.audience}
    return out


def org_record(catalog: Catalog, org: str | None, reveal: Reveal | None) -> Record:
    """The clear content of one org file (or of global.json when ORG is None)."""
    if org is None:
        head: Record = {"scope": GLOBAL_SCOPE}
    else:
        o = catalog.orgs[org.lower()][0]
        head = {"organization": {"name": o.name, "id": o.id, "display_name": o.display_name}}
    resolved = resolve_org(catalog, org, lines=False)  # the file shows no sources
    head["integrations"] = {name: integration_data(r, reveal) for name, r in resolved.items()}
    head[CLIENT_CREDENTIALS_KEY] = client_credentials(catalog)
    if org is not None:  # which integrations have a mapping for this org (list_mappings needs it)
        head["mapped"] = [name for name, r in sorted(resolved.items()) if r.mapped]
        own: list[Json] = [n for n, r in sorted(resolved.items()) if r.oauth and r.oauth.connection == "own"]
        if own:  # the runtime's token source (written only when some: older bundles stay as they were)
            head[OWN_CONNECTION_KEY] = own
    return head


def canonical(record: object) -> bytes:
    """Same record, same bytes: sorted keys, two-space indent, UTF-8, trailing newline."""
    try:
        text = indented(record)
    except TypeError:  # not a plain JSON tree: the standard encoder says how (or why not)
        text = json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode()


# --- writing -------------------------------------------------------------------------------


@dataclass
class Written:
    out_dir: str
    files: int
    changed: list[str]  # bundle-relative paths whose bytes changed


class GitSource:
    """HEAD of the git repository holding ROOT, and whether ROOT differs from it (dirty): its
    two git commands started at once and left running while compile renders (``git status`` walks the whole work tree); ``result()`` waits for them. Used as a
    context manager, so a compile that fails meanwhile leaves no git process behind."""

    COMMANDS = (
        ["rev-parse", "--verify", "-q", "HEAD"],
        ["status", "--porcelain", "--untracked-files=normal", "--", "."],
    )

    def __init__(self, root: str) -> None:
        self.running: list[subprocess.Popen[str] | None] = []
        for args in self.COMMANDS:
            try:
                proc = subprocess.Popen(
                    ["git", "-C", root, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
                )
            except OSError:
                proc = None
            self.running.append(proc)

    def result(self) -> SourceInfo:
        head, status = (_output(proc) for proc in self.running)
        commit = (head or "").strip() or None
        if commit is None:
            return {"commit": None, "dirty": False}
        return {"commit": commit, "dirty": bool(status and status.strip())}

    def __enter__(self) -> GitSource:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.running:
            if proc is not None and proc.poll() is None:
                proc.kill()
            if proc is not None:
                proc.communicate()


def _output(proc: subprocess.Popen[str] | None) -> str | None:
    """A git command's output, or None when it failed or took longer than 30 s (then stopped)."""
    if proc is None:
        return None
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    return out if proc.returncode == 0 else None


def _fingerprint_key(keyring: sops.Keyring | None) -> bytes | None:
    """A key only the compile environment holds, so index fingerprints reveal nothing guessable."""
    if keyring is None or not keyring.identities:
        return None
    material = "\n".join(sorted(str(i) for i in keyring.identities)).encode()
    return hashlib.sha256(b"bifrost-gitops bundle fingerprint\0" + material).digest()


_AGE_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")


def _target(out_dir: str) -> str:
    """The folder the swap replaces: OUT_DIR, or the folder it points to when it is a symlink.

    The link itself stays: a runtime that reads the bundle through it sees the new bundle."""
    return os.path.realpath(out_dir)


def _check_target(out_dir: str) -> None:
    """The swap replaces OUT_DIR whole: refuse anything that is not empty and not a bundle."""
    if not os.path.exists(out_dir):
        return
    if not os.path.isdir(out_dir):
        raise BundleError(f"{out_dir}: exists and is not a folder")
    if os.listdir(out_dir) and peek_index(out_dir).get("kind") != KIND:
        raise BundleError(
            f"{out_dir}: folder is not empty and holds no bundle; compile replaces the output folder "
            "whole, so give it a new or a bundle folder"
        )


@gcpause.paused()  # rendering: many small acyclic objects beside the loaded repository's
def write(
    catalog: Catalog,
    root: str,
    out_dir: str,
    mode: str,
    *,
    recipients: list[str] | None = None,
    keyring: sops.Keyring | None = None,
) -> Written:
    """Compile every organization into OUT_DIR, atomically (temp folder beside it, then a swap)."""
    if mode not in MODES:
        raise BundleError(f"unknown secrets mode {mode!r}")
    if mode == "seal" and not recipients:
        raise BundleError(
            "sealing needs the runtime's age recipients: set bundle.recipients in bifrost-gitops.yaml "
            "or pass --recipient (or use --secrets redact)"
        )
    _check_target(out_dir)
    for r in recipients or [] if mode == "seal" else []:
        if not _AGE_RECIPIENT.match(r):
            raise BundleError(f"{r!r} is not an age X25519 recipient (age1 followed by 58 characters)")
    shown, out_dir = out_dir, _target(out_dir)
    clean_leftovers(out_dir)
    with GitSource(root) as git:  # git walks the work tree while the files are made
        files, entries, kept = _files(catalog, root, out_dir, mode, recipients, keyring)
        index = {
            DEPLOY_KEY: entries.pop(DEPLOY_KEY),
            "format": FORMAT,
            "kind": KIND,
            "secrets": mode,
            "source": git.result(),
            "recipients": sorted(recipients or []) if mode == "seal" else [],
            GLOBAL_SCOPE: entries.pop(GLOBAL_SCOPE),
            ORGS_KEY: entries,
        }
    files[INDEX_FILE] = canonical(index)
    changed = [rel for rel, data in files.items() if rel not in kept and _current(out_dir, rel) != data]
    changed += [f"{rel} (removed)" for rel in _stale(out_dir, files)]
    if changed:
        try:
            _swap_in(out_dir, files, private=mode == "plain", same=set(files) - set(changed))
        except OSError as e:
            where = e.filename or shown
            raise BundleError(
                f"{where}: cannot write the bundle ({e.strerror or e}); the previous bundle, if any, is unchanged"
            ) from e
    return Written(shown, len(files), changed)


def _files(
    catalog: Catalog,
    root: str,
    out_dir: str,
    mode: str,
    recipients: list[str] | None,
    keyring: sops.Keyring | None,
) -> tuple[dict[str, bytes], dict[str, dict[str, Json]], set[str]]:
    """Every bundle file's bytes and index entry (by key), and the files kept as they were:
    what to write (from ROOT) into the real folder OUT_DIR, and how."""
    reveal: Reveal | None = None if mode == "redact" else SecretOpener(root, catalog, keyring)
    fkey = _fingerprint_key(keyring) if mode == "seal" else None
    old_entries = _old_entries(out_dir, mode, recipients)
    inputs = OrgInputs(catalog, mode, sorted(recipients or []) if mode == "seal" else [], fkey)
    parts = {name: inputs.integration(name) for name in sorted(catalog.integrations)}
    # (index key, file, how to make its clear record, extra index fields, inputs digest): every
    # org, the global view, and the deploy manifest (integrations as Bifrost stores them, for
    # plan/apply), all sealed alike; a file whose inputs did not change is kept as it is. A clear
    # deploy.json is put together from its integrations' entries instead (_deploy_text)
    targets: list[Target] = [
        (GLOBAL_SCOPE, GLOBAL_FILE, functools.partial(org_record, catalog, None, reveal), {},
         inputs.global_digest()),
        *(
            (name, org_file(name), functools.partial(org_record, catalog, name, reveal),
             {"id": cast(Json, org_id)}, inputs.digest(name))
            for name, org_id, _display in organizations(catalog)
        ),
        (DEPLOY_KEY, DEPLOY_FILE, functools.partial(manifest, catalog, reveal), {},
         inputs.deploy_digest(parts) if mode == "seal" else None),
    ]  # fmt: skip
    files: dict[str, bytes] = {}
    entries: dict[str, dict[str, Json]] = {}
    kept: set[str] = set()
    for key, rel, make, extra, digest in targets:
        entry: dict[str, Json] = {"file": rel, **extra}
        found = _kept(out_dir, rel, old_entries.get(key), inputs, digest) if digest else None
        if found is not None:
            data, old = found
            entry.update(old)
            kept.add(rel)
        else:
            if mode == "seal":
                data, fp = _seal(make(), rel, out_dir, old_entries.get(key), fkey, recipients or [])
                if fp:
                    entry["fingerprint"] = fp
            elif key == DEPLOY_KEY:
                data, entry["integrations"] = _deploy_text(
                    catalog, reveal, out_dir, old_entries.get(key), inputs, parts
                )
            else:
                data = canonical(make())
            sha = entry["sha256"] = hashlib.sha256(data).hexdigest()
            if digest:
                entry["inputs"] = inputs.entry(digest, sha)
        files[rel] = data
        entries[key] = entry
    return files, entries, kept


def _old_entries(out_dir: str, mode: str, recipients: list[str] | None) -> dict[str, Json]:
    """The previous bundle's index entries by key (org names, global, deploy), when it was
    written in MODE (and, sealed, to the same RECIPIENTS): what this compile may keep."""
    old_index = peek_index(out_dir)
    old_orgs = old_index.get(ORGS_KEY)
    if old_index.get("secrets") != mode or not isinstance(old_orgs, dict):
        return {}
    if mode == "seal" and old_index.get("recipients") != sorted(recipients or []):
        return {}  # new recipients: everything must be re-sealed
    return {**old_orgs, GLOBAL_SCOPE: old_index.get(GLOBAL_SCOPE), DEPLOY_KEY: old_index.get(DEPLOY_KEY)}


def _kept(
    out_dir: str, rel: str, old: Json, inputs: OrgInputs, digest: bytes
) -> tuple[bytes, dict[str, str]] | None:
    """The previous bundle's REL and its index fields, when it was written from the same inputs
    (DIGEST) and still holds the bytes it was written with; None: make it anew."""
    if not isinstance(old, dict) or old.get("file") != rel or not isinstance(old.get("inputs"), str):
        return None
    current = _current(out_dir, rel)
    if current is None:
        return None
    sha = hashlib.sha256(current).hexdigest()
    if old.get("sha256") != sha or not hmac.compare_digest(str(old["inputs"]), inputs.entry(digest, sha)):
        return None
    fields = {"sha256": sha, "inputs": str(old["inputs"])}
    if isinstance(old.get("fingerprint"), str):
        fields["fingerprint"] = str(old["fingerprint"])
    return current, fields


def _deploy_text(
    catalog: Catalog,
    reveal: Reveal | None,
    out_dir: str,
    old: Json,
    inputs: OrgInputs,
    digests: dict[str, bytes],
) -> tuple[bytes, dict[str, Json]]:
    """A clear deploy.json, and where each integration's entry sits in it with the inputs it was
    made from (its index entry's ``integrations``: name -> {start, end, inputs}).

    An entry of the previous deploy.json is taken over as it is, unbuilt (its secrets unopened),
    when its integration's inputs (DIGESTS) are the ones recorded and its bytes the ones they
    were bound to; the rest are built. The text is byte for byte a cold compile's."""
    previous = _current(out_dir, DEPLOY_FILE) if isinstance(old, dict) else None
    recorded = old.get("integrations") if isinstance(old, dict) else None
    spans = recorded if previous is not None and isinstance(recorded, dict) else {}

    made: list[str] = []  # the entries in the order of the text

    def entry(name: str, render: Callable[[], str]) -> str:
        made.append(_taken(previous, spans.get(name), inputs, digests[name]) or render())
        return made[-1]

    try:
        text = deploymanifest.text(catalog, reveal, entry)
    except TypeError:  # not plain JSON: canonical() says how, or why not
        return canonical(manifest(catalog, reveal)), {}
    data = (text + "\n").encode()
    where: dict[str, Json] = {}
    opening = deploymanifest.LIST_OPEN.encode()
    at = data.find(opening) + len(opening)
    for name, chunk in zip(sorted(catalog.integrations), (m.encode() for m in made), strict=True):
        if data[at : at + len(chunk)] != chunk:  # cannot happen: the text is made of these entries
            return data, {}
        bound = inputs.entry(digests[name], hashlib.sha256(chunk).hexdigest())
        where[name] = {"start": at, "end": at + len(chunk), "inputs": bound}
        at += len(chunk) + len(deploymanifest.BETWEEN)
    return data, where


def _taken(previous: bytes | None, span: Json, inputs: OrgInputs, digest: bytes) -> str | None:
    """The previous deploy.json's entry at SPAN when it was bound to DIGEST (else None)."""
    if previous is None or not isinstance(span, dict):
        return None
    start, end, bound = span.get("start"), span.get("end"), span.get("inputs")
    if type(start) is not int or type(end) is not int or not 0 <= start <= end <= len(previous):
        return None
    chunk = previous[start:end]
    want = inputs.entry(digest, hashlib.sha256(chunk).hexdigest())
    if not isinstance(bound, str) or not hmac.compare_digest(bound, want):
        return None
    try:
        return chunk.decode()
    except UnicodeDecodeError:
        return None


def _seal(
    record: Mapping[str, object],
    rel: str,
    out_dir: str,
    old: Json,
    fkey: bytes | None,
    recipients: list[str],
) -> tuple[bytes, str | None]:
    """The sealed file: the one already there when its content is unchanged, else fresh."""
    fp = None
    if fkey:
        compact = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        fp = hmac.new(fkey, compact, hashlib.sha256).hexdigest()
    if fp and isinstance(old, dict) and old.get("fingerprint") == fp:
        current = _current(out_dir, rel)
        if current is not None and hashlib.sha256(current).hexdigest() == old.get("sha256"):
            return current, fp
    sealed = sops.encrypt_document(record, recipients=recipients)
    return sops.dump_json(sealed, indent=None).encode(), fp


def _current(out_dir: str, rel: str) -> bytes | None:
    try:
        with open(os.path.join(out_dir, rel), "rb") as f:
            return f.read()
    except OSError:
        return None


def _stale(out_dir: str, files: dict[str, bytes]) -> list[str]:
    """Files in OUT_DIR that the new bundle no longer has (a removed organization)."""
    orgs = os.path.join(out_dir, ORGS_DIR)
    if not os.path.isdir(orgs):
        return []
    return sorted(f"{ORGS_DIR}/{name}" for name in os.listdir(orgs) if f"{ORGS_DIR}/{name}" not in files)


#: Temporary folders beside the output: ``.<name>.new-`` (the bundle being written) and
#: ``.<name>.old-`` (the previous bundle during a swap without renameat2), each followed by
#: the 8 characters tempfile.mkdtemp adds.
_TEMP_KINDS = ("new", "old")


def _temp_pattern(out_dir: str) -> re.Pattern[str]:
    base = re.escape(os.path.basename(out_dir))
    return re.compile(rf"\.{base}\.(?:{'|'.join(_TEMP_KINDS)})-[a-z0-9_]{{8}}")


def _hold(path: str) -> int | None:
    """An open descriptor holding an exclusive lock on folder PATH (not followed if a symlink),
    or None when it is not such a folder or another process holds the lock.

    A compile holds the lock on its temporary folder while it runs; the kernel drops it when
    the process ends, however it ends, so an unlocked temporary folder is a killed run's."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def clean_leftovers(out_dir: str) -> list[str]:
    """Remove the temporary folders killed compiles of OUT_DIR left beside it; their names.

    Only real folders (never a symlink, never followed) named as ours, owned by this user and
    locked by no running compile are removed: they may hold clear secrets (``--secrets plain``)."""
    parent = os.path.dirname(out_dir)
    pattern = _temp_pattern(out_dir)
    try:
        names = sorted(n for n in os.listdir(parent) if pattern.fullmatch(n))
    except OSError:
        return []
    removed = []
    for name in names:
        path = os.path.join(parent, name)
        fd = _hold(path)
        if fd is None:
            continue
        try:
            st, now = os.fstat(fd), os.lstat(path)
            if st.st_uid != os.geteuid() or (st.st_dev, st.st_ino) != (now.st_dev, now.st_ino):
                continue  # someone else's, or the name no longer holds the folder we locked
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed


def _swap_in(out_dir: str, files: dict[str, bytes], private: bool, same: Set[str] = frozenset()) -> None:
    """Write FILES into a private temporary folder beside OUT_DIR, then swap it in.

    The temporary folder is mode 0700 from creation (mkdtemp) and stays so while it is written
    (plain bundles hold clear secrets); it gets the bundle's mode just before the swap. Files in
    SAME (their bytes did not change) are hard links to the current bundle's files, so only what
    changed is rewritten: an unchanged file keeps its inode and modification time."""
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.new-", dir=parent)
    lock = _hold(tmp)
    mode = new_file_mode(0o600 if private else 0o644)
    try:
        written: list[str] = []
        for rel, data in files.items():
            path = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(path), mode=0o700 if private else 0o755, exist_ok=True)
            if rel in same and _reuse(os.path.join(out_dir, rel), path, data, mode):
                continue
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            written.append(path)
        _durable(written, {os.path.dirname(os.path.join(tmp, rel)) for rel in files} | {tmp})
        os.chmod(tmp, 0o700 if private else 0o755)
        if os.path.isdir(out_dir):
            if not _exchange(tmp, out_dir):
                old = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.old-", dir=parent)
                os.rmdir(old)
                os.rename(out_dir, old)
                try:
                    os.rename(tmp, out_dir)
                except BaseException:
                    os.rename(old, out_dir)  # put the previous bundle back
                    raise
                tmp = old
        else:
            os.rename(tmp, out_dir)
            tmp = ""
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        if lock is not None:
            os.close(lock)


#: up to this many new files are flushed one by one; more, with one sync() of everything
FSYNC_EACH = 16


def _durable(written: list[str], folders: Set[str]) -> None:
    """The new bundle is on disk before the swap: its WRITTEN files and its FOLDERS (their
    entries, hard links included). A compile after a small change writes a few files (the rest
    are links to files already on disk): those are flushed one by one; a big one flushes
    everything at once (sync), not a file at a time."""
    if len(written) > FSYNC_EACH and hasattr(os, "sync"):
        os.sync()
        return
    for path in [*written, *sorted(folders)]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _reuse(current: str, new: str, data: bytes, mode: int) -> bool:
    """Hard-link CURRENT (the bundle's file now) at NEW when it is a regular file of ours with
    MODE that holds exactly DATA; False (nothing left at NEW) when it cannot be reused.

    The bytes are compared after linking, so what the link holds is what was checked."""
    try:
        st = os.lstat(current)
        if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != mode or st.st_uid != os.geteuid():
            return False
        if st.st_size != len(data):
            return False
        os.link(current, new, follow_symlinks=False)
    except OSError:  # no hard links on this file system, or the file went away: write it
        return False
    try:
        with open(new, "rb") as f:
            if f.read() == data:
                return True
    except OSError:
        pass
    os.unlink(new)
    return False


def _exchange(a: str, b: str) -> bool:
    """Swap two folders in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    return bool(fn(at_fdcwd, a.encode(), at_fdcwd, b.encode(), rename_exchange) == 0)
