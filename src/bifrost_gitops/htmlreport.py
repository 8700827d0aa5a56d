"""The `report` command's page: one self-contained HTML file with the organization x integration
matrix of a revision and, against a base revision, the changed cells and what changed in each.

Everything the page shows travels once, as JSON in a ``<script type="application/json">`` block
(escape.script_json: no name can close the script); the page's own script (report.html beside
this file, inline CSS and JS only, no external asset) puts every name into the DOM as text, and
draws only the rows in view, so 3,000 organizations do not freeze a browser.

Secrets never reach the page: a cell carries the mapping state, the entity id and the number of
overrides; a change carries diff.py's display texts, where a secret is only "<secret>"/"changed".
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import NamedTuple

from . import diffrun, repo
from .atomic import write_atomic
from .diff import Change, Diff
from .escape import script_json
from .repo import Result
from .resolve import Resolved, organizations, resolve, resolve_org

#: where the page template's data goes (report.html holds it once)
_SLOT = "/*DATA*/"


class Cell(NamedTuple):
    """One organization's view of one integration."""

    mapped: bool
    entity_id: str | None
    overrides: int  # config and secret keys the organization's mapping sets


class CellChange(NamedTuple):
    """One line of a cell's change, as diff.py displays it (never a secret value)."""

    what: str
    key: str | None
    old: str | None
    new: str | None
    source: str | None


@dataclass
class Matrix:
    """What the page shows: rows (organizations), columns (integrations) and their cells."""

    revision: str
    orgs: list[str]
    integrations: list[str]
    cells: list[list[Cell | None]]  # [org][integration]; None: not in this revision
    base: str | None = None
    changes: dict[tuple[str, str | None], list[CellChange]] | None = None  # (org, integ|None)
    headline: str | None = None
    errors: int = 0  # error findings in the shown revision: its matrix may miss what they broke

    @property
    def changed_cells(self) -> int:
        return sum(1 for _, integ in self.changes or {} if integ is not None)


def _cell(r: Resolved) -> Cell:
    overrides = sum(1 for k, s in r.sources.items() if k.startswith("config.") and s.kind == "override")
    return Cell(r.mapped, r.entity_id, overrides)


def matrix(result: Result, revision: str) -> Matrix:
    """The matrix of a loaded revision: defaults-only cells resolved once per integration."""
    catalog = result.catalog
    defaults = {name: _cell(r) for name, r in resolve_org(catalog, None, lines=False).items()}
    names = list(defaults)
    orgs = [name for name, _, _ in organizations(catalog)]
    cells: list[list[Cell | None]] = [
        [
            _cell(resolve(catalog, org, name, lines=False))
            if (name, org.lower()) in catalog.mappings
            else defaults[name]
            for name in names
        ]
        for org in orgs
    ]
    return Matrix(revision, orgs, names, cells)


def with_changes(m: Matrix, d: Diff) -> Matrix:
    """M with the per-cell changes of D (org-level ones under integration None)."""
    changes: dict[tuple[str, str | None], list[CellChange]] = {}
    for org, items in d.changes.items():
        for c in items:
            changes.setdefault((org, c.integration), []).append(_line(c))
    for org in d.changes:  # removed organizations keep a row, to show what went
        if org not in m.orgs:
            m.orgs.append(org)
            m.cells.append([None] * len(m.integrations))
    m.base, m.changes, m.headline = d.base, changes, d.headline()
    return m


def _line(c: Change) -> CellChange:
    return CellChange(c.what, c.key, c.old, c.new, c.source)


def build(path: str, base: str | None, head: str | None) -> Matrix:
    """The matrix of HEAD (None: the work tree) of the repository at PATH, with the changes
    since BASE when given (diffrun.run: both sides read from git)."""
    if base is None:
        result = repo.load(path) if head is None else repo.load_git(path, head)
        return _counted(matrix(result, head or "work tree"), result)
    d, result = diffrun.compare(path, base, head)
    return with_changes(_counted(matrix(result, d.head), result), d)


def _counted(m: Matrix, result: Result) -> Matrix:
    m.errors = len(result.errors)
    return m


def to_doc(m: Matrix) -> dict[str, object]:
    """The page's JSON: compact arrays, since 3,000 x 20 cells travel in it."""
    index = {name: i for i, name in enumerate(m.integrations)}
    changes: list[list[object]] = []
    for (org, integ), lines in (m.changes or {}).items():
        changes.append([org, -1 if integ is None else index.get(integ, -1), [list(x) for x in lines]])
    return {
        "revision": m.revision,
        "base": m.base,
        "headline": m.headline,
        "orgs": m.orgs,
        "integrations": m.integrations,
        "cells": [[c and [int(c.mapped), c.entity_id, c.overrides] for c in row] for row in m.cells],
        "changes": changes,
    }


def render(m: Matrix) -> str:
    """The whole page."""
    page = resources.files(__package__).joinpath("report.html").read_text(encoding="utf-8")
    return page.replace(_SLOT, script_json(to_doc(m)), 1)


def write(path: str, out: str, base: str | None, head: str | None) -> Matrix:
    """Build the report and write it to OUT (atomically); the matrix, for the summary line."""
    m = build(path, base, head)
    write_atomic(out, render(m).encode("utf-8"), mode=0o644, prefix=".report-", suffix=".html")
    return m
