"""What a change does to each organization: two resolved states compared, org by org.

Secrets are compared, never shown: with keys, by their decrypted values ("changed" or not);
without, by ciphertext ("ciphertext changed", which also covers a re-encryption). A value of a
secret-typed key put under ``config:`` by mistake is compared the same way and shown as
``<secret>`` too.

Security-relevant changes (security.py: organization identity, bundle recipients, .sops.yaml
rules) travel with the diff; diffreport.py renders it all, escaped for each output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple, cast

from . import sops
from .bundle import SecretOpener
from .bundleformat import MASK
from .catalog import Parsed
from .diagnostics import Diagnostic
from .model import AnyDocument, ProviderRef
from .nodes import Json
from .repo import Result
from .resolve import Resolved, SecretRef, Source, Value, organizations, resolve, resolve_org
from .schemadiff import Creation, SchemaChange, creations, schema_changes
from .security import Alert

#: what a change is about: an organization or integration added/removed, a mapping made or
#: dropped, one of the resolved fields, a config key, an OAuth field
ChangeKind = Literal["organization", "integration", "mapping", "entity_id", "entity_name", "config", "oauth"]
_IDENTITY: Final[tuple[Literal["entity_id", "entity_name"], ...]] = ("entity_id", "entity_name")

SecretCompare = Callable[[SecretRef, SecretRef], str | None]  # None: same; else what to say


@dataclass(frozen=True)
class Change:
    integration: str | None
    what: ChangeKind
    key: str | None
    old: str | None  # display text, never a secret value
    new: str | None
    source: str | None  # file:line in head (or base, for removals)
    # For scripts (--format json): the values as typed in YAML (null: unset), never a secret's:
    # when ``secret`` both are null and old/new say what changed.
    old_value: Json = field(default=None, compare=False)
    new_value: Json = field(default=None, compare=False)
    secret: bool = False


ORG_ROW = "(organizations added/removed)"  # the per-integration row of org-level changes
IDENTITY_ROW = "(organization id or display name)"  # the row of organization identity changes
SECRET = MASK  # how a secret value shows in a diff


@dataclass
class Diff:
    base: str
    head: str
    orgs_total: int  # organizations in base or head (a removed one is affected too)
    changes: dict[str, list[Change]] = field(default_factory=dict)  # org -> changes
    head_findings: list[Diagnostic] = field(default_factory=list)
    base_findings: list[Diagnostic] = field(default_factory=list)
    security: list[Alert] = field(default_factory=list)  # shown first, counted by --exit-code
    orgs: list[str] = field(default_factory=list)  # every organization in base or head, sorted
    schema: list[SchemaChange] = field(default_factory=list)  # integration/schema level, shown next
    created: list[Creation] = field(default_factory=list)  # new orgs/integrations, values in full
    #: (integration, config key) -> the head organizations whose mapping overrides that key
    overrides: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def shielded(self, c: Change, left_out: list[str]) -> bool:
        """Whether every organization LEFT_OUT of change C kept its value because its mapping
        overrides the key (a default changed, "all but contoso, which overrides it")."""
        if c.what != "config" or c.integration is None or c.key is None:
            return False
        return set(left_out) <= self.overrides.get((c.integration, c.key), set())

    @property
    def identity_changed(self) -> list[str]:
        """Organizations whose Bifrost UUID or display name changed."""
        return list(dict.fromkeys(a.subject for a in self.security if a.kind == "organization"))

    @property
    def affected_orgs(self) -> list[str]:
        """Organizations whose workflows change, or whose identity does (they get another's)."""
        return list(dict.fromkeys([*self.changes, *self.identity_changed]))

    @property
    def affected(self) -> dict[str, int]:
        """Organizations affected, per integration (ORG_ROW: the org itself was added or removed;
        IDENTITY_ROW: its id or display name changed)."""
        count: dict[str, int] = {}
        for changes in self.changes.values():
            for name in {c.integration or ORG_ROW for c in changes}:
                count[name] = count.get(name, 0) + 1
        if self.identity_changed:
            count[IDENTITY_ROW] = len(self.identity_changed)
        return dict(sorted(count.items()))

    def orgs_with(self, new: str) -> list[str]:
        """The organizations that were ``"added"`` or ``"removed"`` (NEW)."""
        return [
            org
            for org, changes in self.changes.items()
            if any(c.what == "organization" and c.integration is None and c.new == new for c in changes)
        ]

    def headline(self) -> str:
        """``"5 of 5 organizations affected (1 removed)"``, after the number of security-relevant
        changes when there are any."""
        total = self.orgs_total
        text = f"{len(self.affected_orgs)} of {total} organization{'s' if total != 1 else ''} affected"
        extra = [f"{len(self.orgs_with(w))} {w}" for w in ("added", "removed") if self.orgs_with(w)]
        text += f" ({', '.join(extra)})" if extra else ""
        n = len(self.security)
        return f"{n} security-relevant change{'s' if n != 1 else ''}; {text}" if n else text

    @property
    def changed(self) -> bool:
        """Whether anything differs (what ``--exit-code`` reports)."""
        return bool(self.changes or self.security or self.schema)


class Location(NamedTuple):
    """Where a change is, for scripts: a file and line of the head, or of the base (a removal)."""

    path: str
    line: int
    side: Literal["head", "base"]


def location(source: str | None) -> Location | None:
    """The typed form of a Change's ``source`` (``"file:line"`` or ``"file:line in base"``)."""
    if not source:
        return None
    side: Literal["head", "base"] = "base" if source.endswith(" in base") else "head"
    path, _, line = source.removesuffix(" in base").rpartition(":")
    return Location(path, int(line), side) if path and line.isdigit() else None


LIMIT = 80  # characters of a displayed value


def _text(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _cut(text: str, start: int, limit: int = LIMIT) -> str:
    if len(text) <= limit:
        return text
    head = "…" if start > 0 else ""
    body = text[start : start + limit - 1 - len(head)]
    return head + body + ("…" if start + len(body) < len(text) else "")


def _show_pair(a: object, b: object, null: bool = False) -> tuple[str | None, str | None]:
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
    docs = tuple({p.path: p for p in r.catalog.documents()} for r in (base, head))  # loaded when read
    usable = keyring is not None and bool(keyring.identities)

    def ciphertext(side: int, ref: SecretRef) -> object:
        node: object = docs[side][ref.file].doc.data
        for part in ref.path:  # the path resolve found in this file: it leads to a value
            node = node[part]  # type: ignore[index]
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


def diff(
    base: Result,
    head: Result,
    base_label: str,
    head_label: str,
    compare: SecretCompare,
    security: list[Alert] | None = None,
) -> Diff:
    base_orgs = {name: name for name, _, _ in organizations(base.catalog)}
    head_orgs = {name: name for name, _, _ in organizations(head.catalog)}
    out = Diff(
        base_label,
        head_label,
        len(set(base_orgs) | set(head_orgs)),
        head_findings=head.diagnostics,
        base_findings=base.diagnostics,
        security=security or [],
        orgs=sorted(set(base_orgs) | set(head_orgs)),
        schema=schema_changes(base.catalog, head.catalog),
        created=creations(base.catalog, head.catalog),
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
    changed = {c.integration for changes in out.changes.values() for c in changes if c.what == "config"}
    out.overrides = _overrides(head, changed)
    return out


def _overrides(r: Result, integrations: set[str | None]) -> dict[tuple[str, str], set[str]]:
    """Who overrides each key of INTEGRATIONS (those with a config change: only their mappings
    are read)."""
    out: dict[tuple[str, str], set[str]] = {}
    names = {lower: o.name for lower, (o, _, _) in r.catalog.orgs.items()}
    for (name, lower), mp in r.catalog.mappings.items():
        if name not in integrations:
            continue
        for key in [*mp.model.config, *mp.model.secrets]:
            out.setdefault((name, key), set()).add(names.get(lower, mp.model.organization))
    return out


def _same_integrations(base: Result, head: Result) -> set[str]:
    """Integrations whose own document and OAuth provider document are identical on both sides."""
    out = set()
    for name, hp in head.catalog.integrations.items():
        bp = base.catalog.integrations.get(name)
        if bp is None or not _same(bp, hp):
            continue
        ref = hp.model.oauth
        if isinstance(ref, ProviderRef):
            a, b = base.catalog.providers.get(ref.provider), head.catalog.providers.get(ref.provider)
            if a is None or b is None or not _same(a, b):
                continue
        out.add(name)
    return out


def _same_mapping(base: Result, head: Result, org: str, name: str) -> bool:
    a = base.catalog.mappings.get((name, org.lower()))
    b = head.catalog.mappings.get((name, org.lower()))
    return (a is None and b is None) or (a is not None and b is not None and _same(a, b))


def _same(a: Parsed[AnyDocument], b: Parsed[AnyDocument]) -> bool:
    """The same document on both sides: by their files' digests when both have one (the same
    path and bytes: neither is loaded), else by their data."""
    if a.digest is not None and a.digest == b.digest:
        return True
    return bool(a.doc.data == b.doc.data)


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
                old.mapped,
                new.mapped,
            )
        )
    for attr in _IDENTITY:
        a, b = getattr(old, attr), getattr(new, attr)
        if a != b:
            shown = _show_pair(a, b, null=True)
            out.append(Change(name, attr, None, *shown, _where(new.sources.get(attr)), a, b))
    for key in list(dict.fromkeys([*old.config, *new.config])):
        a, b = old.config.get(key), new.config.get(key)
        src = (
            _where(new.sources.get(f"config.{key}"))
            if key in new.config
            else _in_base(_where(old.sources.get(f"config.{key}")))
        )
        secret = key in old.config_secret_keys or key in new.config_secret_keys
        change = _value_change(a, b, compare, secret)
        if change is not None:
            out.append(_valued(name, "config", key, change, src, a, b, secret))
    out += _oauth(name, old, new, compare)
    return out


#: OAuth fields whose values are secrets even when a file holds them in clear.
OAUTH_SECRETS = frozenset({"client_secret", "access_token", "refresh_token"})


def _valued(
    name: str,
    what: ChangeKind,
    key: str,
    shown: tuple[str | None, str | None],
    src: str | None,
    a: object,
    b: object,
    secret: bool,
) -> Change:
    """A value's change, with old_value/new_value for scripts: a secret's values never leave.
    Anything that is not a SecretRef is a resolved value, so JSON."""
    if secret or isinstance(a, SecretRef) or isinstance(b, SecretRef):
        return Change(name, what, key, *shown, src, None, None, True)
    return Change(name, what, key, *shown, src, cast(Json, a), cast(Json, b), False)


def _value_change(
    a: Value, b: Value, compare: SecretCompare, secret: bool = False
) -> tuple[str | None, str | None] | None:
    """(old, new) display texts when the value differs, else None. Secrets never shown, nor
    any value of a SECRET-typed key, even one left in clear under config:."""
    sa, sb = isinstance(a, SecretRef), isinstance(b, SecretRef)
    if isinstance(a, SecretRef) and isinstance(b, SecretRef):
        said = compare(a, b)
        return None if said is None else (SECRET, f"{SECRET} {said}")
    if not (sa or sb) and a == b and type(a) is type(b):
        return None
    if secret and not (sa or sb) and a is not None and b is not None:
        return SECRET, f"{SECRET} changed"
    if sa or sb or secret:
        return (
            SECRET if sa or (secret and a is not None) else _show_pair(a, None)[0],
            SECRET if sb or (secret and b is not None) else _show_pair(b, None)[0],
        )
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
        "connection",
    ):
        va, vb = getattr(a, attr), getattr(b, attr)
        change = _value_change(va, vb, compare)
        if change is not None:
            src = _where(b.sources.get(attr)) or _where(b.sources.get("token_url"))
            out.append(_valued(name, "oauth", attr, change, src, va, vb, attr in OAUTH_SECRETS))
    return out
