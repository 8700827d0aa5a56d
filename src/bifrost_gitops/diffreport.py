"""The diff as people read it: text for a terminal or CI log, markdown for a pull-request
comment, JSON for tools. Security-relevant changes come first in every format.

Every name, value, path and finding that reaches an output comes from the repository (a
fork's pull request): text lines go through term() (in colour.lines, before any colour),
markdown through md_text()/md_code()/html_text(), JSON through to_json(). Nothing else is
printed raw.
"""

from __future__ import annotations

from dataclasses import asdict

from .colour import Style, lines
from .diff import IDENTITY_ROW, ORG_ROW, Change, Diff
from .escape import html_text, md_code, md_text, to_json
from .security import Alert


def _label(c: Change) -> str:
    if c.what == "config":
        return f"config.{c.key}"
    if c.what == "oauth" and c.key:
        return f"oauth.{c.key}"
    return c.what


def _arrow(c: Change) -> str:
    if c.what in ("organization", "integration") and c.old is None:
        return "added"
    if c.new in ("removed",) or (c.new is None and c.old is not None):
        return f"{c.old} -> (removed)" if c.what not in ("organization", "integration") else "removed"
    if c.old is None:
        return f"(unset) -> {c.new}"
    return f"{c.old} -> {c.new}"


SECURITY_TITLE = "SECURITY-RELEVANT CHANGES"
SECURITY_WHY = (
    "they decide which Bifrost organization receives each client's workflows and secrets, "
    "and who can decrypt them"
)


def _subject(a: Alert) -> str:
    return f"{a.kind} {a.subject}" if a.kind in ("organization", "integration") else a.subject


def _alert_change(a: Alert) -> str:
    """``id: 1111... -> 2222...``, ``age added age1...``, ``added`` (a whole rule)."""
    field_ = f"{a.field} " if a.field else ""
    if a.action == "added" and a.old is None:
        return f"{field_}added" + (f" {a.new}" if a.new is not None else "")
    if a.action == "removed" and a.new is None:
        return f"{field_}removed" + (f" {a.old}" if a.old is not None else "")
    head = f"{a.field}: " if a.field else ""
    return f"{head}{a.old or '(unset)'} -> {a.new or '(unset)'}"


def _security_text(d: Diff) -> list[str]:
    if not d.security:
        return []
    lines = [f"{SECURITY_TITLE}: {len(d.security)} (review before merging: {SECURITY_WHY})"]
    for a in d.security:
        note = f"  ({a.note})" if a.note else ""
        src = f"    ({a.source})" if a.source else ""
        lines.append(f"  {_subject(a)}: {_alert_change(a)}{note}{src}")
    return [*lines, ""]


def summary_lines(d: Diff) -> list[str]:
    """The headline and the per-integration counts (raw: the caller escapes for its output)."""
    lines = [f"{d.headline()} ({d.base} -> {d.head})"]
    for name, count in d.affected.items():
        lines.append(f"  {name}: {count} org{'s' if count != 1 else ''}")
    return lines


def render_text(d: Diff, colour: bool = False) -> str:
    """The terminal report; with COLOUR, security changes red, organizations bold, each change
    by what it does (added green, removed red, changed yellow), findings red."""
    rows = [(line, Style.RED_BOLD if i == 0 else Style.RED) for i, line in enumerate(_security_text(d))]
    rows += [(line, Style.BOLD if i == 0 else Style.NONE) for i, line in enumerate(summary_lines(d))]
    for org, changes in d.changes.items():
        rows += [("", Style.NONE), (org, Style.BOLD)]
        current: object = object()
        for c in changes:
            if c.integration != current and c.integration is not None:
                rows.append((f"  {c.integration}", Style.NONE))
                current = c.integration
            indent = "    " if c.integration else "  "
            src = f"    ({c.source})" if c.source else ""
            arrow = _arrow(c)
            rows.append((f"{indent}{_label(c)}: {arrow}{src}", _change_style(arrow)))
    head, base = _findings_text(d)
    rows += [(line, Style.RED) for line in head] + [(line, Style.DIM) for line in base]
    return lines(rows, colour)


def _change_style(arrow: str) -> Style:
    if arrow == "added" or arrow.startswith("(unset) -> "):
        return Style.GREEN
    if arrow == "removed" or arrow.endswith(" -> (removed)"):
        return Style.RED
    return Style.YELLOW


def _findings_text(d: Diff) -> tuple[list[str], list[str]]:
    """Lines for the head's findings and for the base's (shown as a note)."""
    head: list[str] = []
    base: list[str] = []
    if d.head_findings:
        head += ["", f"findings in {d.head} (fix before merging):"]
        head += [f"  {f.location()}: {f.code} {f.message}" for f in d.head_findings]
    if d.base_findings:
        base += ["", f"note: {d.base} already had {len(d.base_findings)} finding(s)"]
        base += [f"  {f.location()}: {f.code} {f.message}" for f in d.base_findings]
    return head, base


def _md(text: str | None) -> str:
    return md_code(text) if text else ""  # an empty code span would show its backticks


def _md_values(c: Change) -> tuple[str, str]:
    """The old and new cells: an unset or removed value says so, as the text output does."""
    if c.what in ("organization", "integration"):
        return _md(c.old), _md(c.new)
    old = "(unset)" if c.old is None else _md(c.old)
    new = "(removed)" if c.new is None else _md(c.new)
    return old, new


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _security_markdown(d: Diff) -> list[str]:
    if not d.security:
        return []
    n = len(d.security)
    out = [
        f"### ⚠️ Security-relevant change{'s' if n != 1 else ''} ({n}): review before merging",
        "",
        f"These come first because {SECURITY_WHY}.",
        "",
        _row("what", "field", "change", "old", "new", "note", "source"),
        "|---|---|---|---|---|---|---|",
    ]
    for a in d.security:
        out.append(
            _row(
                md_text(_subject(a)),
                md_text(a.field or ""),
                a.action,
                _md(a.old),
                _md(a.new),
                md_text(a.note or ""),
                _md(a.source),
            )
        )
    return [*out, ""]


def render_markdown(d: Diff) -> str:
    """A pull-request comment: security-relevant changes first, then the summary table, then
    one collapsible section per org."""
    n = len(d.changes)
    out = [
        *_security_markdown(d),
        f"### bifrost-gitops diff: {d.headline()}",  # counts and fixed words only
        "",
        f"{md_code(d.base)} → {md_code(d.head)}",
        "",
    ]
    if d.affected:
        out += ["| integration | organizations affected |", "|---|---:|"]
        out += [
            _row(name if name in (ORG_ROW, IDENTITY_ROW) else md_text(name), str(count))
            for name, count in d.affected.items()
        ]
        out.append("")
    collapse = n > 3 or sum(len(c) for c in d.changes.values()) > 15
    for org, changes in d.changes.items():
        body = ["| integration | change | old | new | source |", "|---|---|---|---|---|"]
        for c in changes:
            old, new = _md_values(c)
            body.append(_row(md_text(c.integration or ""), md_text(_label(c)), old, new, _md(c.source)))
        if collapse:
            out += [
                f"<details><summary><b>{html_text(org)}</b>: {len(changes)} change"
                f"{'s' if len(changes) != 1 else ''}</summary>",
                "",
                *body,
                "",
                "</details>",
                "",
            ]
        else:
            out += [f"#### {md_text(org)}", "", *body, ""]
    if d.head_findings:
        out += [f"**{len(d.head_findings)} finding(s) in the head revision:**", ""]
        out += [f"- {md_code(f.location())} {md_text(f.code)} {md_text(f.message)}" for f in d.head_findings]
        out.append("")
    if d.base_findings:
        out += [f"_Note: the base revision already had {len(d.base_findings)} finding(s)._", ""]
    return "\n".join(out)


def render_json(d: Diff) -> str:
    doc = {
        "base": d.base,
        "head": d.head,
        "security": [asdict(a) for a in d.security],
        "organizations": d.orgs_total,
        "affected": len(d.affected_orgs),
        "per_integration": d.affected,
        "changes": {org: [asdict(c) for c in changes] for org, changes in d.changes.items()},
        "findings": {
            "head": [f._asdict() for f in d.head_findings],
            "base": [f._asdict() for f in d.base_findings],
        },
    }
    return to_json(doc) + "\n"
