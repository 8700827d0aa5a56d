"""The deploy manifest: each integration as Bifrost stores it (not the resolved per-org view).

Bifrost keeps a schema, integration defaults and per-org overrides separately (contract 1.2,
1.3), so `plan` and `apply` need them separately too. Shape (deterministic, sorted)::

    {"format": 1, "kind": "bifrost-gitops/deploy", "secrets": "revealed" | "redacted",
     "organizations": [{"name", "id"}],
     "integrations": [{"name", "id", "entity_id", "entity_id_name", "default_entity_id",
                       "list_entities_data_provider_id",
                       "config_schema": [{"key", "type", "required", "description", "options"}],
                       "defaults": {key: value},        # secrets revealed; null = remove live
                       "oauth": {"flow", "client_id", "client_secret", "authorization_url",
                                 "token_url", "scopes": [...], "audience"} | null,
                       "mappings": {org: {"organization_id", "entity_id", "entity_name",
                                          "config": {key: value}}}}]}

A key set to ``null`` in the repository (``defaults.config.x: null``) is carried as ``null``:
it asks for the live value to be removed (Bifrost deletes a row written as null).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from ..bundle import REDACTED
from ..catalog import Catalog, Parsed, oauth_of
from ..model import TOKEN_KEYS, Integration, Mapping
from ..resolve import SecretRef
from . import DeployError

FORMAT = 1
KIND = "bifrost-gitops/deploy"
FILE = "deploy.json"
LEDGER = "bifrost-gitops-state"

Reveal = Callable[[SecretRef], Any]


def _value(v: Any, reveal: Reveal | None) -> Any:
    if isinstance(v, SecretRef):
        return REDACTED if reveal is None else reveal(v)
    return v


def manifest(catalog: Catalog, reveal: Reveal | None) -> dict[str, Any]:
    """The deploy manifest of a checked repository (secrets via REVEAL, or redacted)."""
    orgs: list[dict[str, Any]] = sorted(
        ({"name": o.name, "id": o.id} for o, _, _ in catalog.orgs.values()), key=lambda o: str(o["name"])
    )
    org_ids = {str(o["name"]).lower(): o["id"] for o in orgs}
    by_integration: dict[str, list[tuple[str, Parsed[Mapping]]]] = {}
    for (integ_name, _org), p in catalog.mappings.items():
        by_integration.setdefault(integ_name, []).append((p.model.organization, p))
    out = []
    for name in sorted(catalog.integrations):
        ip = catalog.integrations[name]
        integ: Integration = ip.model
        secret_keys = {i.key for i in integ.config_schema if i.type == "secret"}
        defaults: dict[str, Any] = {}
        if integ.defaults is not None:
            defaults.update(integ.defaults.config)
            for key in integ.defaults.secrets:
                defaults[key] = _value(SecretRef(ip.doc.path, ("defaults", "secrets", key)), reveal)
        mappings: dict[str, Any] = {}
        for org, mp in sorted(by_integration.get(name, []), key=lambda t: t[0]):
            m: Mapping = mp.model
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
        out.append(
            {
                "name": integ.name,
                "id": integ.id,
                "entity_id": integ.entity_id,
                "entity_id_name": integ.entity_id_name,
                "default_entity_id": integ.default_entity_id,
                "list_entities_data_provider_id": integ.list_entities_data_provider_id,
                "config_schema": [
                    {
                        "key": i.key,
                        "type": i.type,
                        "required": i.required,
                        "description": i.description,
                        "options": list(i.options) if i.options is not None else None,
                    }
                    for i in integ.config_schema  # declared order: Bifrost keeps it as positions
                ],
                "defaults": {k: _norm(defaults[k]) for k in sorted(defaults)},
                "oauth": _oauth(catalog, ip, integ, reveal),
                "mappings": mappings,
            }
        )
    return {
        "format": FORMAT,
        "kind": KIND,
        "secrets": "redacted" if reveal is None else "revealed",
        "organizations": orgs,
        "integrations": out,
    }


def _norm(v: Any) -> Any:
    """ "" means "no value" in Bifrost (a delete), like null."""
    return None if v == "" else v


def _oauth(
    catalog: Catalog, ip: Parsed[Integration], integ: Integration, reveal: Reveal | None
) -> dict[str, Any] | None:
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


# --- reading ------------------------------------------------------------------------------


def missing_org_ids(m: dict[str, Any]) -> list[str]:
    """Declared organizations without a Bifrost UUID: plan and apply cannot match them (names are not unique)."""
    return sorted(o["name"] for o in m["organizations"] if not o["id"])


def is_bundle(path: str) -> bool:
    return os.path.isfile(os.path.join(path, FILE))


def read_bundle(path: str, keyring: Any = None) -> dict[str, Any]:
    """BUNDLE/deploy.json: sealed (decrypted with the runtime key), plain as is; redacted refused."""
    from .. import sops, storable

    file = os.path.join(path, FILE)
    try:
        with open(file, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DeployError(f"{file}: cannot read ({e.strerror})") from None
    try:
        data = sops.loads(raw, "json", file=file)
    except sops.SopsError as e:
        raise DeployError(str(e)) from None
    if "sops" in data:
        data = sops.decrypt_document(data, identities=keyring or sops.default_keyring(), file=file)
    if not isinstance(data, dict) or data.get("kind") != KIND or data.get("format") != FORMAT:
        raise DeployError(f"{file}: not a bifrost-gitops deploy manifest (format {FORMAT})")
    # a sealed value retagged type:bytes (the tag is outside the MAC) decrypts to bytes:
    # refused here, before plan compares it or apply sends anything
    unsendable = storable.unsendable(data)
    if unsendable:
        raise DeployError(f"{file}: {unsendable}: {storable.WHAT}; compile the bundle again")
    if data.get("secrets") == "redacted" or _index_mode(path) == "redact":
        raise DeployError(
            f"{path}: a redacted bundle holds no secret values, so what to deploy is unknown; "
            "compile with --secrets seal (or plain) for deploy jobs"
        )
    return data


def _index_mode(path: str) -> str | None:
    try:
        with open(os.path.join(path, "index.json"), encoding="utf-8") as f:
            index = json.load(f)
    except (OSError, ValueError):
        return None
    mode = index.get("secrets") if isinstance(index, dict) else None
    return mode if isinstance(mode, str) else None
