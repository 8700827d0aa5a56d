"""The repository as a whole: find its root, load every document, run every check."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from . import cache, gcpause, gitrev, loader, parallel, perfile
from .catalog import Catalog, Parsed
from .checks import check
from .diagnostics import Diagnostic, error, sort_key
from .errors import BifrostGitopsError
from .model import AnyDocument
from .perfile import PROJECT_FILE as PROJECT_FILE  # where it always was, for the other modules
from .perfile import Summary
from .sopsrules import CONFIG_NAME
from .valuechecks import CLEAR_SECRET


class RepoError(BifrostGitopsError):
    """The repository cannot be checked at all (usage or environment error, exit 2)."""


@dataclass
class Result:
    root: str
    files: int
    catalog: Catalog
    diagnostics: list[Diagnostic]
    #: where the files came from: suppress.py reads the text of files with findings from it
    tree: Tree | None = None

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def find_root(start: str) -> str:
    """The folder holding bifrost-gitops.yaml: ``start`` itself or its nearest parent."""
    if not os.path.exists(start):
        raise RepoError(f"{start}: no such file or directory")
    here = os.path.abspath(start if os.path.isdir(start) else os.path.dirname(start))
    while True:
        if os.path.isfile(os.path.join(here, PROJECT_FILE)):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            raise RepoError(
                f"{start}: no {PROJECT_FILE} here or in any parent folder "
                "(hint: `bifrost-gitops init DIR` creates a repository)"
            )
        here = parent


class LoadOptions(NamedTuple):
    """How to load: JOBS worker processes for the parsing (None: the usable cores), and whether
    to use the incremental cache (cache.py; BIFROST_GITOPS_NO_CACHE turns it off too)."""

    jobs: int | None = None
    cache: bool = True


DEFAULT = LoadOptions()


class Tree(Protocol):
    """Where a repository's files come from: the work tree, or a git revision (gitrev.py)."""

    root: str

    def files(self, exclude: list[str]) -> tuple[list[str], list[Diagnostic]]: ...

    def load(self, rel: str) -> tuple[loader.Document | None, list[Diagnostic]]: ...

    def read(self, rel: str) -> bytes:
        """A listed file's bytes (for the inline suppression comments that parsing drops)."""
        ...

    def content(self, rel: str) -> bytes | Diagnostic | None:
        """A file's bytes to parse, or the finding why they cannot be read (Y007, Y004), or
        None when there is no such file."""
        ...

    def sops_rules(self) -> bytes | None:
        """The .sops.yaml beside bifrost-gitops.yaml, if any (part of the cache's settings)."""
        ...

    def blob_ids(self) -> dict[str, str]:
        """Each listed file's git blob (git trees; {} for the work tree, whose files the cache
        knows by their size, times and inode instead)."""
        ...

    def prefetch(self, rels: list[str]) -> None:
        """Get ready to give these files' content (one git process for all of them)."""
        ...


class WorkTree:
    """The files on disk; in a git work tree, without what git ignores (a decrypted copy, a
    build folder), which will never be committed."""

    def __init__(self, root: str):
        self.root = root

    def files(self, exclude: list[str]) -> tuple[list[str], list[Diagnostic]]:
        found, diags = loader.discover(self.root, exclude)
        skip = gitrev.ignored(self.root)
        if skip is None:
            return found, diags
        return [r for r in found if not skip.covers(r)], [d for d in diags if not skip.covers(d.path)]

    def load(self, rel: str) -> tuple[loader.Document | None, list[Diagnostic]]:
        return loader.load_file(self.root, rel)

    def read(self, rel: str) -> bytes:
        """At most one byte over loader.MAX_BYTES (enough to tell a file too big), asked for at
        the file's size: a read of MAX_BYTES + 1 allocates 1 MiB a file, 3x the cost of the read."""
        limit = loader.MAX_BYTES + 1
        fd = os.open(os.path.join(self.root, rel), os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            data = os.read(fd, min(os.fstat(fd).st_size + 1, limit))
            while len(data) < limit:  # until the end: the file may have grown since fstat
                more = os.read(fd, min(limit - len(data), 1 << 16))
                if not more:
                    break
                data += more
            return data
        finally:
            os.close(fd)

    def content(self, rel: str) -> bytes | Diagnostic:
        try:
            return self.read(rel)
        except OSError as e:
            return error("Y007", rel, (0, 0), f"cannot read file: {e.strerror}")

    def sops_rules(self) -> bytes | None:
        found = self.content(CONFIG_NAME)
        return found if isinstance(found, bytes) else None

    def blob_ids(self) -> dict[str, str]:
        return {}

    def prefetch(self, rels: list[str]) -> None:
        pass


def _exclude(project: bytes | None) -> list[str]:
    """The Project's exclude: patterns, read before discovery so excluded files are never parsed."""
    doc = loader.load_bytes(project, PROJECT_FILE)[0] if project is not None else None
    if doc is None or not isinstance(doc.data, dict):
        return []
    ex = doc.data.get("exclude")
    return [p for p in ex if isinstance(p, str)] if isinstance(ex, list) else []


def load(start: str = ".", options: LoadOptions = DEFAULT) -> Result:
    """Load and check the repository containing ``start``; never raises for bad content."""
    return load_tree(WorkTree(find_root(start)), options)


def load_git(start: str, rev: str | None, options: LoadOptions = DEFAULT) -> Result:
    """Load and check the repository containing ``start`` as git holds it: at revision REV, or
    as staged (REV None: the tree the next commit will contain). Nothing in the work tree is
    read but the folder that locates the repository; GitError (exit 2) outside git."""
    root = find_root(start)
    tree = gitrev.IndexTree(root) if rev is None else gitrev.GitTree(root, rev)
    if not tree.exists:
        if rev is None:
            raise RepoError(f"{root}: {PROJECT_FILE} is not staged (hint: git add it)")
        raise RepoError(f"{root}: no {PROJECT_FILE} in revision {rev!r}")
    return load_tree(tree, options)


def load_tree(tree: Tree, options: LoadOptions = DEFAULT) -> Result:
    """Load and check a repository from any file source."""
    with gcpause.paused():
        return _load(tree, options)


def _load(tree: Tree, options: LoadOptions) -> Result:
    settings = tree.content(PROJECT_FILE)
    project = settings if isinstance(settings, bytes) else None  # read once: exclude: and the cache key
    files, diags = tree.files(_exclude(project))
    store = _cache_for(tree, project) if options.cache else None
    analysed: dict[str, tuple[Summary, Parsed[AnyDocument] | None]] = {}
    keys: dict[str, bytes] = {}
    known = _Known(tree, store) if store is not None else None
    todo: list[str] = []  # files the cache cannot answer for unread: read, and parsed unless cached
    for rel in files:
        key = known.key(rel) if known is not None else None
        hit = store.summary(key) if store is not None and key is not None else None
        if hit is not None and store is not None and key is not None:
            keys[rel] = key
            analysed[rel] = (hit, _lazy(tree, store, hit, key))
            continue
        todo.append(rel)
    tree.prefetch(todo)  # a git tree: the blobs the cache cannot answer for, in one go
    source = parallel.Source(tree.content, isinstance(tree, WorkTree), tree.root)
    for one in parallel.analyse_files(source, todo, options.jobs or parallel.default_jobs(), store):
        analysed[one.path] = _read_one(tree, store, known, keys, one)
    parsed: list[Parsed[AnyDocument]] = []
    unverified: set[str] = set()  # names declared by documents that failed their schema
    for rel in files:
        summary, doc = analysed[rel]
        diags.extend(perfile.findings(summary))
        unverified.update(summary.declared)
        if doc is not None:
            parsed.append(doc)
    catalog, found = check(parsed, unverified, _Memo(store, keys) if store is not None else None)
    if store is not None:
        for d in [*diags, *found]:
            if d.code in CLEAR_SECRET and d.path in keys:
                store.forget_body(keys[d.path])
        store.save()
    diags.extend(found)
    diags.sort(key=sort_key)
    return Result(tree.root, len(files), catalog, diags, tree)


class _Known:
    """Which cached bytes a file has, found without reading it: a work-tree file by its size,
    times and inode as last read, a git tree's file by its blob (the hash of its bytes)."""

    def __init__(self, tree: Tree, store: cache.Cache):
        self.tree, self.store = tree, store
        self.blobs = tree.blob_ids()
        self.stats: dict[str, cache.Stat] = {}

    def key(self, rel: str) -> bytes | None:
        blob = self.blobs.get(rel)
        if blob is not None:
            return self.store.known_blob(rel, blob)
        stat = _stat(self.tree, rel)  # before reading: an edit made while it is read is seen next time
        if stat is None:
            return None
        self.stats[rel] = stat
        return self.store.known(rel, stat)

    def seen(self, rel: str, key: bytes) -> None:
        """REL, as just read, has KEY."""
        blob, stat = self.blobs.get(rel), self.stats.get(rel)
        if blob is not None:
            self.store.seen_blob(rel, blob, key)
        elif stat is not None:
            self.store.seen(rel, stat, key)


def _read_one(
    tree: Tree,
    store: cache.Cache | None,
    known: _Known | None,
    keys: dict[str, bytes],
    found: parallel.Analysed,
) -> tuple[Summary, Parsed[AnyDocument] | None]:
    """A file that was read: its summary and document; with the cache on, its key noted (KEYS,
    the index) and a new result put in the cache."""
    rel, key, result, doc = found
    if store is None or known is None or key is None:  # the cache off, or the file unread
        return (result if isinstance(result, Summary) else result.summary()), doc
    keys[rel] = key
    known.seen(rel, key)
    if isinstance(result, Summary):  # in the cache already: found by its bytes
        return result, _lazy(tree, store, result, key)
    store.put(key, result)
    return result.summary(), doc


def _lazy(tree: Tree, store: cache.Cache, summary: Summary, key: bytes) -> Parsed[AnyDocument] | None:
    """The document of a cached summary, its body read from the cache when first asked for."""
    if summary.facts is None:
        return None
    return perfile.lazy(summary, functools.partial(_body, tree, store, summary.path, summary.facts, key))


def _body(tree: Tree, store: cache.Cache, rel: str, facts: perfile.FactsRow, key: bytes) -> perfile.Body:
    """A cached document's body; parsed again from the file when the cache lost it (another
    process rewrote its shard, or it was damaged), if the file still has the bytes checked."""
    found = store.body(key, facts)
    if found is not None:
        return found
    content = tree.content(rel)
    if isinstance(content, bytes) and store.key(rel, content) == key:
        body = perfile.analyse(rel, content)[0].body()
        if body is not None:
            return body
    raise RepoError(f"{rel}: changed while it was being checked (run the command again)")


class _Memo:
    """checks.Memo from the cache: a check's key is the keys (path, bytes, settings) of the files
    it reads, whole, so any change to one of them, a rename included, runs it again."""

    def __init__(self, store: cache.Cache, keys: dict[str, bytes]):
        self.store = store
        self.keys = keys

    def key(self, paths: tuple[str | None, ...]) -> bytes | None:
        parts = []
        for path in paths:
            if path is None:
                parts.append(bytes(32))
            elif path in self.keys:
                parts.append(self.keys[path])
            else:
                return None
        return b"".join(parts)

    def get(self, key: bytes) -> list[Diagnostic] | None:
        rows = self.store.checked(key)
        return None if rows is None else [Diagnostic(*row) for row in rows]  # type: ignore[arg-type]

    def put(self, key: bytes, found: list[Diagnostic]) -> None:
        self.store.check_done(key, tuple(tuple(d) for d in found))  # type: ignore[misc]


def _stat(tree: Tree, rel: str) -> cache.Stat | None:
    """A work-tree file's size, times and inode (None for git objects, or a file gone)."""
    if not isinstance(tree, WorkTree):
        return None
    try:
        st = os.stat(os.path.join(tree.root, rel))
    except OSError:
        return None
    return cache.stat_of(st)


def _cache_for(tree: Tree, project: bytes | None) -> cache.Cache | None:
    """The cache for this repository and its settings, or None when turned off."""
    if cache.disabled():
        return None
    return cache.Cache(tree.root, cache.settings_digest(project, tree.sops_rules()))
