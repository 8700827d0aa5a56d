"""Integration- and schema-level changes, read before any organization's: what a reviewer must
weigh once for the whole fleet (a key removed destroys values; an option dropped breaks orgs).

Each change says whether it is ``destructive`` (apply loses or breaks a value that exists in the
base) and why, in ``note``. Secrets (an OAuth client secret) are only ever "set" / "changed".
New organizations and integrations also get a ``Creation``: their resolved values, as
terraform's ``+ create`` shows them (secret values as "set").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, cast

from .catalog import Catalog, oauth_of
from .model import ConfigType, Integration, OAuthSettings, ProviderRef, SchemaItem
from .nodes import Json
from .resolve import Resolved, SecretRef, resolve

#: what a schema-level change is about (the JSON field ``change``)
SchemaChangeKind = Literal[
    "integration_added",
    "integration_removed",
    "key_added",
    "key_removed",
    "type",
    "required",
    "options",
    "description",
    "entity_id_name",
    "default_entity_id",
    "oauth_provider",
    "oauth_flow",
    "oauth_token_url",
    "oauth_scopes",
    "oauth_client_id",
    "oauth_client_secret",
]


@dataclass(frozen=True)
class SchemaChange:
    integration: str
    change: SchemaChangeKind
    key: str | None  # the config key, for key-level changes
    old_value: Json
    new_value: Json  # for a secret: null, and note says "set" / "changed"
    destructive: bool
    note: str


@dataclass(frozen=True)
class Creation:
    """A new organization's or integration's resolved values: ``lines`` are ``name = value``
    texts (secret values as "set"); ``subject`` is "organization NAME" or "integration NAME"."""

    subject: str
    lines: tuple[str, ...]


def _orgs(n: int) -> str:
    return f"{n:,} organization{'s' if n != 1 else ''}"


def _orgs_values(n: int) -> str:
    """``"1 organization's values"``, ``"3 organizations' values"``."""
    return f"{n:,} organization's values" if n == 1 else f"{n:,} organizations' values"


def _values(cat: Catalog, name: str, key: str) -> list[tuple[str, object]]:
    """(organization, value) of every base organization that has a value for KEY: its mapping's
    override or, when the integration has a default, every organization."""
    integ = cat.integrations[name].model
    defaults = integ.defaults
    default: object = None
    if defaults is not None:
        default = defaults.config.get(key, defaults.secrets.get(key))
    out: list[tuple[str, object]] = []
    for o, _, _ in sorted(cat.orgs.values(), key=lambda t: t[0].name):
        mp = cat.mappings.get((name, o.name.lower()))
        if mp is not None and (key in mp.model.config or key in mp.model.secrets):
            out.append((o.name, mp.model.config.get(key, mp.model.secrets.get(key))))
        elif default is not None:
            out.append((o.name, default))
    return out


def _fits(value: object, kind: ConfigType) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    return True  # json takes anything; secret values are ciphertext strings either way


def _key_changes(cat: Catalog, name: str, a: SchemaItem, b: SchemaItem) -> list[SchemaChange]:
    out: list[SchemaChange] = []
    key = a.key
    if a.type != b.type:
        bad = [o for o, v in _values(cat, name, key) if not _fits(v, b.type) or "secret" in (a.type, b.type)]
        note = f"{_orgs_values(len(bad))} no longer fit {b.type}" if bad else "every existing value fits"
        out.append(SchemaChange(name, "type", key, a.type, b.type, bool(bad), note))
    if a.required != b.required:
        note = "organizations without a value must set one" if b.required else "a value is now optional"
        out.append(SchemaChange(name, "required", key, a.required, b.required, False, note))
    if a.options != b.options:
        dropped = set(a.options or []) - set(b.options or []) if b.options is not None else set()
        using = [o for o, v in _values(cat, name, key) if v in dropped]
        note = f"{_orgs(len(using))} {'uses' if len(using) == 1 else 'use'} a removed option" if using else ""
        out.append(
            SchemaChange(name, "options", key, a.options, b.options, bool(using), note)  # type: ignore[arg-type]
        )
    if a.description != b.description:
        out.append(SchemaChange(name, "description", key, a.description, b.description, False, ""))
    return out


def _schema(cat: Catalog, name: str, a: Integration, b: Integration) -> list[SchemaChange]:
    old = {i.key: i for i in a.config_schema}
    new = {i.key: i for i in b.config_schema}
    out: list[SchemaChange] = []
    for key in new.keys() - old.keys():
        out.append(SchemaChange(name, "key_added", key, None, new[key].type, False, ""))
    for key in old.keys() - new.keys():
        n = len(_values(cat, name, key))
        note = f"destroys {_orgs_values(n)}; apply needs --allow-key-removal"
        out.append(SchemaChange(name, "key_removed", key, old[key].type, None, n > 0, note))
    for key in old.keys() & new.keys():
        out += _key_changes(cat, name, old[key], new[key])
    return sorted(out, key=lambda c: (c.key or "", c.change))


def _oauth(base: Catalog, head: Catalog, name: str, a: Integration, b: Integration) -> list[SchemaChange]:
    out: list[SchemaChange] = []
    pa = a.oauth.provider if isinstance(a.oauth, ProviderRef) else None
    pb = b.oauth.provider if isinstance(b.oauth, ProviderRef) else None
    if pa != pb:
        out.append(SchemaChange(name, "oauth_provider", None, pa, pb, False, "linked OAuth provider"))
    sa, sb = oauth_of(base, a), oauth_of(head, b)
    fields: list[tuple[SchemaChangeKind, str]] = [
        ("oauth_flow", "flow"),
        ("oauth_token_url", "token_url"),
        ("oauth_scopes", "scopes"),
        ("oauth_client_id", "client_id"),
    ]

    def value(settings: OAuthSettings | None, attr: str) -> Json:
        return cast(Json, getattr(settings, attr)) if settings is not None else None

    changed = [(k, value(sa, attr), value(sb, attr)) for k, attr in fields]
    out += [SchemaChange(name, k, None, x, y, False, "") for k, x, y in changed if x != y]
    xa = sa.secrets.client_secret if sa and sa.secrets else None
    xb = sb.secrets.client_secret if sb and sb.secrets else None
    if xa != xb:
        said = "set" if xa is None else "removed" if xb is None else "changed"
        out.append(
            SchemaChange(name, "oauth_client_secret", None, None, None, xb is None, f"client secret {said}")
        )
    return out


def schema_changes(base: Catalog, head: Catalog) -> list[SchemaChange]:
    """Every integration- and schema-level change, integration by integration (the Bifrost id
    is left to the security section)."""
    out: list[SchemaChange] = []
    for name in sorted(base.integrations.keys() | head.integrations.keys()):
        if name not in base.integrations:
            out.append(SchemaChange(name, "integration_added", None, None, None, False, ""))
            continue
        if name not in head.integrations:
            n = sum(1 for i, _ in base.mappings if i == name)
            note = f"its {n:,} mapping{' is' if n == 1 else 's are'} deleted on apply --prune"
            out.append(SchemaChange(name, "integration_removed", None, None, None, True, note))
            continue
        a, b = base.integrations[name].model, head.integrations[name].model
        if a.description != b.description:
            out.append(SchemaChange(name, "description", None, a.description, b.description, False, ""))
        for attr in ("entity_id_name", "default_entity_id"):
            x, y = getattr(a, attr), getattr(b, attr)
            if x != y:
                out.append(SchemaChange(name, attr, None, x, y, False, ""))
        out += _schema(base, name, a, b)
        out += _oauth(base, head, name, a, b)
    return out


def _show(value: object) -> str:
    return "set" if isinstance(value, SecretRef) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _resolved_lines(r: Resolved, prefix: str = "") -> list[str]:
    out = [f"{prefix}entity_id = {_show(r.entity_id)}"] if r.entity_id is not None else []
    for key, value in r.config.items():
        shown = "set" if key in r.config_secret_keys and value is not None else _show(value)
        out.append(f"{prefix}config.{key} = {shown}")
    if r.oauth is not None:
        out.append(f"{prefix}oauth = {_show(r.oauth.connection_name)}")
    return out


def creations(base: Catalog, head: Catalog) -> list[Creation]:
    """New integrations (their defaults) and new organizations (every integration they get)."""
    out: list[Creation] = []
    for name in sorted(head.integrations.keys() - base.integrations.keys()):
        out.append(Creation(f"integration {name}", tuple(_resolved_lines(resolve(head, None, name)))))
    for key in sorted(head.orgs.keys() - base.orgs.keys()):
        org = head.orgs[key][0].name
        lines: list[str] = []
        for name in sorted(head.integrations):
            lines += [f"{name}: " + ("mapped" if (name, key) in head.mappings else "defaults only")]
            lines += _resolved_lines(resolve(head, org, name), "  ")
        out.append(Creation(f"organization {org}", tuple(lines)))
    return out
