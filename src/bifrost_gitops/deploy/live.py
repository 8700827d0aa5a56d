"""The live state of a Bifrost instance, read with a bounded number of requests.

``GET /api/organizations`` and ``GET /api/integrations`` (lists), the ownership ledger's
detail, then per managed integration ``GET /api/integrations/{id}`` (schema, defaults, every
mapping with its overrides, the OAuth summary) and, for those with a provider,
``GET /api/oauth/connections/{id}`` (the audience). Never one request per value or per org:
for N managed integrations, at most 3 + 2N requests, run ``concurrency`` at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .client import Client
from .manifest import LEDGER


@dataclass
class Live:
    orgs: dict[str, str]  # organization id -> name (active organizations)
    integrations: dict[str, dict[str, Any]]  # name -> list entry (IntegrationResponse)
    details: dict[str, dict[str, Any]]  # id -> IntegrationDetailResponse (managed ones only)
    connections: dict[str, dict[str, Any]]  # integration id -> OAuthConnectionDetail
    ledger_id: str | None = None
    ledger: dict[str, Any] = field(default_factory=dict)  # {"integrations": {id: name}, ...}
    notes: list[str] = field(default_factory=list)

    def by_id(self, iid: str) -> dict[str, Any] | None:
        return next((i for i in self.integrations.values() if i.get("id") == iid), None)


def _items(data: Any) -> list[dict[str, Any]]:
    items = data.get("items") if isinstance(data, dict) else data
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def parse_ledger(detail: dict[str, Any] | None) -> tuple[dict[str, Any], str | None]:
    """The ledger's ``managed`` default: {"integrations": {id: name}, "oauth_client_secret_sha256": {...}}."""
    if detail is None:
        return {"integrations": {}}, None
    raw = (detail.get("config_defaults") or {}).get("managed")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = None
    if not isinstance(raw, dict) or not isinstance(raw.get("integrations", {}), dict):
        return {
            "integrations": {}
        }, f"the ownership ledger {LEDGER!r} is unreadable: nothing counts as managed"
    out: dict[str, Any] = {"integrations": {str(k): str(v) for k, v in raw.get("integrations", {}).items()}}
    hashes = raw.get("oauth_client_secret_sha256")
    if isinstance(hashes, dict):
        out["oauth_client_secret_sha256"] = {str(k): str(v) for k, v in hashes.items()}
    return out, None


def read(client: Client, wanted: list[dict[str, Any]], *, include_ledger_managed: bool) -> Live:
    """Live state for the manifest's integrations WANTED (and, for prune, the ledger's)."""
    orgs = {o["id"]: o.get("name", "") for o in _items(client.get("/api/organizations")) if "id" in o}
    listed = {i["name"]: i for i in _items(client.get("/api/integrations")) if "name" in i}
    live = Live(orgs, listed, {}, {})
    ledger_entry = listed.get(LEDGER)
    if ledger_entry is not None:
        live.ledger_id = ledger_entry["id"]
        live.ledger, note = parse_ledger(client.get(f"/api/integrations/{ledger_entry['id']}"))
        if note:
            live.notes.append(note)
    ids: list[str] = []
    by_id = {i["id"]: i for i in listed.values() if "id" in i}
    for w in wanted:
        match = match_integration(w, listed, by_id)
        if match is not None:
            ids.append(match["id"])
    if include_ledger_managed:
        ids += [i for i in live.ledger.get("integrations", {}) if i in by_id]
    ids = [i for i in dict.fromkeys(ids) if i != live.ledger_id]
    for iid, detail in zip(ids, client.map(lambda i: client.get(f"/api/integrations/{i}"), ids), strict=True):
        live.details[iid] = detail
    with_oauth = [i for i in ids if live.details[i].get("oauth_config")]
    conns = client.map(lambda i: client.get(f"/api/oauth/connections/{i}"), with_oauth)
    live.connections = dict(zip(with_oauth, conns, strict=True))
    return live


def match_integration(
    wanted: dict[str, Any], by_name: dict[str, dict[str, Any]], by_id: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """The live integration a manifest entry stands for: by its declared id, else by exact name."""
    if wanted.get("id") and wanted["id"] in by_id:
        return by_id[wanted["id"]]
    return by_name.get(wanted["name"])
