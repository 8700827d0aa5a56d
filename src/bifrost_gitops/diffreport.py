"""The diff as people read it: text for a terminal or CI log, markdown for a pull-request
comment, JSON for tools. Security-relevant changes come first in every format.

Every name, value, path and finding that reaches an output comes from the repository (a
fork's pull request): text lines go through term() (in colour.lines, before any colour),
markdown through md_text()/md_code()/html_text(), JSON through to_json(). Nothing else is
printed raw.
"""

from __future__ import annotations

import textwrap
from dataclasses import asdict
from typing import NamedTuple

from .colour import Style, lines
from .diff import IDENTITY_ROW, ORG_ROW, Change, Diff
from .diffgroup import Group, all_but, groups, who
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


def render_text(d: Diff, colour: bool = False, by_org: bool = False) -> str:
    """The terminal report; with COLOUR, security changes red, organizations bold, each change
    by what it does (added green, removed red, changed yellow), findings red. Identical
    changes are grouped (BY_ORG: one section per organization instead)."""
    rows = [(line, Style.RED_BOLD if i == 0 else Style.RED) for i, line in enumerate(_security_text(d))]
    rows += [(line, Style.BOLD if i == 0 else Style.NONE) for i, line in enumerate(summary_lines(d))]
    rows += _by_org_text(d) if by_org else _groups_text(d)
    head, base = _findings_text(d)
    rows += [(line, Style.RED) for line in head] + [(line, Style.DIM) for line in base]
    return lines(rows, colour)


def _by_org_text(d: Diff) -> list[tuple[str, Style]]:
    rows: list[tuple[str, Style]] = []
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
    return rows


def _sources(g: Group) -> str:
    if not g.sources:
        return ""
    more = f" and {len(g.sources) - 1:,} more" if len(g.sources) > 1 else ""
    return f"    ({g.sources[0]}{more})"


def _groups_text(d: Diff) -> list[tuple[str, Style]]:
    """One entry per distinct change, with who makes it; a long list in full, wrapped."""
    rows: list[tuple[str, Style]] = []
    current: object = object()
    for g in groups(d):
        if g.integration != current:
            rows += [("", Style.NONE), (g.integration or "(organizations)", Style.BOLD)]
            current = g.integration
        arrow = _arrow(g.change)
        rows.append((f"  {_label(g.change)}: {arrow}{_sources(g)}", _change_style(arrow)))
        rows.append((f"    {who(g.orgs, d.orgs)}", Style.NONE))
        if len(g.orgs) > 3 and len(g.orgs) < len(d.orgs) and all_but(g.orgs, d.orgs) is None:
            wrapped = textwrap.wrap(", ".join(g.orgs), 96, break_on_hyphens=False)
            rows += [(f"      {line}", Style.DIM) for line in wrapped]
    return rows


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


#: GitHub refuses a comment over 65,536 characters; a byte budget under it is safe for any text.
MAX_BYTES = 60_000
FULL_REPORT = "run `bifrost-gitops diff --format markdown --max-bytes 0`, or open the CI artifact"


def render_markdown(d: Diff, max_bytes: int = MAX_BYTES, by_org: bool = False) -> str:
    """A pull-request comment: security-relevant changes first, then the summary table, then
    each distinct change once with its organizations (BY_ORG: one collapsible section per
    organization). Past MAX_BYTES (0: no limit) whole sections are left out, from the end,
    and a closing note says which and where the full report is; the summary always stays."""
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
    kept = "\n".join(out) + "\n"
    blocks = _org_blocks(d) if by_org else _group_blocks(d)
    findings = _findings_blocks(d)
    return fit(kept, [*blocks, *findings], max_bytes, "organization" if by_org else "change")


class Block(NamedTuple):
    """A piece of the comment that is kept whole or left out whole (a table, a section)."""

    text: str
    kind: str  # what it is, to say what was left out: "change", "organization", "finding"
    count: int = 1  # how many of KIND it holds


def fit(kept: str, blocks: list[Block], max_bytes: int, unit: str) -> str:
    """KEPT, then as many BLOCKS as fit in MAX_BYTES (UTF-8) with room for the note on what
    was left out. Blocks are whole tables or sections: nothing is cut inside one."""
    if max_bytes <= 0 or len((kept + "".join(b.text for b in blocks)).encode()) <= max_bytes:
        return kept + "".join(b.text for b in blocks)
    reserve = 400  # the note below, with room for its numbers
    size = len(kept.encode())
    taken: list[Block] = []
    for i, b in enumerate(blocks):
        n = len(b.text.encode())
        if size + n + reserve > max_bytes:
            left = blocks[i:]
            break
        taken.append(b)
        size += n
    else:  # pragma: no cover - the whole fitted, handled above
        left = []
    counts: dict[str, int] = {}
    for b in left:
        counts[b.kind] = counts.get(b.kind, 0) + b.count
    totals: dict[str, int] = {}
    for b in blocks:
        totals[b.kind] = totals.get(b.kind, 0) + b.count
    what = ", ".join(
        f"{counts[k]:,} of {totals[k]:,} {k}{'s' if totals[k] != 1 else ''}" for k in totals if k in counts
    )
    note = (
        f"**Left out to stay within {max_bytes:,} bytes:** {what} (whole sections, from the end). "
        f"Full report: {FULL_REPORT}.\n"
    )
    return kept + "".join(b.text for b in taken) + ("\n" if taken else "") + note


def _group_blocks(d: Diff) -> list[Block]:
    """One block per distinct change: a line that says it and who makes it, the names in a
    collapsed list when there are more than a few."""
    out: list[Block] = []
    for g in groups(d):
        c = g.change
        old, new = _md_values(c)
        change = f"{old} → {new}" if c.what not in ("organization", "integration") else (new or old)
        src = f" · {_md(g.sources[0])}" if g.sources else ""
        src += f" and {len(g.sources) - 1:,} more" if len(g.sources) > 1 else ""
        rest = all_but(g.orgs, d.orgs)
        n = len(g.orgs)
        if n > 1 and n == len(d.orgs):
            orgs = f"all {n:,} organizations"
        elif rest is not None:
            orgs = f"{n:,} of {len(d.orgs):,} organizations: all but {', '.join(md_code(o) for o in rest)}"
        elif n <= 3:
            orgs = f"{n:,} organization{'s' if n != 1 else ''}: {', '.join(md_code(o) for o in g.orgs)}"
        else:
            orgs = f"{n:,} organizations (listed below)"
        name = f"**{md_text(g.integration)}** " if g.integration else ""
        text = f"- {name}{md_text(_label(c))}: {change} — {orgs}{src}\n\n"
        if n > 3 and rest is None and n != len(d.orgs):
            text += (
                f"<details><summary>{n:,} organizations</summary>\n\n"
                + ", ".join(md_code(o) for o in g.orgs)
                + "\n\n</details>\n\n"
            )
        out.append(Block(text, "change"))
    return out


def _org_blocks(d: Diff) -> list[Block]:
    """One section per organization (--by-org): collapsible when there are many."""
    out: list[Block] = []
    collapse = len(d.changes) > 3 or sum(len(c) for c in d.changes.values()) > 15
    for org, changes in d.changes.items():
        body = ["| integration | change | old | new | source |", "|---|---|---|---|---|"]
        for c in changes:
            old, new = _md_values(c)
            body.append(_row(md_text(c.integration or ""), md_text(_label(c)), old, new, _md(c.source)))
        if collapse:
            section = [
                f"<details><summary><b>{html_text(org)}</b>: {len(changes)} change"
                f"{'s' if len(changes) != 1 else ''}</summary>",
                "",
                *body,
                "",
                "</details>",
                "",
            ]
        else:
            section = [f"#### {md_text(org)}", "", *body, ""]
        out.append(Block("\n".join(section) + "\n", "organization"))
    return out


def _findings_blocks(d: Diff) -> list[Block]:
    out: list[Block] = []
    if d.head_findings:
        out.append(Block(f"**{len(d.head_findings)} finding(s) in the head revision:**\n\n", "finding", 0))
        out += [
            Block(f"- {md_code(f.location())} {md_text(f.code)} {md_text(f.message)}\n", "finding")
            for f in d.head_findings
        ]
        out.append(Block("\n", "finding", 0))
    if d.base_findings:
        out.append(Block(f"_Note: the base revision already had {len(d.base_findings)} finding(s)._\n\n", "note"))
    return out


def _group_json(g: Group, universe: list[str]) -> dict[str, object]:
    return {
        **{k: v for k, v in asdict(g.change).items() if k != "source"},
        "sources": g.sources,
        "count": len(g.orgs),
        "organizations": g.orgs,
        "all_but": all_but(g.orgs, universe, len(universe)),
    }


def render_json(d: Diff, by_org: bool = False) -> str:
    """Identical changes grouped ("groups", each with its organizations); BY_ORG adds
    "changes", every organization's own list."""
    doc: dict[str, object] = {
        "base": d.base,
        "head": d.head,
        "security": [asdict(a) for a in d.security],
        "organizations": d.orgs_total,
        "affected": len(d.affected_orgs),
        "per_integration": d.affected,
        "groups": [_group_json(g, d.orgs) for g in groups(d)],
        "findings": {
            "head": [f._asdict() for f in d.head_findings],
            "base": [f._asdict() for f in d.base_findings],
        },
    }
    if by_org:
        doc["changes"] = {org: [asdict(c) for c in changes] for org, changes in d.changes.items()}
    return to_json(doc) + "\n"
