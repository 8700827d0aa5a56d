"""A repository as it stood at a git revision, read straight from git objects.

No checkout, no stash, nothing in the user's work tree changes: `git ls-tree` lists the blobs
and one `git cat-file --batch` process streams them.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
import tempfile
from typing import IO, NamedTuple

from . import loader
from .diagnostics import Diagnostic, error
from .errors import BifrostGitopsError
from .sopsrules import CONFIG_NAME

_LINK = "120000"
_FILE_MODES = ("100644", "100755", _LINK)  # not submodules (160000)


class GitError(BifrostGitopsError):
    """git is missing, the folder is not in a repository, or the revision is unknown (exit 2)."""


def _git(cwd: str, *args: str, stdin: bytes | None = None) -> bytes:
    # stdin and stderr go through temporary files, so stdout is the one pipe and is read in
    # one go (two pipes make subprocess poll in 32 KiB steps: a third of reading 10,000 blobs)
    with tempfile.TemporaryFile() as given, tempfile.TemporaryFile() as errors:
        given.write(stdin or b"")
        given.seek(0)
        try:
            run = subprocess.run(
                ["git", "-C", cwd, *args], stdin=given, stdout=subprocess.PIPE, stderr=errors, timeout=120
            )
        except FileNotFoundError:
            raise GitError("git is not installed") from None
        except subprocess.TimeoutExpired:
            raise GitError(f"git {args[0]} timed out") from None
        if run.returncode != 0:
            errors.seek(0)
            lines = errors.read(1 << 16).decode(errors="replace").strip().splitlines()
            raise GitError(lines[-1] if lines else "git failed")
    return run.stdout


def toplevel(path: str) -> str:
    return _git(path, "rev-parse", "--show-toplevel").decode().strip()


def resolve_rev(path: str, rev: str) -> str:
    """The commit a revision names (so both sides of a diff are pinned)."""
    try:
        return _git(path, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}").decode().strip()
    except GitError:
        raise GitError(f"unknown revision {rev!r}") from None


def merge_base(path: str, a: str, b: str) -> str:
    """The best common ancestor of revisions A and B, as `git diff A...B` takes it (with
    several, git's first). Both are resolved first, so only commit ids reach the command line."""
    first, second = resolve_rev(path, a), resolve_rev(path, b)
    try:
        found = _git(path, "merge-base", first, second).decode().split()
    except GitError:
        found = []
    if not found:
        error = GitError(f"no merge base between {a!r} and {b!r}")
        error.hint = "unrelated histories, or a shallow clone: fetch the full history (git fetch --unshallow)"
        raise error
    return found[0]


def _skip(stream: IO[bytes], size: int) -> None:
    """Read past SIZE bytes without keeping them."""
    while size > 0:
        chunk = stream.read(min(size, 1 << 20))
        if not chunk:
            return
        size -= len(chunk)


class _Blobs:
    """Files under ROOT read from git objects: the entries of a commit's tree or of the index."""

    def __init__(self, root: str, entries: dict[str, tuple[str, str]]):
        self.root = os.path.abspath(root)
        self._entries = entries  # rel -> (mode, blob sha)
        self._blobs: dict[str, bytes] = {}
        self._sha_of: dict[str, str] = {}  # what files() listed: rel -> blob (links resolved)

    @property
    def exists(self) -> bool:
        """Whether the revision has a repository here at all (bifrost-gitops.yaml)."""
        return "bifrost-gitops.yaml" in self._entries

    def files(self, exclude: list[str]) -> tuple[list[str], list[Diagnostic]]:
        """The YAML files to read, as `loader.discover` finds them on disk: a link to a file
        that is read anyway (or to a folder) is skipped, one out of the tree is refused."""
        found = sorted(rel for rel in self._entries if loader.wanted(rel, exclude))
        links = [rel for rel in found if self._entries[rel][0] == _LINK]
        texts = self._read([self._entries[rel][1] for rel in links])
        sha_of: dict[str, str] = {}
        diags: list[Diagnostic] = []
        for rel in found:
            mode, sha = self._entries[rel]
            if mode == _LINK:
                target = self._inside(rel, texts.get(sha, b"").decode(errors="replace"))
                if target is None:
                    diags.append(error("Y006", rel, (0, 0), "symlink points outside the repository; refused"))
                    continue
                if target.endswith("/") or loader.wanted(target, exclude):
                    continue  # a folder, or a file read where it really is
                sha = self._entries[target][1]
            sha_of[rel] = sha
        self._sha_of = sha_of
        return list(sha_of), diags

    def blob_ids(self) -> dict[str, str]:
        """The git blob of each file files() listed: its bytes' identity, known without reading
        them (the cache maps it to the key of those bytes, so an unchanged file is not read)."""
        return self._sha_of

    def prefetch(self, rels: list[str]) -> None:
        """Read these listed files' blobs through one git process (content() would start one
        per file)."""
        wanted = {rel: self._sha_of[rel] for rel in rels if rel not in self._blobs and rel in self._sha_of}
        blobs = self._read(list(wanted.values()))
        self._blobs.update({rel: blobs[sha] for rel, sha in wanted.items() if sha in blobs})

    def _inside(self, rel: str, target: str) -> str | None:
        """The link's target when it is a regular file ('a/b.yaml') or a folder ('a/') of this
        tree, else None."""
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
        if target.startswith("/") or joined.startswith("../") or joined == "..":
            return None
        entry = self._entries.get(joined)
        if entry is None:
            folder = "" if joined == "." else joined + "/"
            return (folder or "./") if any(e.startswith(folder) for e in self._entries) else None
        return joined if entry[0] != _LINK else None

    def _read(self, shas: list[str]) -> dict[str, bytes]:
        """Many blobs streamed through one git process; a blob over the loader's size limit is
        skipped unkept (load() reports it), so a hostile commit cannot fill our memory."""
        unique = list(dict.fromkeys(shas))
        if not unique:
            return {}
        blobs: dict[str, bytes] = {}
        with tempfile.TemporaryFile() as given:
            given.write("".join(f"{sha}\n" for sha in unique).encode())
            given.seek(0)
            cmd = ["git", "-C", self.root, "cat-file", "--batch"]
            with subprocess.Popen(cmd, stdin=given, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as git:
                assert git.stdout is not None
                for sha in unique:
                    header = git.stdout.readline().split()  # "<sha> blob <size>" or "<sha> missing"
                    if len(header) != 3:
                        raise GitError(f"cannot read git object {sha} (missing from the repository?)")
                    size = int(header[2])
                    if size <= loader.MAX_BYTES:
                        blobs[sha] = git.stdout.read(size)
                    else:
                        _skip(git.stdout, size)
                    git.stdout.read(1)  # the newline after each object
        return blobs

    def read(self, rel: str) -> bytes:
        """A file's bytes at this revision (after files() listed it); KeyError when it has none."""
        data = self.content(rel)
        if not isinstance(data, bytes):
            raise KeyError(rel)
        return data

    def blob(self, rel: str) -> bytes | None:
        """Any regular file's bytes at this revision, listed or not (a dot file such as
        .sops.yaml); None when the tree has no such file or it is over the size limit."""
        entry = self._entries.get(rel)
        if entry is None or entry[0] == _LINK:
            return None
        found = self.content(rel)
        return found if isinstance(found, bytes) else None

    def load(self, rel: str) -> tuple[loader.Document | None, list[Diagnostic]]:
        data = self.content(rel)
        if data is None:
            return None, []
        if isinstance(data, Diagnostic):
            return None, [data]
        return loader.load_bytes(data, rel)

    def content(self, rel: str) -> bytes | Diagnostic | None:
        """A file's bytes to parse; the finding when it is over the size limit; None when the
        revision has no such file."""
        data = self._blobs.get(rel)
        if data is None:
            entry = self._entries.get(rel)
            sha = self._sha_of.get(rel) or (entry[1] if entry is not None and entry[0] != _LINK else None)
            if sha is None:
                return None
            blob = self._read([sha]).get(sha)
            if blob is None:  # over the size limit: reported without reading it
                return loader.too_large(rel)
            data = self._blobs[rel] = blob
        return data

    def sops_rules(self) -> bytes | None:
        return self.blob(CONFIG_NAME)


class GitTree(_Blobs):
    """The files under ROOT (a folder of the work tree) as they are in commit REV."""

    def __init__(self, root: str, rev: str):
        root = os.path.abspath(root)
        top = self.top = toplevel(root)
        self.commit = resolve_rev(root, rev)
        self.rev = rev
        prefix = os.path.relpath(os.path.realpath(root), os.path.realpath(top))
        self.prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
        entries: dict[str, tuple[str, str]] = {}
        out = _git(top, "ls-tree", "-r", "-z", "--full-tree", self.commit, "--", self.prefix or ".")
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, path = record.partition(b"\t")
            mode, kind, sha = meta.decode().split()
            if kind == "blob":
                entries[path.decode()[len(self.prefix) :]] = (mode, sha)
        super().__init__(root, entries)

    def nearest(self, name: str) -> tuple[str, bytes] | None:
        """NAME (e.g. ``.sops.yaml``) in the root folder or its nearest parent up to the top of
        the git repository, at this revision, as sops looks for it: (path relative to the root,
        bytes), or None when no folder holds one."""
        parts = self.prefix.rstrip("/").split("/") if self.prefix else []
        for depth in range(len(parts), -1, -1):
            rel = "/".join([*parts[:depth], name])
            out = _git(self.top, "ls-tree", "-z", "--full-tree", self.commit, "--", rel)
            meta = out.split(b"\t", 1)[0].decode().split()
            if len(meta) == 3 and meta[1] == "blob" and meta[0] != _LINK:
                # over the size limit: a stand-in of that size, which the loader refuses unread
                data = self._read([meta[2]]).get(meta[2], bytes(loader.MAX_BYTES + 1))
                return posixpath.relpath(rel, self.prefix or "."), data
        return None


class IndexTree(_Blobs):
    """The files under ROOT as they are staged: the tree the next commit will contain."""

    def __init__(self, root: str):
        entries: dict[str, tuple[str, str]] = {}
        # run in ROOT: ls-files lists only what is below it, with paths relative to it
        for record in _git(root, "ls-files", "-s", "-z").split(b"\0"):
            if not record:
                continue
            meta, _, path = record.partition(b"\t")
            mode, sha, stage = meta.decode().split()
            if stage == "0" and mode in _FILE_MODES:  # unmerged stages cannot be committed anyway
                entries[path.decode()] = (mode, sha)
        super().__init__(root, entries)


class EmptyTree:
    """A revision with no repository here yet: everything in head is an addition."""

    def __init__(self, root: str):
        self.root = root

    def files(self, exclude: list[str]) -> tuple[list[str], list[Diagnostic]]:
        return [], []

    def load(self, rel: str) -> tuple[loader.Document | None, list[Diagnostic]]:
        return None, []

    def read(self, rel: str) -> bytes:
        return b""

    def content(self, rel: str) -> None:
        return None

    def sops_rules(self) -> None:
        return None

    def blob_ids(self) -> dict[str, str]:
        return {}

    def prefetch(self, rels: list[str]) -> None:
        pass


def work_nearest(root: str, name: str) -> tuple[str, bytes] | None:
    """NAME in the work tree's ROOT folder or its nearest parent up to the top of the git
    repository (see `GitTree.nearest`)."""
    top = os.path.realpath(toplevel(root))
    here = os.path.realpath(root)
    while True:
        path = os.path.join(here, name)
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, "rb") as f:
                data = f.read(loader.MAX_BYTES + 1)
            return os.path.relpath(path, os.path.realpath(root)).replace(os.sep, "/"), data
        if here == top or os.path.dirname(here) == here:
            return None
        here = os.path.dirname(here)


class Ignored(NamedTuple):
    """What git ignores below a folder: untracked files and whole folders ('dir/')."""

    files: frozenset[str]
    folders: tuple[str, ...]

    def covers(self, rel: str) -> bool:
        return rel in self.files or rel.startswith(self.folders)


def ignored(root: str) -> Ignored | None:
    """The untracked files git ignores below ROOT (.gitignore, .git/info/exclude, the global
    excludes file), paths relative to ROOT, in one git call; None outside a git work tree (or
    without git), where every file counts as before."""
    try:
        out = _git(root, "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory")
    except GitError:
        return None
    paths = [p.decode(errors="surrogateescape") for p in out.split(b"\0") if p]
    return Ignored(
        frozenset(p for p in paths if not p.endswith("/")), tuple(p for p in paths if p.endswith("/"))
    )
