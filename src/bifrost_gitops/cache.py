"""The incremental cache: one file's `perfile.FileResult`, found again by the file's content.

Where: ``$BIFROST_GITOPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/bifrost-gitops``, else
``~/.cache/bifrost-gitops``; one folder per repository (the hash of its real path). It lives
outside the repository on purpose: a pull request could commit a forged cache, never one here.

What: an entry's key is sha256(settings, path, bytes), where the settings digest covers the
tool's version and the code of the per-file stage, Python, PyYAML and pydantic, and the
project's bifrost-gitops.yaml and .sops.yaml. A changed file, a rename, a new release or new
settings simply miss; nothing is ever looked up by path alone. Entries hold what the loader
parsed (ciphertext stays ciphertext) and never a decrypted value.

How: a result is kept in two parts. Its `perfile.Summary` (state, findings, declared names and
`catalog.Facts`), which every run reads, is in ``summaries.bin``; its `perfile.Body` (the parsed
document), which a run reads only for the documents a check or a later stage asks for, is in one
of 32 shard files (a mapping's by its integration, see `_shard`) or in a 33rd (every other
kind's). Each file is ``MAGIC + sha256(payload) + payload`` with a marshal payload of plain
types. A file whose header, checksum or shape is wrong is ignored (its files are parsed again
and it is rewritten), never trusted; a summary whose body is gone is
parsed again when the body is asked for (repo.py). Files are replaced whole with
`atomic.write_atomic`, merged with what is on disk just before, so two processes sharing the
cache lose at most a few entries (parsed again next time), and a reader never sees half a file.
Beside them, ``index.bin`` maps a work-tree path to the size, times and inode it had when last
read and the key of its bytes then, so an unchanged file is not even read (git's index does the
same); entries younger than RACY_NS are left out, as a file may change again within one tick.
And ``checks.bin`` keeps the findings of checks that read a few documents (a mapping's values
against its integration and provider: checks.Memo) under those documents' keys together, so a
warm run checks again only what a change can affect; merged and written like a shard.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import zlib
from collections.abc import Iterable
from typing import Any, TypeVar, cast

from . import codedigest
from .atomic import write_atomic
from .model import KINDS
from .perfile import Body, DiagRow, FactsRow, FileResult, State, Summary

MAGIC = b"BGCACHE2"
INDEX = "index.bin"
CHECKS = "checks.bin"
SUMMARIES = "summaries.bin"
BLOBS = "blobs.bin"
#: a file changed less than this before it was indexed may change again unseen in the same tick
RACY_NS = 2_000_000_000
#: (size, mtime_ns, ctime_ns, inode) of a work-tree file (or of a cache file, see `_unchanged`)
Stat = tuple[int, int, int, int]
ENV_DIR = "BIFROST_GITOPS_CACHE_DIR"
ENV_OFF = "BIFROST_GITOPS_NO_CACHE"
#: a shard keeps the entries of the files this process read, plus older ones up to this many
KEEP_OLD = 256
_K = TypeVar("_K")
_V = TypeVar("_V")
#: files the entries are spread over: one change rewrites one of them
SHARDS = 32
#: settings folders kept per repository (the most recently used)
KEEP_SETTINGS = 4
#: the modules whose code decides a FileResult: a change to any of them is a new cache
_STAGE_MODULES = (
    "perfile", "loader", "structure", "model", "valuechecks", "checks", "catalog", "diagnostics", "escape", "cache",
    "sopsmeta", "remedy", "nodes",
)  # fmt: skip


def disabled() -> bool:
    """BIFROST_GITOPS_NO_CACHE set to anything but '' or '0' turns the cache off."""
    return os.environ.get(ENV_OFF, "") not in ("", "0")


def base_dir() -> str:
    given = os.environ.get(ENV_DIR)
    if given:
        return given
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "bifrost-gitops")


def _code_digest() -> bytes:
    """The per-file stage's own source, so an upgrade (or a developer's edit) is a new cache."""
    return codedigest.of(_STAGE_MODULES)


def settings_digest(project: bytes | None, sops_rules: bytes | None) -> bytes:
    """Everything besides a file's path and bytes that can change its FileResult."""
    import pydantic
    import yaml

    import bifrost_gitops

    h = hashlib.sha256()
    for part in (
        MAGIC,
        bifrost_gitops.__version__.encode(),
        _code_digest(),
        sys.version.encode(),
        yaml.__version__.encode(),
        pydantic.VERSION.encode(),
        project,
        sops_rules,
    ):
        h.update(b"-" if part is None else b"+%d:" % len(part) + part)
    return h.digest()


def _is_key(key: object) -> bool:
    return type(key) is bytes and len(key) == 32


def _valid_summary(row: object) -> bool:
    """The shape of one summary as read back (marshal may yield any of its types)."""
    if not (type(row) is tuple and len(row) == 6):
        return False
    path, state, diags, declared, facts, digest = row
    return (
        isinstance(path, str)
        and type(state) is int
        and _valid_rows(diags)
        and type(declared) is tuple
        # a valid document has its facts and digest, and only a valid one
        and ((facts is None) if state != State.VALID else _valid_facts(facts) and _is_key(digest))
    )


def _valid_facts(facts: object) -> bool:
    return type(facts) is tuple and len(facts) == 5 and isinstance(facts[0], str) and facts[0] in KINDS


def _valid_body(row: object) -> bool:
    if not (type(row) is tuple and len(row) == 4):
        return False
    data, positions, implicit, marked = row
    return type(data) is dict and type(positions) is bytes and type(implicit) is dict and type(marked) is bool


class Cache:
    """The cache of one repository under one set of settings."""

    def __init__(self, root: str, settings: bytes):
        repo = hashlib.sha256(os.path.realpath(root).encode("utf-8", "surrogateescape")).hexdigest()[:24]
        self.top = os.path.join(base_dir(), repo)
        self.folder = os.path.join(self.top, settings.hex()[:24])
        self.settings = settings
        self._shards: dict[int, dict[bytes, tuple[Any, ...]]] = {}  # Body rows as read
        #: Body rows put by this run, by shard (None: a body dropped, see `forget_body`)
        self._new: dict[int, dict[bytes, tuple[Any, ...] | None]] = {}
        self._summaries: dict[bytes, tuple[Any, ...]] | None = None  # Summary rows
        self._live: dict[bytes, tuple[Any, ...]] = {}  # the summaries this run read or put
        self._dirty_summaries = False
        self._index: dict[str, object] | None = None  # as read, each entry checked when used
        self._index_kept: dict[str, tuple[int, int, int, int, bytes]] = {}  # checked or new
        self._index_dirty = False
        self._blobs: dict[str, object] | None = None  # path + git blob -> key, checked when used
        self._blobs_used: dict[str, bytes] = {}  # checked or new
        self._blobs_dirty = False
        self._dirty_checks = False
        self._checks: dict[bytes, tuple[DiagRow, ...]] | None = None
        self._checks_used: dict[bytes, tuple[DiagRow, ...]] = {}
        self._stamps: dict[str, Stat] = {}  # the cache files read, as they were then

    def key(self, path: str, content: bytes) -> bytes:
        h = hashlib.sha256(self.settings)
        h.update(path.encode("utf-8", "surrogateescape") + b"\0")
        h.update(content)
        return h.digest()

    def _path(self, shard: int) -> str:
        return os.path.join(self.folder, f"{shard:02x}.bin")

    def _read(self, shard: int) -> dict[bytes, tuple[Any, ...]]:
        """A shard as on disk ({} when missing or damaged); each entry is checked when used."""
        return cast("dict[bytes, tuple[Any, ...]]", _load(self._path(shard), self._stamps) or {})

    def known(self, rel: str, stat: Stat) -> bytes | None:
        """The key of a file last read with exactly this size, times and inode, if any."""
        if self._index is None:
            self._index = cast("dict[str, object]", _load(os.path.join(self.folder, INDEX)) or {})
        seen = self._index.get(rel)
        # checked as used (a run uses each entry once): equal to a real stat, its numbers are ints
        if type(seen) is tuple and len(seen) == 5 and seen[:4] == stat and _is_key(seen[4]):
            self._index_kept[rel] = seen
            return cast(bytes, seen[4])
        return None

    def known_blob(self, rel: str, blob: str) -> bytes | None:
        """The key of a file whose bytes are git blob BLOB (``--staged``, ``--rev``, a diff's
        base): found without reading the blob. Blobs are named by the hash of their bytes."""
        if self._blobs is None:
            self._blobs = cast(
                "dict[str, object]", _load(os.path.join(self.folder, BLOBS), self._stamps) or {}
            )
        name = f"{rel}\0{blob}"
        found = self._blobs.get(name)
        if not _is_key(found):
            return None
        self._blobs_used[name] = cast(bytes, found)
        return cast(bytes, found)

    def seen_blob(self, rel: str, blob: str, key: bytes) -> None:
        self._blobs_used[f"{rel}\0{blob}"] = key
        self._blobs_dirty = True

    def seen(self, rel: str, stat: Stat, key: bytes) -> None:
        """Remember that REL with this size, times and inode has KEY (see `known`)."""
        self._index_kept[rel] = (*stat, key)
        self._index_dirty = True

    def summary(self, key: bytes) -> Summary | None:
        """The summary of the file whose key is KEY, if kept."""
        if self._summaries is None:
            self._summaries = self._read_summaries()
        found = self._summaries.get(key)
        if found is None or not _valid_summary(found):  # checked as used: never trusted
            return None
        self._live[key] = found
        return Summary(*found)

    def _read_summaries(self) -> dict[bytes, tuple[Any, ...]]:
        return cast(
            "dict[bytes, tuple[Any, ...]]", _load(os.path.join(self.folder, SUMMARIES), self._stamps) or {}
        )

    def body(self, key: bytes, facts: FactsRow) -> Body | None:
        """The parsed document of a VALID file's KEY (FACTS: its summary's), if kept (a shard is
        read on first use)."""
        shard = _shard(facts)
        row = self._new.get(shard, {}).get(key)
        if row is None:
            entries = self._shards.get(shard)
            if entries is None:
                entries = self._shards[shard] = self._read(shard)
            row = entries.get(key)
        return Body(*row) if row is not None and _valid_body(row) else None  # never trusted

    def put(self, key: bytes, result: FileResult) -> None:
        if self._summaries is None:
            self._summaries = self._read_summaries()
        self._summaries[key] = self._live[key] = tuple(result.summary())
        self._dirty_summaries = True
        body = result.body()
        if body is not None and result.facts is not None:
            shard = _shard(result.facts)
            self._new.setdefault(shard, {})[key] = tuple(body)

    def forget_body(self, key: bytes) -> None:
        """Keep no parsed document under KEY: it holds a secret in the clear (the checks found
        one), which the cache must not copy out of the repository. Its summary stays; a later
        run that wants the document parses the file again."""
        row = (self._summaries or {}).get(key)
        if row is not None and _valid_summary(row) and row[4] is not None:
            self._new.setdefault(_shard(row[4]), {})[key] = None

    def checked(self, key: bytes) -> tuple[DiagRow, ...] | None:
        """The findings kept under KEY by `check_done` (see checks.Memo), if any."""
        if self._checks is None:
            self._checks = _read_checks(os.path.join(self.folder, CHECKS), self._stamps)
        found = self._checks.get(key)
        if found is None or not _valid_rows(found):  # checked as used: never trusted
            return None
        self._checks_used[key] = found
        return found

    def check_done(self, key: bytes, rows: tuple[DiagRow, ...]) -> None:
        if self._checks is None:
            self._checks = {}
        self._checks[key] = self._checks_used[key] = rows
        self._dirty_checks = True

    def save(self) -> None:
        """Write the shards that gained entries (merged with their current state on disk) and
        the index. A cache that cannot be written is no error: the next run parses again."""
        dirty = self._index_dirty or self._dirty_checks or self._dirty_summaries or self._blobs_dirty
        if not self._new and not dirty:
            return
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            self._prune_other_settings()
            for shard in sorted(self._new):
                self._write(shard)
            if self._dirty_summaries:
                self._write_summaries()
            if self._index_dirty:
                self._write_index(self._index_kept)
            if self._dirty_checks:
                self._write_checks()
            if self._blobs_dirty:
                self._write_blobs()
        except (OSError, ValueError):  # read-only, full, or a value marshal refuses (none known)
            pass
        self._new.clear()
        self._index_dirty = self._dirty_checks = self._dirty_summaries = self._blobs_dirty = False

    def _write_checks(self) -> None:
        """The findings used or made by this run, plus as many older ones (a diff's base and
        head, or a branch switched back and forth, keep theirs), merged with the disk's."""
        path = os.path.join(self.folder, CHECKS)
        used = self._checks_used
        merged = _merge(self._on_disk(path, self._checks), used, max(len(used), KEEP_OLD))
        _dump(path, cast("dict[object, object]", merged))

    def _write_blobs(self) -> None:
        """The blobs this run used, plus as many others as all shards keep (a diff's base and a
        branch switched back to), merged with the disk's."""
        path = os.path.join(self.folder, BLOBS)
        used = cast("dict[str, object]", self._blobs_used)
        merged = _merge(self._on_disk(path, self._blobs), used, KEEP_OLD * SHARDS)
        _dump(path, cast("dict[object, object]", merged))

    def _write_index(self, index: dict[str, tuple[int, int, int, int, bytes]]) -> None:
        """The files this run listed, without racy entries: a file written within RACY_NS of
        now could change again within its timestamp's tick and look unchanged, so it is read
        again next time."""
        import time

        recent = time.time_ns() - RACY_NS
        _dump(os.path.join(self.folder, INDEX), {k: v for k, v in index.items() if max(v[1], v[2]) < recent})

    def _write(self, shard: int) -> None:
        """The shard as on disk with this run's new bodies and without its forgotten ones: the
        bodies of every file this run read are kept, and as many others as KEEP_OLD."""
        new = self._new[shard]
        on_disk = self._on_disk(self._path(shard), self._shards.get(shard))
        on_disk = {k: v for k, v in on_disk.items() if new.get(k, v) is not None}
        live = {k: v for k, v in on_disk.items() if k in self._live}
        merged = _merge(on_disk, live | {k: v for k, v in new.items() if v is not None}, KEEP_OLD)
        self._shards[shard] = merged
        _dump(self._path(shard), cast("dict[object, object]", merged))

    def _write_summaries(self) -> None:
        """The summaries this run read or put, plus as many older ones as all shards keep."""
        path = os.path.join(self.folder, SUMMARIES)
        merged = _merge(self._on_disk(path, self._summaries), self._live, KEEP_OLD * SHARDS)
        _dump(path, cast("dict[object, object]", merged))

    def _on_disk(self, path: str, read: dict[_K, _V] | None) -> dict[_K, _V]:
        """PATH's entries as on disk now, to merge into: READ (what this run read of it) when no
        other process has replaced it since, else read again (entries are checked when used)."""
        if read is not None and _unchanged(path, self._stamps):
            return read
        return cast("dict[_K, _V]", _load(path) or {})

    def _prune_other_settings(self) -> None:
        """Keep the folders of the KEEP_SETTINGS most recently used settings (a diff's base and
        head may differ; an upgrade leaves the old version's behind) and remove the rest, so the
        cache does not grow with every upgrade or edit of .sops.yaml."""
        import shutil

        os.utime(self.folder)
        others = [os.path.join(self.top, n) for n in _listdir(self.top) if len(n) == 24]
        others.sort(key=_mtime, reverse=True)
        for folder in others[KEEP_SETTINGS:]:
            shutil.rmtree(folder, ignore_errors=True)


def _shard(facts: FactsRow) -> int:
    """A mapping's shard is its integration's (of SHARDS): a change to one integration's mappings
    reads the bodies of that integration's only (compile rebuilds its deploy.json entry). The few
    documents every check reads (the project, organizations, providers, integrations) share one
    more, so a warm validate reads just that one."""
    kind, _, integration = facts[:3]
    if kind != "Mapping" or integration is None:
        return SHARDS
    return zlib.crc32(integration.encode("utf-8", "surrogateescape")) % SHARDS


def _merge(on_disk: dict[_K, _V], used: dict[_K, _V], keep: int) -> dict[_K, _V]:
    """What this run used, plus the KEEP most recent other entries on disk (another process's,
    a diff's other side, a branch switched back to)."""
    old = [(k, v) for k, v in on_disk.items() if k not in used]
    return dict(old[-keep:]) | used


def _dump(path: str, data: dict[object, object]) -> None:
    """Write a cache file whole: MAGIC, the payload's sha256, the marshal payload. Not synced to
    disk: a file lost or torn in a crash fails its checksum and is rebuilt."""
    payload = marshal.dumps(data)
    write_atomic(
        path,
        MAGIC + hashlib.sha256(payload).digest() + payload,
        mode=0o600,
        prefix=".cache-",
        suffix=".tmp",
        durable=False,
    )


def _load(path: str, stamps: dict[str, Stat] | None = None) -> dict[object, object] | None:
    """A cache file's payload when its header and checksum hold and it is a dict, else None
    (STAMPS: where to note the file's size, times and inode as read, see `_unchanged`)."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
            if stamps is not None:
                stamps[path] = stat_of(os.fstat(f.fileno()))
    except OSError:
        return None
    head = len(MAGIC) + 32
    if blob[: len(MAGIC)] != MAGIC or hashlib.sha256(blob[head:]).digest() != blob[len(MAGIC) : head]:
        return None
    try:
        raw = marshal.loads(blob[head:])
    except (ValueError, EOFError, TypeError):
        return None
    return raw if type(raw) is dict else None


def stat_of(st: os.stat_result) -> Stat:
    """The Stat of a stat() result: what says a file is still the one seen before."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _unchanged(path: str, stamps: dict[str, Stat]) -> bool:
    """Whether PATH is still the file this process read (no other process replaced it since):
    then what was read and checked then is what is on disk, and need not be read again."""
    try:
        return stamps.get(path) == stat_of(os.stat(path))
    except OSError:
        return False


def _valid_rows(rows: object) -> bool:
    return type(rows) is tuple and all(type(d) is tuple and len(d) == 7 for d in rows)


def _read_checks(path: str, stamps: dict[str, Stat] | None = None) -> dict[bytes, tuple[DiagRow, ...]]:
    """checks.bin as on disk ({} when missing or damaged); each entry is checked when used."""
    return cast("dict[bytes, tuple[DiagRow, ...]]", _load(path, stamps) or {})


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _listdir(folder: str) -> Iterable[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return ()
