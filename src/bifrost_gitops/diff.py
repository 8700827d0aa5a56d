"""What a change does to each organization: two resolved states compared, org by org.

Secrets are compared, never shown: with keys, by their decrypted values ("changed" or not);
without, by ciphertext ("ciphertext changed", which also covers a re-encryption).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from . import sops
from .bundle import SecretOpener
from .diagnostics import Diagnostic
from .model import ProviderRef
from .repo import Result
from .resolve import Resolved, SecretRef, Source, organizations, resolve, resolve_org

SecretCompare = Callable[[SecretRef, SecretRef], str | None]  # None: same; else what to say


@dataclass(frozen=True)
class Change:
    integration: str | None
    what: str  # "organization", "integration", "mapping", "entity_id", "entity_name", "config", "oauth"
    key: str | None
    old: str | None  # display text, never a secret value
    new: str | None
    source: str | None  # file:line in head (or base, for removals)


ORG_ROW = "(organizations added/removed)"  # the per-integration row of org-level changes


@dataclass
class Diff:
    base: str
    head: str
    orgs_total: int  # organizations in base or head (a removed one is affected too)
    changes: dict[str, list[Change]] = field(default_factory=dict)  # org -> changes
    head_findings: list[Diagnostic] = field(default_factory=list)
    base_findings: list[Diagnostic] = field(default_factory=list)

    @property
    def affected(self) -> dict[str, int]:
        """Organizations affected, per integration (ORG_ROW: the org itself was added or removed)."""
        count: dict[str, int] = {}
        for changes in self.changes.values():
            for name in {c.integration or ORG_ROW for c in changes}:
                count[name] = count.get(name, 0) + 1
        return dict(sorted(count.items()))

    def orgs_with(self, new: str) -> list[str]:
        """The organizations that were ``"added"`` or ``"removed"`` (NEW)."""
        return [
            org
            for org, changes in self.changes.items()
            if any(c.what == "organization" and c.integration is None and c.new == new for c in changes)
        ]

    def headline(self) -> str:
        """``"5 of 5 organizations affected (1 removed)"``."""
        total = self.orgs_total
        text = f"{len(self.changes)} of {total} organization{'s' if total != 1 else ''} affected"
        extra = [f"{len(self.orgs_with(w))} {w}" for w in ("added", "removed") if self.orgs_with(w)]
        return text + (f" ({', '.join(extra)})" if extra else "")


LIMIT = 80  # characters of a displayed value


def _text(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _cut(text: str, start: int, limit: int = LIMIT) -> str:
    if len(text) <= limit:
        return text
    head = "…" if start > 0 else ""
    body = text[start : start + limit - 1 - len(head)]
    return head + body + ("…" if start + len(body) < len(text) else "")


def _show_pair(a: Any, b: Any, null: bool = False) -> tuple[str | None, str | None]:
    """Both values cut the same way, around their first difference when that lies past the cut
    (two long URLs differing only at the end must not print as the same text). None stays None
    (unset) unless ``null``, which shows it as JSON null."""
    ta = None if a is None and not null else _text(a)
    tb = None if b is None and not null else _text(b)
    start = 0
    if ta is not None and tb is not None and max(len(ta), len(tb)) > LIMIT:
        first = next(
            (i for i, (x, y) in enumerate(zip(ta, tb, strict=False)) if x != y), min(len(ta), len(tb))
        )
        if first >= LIMIT - 12:
            start = first - LIMIT // 2
    return (None if ta is None else _cut(ta, start), None if tb is None else _cut(tb, start))


def _in_base(where: str | None) -> str | None:
    """A removed value has no line in head: say where it was, and that this is the base."""
    return f"{where} in base" if where else None


def _where(s: Source | None) -> str | None:
    return f"{s.file}:{s.line}" if s is not None and s.file else None


def secret_comparer(
    base: Result,
    head: Result,
    base_raw: Callable[[str], bytes],
    head_raw: Callable[[str], bytes],
    keyring: sops.Keyring | None,
) -> SecretCompare:
    """Compare two secret references: by value when the keys open both files, else by ciphertext."""
    openers = (
        SecretOpener(base.root, base.catalog, keyring, base_raw),
        SecretOpener(head.root, head.catalog, keyring, head_raw),
    )
    docs = ({p.doc.path: p.doc for p in _parsed(base)}, {p.doc.path: p.doc for p in _parsed(head)})
    usable = keyring is not None and bool(keyring.identities)

    def ciphertext(side: int, ref: SecretRef) -> Any:
        node: Any = docs[side][ref.file].data
        for part in ref.path:
            node = node[part]
        return node

    def compare(old: SecretRef, new: SecretRef) -> str | None:
        if ciphertext(0, old) == ciphertext(1, new):
            return None
        if usable:
            try:
                same = openers[0](old) == openers[1](new)
            except sops.SopsError:
                pass
            else:
                return None if same else "changed"
        return "ciphertext changed (re-encrypted or rotated)"

    return compare


def _parsed(r: Result) -> list[Any]:
    c = r.catalog
    items = [c.project] if c.project else []
    items += [p for _, p, _ in c.orgs.values()]
    return [*items, *c.providers.values(), *c.integrations.values(), *c.mappings.values()]


def diff(base: Result, head: Result, base_label: str, head_label: str, compare: SecretCompare) -> Diff:
    base_orgs = {name: name for name, _, _ in organizations(base.catalog)}
    head_orgs = {name: name for name, _, _ in organizations(head.catalog)}
    out = Diff(
        base_label,
        head_label,
        len(set(base_orgs) | set(head_orgs)),
        head_findings=head.diagnostics,
        base_findings=base.diagnostics,
    )
    base_global = resolve_org(base.catalog, None)
    head_global = resolve_org(head.catalog, None)
    base_mapped, head_mapped = _mapped_by_org(base), _mapped_by_org(head)
    same = _same_integrations(base, head)
    unmapped: dict[str, list[Change]] = {}  # the defaults-only comparison, made once per integration
    for org in sorted(set(base_orgs) | set(head_orgs)):
        if org not in head_orgs:
            out.changes[org] = [Change(None, "organization", None, "declared", "removed", None)]
            continue
        added = org not in base_orgs
        changes = [Change(None, "organization", None, None, "added", None)] if added else []
        old_names = set() if added else set(base_global)
        olds, news = base_mapped.get(org.lower(), set()), head_mapped.get(org.lower(), set())
        for name in sorted(old_names | set(head_global)):
            in_old, in_new = name in old_names, name in head_global
            if in_old and in_new and name in same and _same_mapping(base, head, org, name):
                continue  # every input of this resolution is unchanged
            if in_old and in_new and name not in olds and name not in news:
                if name not in unmapped:
                    unmapped[name] = _integration(name, base_global[name], head_global[name], compare)
                changes += unmapped[name]
                continue
            old = (
                (resolve(base.catalog, org, name) if name in olds else base_global[name]) if in_old else None
            )
            new = (
                (resolve(head.catalog, org, name) if name in news else head_global[name]) if in_new else None
            )
            changes += _integration(name, old, new, compare)
        if changes:
            out.changes[org] = changes
    return out


def _same_integrations(base: Result, head: Result) -> set[str]:
    """Integrations whose own document and OAuth provider document are identical on both sides."""
    out = set()
    for name, hp in head.catalog.integrations.items():
        bp = base.catalog.integrations.get(name)
        if bp is None or bp.doc.data != hp.doc.data:
            continue
        ref = hp.model.oauth
        if isinstance(ref, ProviderRef):
            a, b = base.catalog.providers.get(ref.provider), head.catalog.providers.get(ref.provider)
            if a is None or b is None or a.doc.data != b.doc.data:
                continue
        out.add(name)
    return out


def _same_mapping(base: Result, head: Result, org: str, name: str) -> bool:
    a = base.catalog.mappings.get((name, org.lower()))
    b = head.catalog.mappings.get((name, org.lower()))
    return (a is None and b is None) or (a is not None and b is not None and a.doc.data == b.doc.data)


def _mapped_by_org(r: Result) -> dict[str, set[str]]:
    """Integration names mapped, per lower-cased org: built once, not scanned once per org."""
    out: dict[str, set[str]] = {}
    for name, o in r.catalog.mappings:
        out.setdefault(o, set()).add(name)
    return out


def _integration(
    name: str, old: Resolved | None, new: Resolved | None, compare: SecretCompare
) -> list[Change]:
    if old is None and new is not None:
        return [Change(name, "integration", None, None, "added", None)]
    if new is None:
        return [Change(name, "integration", None, "present", "removed", None)]
    assert old is not None
    out: list[Change] = []
    if old.mapped != new.mapped:
        src = (
            _where(new.sources.get("entity_id"))
            if new.mapped
            else _in_base(_where(old.sources.get("entity_id")))
        )
        out.append(
            Change(
                name,
                "mapping",
                None,
                "mapped" if old.mapped else "defaults only",
                "mapped" if new.mapped else "defaults only",
                src,
            )
        )
    for attr in ("entity_id", "entity_name"):
        a, b = getattr(old, attr), getattr(new, attr)
        if a != b:
            out.append(Change(name, attr, None, *_show_pair(a, b, null=True), _where(new.sources.get(attr))))
    for key in list(dict.fromkeys([*old.config, *new.config])):
        a, b = old.config.get(key), new.config.get(key)
        src = (
            _where(new.sources.get(f"config.{key}"))
            if key in new.config
            else _in_base(_where(old.sources.get(f"config.{key}")))
        )
        change = _value_change(a, b, compare)
        if change is not None:
            out.append(Change(name, "config", key, change[0], change[1], src))
    out += _oauth(name, old, new, compare)
    return out


def _value_change(a: Any, b: Any, compare: SecretCompare) -> tuple[str | None, str | None] | None:
    """(old, new) display texts when the value differs, else None. Secrets never shown."""
    sa, sb = isinstance(a, SecretRef), isinstance(b, SecretRef)
    if sa and sb:
        said = compare(a, b)
        return None if said is None else ("<secret>", f"<secret> {said}")
    if sa or sb:
        return ("<secret>" if sa else _show_pair(a, None)[0], "<secret>" if sb else _show_pair(b, None)[0])
    if a == b and type(a) is type(b):
        return None
    return _show_pair(a, b)


def _oauth(name: str, old: Resolved, new: Resolved, compare: SecretCompare) -> list[Change]:
    a, b = old.oauth, new.oauth
    if a is None and b is None:
        return []
    if a is None or b is None:
        return [
            Change(
                name,
                "oauth",
                None,
                "none" if a is None else a.connection_name,
                "none" if b is None else b.connection_name,
                None,
            )
        ]
    out = []
    for attr in (
        "connection_name",
        "client_id",
        "authorization_url",
        "token_url",
        "scopes",
        "client_secret",
        "access_token",
        "refresh_token",
        "expires_at",
    ):
        change = _value_change(getattr(a, attr), getattr(b, attr), compare)
        if change is not None:
            src = _where(b.sources.get(attr)) or _where(b.sources.get("token_url"))
            out.append(Change(name, "oauth", attr, change[0], change[1], src))
    return out


# --- rendering -----------------------------------------------------------------------------


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


def summary_lines(d: Diff) -> list[str]:
    lines = [f"{d.headline()} ({d.base} -> {d.head})"]
    for name, count in d.affected.items():
        lines.append(f"  {name}: {count} org{'s' if count != 1 else ''}")
    return lines


def render_text(d: Diff) -> str:
    lines = summary_lines(d)
    for org, changes in d.changes.items():
        lines.append("")
        lines.append(org)
        current = object()
        for c in changes:
            if c.integration != current and c.integration is not None:
                lines.append(f"  {c.integration}")
                current = c.integration
            indent = "    " if c.integration else "  "
            src = f"    ({c.source})" if c.source else ""
            lines.append(f"{indent}{_label(c)}: {_arrow(c)}{src}")
    lines += _findings_text(d)
    return "\n".join(lines) + "\n"


def _findings_text(d: Diff) -> list[str]:
    lines = []
    if d.head_findings:
        lines += ["", f"findings in {d.head} (fix before merging):"]
        lines += [f"  {f.location()}: {f.code} {f.message}" for f in d.head_findings]
    if d.base_findings:
        lines += ["", f"note: {d.base} already had {len(d.base_findings)} finding(s)"]
        lines += [f"  {f.location()}: {f.code} {f.message}" for f in d.base_findings]
    return lines


def _md(text: str | None) -> str:
    return "" if text is None else "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def _md_values(c: Change) -> tuple[str, str]:
    """The old and new cells: an unset or removed value says so, as the text output does."""
    if c.what in ("organization", "integration"):
        return _md(c.old), _md(c.new)
    old = "(unset)" if c.old is None else _md(c.old)
    new = "(removed)" if c.new is None else _md(c.new)
    return old, new


def render_markdown(d: Diff) -> str:
    """A pull-request comment: summary table first, then one collapsible section per org."""
    n = len(d.changes)
    out = [
        f"### bifrost-gitops diff: {d.headline()}",
        "",
        f"`{d.base}` → `{d.head}`",
        "",
    ]
    if d.affected:
        out += ["| integration | organizations affected |", "|---|---:|"]
        out += [f"| {name} | {count} |" for name, count in d.affected.items()]
        out.append("")
    collapse = n > 3 or sum(len(c) for c in d.changes.values()) > 15
    for org, changes in d.changes.items():
        body = ["| integration | change | old | new | source |", "|---|---|---|---|---|"]
        for c in changes:
            old, new = _md_values(c)
            body.append(f"| {c.integration or ''} | {_label(c)} | {old} | {new} | {_md(c.source)} |")
        if collapse:
            out += [
                f"<details><summary><b>{org}</b>: {len(changes)} change"
                f"{'s' if len(changes) != 1 else ''}</summary>",
                "",
                *body,
                "",
                "</details>",
                "",
            ]
        else:
            out += [f"#### {org}", "", *body, ""]
    if d.head_findings:
        out += [f"**{len(d.head_findings)} finding(s) in the head revision:**", ""]
        out += [f"- `{f.location()}` {f.code} {f.message}" for f in d.head_findings]
        out.append("")
    if d.base_findings:
        out += [f"_Note: the base revision already had {len(d.base_findings)} finding(s)._", ""]
    return "\n".join(out)


def render_json(d: Diff) -> str:
    doc = {
        "base": d.base,
        "head": d.head,
        "organizations": d.orgs_total,
        "affected": len(d.changes),
        "per_integration": d.affected,
        "changes": {org: [asdict(c) for c in changes] for org, changes in d.changes.items()},
        "findings": {
            "head": [f._asdict() for f in d.head_findings],
            "base": [f._asdict() for f in d.base_findings],
        },
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
