"""`explain`: one organization's view of one integration, value by value, with provenance.

No secret is shown: a sealed value, or a value of a secret-typed key left in clear under
``config:`` (finding C004), reads ``<secret>``. Names and values are escaped for the output.
"""

from __future__ import annotations

import json
from typing import TypedDict

from .bundleformat import MASK
from .catalog import Catalog
from .colour import Style, lines
from .errors import BifrostGitopsError
from .escape import to_json
from .nodes import Json
from .resolve import GLOBAL, Resolved, SecretRef, Source, SourceKind, Value, resolve
from .structure import suggest

SECRET = MASK  # how a secret shows in the explanation


class SourceReport(TypedDict):
    kind: SourceKind
    file: str | None
    line: int | None


class ConfigReport(TypedDict):
    key: str
    type: str
    required: bool
    value: Json  # SECRET for a secret
    set: bool
    source: SourceReport


class SecretReport(TypedDict):
    set: bool
    source: str | None  # file:line


class OAuthReport(TypedDict):
    provider: str
    connection_name: str
    client_id: str | None
    token_url: str | None
    token_url_template: str | None
    entity_id_filled: bool
    scopes: list[str]
    secrets: dict[str, SecretReport]
    source: str | None
    #: "own": the organization connects its own account (its mapping's oauth: own), never
    #: getting the integration's token; "shared": the integration's connection
    connection: str
    connection_source: str | None


class Report(TypedDict):
    """What ``explain --format json`` prints (and ``render_text`` lays out)."""

    organization: str
    integration: str
    mapped: bool
    entity_id: str | None
    entity_id_source: SourceReport
    entity_name: str | None
    config: list[ConfigReport]
    oauth: OAuthReport | None


class ExplainError(BifrostGitopsError):
    """Unknown organization, integration or key (exit 2)."""


def org_name(catalog: Catalog, org: str) -> str | None:
    """The declared organization ORG names: by name (any case), else by its Bifrost UUID (the
    ``id`` in organizations.yaml), as the runtime's scope does. None when there is none."""
    found = catalog.orgs.get(org.lower())
    if found is not None:
        return found[0].name
    wanted = org.strip().lower()
    for o, _, _ in catalog.orgs.values():
        if isinstance(o.id, str) and o.id.lower() == wanted:
            return o.name
    return None


def explain(catalog: Catalog, org: str, integration: str, key: str | None = None) -> Report:
    """A JSON-ready report; secret values are never included, only where they come from.

    ORG is an organization's name or its Bifrost UUID, or "global" (the defaults-only view).
    """
    name = None if org == GLOBAL else org_name(catalog, org)
    if org != GLOBAL and name is None:
        hint = suggest(org, [o.name for o, _, _ in catalog.orgs.values()])
        raise ExplainError(f"organization {org!r} is not declared" + (f" ({hint})" if hint else ""))
    if integration not in catalog.integrations:
        hint = suggest(integration, catalog.integrations)
        raise ExplainError(f"integration {integration!r} is not declared" + (f" ({hint})" if hint else ""))
    if name is not None and org.lower() not in catalog.orgs:
        org = name  # given by UUID: report it by its name
    r = resolve(catalog, name, integration)
    schema = {item.key: item for item in catalog.integrations[integration].model.config_schema}
    if key is not None and key not in schema:
        hint = suggest(key, schema)
        raise ExplainError(
            f"{key!r} is not in the config_schema of {integration!r}" + (f" ({hint})" if hint else "")
        )
    keys = [key] if key is not None else list(schema)
    config: list[ConfigReport] = []
    for k in keys:
        item = schema[k]
        value = r.config.get(k)
        config.append(
            {
                "key": k,
                "type": item.type,
                "required": item.required,
                "value": SECRET if item.type == "secret" and k in r.config else _show(value),
                "set": k in r.config,
                "source": _source(r, f"config.{k}"),
            }
        )
    report: Report = {
        "organization": org,
        "integration": integration,
        "mapped": r.mapped,
        "entity_id": r.entity_id,
        "entity_id_source": _source(r, "entity_id"),
        "entity_name": r.entity_name,
        "config": config,
        "oauth": _oauth(r),
    }
    return report


def _show(value: Value) -> Json:
    return SECRET if isinstance(value, SecretRef) else value


def _source(r: Resolved, name: str) -> SourceReport:
    s = r.sources.get(name)
    if s is None:
        return {"kind": "missing", "file": None, "line": None}
    return {"kind": s.kind, "file": s.file, "line": s.line or None}


def _oauth(r: Resolved) -> OAuthReport | None:
    o = r.oauth
    if o is None:
        return None
    return {
        "provider": o.provider or "(inline)",
        "connection_name": o.connection_name,
        "client_id": o.client_id,
        "token_url": o.token_url,
        "token_url_template": o.token_url_template,
        "entity_id_filled": o.token_url != o.token_url_template,
        "scopes": o.scopes,
        "secrets": {
            name: {"set": getattr(o, name) is not None, "source": _fmt(o.sources.get(name))}
            for name in ("client_secret", "access_token", "refresh_token", "expires_at")
        },
        "source": _fmt(o.sources.get("token_url")),
        "connection": o.connection,
        "connection_source": _fmt(o.sources.get("connection")),
    }


def _fmt(s: Source | None) -> str | None:
    return f"{s.file}:{s.line}" if s is not None and s.file else None


def render_json(report: Report) -> str:
    return to_json(report) + "\n"


def _where(src: SourceReport) -> str:
    if src["file"]:
        return f"{src['file']}:{src['line']}  {src['kind']}"
    return str(src["kind"])


def render_text(report: Report, colour: bool = False) -> str:
    """The terminal view; with COLOUR, the heading bold, a missing required value red and the
    unset ones dim. Names and values come from the repository: colour.lines escapes them."""
    rows = [
        (
            f"{report['organization']} / {report['integration']}"
            + ("" if report["mapped"] else "  (no mapping: integration defaults only)"),
            Style.BOLD,
        ),
        (
            f"  entity_id    {json.dumps(report['entity_id'])}    {_where(report['entity_id_source'])}",
            Style.NONE,
        ),
        (f"  entity_name  {json.dumps(report['entity_name'])}", Style.NONE),
        ("  config:", Style.NONE),
    ]
    width = max((len(c["key"]) for c in report["config"]), default=0)
    for c in report["config"]:
        value = c["value"] if c["value"] == SECRET else json.dumps(c["value"], ensure_ascii=False)
        style = Style.NONE
        if not c["set"]:
            value, style = ("(missing)", Style.RED) if c["required"] else ("(not set)", Style.DIM)
        rows.append((f"    {c['key']:<{width}}  {value}    {_where(c['source'])}", style))
    o = report["oauth"]
    if o is None:
        rows.append(("  oauth: none", Style.NONE))
    else:
        rows.append(
            (
                f"  oauth: provider {o['provider']} ({o['source']}), connection {o['connection_name']}",
                Style.NONE,
            )
        )
        filled = (
            "entity id filled in"
            if o["entity_id_filled"]
            else (
                "raw template: no entity id resolves"
                if "{entity_id}" in (o["token_url_template"] or "")
                else ""
            )
        )
        rows.append((f"    token_url  {o['token_url']}" + (f"  ({filled})" if filled else ""), Style.NONE))
        if o["connection"] == "own":
            rows.append(
                (
                    f"    connection  own: this organization's own account    {o['connection_source']}",
                    Style.NONE,
                )
            )
        for name, s in o["secrets"].items():
            if s["set"]:
                rows.append((f"    {name}  {SECRET}    {s['source']}", Style.NONE))
    return lines(rows, colour)
