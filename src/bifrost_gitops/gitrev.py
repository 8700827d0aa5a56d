"""A repository as it stood at a git revision, read straight from git objects.

No checkout, no stash, nothing in the user's work tree changes: `git ls-tree` lists the blobs
and one `git cat-file --batch` process streams them.
"""

from __future__ import annotations

import os
import posixpath
import subprocess

from . import loader
from .diagnostics import Diagnostic, error
from .errors import BifrostGitopsError

_LINK = "120000"


class GitError(BifrostGitopsError):
    """git is missing, the folder is not in a repository, or the revision is unknown (exit 2)."""


def _git(cwd: str, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        run = subprocess.run(["git", "-C", cwd, *args], input=stdin, capture_output=True, timeout=120)
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} timed out") from None
    if run.returncode != 0:
        raise GitError(
            run.stderr.decode(errors="replace").strip().splitlines()[-1] if run.stderr else "git failed"
        )
    return run.stdout


def toplevel(path: str) -> str:
    return _git(path, "rev-parse", "--show-toplevel").decode().strip()


def resolve_rev(path: str, rev: str) -> str:
    """The commit a revision names (so both sides of a diff are pinned)."""
    try:
        return _git(path, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}").decode().strip()
    except GitError:
        raise GitError(f"unknown revision {rev!r}") from None


class GitTree:
    """The files under ROOT (a folder of the work tree) as they are in commit REV."""

    def __init__(self, root: str, rev: str):
        self.root = os.path.abspath(root)
        top = self.top = toplevel(self.root)
        self.commit = resolve_rev(self.root, rev)
        self.rev = rev
        prefix = os.path.relpath(os.path.realpath(self.root), os.path.realpath(top))
        self.prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
        self._entries: dict[str, tuple[str, str]] = {}  # rel -> (mode, blob sha)
        self._blobs: dict[str, bytes] = {}
        out = _git(top, "ls-tree", "-r", "-z", "--full-tree", self.commit, "--", self.prefix or ".")
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, path = record.partition(b"\t")
            mode, kind, sha = meta.decode().split()
            rel = path.decode()[len(self.prefix) :]
            if kind == "blob":
                self._entries[rel] = (mode, sha)

    @property
    def exists(self) -> bool:
        """Whether the revision has a repository here at all (bifrost-gitops.yaml)."""
        return "bifrost-gitops.yaml" in self._entries

    def files(self, exclude: list[str]) -> tuple[list[str], list[Diagnostic]]:
        found = sorted(rel for rel in self._entries if loader.wanted(rel, exclude))
        links = [rel for rel in found if self._entries[rel][0] == _LINK]
        texts = self._read([self._entries[rel][1] for rel in links])
        sha_of: dict[str, str] = {}
        diags: list[Diagnostic] = []
        for rel in found:
            mode, sha = self._entries[rel]
            if mode == _LINK:
                target = self._inside(rel, texts[sha].decode(errors="replace"))
                if target is None:
                    diags.append(error("Y006", rel, (0, 0), "symlink points outside the repository; refused"))
                    continue
                sha = self._entries[target][1]
            sha_of[rel] = sha
        blobs = self._read(list(sha_of.values()))
        self._blobs.update({rel: blobs[sha] for rel, sha in sha_of.items()})
        return list(sha_of), diags

    def _inside(self, rel: str, target: str) -> str | None:
        """The link's target when it is a regular file of this tree, else None."""
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
        if target.startswith("/") or joined.startswith("../") or joined == "..":
            return None
        entry = self._entries.get(joined)
        return joined if entry is not None and entry[0] != _LINK else None

    def _read(self, shas: list[str]) -> dict[str, bytes]:
        """Many blobs through one git process."""
        unique = list(dict.fromkeys(shas))
        if not unique:
            return {}
        out = _git(self.root, "cat-file", "--batch", stdin="".join(f"{sha}\n" for sha in unique).encode())
        blobs: dict[str, bytes] = {}
        pos = 0
        for sha in unique:
            header_end = out.index(b"\n", pos)
            size = int(out[pos:header_end].split()[2])
            start = header_end + 1
            blobs[sha] = out[start : start + size]
            pos = start + size + 1
        return blobs

    def read(self, rel: str) -> bytes:
        """A file's bytes at this revision (after files() listed it)."""
        return self._blobs[rel]

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
                return posixpath.relpath(rel, self.prefix or "."), self._read([meta[2]])[meta[2]]
        return None

    def load(self, rel: str) -> tuple[loader.Document | None, list[Diagnostic]]:
        data = self._blobs.get(rel)
        if data is None:
            entry = self._entries.get(rel)
            if entry is None or entry[0] == _LINK:
                return None, []
            data = self._blobs[rel] = self._read([entry[1]])[entry[1]]
        return loader.load_bytes(data, rel)


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
