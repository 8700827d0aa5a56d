"""Findings suppressed on purpose, and suppressions that no longer suppress anything.

Three sources, all applied by `validate`:

- ``--ignore C009`` on the command line (repeatable, comma lists): a choice of this run;
- ``ignore:`` in bifrost-gitops.yaml: a code everywhere, or ``{code: C007, paths: [glob]}``;
- a YAML comment ``# bifrost-gitops: ignore C007, C009`` on the finding's line (or on the key
  whose value the finding points at; a comment alone on its line covers the next line), and
  ``# bifrost-gitops: ignore-file C007`` anywhere in a file for the whole file.

libyaml drops comments, so the text of a file is read again, but only for files that have a
suppressible finding or whose text the loader saw the marker in (`loader.Document.marked`): a
clean run reads nothing twice. An entry in bifrost-gitops.yaml or a comment that suppresses
nothing is itself a warning (S005), so stale suppressions do not pile up; ``--ignore`` is not
(it belongs to the invocation, not to the repository).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import NamedTuple

from . import loader
from .diagnostics import CODES, Diagnostic, Suppressed, sort_key, warning
from .errors import BifrostGitopsError
from .repo import PROJECT_FILE, Result

#: Codes nothing suppresses, and why: the finding means a file was not checked at all, a secret
#: is at risk, or the command cannot do its job (K004 is the environment, exit 2).
UNSUPPRESSIBLE: dict[str, str] = {
    "Y001": "the file could not be parsed, so nothing in it was checked",
    "Y003": "the file was refused, so nothing in it was checked",
    "Y004": "the file was refused, so nothing in it was checked",
    "Y006": "the file was refused, so nothing in it was checked",
    "Y007": "the file could not be read, so nothing in it was checked",
    "Y008": "the file was not read as a document, so nothing in it was checked",
    "K001": "a secret in clear text leaks as soon as it is committed",
    "K002": "a secret in clear text leaks as soon as it is committed",
    "K004": "a missing key is the environment's problem (exit 2), not a finding",
    "K005": "an altered secret file may be tampering",
}
SUPPRESSIBLE = [c for c in CODES if c not in UNSUPPRESSIBLE]
UNUSED = "S005"
MARKER = b"bifrost-gitops:"

_DIRECTIVE = re.compile(r"(?:^|\s)(#\s*bifrost-gitops:\s*(ignore-file|ignore)\b:?)(.*)")
_CODE = re.compile(r"[A-Za-z][0-9]{3}")
_BREAKS = re.compile("\r\n|\r|\n|\x85|\u2028|\u2029")  # YAML's line breaks, as libyaml counts lines


class SuppressError(BifrostGitopsError):
    """An --ignore value or an ignore: entry names a code that cannot be suppressed (exit 2)."""


def _refusal(code: str) -> str | None:
    """Why CODE cannot be suppressed, or None when it can."""
    if code in UNSUPPRESSIBLE:
        return f"{code} cannot be suppressed: {UNSUPPRESSIBLE[code]}"
    if code not in CODES:
        return f"unknown code {code!r}"
    return None


def parse_codes(values: Iterable[str]) -> list[str]:
    """``--ignore`` values (repeatable, each a comma list) as codes; a bad one is a usage error."""
    codes = [c.strip().upper() for v in values for c in v.split(",") if c.strip()]
    for code in codes:
        why = _refusal(code)
        if why:
            err = SuppressError(f"--ignore: {why}")
            err.hint = f"codes that can be suppressed: {', '.join(SUPPRESSIBLE)}"
            raise err
    return codes


class _Rule(NamedTuple):
    """One code suppressed by --ignore or an ignore: entry (in every file unless ``paths``)."""

    code: str
    paths: tuple[str, ...]
    by: str
    pos: tuple[int, int] | None  # where an unused entry is reported; None: never (--ignore)

    def covers(self, d: Diagnostic) -> bool:
        return d.code == self.code and (
            not self.paths
            or any(fnmatchcase(d.path, p) or d.path.startswith(p.rstrip("/") + "/") for p in self.paths)
        )


@dataclass
class _Source:
    """One file's text, and (parsed only when a comment on a key's line needs it) where the
    values of its keys start when that is on a later line: a block value's first line."""

    def __init__(self, rel: str, data: bytes, doc: loader.Document | None):
        self.rel, self.data, self.doc = rel, data, doc
        self._blocks: dict[int, set[tuple[int, int]]] | None = None

    def blocks(self, line: int) -> set[tuple[int, int]]:
        if self._blocks is None:
            doc = self.doc or loader.load_bytes(self.data, self.rel)[0]
            self._blocks = {}
            for path, (kline, _) in doc.keys.items() if doc else ():
                value = doc.values.get(path) if doc else None
                if value is not None and value[0] != kline:
                    self._blocks.setdefault(kline, set()).add(value)
        return self._blocks.get(line, set())


@dataclass
class _Directive:
    """One `# bifrost-gitops: ignore ...` comment."""

    source: _Source
    pos: tuple[int, int]  # of the '#'
    codes: list[str]
    whole_file: bool
    line: int = 0  # the line it covers
    unknown: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    @property
    def path(self) -> str:
        return self.source.rel

    def matches(self, d: Diagnostic) -> bool:
        if d.code not in self.codes:
            return False
        return self.whole_file or d.line == self.line or (d.line, d.col) in self.source.blocks(self.line)


@dataclass
class Outcome:
    kept: list[Diagnostic]  # what the report shows (unused suppressions included)
    suppressed: list[Suppressed]


def _config_rules(result: Result) -> list[_Rule]:
    project = result.catalog.project
    if project is None:
        return []
    rules: list[_Rule] = []
    for i, entry in enumerate(project.model.ignore):
        code, paths, at = (
            (entry, (), (i,)) if isinstance(entry, str) else (entry.code, entry.paths, (i, "code"))
        )
        pos = project.doc.pos(("ignore", *at))
        why = _refusal(code)
        if why:
            err = SuppressError(f"{PROJECT_FILE}:{pos[0]}:{pos[1]}: ignore: {why}")
            err.hint = f"codes that can be suppressed: {', '.join(SUPPRESSIBLE)}"
            raise err
        rules.append(_Rule(code, tuple(paths), f"{PROJECT_FILE}:{pos[0]}", pos))
    return rules


def directives(source: _Source) -> list[_Directive]:
    """The suppression comments of one file, each with the line it covers."""
    if MARKER not in source.data:
        return []
    lines = _BREAKS.split(source.data.decode("utf-8", errors="replace"))
    found: list[_Directive] = []
    for n, text in enumerate(lines, 1):
        m = _DIRECTIVE.search(text) if "bifrost-gitops:" in text else None
        if m is None:
            continue
        codes = _leading_codes(m.group(3))
        d = _Directive(source, (n, m.start(1) + 1), [c for c in codes if _refusal(c) is None], True)
        d.unknown = [c for c in codes if _refusal(c) is not None]
        if m.group(2) == "ignore":
            d.whole_file = False
            d.line = _target(lines, n, standalone=not text[: m.start(1)].strip())
        found.append(d)
    return found


def _leading_codes(rest: str) -> list[str]:
    """The codes a comment names (``C007, C009``); anything after them is a free-text reason."""
    codes: list[str] = []
    for token in re.split(r"[\s,]+", rest.strip()):
        if not _CODE.fullmatch(token):
            break
        codes.append(token.upper())
    return codes


def _target(lines: list[str], n: int, standalone: bool) -> int:
    """The line a comment covers: its own, or for a comment alone on its line the next line
    holding YAML (yamllint's disable-line works the same way)."""
    if not standalone:
        return n
    for i in range(n, len(lines)):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return i + 1
    return n


def _scanned(result: Result, diags: list[Diagnostic]) -> list[_Directive]:
    """Directives of the files whose text holds the marker (or may: a suppressible finding in
    a file that is not a valid document, whose text the loader's flag does not cover)."""
    tree = result.tree
    if tree is None:
        return []
    docs = {p.path: p for p in result.catalog.documents()}
    # a parsed document says whether its text holds the marker: only the others are read blind
    paths = {d.path for d in diags if d.code not in UNSUPPRESSIBLE and d.path not in docs}
    paths |= {rel for rel, p in docs.items() if p.facts.marked}
    found: list[_Directive] = []
    for rel in sorted(paths):
        try:
            data = tree.read(rel)
        except (OSError, KeyError):  # a folder-level finding, or a file gone since: nothing to read
            continue
        found += directives(_Source(rel, data, docs[rel].doc if rel in docs else None))
    return found


def apply(result: Result, diags: list[Diagnostic], ignore: list[str]) -> Outcome:
    """Split DIAGS into what is reported and what was suppressed; add S005 for every
    suppression in the repository that suppressed nothing."""
    rules = [_Rule(c, (), "--ignore", None) for c in ignore] + _config_rules(result)
    inline = _scanned(result, diags)
    by_path: dict[str, list[_Directive]] = {}
    for d in inline:
        by_path.setdefault(d.path, []).append(d)
    used: set[_Rule] = set()
    kept: list[Diagnostic] = []
    suppressed: list[Suppressed] = []
    for diag in diags:
        if diag.code in UNSUPPRESSIBLE:
            kept.append(diag)
            continue
        hits = [x for x in by_path.get(diag.path, ()) if x.matches(diag)]
        for x in hits:
            x.used.add(diag.code)
        rule_hits = [r for r in rules if r.covers(diag)]
        used.update(rule_hits)
        by = [f"{x.path}:{x.pos[0]}" for x in hits] + [r.by for r in rule_hits]
        if by:
            suppressed.append(Suppressed(diag, by[0]))
        else:
            kept.append(diag)
    for finding in _unused(inline, [r for r in rules if r not in used]):
        rule = next((r for r in rules if r.covers(finding)), None)
        if rule is None:
            kept.append(finding)
        else:
            suppressed.append(Suppressed(finding, rule.by))
    kept.sort(key=sort_key)
    return Outcome(kept, suppressed)


def _unused(inline: list[_Directive], rules: list[_Rule]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for r in rules:
        if r.pos is not None and r.code != UNUSED:
            where = f" in {', '.join(r.paths)}" if r.paths else ""
            out.append(
                warning(
                    UNUSED,
                    PROJECT_FILE,
                    r.pos,
                    f"ignore: {r.code} suppresses nothing (no {r.code} finding{where})",
                    "remove the entry",
                )
            )
    for x in inline:
        for code in x.unknown:
            why = _refusal(code) or ""
            out.append(
                warning(UNUSED, x.path, x.pos, f"suppression comment: {why}", "see docs/error-codes.md")
            )
        if not x.codes and not x.unknown:
            out.append(
                warning(
                    UNUSED,
                    x.path,
                    x.pos,
                    "suppression comment names no code",
                    "name the codes: # bifrost-gitops: ignore C007",
                )
            )
        for code in x.codes:
            if code not in x.used:
                scope = "in this file" if x.whole_file else "on this line"
                out.append(
                    warning(
                        UNUSED,
                        x.path,
                        x.pos,
                        f"suppression of {code} matches no finding {scope}",
                        f"remove {code} from the comment",
                    )
                )
    return out
