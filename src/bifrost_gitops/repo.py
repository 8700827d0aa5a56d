"""The repository as a whole: find its root, load every document, run every check."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Protocol

from . import gitrev, loader, structure
from .catalog import Catalog, Parsed
from .checks import check
from .diagnostics import Diagnostic, error, sort_key
from .errors import BifrostGitopsError
from .model import AnyDocument
from .valuechecks import raw_secret_findings

PROJECT_FILE = "bifrost-gitops.yaml"


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


class Tree(Protocol):
    """Where a repository's files come from: the work tree, or a git revision (gitrev.py)."""

    root: str

    def files(self, exclude: list[str]) -> tuple[list[str], list[Diagnostic]]: ...

    def load(self, rel: str) -> tuple[loader.Document | None, list[Diagnostic]]: ...

    def read(self, rel: str) -> bytes:
        """A listed file's bytes (for the inline suppression comments that parsing drops)."""
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
        with open(os.path.join(self.root, rel), "rb") as f:
            return f.read(loader.MAX_BYTES + 1)


def _exclude(tree: Tree) -> list[str]:
    """The Project's exclude: patterns, read before discovery so excluded files are never parsed."""
    doc, _ = tree.load(PROJECT_FILE)
    if doc is None or not isinstance(doc.data, dict):
        return []
    ex = doc.data.get("exclude")
    return [p for p in ex if isinstance(p, str)] if isinstance(ex, list) else []


def _declared_names(data: dict[str, object]) -> list[str]:
    """Names an invalid document still declares, so references to them are not reported twice."""
    names = [data.get("name")]
    orgs = data.get("organizations")
    if isinstance(orgs, list):
        names += [o.get("name") for o in orgs if isinstance(o, dict)]
    return [n.lower() for n in names if isinstance(n, str)]


def load(start: str = ".") -> Result:
    """Load and check the repository containing ``start``; never raises for bad content."""
    return load_tree(WorkTree(find_root(start)))


def load_git(start: str, rev: str | None) -> Result:
    """Load and check the repository containing ``start`` as git holds it: at revision REV, or
    as staged (REV None: the tree the next commit will contain). Nothing in the work tree is
    read but the folder that locates the repository; GitError (exit 2) outside git."""
    root = find_root(start)
    tree = gitrev.IndexTree(root) if rev is None else gitrev.GitTree(root, rev)
    if not tree.exists:
        if rev is None:
            raise RepoError(f"{root}: {PROJECT_FILE} is not staged (hint: git add it)")
        raise RepoError(f"{root}: no {PROJECT_FILE} in revision {rev!r}")
    return load_tree(tree)


def load_tree(tree: Tree) -> Result:
    """Load and check a repository from any file source."""
    # Loading builds hundreds of thousands of small acyclic objects: the cyclic collector
    # would walk them over and over for nothing (a third of the run on 10,000 files).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(tree)
    finally:
        if was_enabled:
            gc.enable()


def _load(tree: Tree) -> Result:
    files, diags = tree.files(_exclude(tree))
    parsed: list[Parsed[AnyDocument]] = []
    unverified: set[str] = set()  # names declared by documents that failed their schema
    for rel in files:
        doc, found = tree.load(rel)
        diags.extend(found)
        if doc is not None and isinstance(doc.data, list) and any(structure.is_ours(x) for x in doc.data):
            diags.append(
                error(
                    "Y008",
                    rel,
                    doc.pos(()),
                    "a list of documents: one document per file",
                    "put each document in a file of its own",
                )
            )
            continue
        if doc is None or not structure.is_ours(doc.data):
            continue
        diags.extend(doc.notes)
        if rel == PROJECT_FILE and doc.data.get("kind") != "Project":
            diags.append(
                error(
                    "S002",
                    rel,
                    doc.pos(("kind",)),
                    f"{PROJECT_FILE} must be kind: Project",
                    "it marks the repository root; put other documents in files of their own",
                )
            )
            continue
        model, found = structure.validate(doc)
        diags.extend(found)
        if model is not None:
            parsed.append(Parsed(doc, model))
        else:
            unverified.update(_declared_names(doc.data))
            diags.extend(raw_secret_findings(doc))  # a broken file may still leak a secret
    catalog, found = check(parsed, unverified)
    diags.extend(found)
    diags.sort(key=sort_key)
    return Result(tree.root, len(files), catalog, diags, tree)
