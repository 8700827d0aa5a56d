"""What each organization's workflows get: Bifrost's resolution, with where every value came from.

Resolution needs no keys: a secret is a SecretRef (file + path inside it) until the bundle
stage opens the file. Rules (docs/bifrost-api.md#resolution):
- org with a mapping: defaults overlaid key by key by the org's overrides (a null or empty
  override falls back to the default, as Bifrost deletes such rows); entity_id = the mapping's,
  else default_entity_id (the integration-level entity_id is not consulted);
- org without a mapping, or scope "global": defaults only, entity_name null, entity_id =
  default_entity_id, else the integration-level entity_id;
- oauth: the provider's fields; `{entity_id}` in the token URL filled when an entity id
  resolves, else left as the raw template; org token material in a mapping replaces the
  provider's; a mapping with ``oauth: own`` (the organization's own connection) never gets the
  provider's token material, only its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, TypeAlias

from .bundleformat import GLOBAL_SCOPE, REDACTED
from .catalog import Catalog, Parsed, oauth_of
from .loader import Document, Path
from .model import TOKEN_KEYS, ConnectionKind, Integration, Mapping, ProviderRef
from .nodes import Json

GLOBAL = GLOBAL_SCOPE  # the defaults-only view's scope name


class SecretRef(NamedTuple):
    """A secret still sealed in the repository: the file and the path to its value."""

    file: str
    path: Path


#: How a SecretRef becomes its clear value (compile's SecretOpener); None writes REDACTED instead.
Reveal = Callable[[SecretRef], Json]
#: a resolved config value: plain JSON, or where a secret's clear value sits
Value: TypeAlias = "Json | SecretRef"
#: where a resolved value comes from
SourceKind = Literal["override", "default", "mapping", "integration", "provider", "missing"]


def revealed(v: Value, reveal: Reveal | None) -> Json:
    """V, or the clear value (or the REDACTED marker) when V is a SecretRef."""
    if isinstance(v, SecretRef):
        return REDACTED if reveal is None else reveal(v)
    return v


class Source(NamedTuple):
    """Where a resolved value comes from."""

    kind: SourceKind
    file: str | None = None
    line: int = 0

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file else ""
        return f"{where} ({self.kind})" if where else self.kind


@dataclass
class ResolvedOAuth:
    connection_name: str
    provider: str | None  # the OAuthProvider document's name, None for an inline block
    client_id: str | None
    client_secret: SecretRef | None
    authorization_url: str | None
    token_url: str | None
    token_url_template: str | None
    scopes: list[str]
    access_token: SecretRef | None
    refresh_token: SecretRef | None
    expires_at: SecretRef | None
    #: whose token the organization uses: the integration's ("shared") or its own connection
    connection: ConnectionKind = "shared"
    sources: dict[str, Source] = field(default_factory=dict)


@dataclass
class Resolved:
    """One (organization, integration): the fields of Bifrost's IntegrationData, plus sources."""

    integration: str
    integration_id: str | None
    organization: str | None  # None for the global scope
    mapped: bool
    entity_id: str | None
    entity_name: str | None
    config: dict[str, Value]  # SecretRef for secrets
    config_secret_keys: list[str]
    oauth: ResolvedOAuth | None
    sources: dict[str, Source] = field(default_factory=dict)  # "entity_id", "config.<key>", ...


def _src(kind: SourceKind, doc: Document, path: Path) -> Source:
    return Source(kind, doc.path, doc.pos(path)[0])


def _src_file(kind: SourceKind, doc: Document, path: Path) -> Source:
    """The source without its line: reading a line unpacks the file's positions (the bundle,
    which shows no sources, resolves every file of a repository)."""
    return Source(kind, doc.path)


_Src = Callable[[SourceKind, Document, Path], Source]


def _present(value: object) -> bool:
    return value not in (None, "")


def resolve(catalog: Catalog, org: str | None, integration: str, *, lines: bool = True) -> Resolved:
    """Resolve INTEGRATION for ORG (a declared org name; None = the global scope); LINES False:
    the sources name their files only (cheaper, for a caller that shows no sources)."""
    src = _src if lines else _src_file
    ip = catalog.integrations[integration]
    integ = ip.model
    mp = catalog.mappings.get((integration, org.lower())) if org is not None else None
    config: dict[str, Value] = {}
    sources: dict[str, Source] = {}
    secret_keys = [item.key for item in integ.config_schema if item.type == "secret"]

    layers: list[
        tuple[SourceKind, Parsed[Integration | Mapping], Path, dict[str, Json], dict[str, Json]]
    ] = []
    if integ.defaults is not None:
        layers.append(("default", ip, ("defaults",), integ.defaults.config, integ.defaults.secrets))
    if mp is not None:
        m = mp.model
        own_secrets = {k: v for k, v in m.secrets.items() if k not in TOKEN_KEYS or k in secret_keys}
        layers.append(("override", mp, (), m.config, own_secrets))
    for kind, p, at, plain, secret in layers:
        for key, value in plain.items():
            if _present(value):
                config[key] = value
                sources[f"config.{key}"] = src(kind, p.doc, (*at, "config", key))
        for key, value in secret.items():
            if _present(value):
                config[key] = SecretRef(p.doc.path, (*at, "secrets", key))
                sources[f"config.{key}"] = src(kind, p.doc, (*at, "secrets", key))
    for item in integ.config_schema:
        sources.setdefault(f"config.{item.key}", Source("missing"))
    # keep the schema's key order: a stable, meaningful order for explain and the bundle
    order = {item.key: i for i, item in enumerate(integ.config_schema)}
    config = dict(sorted(config.items(), key=lambda kv: order.get(kv[0], len(order))))

    if mp is not None:
        m = mp.model
        if m.entity_id:
            entity_id: str | None = m.entity_id
            sources["entity_id"] = src("mapping", mp.doc, ("entity_id",))
        else:
            entity_id = integ.default_entity_id or None
            sources["entity_id"] = (
                src("integration", ip.doc, ("default_entity_id",)) if entity_id else Source("missing")
            )
        entity_name = m.entity_name
    else:
        entity_id, entity_name = integ.default_entity_id or None, None
        if entity_id:
            sources["entity_id"] = src("integration", ip.doc, ("default_entity_id",))
        elif integ.entity_id:
            entity_id = integ.entity_id
            sources["entity_id"] = src("integration", ip.doc, ("entity_id",))
        else:
            sources["entity_id"] = Source("missing")

    return Resolved(
        integration=integ.name,
        integration_id=integ.id,
        organization=org,
        mapped=mp is not None,
        entity_id=entity_id,
        entity_name=entity_name,
        config=config,
        config_secret_keys=secret_keys,
        oauth=_oauth(catalog, ip, mp, entity_id, src),
        sources=sources,
    )


def _oauth(
    catalog: Catalog, ip: Parsed[Integration], mp: Parsed[Mapping] | None, entity_id: str | None, src: _Src
) -> ResolvedOAuth | None:
    integ = ip.model
    settings = oauth_of(catalog, integ)
    if settings is None:
        return None
    at: Path = ()
    if isinstance(integ.oauth, ProviderRef):
        doc, provider = catalog.providers[integ.oauth.provider].doc, integ.oauth.provider
    else:
        doc, at, provider = ip.doc, ("oauth",), None
    sources = {
        "token_url": src("provider", doc, (*at, "token_url")),
        "client_id": src("provider", doc, (*at, "client_id")),
    }
    template = settings.token_url
    token_url = template.replace("{entity_id}", entity_id) if entity_id else template
    secrets = settings.secrets
    own = mp is not None and mp.model.oauth == "own"
    material: dict[str, SecretRef] = {}
    # an organization with its own connection never gets the integration's token, only its own
    for name in ("client_secret",) if own else ("client_secret", *TOKEN_KEYS):
        if secrets is not None and _present(getattr(secrets, name)):
            material[name] = SecretRef(doc.path, (*at, "secrets", name))
            sources[name] = src("provider", doc, (*at, "secrets", name))
    if mp is not None:
        schema_keys = {item.key for item in integ.config_schema}
        for name in TOKEN_KEYS:
            if name not in schema_keys and _present(mp.model.secrets.get(name)):
                material[name] = SecretRef(mp.doc.path, ("secrets", name))
                sources[name] = src("override", mp.doc, ("secrets", name))
    if own and mp is not None:
        sources["connection"] = src("mapping", mp.doc, ("oauth",))
    return ResolvedOAuth(
        # Bifrost names a REST-created provider after its integration (docs/bifrost-api.md#oauth-connections)
        connection_name=integ.name,
        provider=provider,
        client_id=settings.client_id,
        client_secret=material.get("client_secret"),
        authorization_url=settings.authorization_url,
        token_url=token_url,
        token_url_template=template,
        scopes=list(settings.scopes),
        access_token=material.get("access_token"),
        refresh_token=material.get("refresh_token"),
        expires_at=material.get("expires_at"),
        connection="own" if own else "shared",
        sources=sources,
    )


def resolve_org(catalog: Catalog, org: str | None, *, lines: bool = True) -> dict[str, Resolved]:
    """Every integration as ORG sees it, by integration name (sorted)."""
    return {name: resolve(catalog, org, name, lines=lines) for name in sorted(catalog.integrations)}


def organizations(catalog: Catalog) -> list[tuple[str, str | None, str | None]]:
    """(name, Bifrost UUID, display name) of every declared organization, sorted by name."""
    return sorted((o.name, o.id, o.display_name) for o, _, _ in catalog.orgs.values())
