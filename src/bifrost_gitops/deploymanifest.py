"""Building the deploy manifest: each integration as Bifrost stores it (not the resolved per-org view).

Compile writes it into the bundle (``deploy.json``) and ``plan``/``apply`` build it from a
repository in memory; deploy/manifest.py reads it back from a bundle.

Bifrost keeps a schema, integration defaults and per-org overrides separately
(docs/bifrost-api.md#config-values), so `plan` and `apply` need them separately too. Shape (deterministic, sorted)::

    {"format": 1, "kind": "bifrost-gitops/deploy", "secrets": "revealed" | "redacted",
     "organizations": [{"name", "id"}],
     "integrations": [{"name", "id", "entity_id", "entity_id_name", "default_entity_id",
                       "list_entities_data_provider_id",
                       "config_schema": [{"key", "type", "required", "description", "options"}],
                       "defaults": {key: value},        # secrets revealed; null = remove live
                       "oauth": {"flow", "client_id", "client_secret", "authorization_url",
                                 "token_url", "scopes": [...], "audience"} | null,
                       "mappings": {org: {"organization_id", "entity_id", "entity_name",
                                          "config": {key: value}, "oauth"?: "own"}}}]}

A key set to ``null`` in the repository (``defaults.config.x: null``) is carried as ``null``:
it asks for the live value to be removed (Bifrost deletes a row written as null).
"""

from __future__ import annotations

from collections.abc import Callable

from .bundleformat import DEPLOY_FORMAT, DEPLOY_KIND
from .catalog import Catalog, Parsed, oauth_of
from .deploy.spec import (
    IntegrationSpec,
    Json,
    Manifest,
    MappingSpec,
    OAuthSpec,
    OrganizationSpec,
    schema_item,
)
from .jsontext import indented
from .model import TOKEN_KEYS, Integration, Mapping
from .resolve import Reveal, SecretRef
from .resolve import revealed as _value


def manifest(catalog: Catalog, reveal: Reveal | None) -> Manifest:
    """The deploy manifest of a checked repository (secrets via REVEAL, or redacted)."""
    orgs = organizations(catalog)
    org_ids = {o["name"].lower(): o["id"] for o in orgs}
    by_integration = mappings_by_integration(catalog)
    return {
        **_head(orgs, reveal),
        "integrations": [
            integration(catalog, name, reveal, org_ids, by_integration.get(name, []))
            for name in sorted(catalog.integrations)
        ],
    }


def _head(orgs: list[OrganizationSpec], reveal: Reveal | None) -> Manifest:
    return {
        "format": DEPLOY_FORMAT,
        "kind": DEPLOY_KIND,
        "secrets": "redacted" if reveal is None else "revealed",
        "organizations": orgs,
        "integrations": [],
    }


def organizations(catalog: Catalog) -> list[OrganizationSpec]:
    """The manifest's organizations: name and Bifrost UUID, by name."""
    return sorted(
        ({"name": o.name, "id": o.id} for o, _, _ in catalog.orgs.values()), key=lambda o: o["name"]
    )


def mappings_by_integration(catalog: Catalog) -> dict[str, list[tuple[str, Parsed[Mapping]]]]:
    """Each integration's mappings as (the organization as the mapping names it, the mapping)."""
    by_integration: dict[str, list[tuple[str, Parsed[Mapping]]]] = {}
    for (integ_name, org), p in catalog.mappings.items():
        by_integration.setdefault(integ_name, []).append((_org_named(p, org), p))
    return by_integration


def _org_named(p: Parsed[Mapping], lower: str) -> str:
    """The organization as mapping P writes it (its model is made only when it is not LOWER)."""
    written = p.doc.data.get("organization") if isinstance(p.doc.data, dict) else None
    return written if isinstance(written, str) and written.lower() == lower else p.model.organization


#: where one integration's entry sits in deploy.json's text (inside the top-level list)
ENTRY_PAD = "    "
#: the text just before the first entry, and between two entries (compile finds them by these)
LIST_OPEN = '\n  "integrations": [\n' + ENTRY_PAD
BETWEEN = ",\n" + ENTRY_PAD
_NO_INTEGRATIONS = '\n  "integrations": []'


def entry_text(spec: IntegrationSpec) -> str:
    """One integration's entry as it reads inside deploy.json (jsontext's canonical form,
    indented for its place; TypeError for anything but plain JSON, as jsontext.indented)."""
    return indented(spec).replace("\n", "\n" + ENTRY_PAD)  # strings never hold a raw newline


def text(catalog: Catalog, reveal: Reveal | None, entry: Callable[[str, Callable[[], str]], str]) -> str:
    """The manifest's canonical text (``jsontext.indented(manifest(...))``), each integration's
    entry from ENTRY(name, render): compile hands back the entry it wrote last time when that
    integration's inputs did not change, so only what changed is built (and its secrets opened)."""
    orgs = organizations(catalog)
    org_ids = {o["name"].lower(): o["id"] for o in orgs}
    by_integration: dict[str, list[tuple[str, Parsed[Mapping]]]] = {}  # grouped once, if needed

    def render(name: str) -> Callable[[], str]:
        def build() -> str:
            if not by_integration:
                for (integ_name, org), p in catalog.mappings.items():
                    by_integration.setdefault(integ_name, []).append((org, p))
            mapped = [(_org_named(p, org), p) for org, p in by_integration.get(name, [])]
            return entry_text(integration(catalog, name, reveal, org_ids, mapped))

        return build

    entries = [entry(name, render(name)) for name in sorted(catalog.integrations)]
    head = indented(_head(orgs, reveal))
    if not entries:
        return head
    return head.replace(_NO_INTEGRATIONS, LIST_OPEN + BETWEEN.join(entries) + "\n  ]", 1)


def integration(
    catalog: Catalog,
    name: str,
    reveal: Reveal | None,
    org_ids: dict[str, str | None],
    mapped: list[tuple[str, Parsed[Mapping]]],
) -> IntegrationSpec:
    """One integration's manifest entry; MAPPED: its mappings (mappings_by_integration)."""
    ip = catalog.integrations[name]
    integ = ip.model
    secret_keys = {i.key for i in integ.config_schema if i.type == "secret"}
    defaults: dict[str, Json] = {}
    if integ.defaults is not None:
        defaults.update(integ.defaults.config)
        for key in integ.defaults.secrets:
            defaults[key] = _value(SecretRef(ip.doc.path, ("defaults", "secrets", key)), reveal)
    mappings: dict[str, MappingSpec] = {}
    for org, mp in sorted(mapped, key=lambda t: t[0]):
        m = mp.model
        config = dict(m.config)
        for key in m.secrets:
            if key in TOKEN_KEYS and key not in secret_keys:
                continue  # org token material: runtime bundle only, not deployable over REST
            config[key] = _value(SecretRef(mp.doc.path, ("secrets", key)), reveal)
        mappings[org] = {
            "organization_id": org_ids.get(org.lower()),
            "entity_id": m.entity_id,
            "entity_name": m.entity_name,
            "config": {k: _norm(config[k]) for k in sorted(config)},
        }
        if m.oauth == "own":
            mappings[org]["oauth"] = "own"
    return {
        "name": integ.name,
        "id": integ.id,
        "entity_id": integ.entity_id,
        "entity_id_name": integ.entity_id_name,
        "default_entity_id": integ.default_entity_id,
        "list_entities_data_provider_id": integ.list_entities_data_provider_id,
        # declared order: Bifrost keeps it as positions
        "config_schema": [schema_item(i) for i in integ.config_schema],
        "defaults": {k: _norm(defaults[k]) for k in sorted(defaults)},
        "oauth": _oauth(catalog, ip, integ, reveal),
        "mappings": mappings,
    }


def _norm(v: Json) -> Json:
    """ "" means "no value" in Bifrost (a delete), like null."""
    return None if v == "" else v


def _oauth(
    catalog: Catalog, ip: Parsed[Integration], integ: Integration, reveal: Reveal | None
) -> OAuthSpec | None:
    settings = oauth_of(catalog, integ)
    if settings is None:
        return None
    secret = None
    if settings.secrets is not None and settings.secrets.client_secret not in (None, ""):
        if integ.oauth is not None and hasattr(integ.oauth, "provider"):
            doc = catalog.providers[integ.oauth.provider].doc
            ref = SecretRef(doc.path, ("secrets", "client_secret"))
        else:
            ref = SecretRef(ip.doc.path, ("oauth", "secrets", "client_secret"))
        secret = _value(ref, reveal)
    return {
        "flow": settings.flow,
        "client_id": settings.client_id,
        "client_secret": secret,
        "authorization_url": settings.authorization_url,
        "token_url": settings.token_url,
        "scopes": list(settings.scopes),
        "audience": settings.audience,
    }
