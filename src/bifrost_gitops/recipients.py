"""K006 and `secrets recipients`: each encrypted file's age recipients against what its
.sops.yaml rule asks for, from the sops metadata alone (no key, no sops module loaded: cheap
enough for every `validate`, and a warm one reads it from the documents' cached facts)."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from . import gcpause, loader, sopsrules
from .catalog import Parsed
from .diagnostics import Diagnostic, error
from .model import AnyDocument
from .repo import Result
from .sopsmeta import recipients


@dataclass(frozen=True)
class Recipients:
    path: str
    recipients: list[str]  # every master key of the file, described
    wanted: list[str] | None  # age recipients .sops.yaml asks for (None: no rule applies)
    missing: list[str]
    extra: list[str]
    config: str | None = None  # the .sops.yaml compared against, repository-relative


@runtime_checkable
class _Blobs(Protocol):
    """A git revision or the index (gitrev): any file's bytes, dot files included."""

    def blob(self, rel: str) -> bytes | None: ...


class _Rules:
    """The .sops.yaml rule of each file, each folder's config found and each config read once
    (a big repository has thousands of encrypted files and a handful of configs).

    With a TREE (``validate --staged``/``--rev``), configs inside the repository ROOT are read
    from that revision, not from the work tree: a commit is judged by the rules it carries."""

    def __init__(self, root: str = "", tree: _Blobs | None = None) -> None:
        self.root, self.tree = os.path.abspath(root), tree
        self.configs: dict[str, str | None] = {}  # folder -> its .sops.yaml
        self.rules: dict[str, list[sopsrules.Rule] | None] = {}  # config -> its rules (None: unreadable)
        self.names: dict[str, str] = {}  # config -> its repository-relative name

    def config(self, path: str) -> str | None:
        folder = os.path.dirname(path)
        if folder not in self.configs:
            self.configs[folder] = self._find(folder)
        return self.configs[folder]

    def _find(self, folder: str) -> str | None:
        if self.tree is None:
            return sopsrules.find_config(folder)
        rel = os.path.relpath(folder, self.root).replace(os.sep, "/")
        while not rel.startswith(".."):
            candidate = posixpath.normpath(posixpath.join(rel, sopsrules.CONFIG_NAME))
            if self.tree.blob(candidate) is not None:
                return os.path.join(self.root, candidate)
            if rel == ".":
                break
            rel = posixpath.dirname(rel) or "."
        parent = os.path.dirname(self.root)  # above the repository: as on disk
        return sopsrules.find_config(parent) if parent != self.root else None

    def _load(self, config: str) -> list[sopsrules.Rule]:
        rel = os.path.relpath(config, self.root).replace(os.sep, "/")
        data = self.tree.blob(rel) if self.tree is not None and not rel.startswith("..") else None
        return sopsrules.parse_rules(data, config) if data is not None else sopsrules.load_rules(config)

    def shown(self, config: str, root: str) -> str:
        """CONFIG as the reports name it: relative to the repository ROOT."""
        if config not in self.names:
            self.names[config] = os.path.relpath(config, root).replace(os.sep, "/")
        return self.names[config]

    def wanted(self, config: str, path: str) -> list[str] | None:
        """The age recipients the rule for PATH (absolute, below CONFIG's folder, as a config
        found upwards from it is) asks for; None when no rule applies."""
        if config not in self.rules:
            try:
                self.rules[config] = self._load(config)
            except sopsrules.RulesError:
                self.rules[config] = None
        rules = self.rules[config]
        rel = path[len(os.path.dirname(config)) + 1 :].replace(os.sep, "/")
        try:
            return sopsrules.first_rule(config, rules, rel).recipients if rules is not None else None
        except sopsrules.RulesError:
            return None


def list_recipients(result: Result) -> list[Recipients]:
    """Each encrypted file's recipients (every master key, described) against its .sops.yaml
    rule."""
    return [replace(row, recipients=recipients(p.doc.data["sops"])) for p, row in _against_rules(result)]


def _against_rules(result: Result) -> Iterator[tuple[Parsed[AnyDocument], Recipients]]:
    """Every encrypted document, by path, with its age recipients against its .sops.yaml rule
    (`Recipients.recipients` left empty). From the documents' facts: no document is loaded."""
    tree = result.tree
    rules = _Rules(result.root, tree if isinstance(tree, _Blobs) else None)
    docs = sorted((p for p in result.catalog.documents() if p.facts.age is not None), key=lambda p: p.path)
    compared: dict[tuple[object, ...], tuple[list[str], list[str]]] = {}  # most files share both
    for p in docs:
        full = os.path.join(result.root, p.path)
        config = rules.config(full)
        wanted = rules.wanted(config, full) if config is not None else None
        key = (p.facts.age, None if wanted is None else tuple(wanted))
        if key not in compared:
            compared[key] = _compare(p.facts.age or (), wanted)
        missing, extra = compared[key]
        shown = rules.shown(config, result.root) if config else None
        yield p, Recipients(p.path, [], wanted, list(missing), list(extra), shown)


def _compare(have: tuple[tuple[str, ...], ...], wanted: list[str] | None) -> tuple[list[str], list[str]]:
    """(missing, extra): the age recipients a rule asks for that a file lacks, and the reverse."""
    if wanted is None:
        return [], []
    age_have = {r for group in have for r in group}
    return sorted(set(wanted) - age_have), sorted(age_have - set(wanted))


def drift(result: Result) -> list[Diagnostic]:
    """K006 for `validate`: files whose recipients differ from what .sops.yaml asks for, at the
    ``age:`` list of their sops block (no key needed). Only those files are described (and
    only their documents loaded)."""
    with gcpause.paused():  # acyclic objects for thousands of files: as in repo.load_tree
        drifted = [(p, row) for p, row in _against_rules(result) if row.missing or row.extra]
        return recipient_findings([row for _, row in drifted], {p.path: p.doc for p, _ in drifted})


def recipient_findings(
    rows: list[Recipients], docs: dict[str, loader.Document] | None = None
) -> list[Diagnostic]:
    out = []
    for r in rows:
        doc = (docs or {}).get(r.path)
        pos = doc.key_pos(("sops", "age")) if doc is not None else (0, 0)
        if r.missing or r.extra:
            parts = ([f"missing {', '.join(r.missing)}"] if r.missing else []) + (
                [f"not asked for {', '.join(r.extra)}"] if r.extra else []
            )
            out.append(
                error(
                    "K006",
                    r.path,
                    pos,
                    f"recipients differ from {r.config}: {'; '.join(parts)}",
                    "bifrost-gitops secrets updatekeys (re-keys every drifted file)",
                )
            )
    return out
