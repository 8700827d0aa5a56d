"""The diff as people read it: text for a terminal or CI log, markdown for a pull-request
comment, JSON for tools. Security-relevant changes come first in every format.

Every name, value, path and finding that reaches an output comes from the repository (a
fork's pull request): text lines go through term() (in colour.lines, before any colour),
markdown through md_text()/md_code()/html_text(), JSON through to_json(). Nothing else is
printed raw.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict, dataclass, replace

from .colour import Style, lines
from .diff import IDENTITY_ROW, ORG_ROW, Change, Diff, location
from .diffgroup import Group, all_but, groups, who
from .escape import html_text, md_code, md_text, to_json
from .schemadiff import Creation, SchemaChange
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
    rows += _schema_text(d)
    rows += _by_org_text(d) if by_org else _groups_text(d)
    head, base = _findings_text(d)
    rows += [(line, Style.RED) for line in head] + [(line, Style.DIM) for line in base]
    return lines(rows, colour)


SCHEMA_TITLE = "Integration and schema changes"


def _schema_count(d: Diff) -> str:
    bad = sum(c.destructive for c in d.schema)
    return f"{len(d.schema)}" + (f", {bad} destructive" if bad else "")


def schema_line(c: SchemaChange) -> str:
    """``destructive HaloPSA key_removed region: "string" -> (none) (destroys 2 ...)``; raw text."""
    key = f" {c.key}" if c.key else ""
    values = ""
    if c.old_value is not None or c.new_value is not None:
        values = f": {_json(c.old_value)} -> {_json(c.new_value)}"
    note = f" ({c.note})" if c.note else ""
    return f"{'destructive' if c.destructive else 'safe'} {c.integration} {c.change}{key}{values}{note}"


def _json(value: object) -> str:
    return "(none)" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _schema_text(d: Diff) -> list[tuple[str, Style]]:
    rows: list[tuple[str, Style]] = []
    if d.schema:
        rows += [("", Style.NONE), (f"{SCHEMA_TITLE} ({_schema_count(d)}):", Style.BOLD)]
        rows += [(f"  {schema_line(c)}", Style.RED if c.destructive else Style.NONE) for c in d.schema]
    for new in d.created:
        rows += [("", Style.NONE), (f"+ create {new.subject}", Style.GREEN)]
        rows += [(f"    {line}", Style.GREEN) for line in new.lines]
    return rows


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
        if len(g.orgs) > 3 and len(g.orgs) < len(d.orgs) and all_but(g.orgs, d.orgs) is None:
            rows.append((f"    {len(g.orgs):,} organizations:", Style.NONE))
            wrapped = textwrap.wrap(", ".join(g.orgs), 96, break_on_hyphens=False)
            rows += [(f"      {line}", Style.DIM) for line in wrapped]
        else:
            rest = all_but(g.orgs, d.orgs) or []
            rows.append((f"    {who(g.orgs, d.orgs, shielded=d.shielded(g.change, rest))}", Style.NONE))
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
    first = _schema_blocks(d)
    blocks = [*first, *_shifted(_org_blocks(d) if by_org else _group_blocks(d), len(first))]
    findings = _findings_blocks(d)
    return fit(kept, [*blocks, Block("\n", "space", 0), *findings], max_bytes)


def _shifted(blocks: list[Block], by: int) -> list[Block]:
    """BLOCKS placed after BY others: a list's index of its change line moves with them."""
    return [replace(b, names=b.names + by) if b.names is not None else b for b in blocks]


def _schema_blocks(d: Diff) -> list[Block]:
    """The schema-level changes as a table (each row a block), then each new organization or
    integration in a collapsed block with its values."""
    out: list[Block] = []
    if d.schema:
        head = f"#### {SCHEMA_TITLE} ({_schema_count(d)})\n\n"
        head += "| | integration | change | key | old | new | note |\n|---|---|---|---|---|---|---|\n"
        out.append(Block(head, "schema change", 0))
        for c in d.schema:
            mark = "**destructive**" if c.destructive else "safe"
            cells = [_md(_json(c.old_value)), _md(_json(c.new_value))]
            row = _row(mark, md_text(c.integration), c.change, _md(c.key), *cells, md_text(c.note))
            out.append(Block(row + "\n", "schema change"))
        out.append(Block("\n", "schema change", 0))
    for new in d.created:
        out.append(Block(_creation_md(new), "new organization or integration"))
    return out


def _creation_md(new: Creation) -> str:
    items = [(line[: len(line) - len(line.lstrip())], line.strip()) for line in new.lines]
    body = "".join(f"  {pad}- {md_code(text)}\n" for pad, text in items) or "  - (no values)\n"
    return f"<details><summary>+ create {html_text(new.subject)}</summary>\n\n{body}\n</details>\n\n"


@dataclass(frozen=True)
class Block:
    """A piece of the comment that is kept whole or left out whole (a line, a table, a
    section): nothing is ever cut inside one."""

    text: str
    kind: str  # what it is, to say what was left out: "change", "organization", "finding"
    count: int = 1  # how many of KIND it holds
    names: int | None = None  # a full organization list: the index of the block it belongs to


def fit(kept: str, blocks: list[Block], max_bytes: int) -> str:
    """KEPT, then as many BLOCKS as fit in MAX_BYTES (UTF-8; 0: all), with room for a note
    that says what was left out. Every change's line comes before any full list of names:
    the lines are kept from the start while they fit, then the lists of the lines kept."""
    whole = kept + "".join(b.text for b in blocks)
    if max_bytes <= 0 or len(whole.encode()) <= max_bytes:
        return whole
    room = max_bytes - len(kept.encode()) - NOTE_ROOM
    chosen = [False] * len(blocks)
    for lists in (False, True):
        for i, b in enumerate(blocks):
            if (b.names is not None) != lists or (lists and not chosen[b.names or 0]):
                continue
            size = len(b.text.encode())
            if size > room:
                break  # from here on, left out: what is kept reads in order
            chosen[i], room = True, room - size
    return (
        kept
        + "".join(b.text for b, c in zip(blocks, chosen, strict=True) if c)
        + _left_out(blocks, chosen, max_bytes)
    )


NOTE_ROOM = 500  # bytes kept free for the note on what was left out


def _left_out(blocks: list[Block], chosen: list[bool], max_bytes: int) -> str:
    """``**Left out to stay within 60,000 bytes:** 3 of 6 changes, ...``: counts only."""
    total: dict[str, int] = {}
    left: dict[str, int] = {}
    lists = 0
    for b, c in zip(blocks, chosen, strict=True):
        if b.names is not None:
            lists += not c and chosen[b.names]
            continue
        total[b.kind] = total.get(b.kind, 0) + b.count
        left[b.kind] = left.get(b.kind, 0) + (0 if c else b.count)
    parts = [f"{left[k]:,} of {n:,} {k}{'s' if n != 1 else ''}" for k, n in total.items() if left[k]]
    if lists:
        parts.append(
            f"the full organization lists of {lists:,} of the changes shown (each names its first few)"
        )
    return (
        f"\n**Left out to stay within {max_bytes:,} bytes:** {'; '.join(parts)}. "
        f"Full report: {FULL_REPORT}.\n"
    )


def _group_blocks(d: Diff) -> list[Block]:
    """One line per distinct change that says it and who makes it; when that is more than a
    few organizations (and not "all" or "all but"), the full list in a collapsed block."""
    out: list[Block] = []
    for g in groups(d):
        c = g.change
        old, new = _md_values(c)
        change = f"{old} → {new}" if c.what not in ("organization", "integration") else (new or old)
        src = f" · {_md(g.sources[0])}" if g.sources else ""
        src += f" and {len(g.sources) - 1:,} more" if len(g.sources) > 1 else ""
        name = f"**{md_text(g.integration)}** " if g.integration else ""
        line = f"- {name}{md_text(_label(c))}: {change} — {who(g.orgs, d.orgs, shielded=d.shielded(c, all_but(g.orgs, d.orgs) or []), show=md_code)}{src}\n"
        out.append(Block(line, "change"))
        n = len(g.orgs)
        if n > 3 and n != len(d.orgs) and all_but(g.orgs, d.orgs) is None:
            names = ", ".join(md_code(o) for o in g.orgs)
            text = f"\n  <details><summary>all {n:,}</summary>\n\n  {names}\n\n  </details>\n\n"
            out.append(Block(text, "list", names=len(out) - 1))
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
        out.append(
            Block(f"_Note: the base revision already had {len(d.base_findings)} finding(s)._\n\n", "note")
        )
    return out


def _group_json(g: Group, universe: list[str]) -> dict[str, object]:
    return {
        **{k: v for k, v in asdict(g.change).items() if k != "source"},
        "kind": g.change.what,
        "sources": g.sources,
        "locations": [_location(s) for s in g.sources],
        "count": len(g.orgs),
        "organizations": g.orgs,
        "all_but": all_but(g.orgs, universe),  # set when "all but these" is how it reads
    }


def _location(source: str | None) -> dict[str, object] | None:
    where = location(source)
    return where._asdict() if where else None


def _change_json(c: Change) -> dict[str, object]:
    """A change with its kind (diff.ChangeKind's values) and typed location next to ``source``."""
    return {**asdict(c), "kind": c.what, "location": _location(c.source)}


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
        "schema": [asdict(c) for c in d.schema],
        "created": [{"subject": c.subject, "values": list(c.lines)} for c in d.created],
        "groups": [_group_json(g, d.orgs) for g in groups(d)],
        "findings": {
            "head": [f._asdict() for f in d.head_findings],
            "base": [f._asdict() for f in d.base_findings],
        },
    }
    if by_org:
        doc["changes"] = {org: [_change_json(c) for c in changes] for org, changes in d.changes.items()}
    return to_json(doc) + "\n"
