"""Findings and the ways of printing them (text, json, GitHub annotations; SARIF and GitLab
Code Quality are in scanreports.py). Every reporter takes the findings and a `Summary`.

A Diagnostic never carries a secret value: checks build messages from keys, types and
positions only. Names in messages come from the repository, so reporters escape them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import IO, Literal, NamedTuple

from .colour import Style, paint
from .escape import gh_data, gh_property, term, to_json

Severity = Literal["error", "warning"]

#: Every code with its one-line meaning; the README's table is generated from this.
CODES: dict[str, str] = {
    "Y001": "YAML syntax error",
    "Y002": "duplicate key in a mapping",
    "Y003": "tag not allowed (only plain, safe YAML: no Python or custom tags)",
    "Y004": "file refused by a safety limit (size, nesting depth, alias expansion)",
    "Y005": "YAML 1.1 trap: an unquoted scalar was read as bool/int/float/date where text was meant",
    "Y006": "file reached through a symlink that leaves the repository",
    "Y007": "file cannot be read (permissions, encoding)",
    "Y008": "not a single YAML mapping document",
    "Y009": "YAML 1.1 boolean word (yes, no, on, off) for a bool key: YAML 1.2 tools read it as text",
    "S001": "document does not match its JSON Schema",
    "S002": "unknown apiVersion or kind",
    "S003": "document kind that must appear at most once appears again",
    "S004": "a name or label holds a control, bidi or invisible character (shown escaped)",
    "S005": "suppression that suppresses nothing (unused, unknown or unsuppressible code)",
    "R001": "duplicate name (organizations, OAuth providers, integrations: case-insensitive)",
    "R002": "mapping names an organization that is not declared",
    "R003": "mapping names an integration that is not declared",
    "R004": "more than one mapping for the same integration and organization",
    "R005": "integration names an OAuth provider that is not declared",
    "R006": "config_schema declares the same key twice",
    "C001": "config key not in the integration's config_schema",
    "C002": "value does not match the key's declared type",
    "C003": "value is not one of the key's options",
    "C004": "secret-typed key under config: (it belongs under secrets:)",
    "C005": "non-secret key under secrets: (it belongs under config:)",
    "C006": "required key has no value for a mapped organization",
    "C007": "required key has no default, so organizations without a mapping lack it",
    "C008": "token URL needs {entity_id} but a mapped organization resolves none",
    "C009": "token URL needs {entity_id} but organizations without a mapping resolve none",
    "C010": "json key holds text that is not JSON (valid here, refused by Bifrost's API on deploy)",
    "C011": "OAuth URL is plain http on loopback (for a local token server; Bifrost's API wants https)",
    "C012": "mapping says oauth: own but its integration has no OAuth provider",
    "C013": "mapping says oauth: own but the provider has no authorization step (client credentials)",
    "K001": "secret in clear text (not SOPS ciphertext): a leak in git",
    "K002": "secrets: present but the file carries no sops metadata",
    "K003": "malformed sops metadata, a file sops cannot read, or a document encrypted whole",
    "K004": "no available key opens the file (an environment problem: exit 2)",
    "K005": "encrypted file fails its integrity check (ciphertext, MAC or clear value altered)",
    "K006": "file's recipients differ from what .sops.yaml asks for (run bifrost-gitops secrets updatekeys)",
    "K007": "secret value of a type Bifrost cannot store (bytes, NaN, infinity): only text, numbers, true/false",
}

#: The codes that are warnings (they fail only under --strict); every other code is an error.
WARNING_CODES = frozenset({"Y009", "S005", "C007", "C009", "C010", "C011", "C013"})


class Diagnostic(NamedTuple):
    code: str
    severity: Severity
    path: str  # relative to the repository root, '/'-separated
    line: int  # 1-based; 1:1 when the finding is about the whole file
    col: int
    message: str
    hint: str | None = None

    def location(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


def _at(pos: tuple[int, int]) -> tuple[int, int]:
    """A finding about a whole file points at its start: every line reads path:line:col."""
    return pos if pos[0] > 0 else (1, 1)


def error(code: str, path: str, pos: tuple[int, int], message: str, hint: str | None = None) -> Diagnostic:
    line, col = _at(pos)
    return Diagnostic(code, "error", path, line, col, message, hint)


def warning(code: str, path: str, pos: tuple[int, int], message: str, hint: str | None = None) -> Diagnostic:
    line, col = _at(pos)
    return Diagnostic(code, "warning", path, line, col, message, hint)


class Suppressed(NamedTuple):
    """A finding left out of the report on purpose, and what suppressed it (suppress.py)."""

    diagnostic: Diagnostic
    by: str  # "--ignore", "bifrost-gitops.yaml:12" or the inline comment's "path:line"


class Summary(NamedTuple):
    """What a report says besides the findings: how many files were checked, and the findings
    left out on purpose (counted in every summary; json lists them)."""

    files: int
    suppressed: Sequence[Suppressed] = ()


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.path, d.line, d.col, d.code)


def summary(diags: list[Diagnostic], files: int, suppressed: int = 0) -> str:
    """The closing line of a text report."""
    errors = sum(1 for d in diags if d.severity == "error")
    warnings = len(diags) - errors
    tail = f", {suppressed} suppressed" if suppressed else ""
    if not diags:
        return f"{files} files checked, no problems{tail}"
    return f"{files} files checked: {_plural(errors, 'error')}, {_plural(warnings, 'warning')}{tail}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def report_text(diags: Iterable[Diagnostic], totals: Summary, out: IO[str], colour: bool) -> None:
    """path:line:col: CODE message, a hint line, the summary; text escaped before it is coloured."""
    diags = list(diags)
    for d in diags:
        style = Style.RED if d.severity == "error" else Style.YELLOW
        tag = "" if d.severity == "error" else " " + paint("(warning)", Style.YELLOW, colour)
        loc = paint(term(d.location()), Style.BOLD, colour)
        out.write(f"{loc}: {paint(d.code, style, colour)} {term(d.message)}{tag}\n")
        if d.hint:
            out.write("  " + paint(f"hint: {term(d.hint)}", Style.DIM, colour) + "\n")
    out.write(summary(diags, totals.files, len(totals.suppressed)) + "\n")


def report_json(diags: Iterable[Diagnostic], totals: Summary, out: IO[str]) -> None:
    diags = list(diags)
    doc = {
        "files": totals.files,
        "errors": sum(1 for d in diags if d.severity == "error"),
        "warnings": sum(1 for d in diags if d.severity == "warning"),
        "suppressed": len(totals.suppressed),
        "diagnostics": [d._asdict() for d in diags],
        "suppressed_diagnostics": [
            {**s.diagnostic._asdict(), "suppressed_by": s.by} for s in totals.suppressed
        ],
    }
    out.write(to_json(doc) + "\n")


def report_github(diags: Iterable[Diagnostic], totals: Summary, out: IO[str], prefix: str = "") -> None:
    """GitHub Actions workflow commands; ``prefix`` maps repo-relative paths to the checkout."""
    diags = list(diags)
    for d in diags:
        props = [f"file={gh_property(prefix + d.path)}", f"line={d.line}", f"col={d.col}"]
        props.append(f"title={gh_property(d.code)}")
        msg = d.message + (f" (hint: {d.hint})" if d.hint else "")
        out.write(f"::{d.severity} {','.join(props)}::{gh_data(msg)}\n")
    out.write(summary(diags, totals.files, len(totals.suppressed)) + "\n")
