"""Findings for the platforms that show them beside the code: SARIF 2.1.0 (GitHub code scanning
and other SARIF readers) and GitLab Code Quality (the merge-request widget).

Both carry a fingerprint that survives edits above a finding, so a platform sees the same
finding as the same alert from one run to the next. Paths, names and messages come from the
repository: the documents are built as data and written only through ``to_json``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from typing import IO, Literal, TypedDict
from urllib.parse import quote

from . import __version__
from .diagnostics import CODES, WARNING_CODES, Diagnostic, Summary, sort_key
from .escape import to_json

HOME = "https://github.com/bifrost-gitops/bifrost-gitops"
#: The error-code table, one section per code letter (GitHub's heading anchors).
CODES_DOC = f"{HOME}/blob/main/docs/error-codes.md"
SECTIONS = {
    "Y": "y-yaml-and-files",
    "S": "s-structure-json-schema",
    "R": "r-names-and-references",
    "C": "c-config-values",
    "K": "k-secrets",
}
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
#: Where a result's relative uri starts: the root of the checked repository.
SRCROOT = "%SRCROOT%"
#: The name of our fingerprint in SARIF's partialFingerprints (versioned: a new recipe, a new key).
FINGERPRINT_KEY = "bifrostGitops/v1"

GitLabSeverity = Literal["info", "minor", "major", "critical", "blocker"]
GITLAB_SEVERITY: dict[str, GitLabSeverity] = {"error": "major", "warning": "minor"}

# A line or column number in a message ("first at line 12", "orgs.yaml:12:3"): left out of
# the fingerprint, so that a finding keeps it when lines above what it quotes move.
_NUMBERS = re.compile(r"(\bline |:)\d+")


def help_uri(code: str) -> str:
    """The section of docs/error-codes.md that explains CODE."""
    return f"{CODES_DOC}#{SECTIONS[code[0]]}"


def fingerprints(diags: Iterable[Diagnostic]) -> Iterator[str]:
    """One stable hash per finding: code, path and message without line numbers, plus how many
    identical findings came before it in the file (two equal findings stay two alerts)."""
    seen: dict[str, int] = {}
    for d in diags:
        base = "\0".join((d.code, d.path, _NUMBERS.sub(r"\1#", d.message)))
        seen[base] = seen.get(base, 0) + 1
        yield hashlib.sha256(f"{base}\0{seen[base]}".encode("utf-8", "surrogatepass")).hexdigest()


def _text(d: Diagnostic) -> str:
    return d.message + (f" (hint: {d.hint})" if d.hint else "")


def _rule(code: str) -> dict[str, object]:
    level = "warning" if code in WARNING_CODES else "error"
    return {
        "id": code,
        "name": code,
        "shortDescription": {"text": CODES[code]},
        "helpUri": help_uri(code),
        "help": {"text": f"{code}: {CODES[code]}. See {help_uri(code)}"},
        "defaultConfiguration": {"level": level},
    }


def _suppression(d: Diagnostic, by: str) -> dict[str, str]:
    """SARIF's record of a finding suppressed on purpose: in the file itself (a comment on its
    line) or outside it (--ignore, bifrost-gitops.yaml's ignore:)."""
    kind = "inSource" if by.startswith(f"{d.path}:") else "external"
    return {"kind": kind, "status": "accepted", "justification": f"suppressed by {by}"}


def _result(
    d: Diagnostic, fingerprint: str, rules: list[str], prefix: str, by: str | None = None
) -> dict[str, object]:
    location = {
        "physicalLocation": {
            "artifactLocation": {"uri": quote(prefix + d.path, safe="/"), "uriBaseId": SRCROOT},
            "region": {"startLine": d.line, "startColumn": d.col},
        }
    }
    result: dict[str, object] = {"ruleId": d.code}
    if d.code in rules:
        result["ruleIndex"] = rules.index(d.code)
    result |= {
        "level": d.severity,
        "message": {"text": _text(d)},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint},
    }
    if by is not None:
        result["suppressions"] = [_suppression(d, by)]
    return result


def sarif(diags: list[Diagnostic], summary: Summary, prefix: str = "") -> dict[str, object]:
    """The SARIF log: one run, every known code as a rule, one result per finding. PREFIX leads
    from where the command runs (a CI checkout's root, %SRCROOT%) to the repository's root.
    A suppressed finding is a result with ``suppressions`` (code scanning shows it dismissed);
    fingerprints are counted over all of them, so suppressing one changes no other's."""
    rules = list(CODES)
    found = [(d, None) for d in diags] + [(s.diagnostic, s.by) for s in summary.suppressed]
    found.sort(key=lambda pair: sort_key(pair[0]))
    prints = fingerprints(d for d, _ in found)
    driver = {
        "name": "bifrost-gitops",
        "version": __version__,
        "semanticVersion": __version__,
        "informationUri": HOME,
        "rules": [_rule(code) for code in rules],
    }
    run = {
        "tool": {"driver": driver},
        "columnKind": "unicodeCodePoints",
        "results": [_result(d, fp, rules, prefix, by) for (d, by), fp in zip(found, prints, strict=True)],
        "properties": {"files": summary.files, "suppressed": len(summary.suppressed)},
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def report_sarif(diags: Iterable[Diagnostic], summary: Summary, out: IO[str], prefix: str = "") -> None:
    out.write(to_json(sarif(list(diags), summary, prefix)) + "\n")


class GitLabLines(TypedDict):
    begin: int


class GitLabLocation(TypedDict):
    path: str
    lines: GitLabLines


class GitLabIssue(TypedDict):
    """One entry of a GitLab Code Quality report (the fields GitLab reads)."""

    description: str
    check_name: str
    fingerprint: str
    severity: GitLabSeverity
    location: GitLabLocation


def gitlab(diags: list[Diagnostic], prefix: str = "") -> list[GitLabIssue]:
    """The Code Quality report: a plain list, one issue per finding; paths from the project's
    root (PREFIX leads from there to the repository's root)."""
    return [
        GitLabIssue(
            description=f"{d.code} {_text(d)}",
            check_name=d.code,
            fingerprint=fp,
            severity=GITLAB_SEVERITY[d.severity],
            location=GitLabLocation(path=prefix + d.path, lines=GitLabLines(begin=d.line)),
        )
        for d, fp in zip(diags, fingerprints(diags), strict=True)
    ]


def report_gitlab(diags: Iterable[Diagnostic], summary: Summary, out: IO[str], prefix: str = "") -> None:
    """GitLab's format has no place for totals nor for suppressed findings (they are left out)."""
    del summary
    out.write(to_json(gitlab(list(diags), prefix)) + "\n")
