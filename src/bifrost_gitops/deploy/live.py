"""The live state of a Bifrost instance, read with a bounded number of requests.

``GET /api/organizations`` and ``GET /api/integrations`` (lists), the ownership ledger's
detail, then per managed integration ``GET /api/integrations/{id}`` (schema, defaults, every
mapping with its overrides, the OAuth summary) and, for those with a provider,
``GET /api/oauth/connections/{id}`` (the audience). Never one request per value or per org:
for N managed integrations, at most 3 + 2N requests, run ``concurrency`` at a time.

Every reply is checked against its shape (:mod:`.replies`) as it is read: what plan sees is
typed, and a reply it cannot use stops the read with :class:`~.replies.BadReply`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from . import replies
from .client import Client
from .manifest import LEDGER
from .replies import BadReply, Connection, Detail, Integration
from .spec import IntegrationSpec, Ledger


@dataclass
class Live:
    orgs: dict[str, str]  # organization id -> name (active organizations)
    integrations: dict[str, Integration]  # name -> list entry
    details: dict[str, Detail]  # id -> detail (managed ones only)
    connections: dict[str, Connection]  # integration id -> OAuth connection
    ledger_id: str | None = None
    ledger: Ledger = field(default_factory=lambda: Ledger(integrations={}))
    notes: list[str] = field(default_factory=list)

    def by_id(self, iid: str) -> Integration | None:
        return next((i for i in self.integrations.values() if i.id == iid), None)


def parse_ledger(defaults: dict[str, object] | None) -> tuple[Ledger, str | None]:
    """The ledger's ``managed`` default: {"integrations": {id: name}, "oauth_client_secret_sha256": {...}}."""
    if defaults is None:
        return Ledger(integrations={}), None
    raw = defaults.get("managed")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = None
    if not isinstance(raw, dict) or not isinstance(raw.get("integrations", {}), dict):
        return Ledger(
            integrations={}
        ), f"the ownership ledger {LEDGER!r} is unreadable: nothing counts as managed"
    out = Ledger(integrations={str(k): str(v) for k, v in raw.get("integrations", {}).items()})
    hashes = raw.get("oauth_client_secret_sha256")
    if isinstance(hashes, dict):
        out["oauth_client_secret_sha256"] = {str(k): str(v) for k, v in hashes.items()}
    return out, None


def read_detail(client: Client, iid: str) -> Detail:
    """``GET /api/integrations/{iid}``, checked (and checked to be that integration's)."""
    path = f"/api/integrations/{iid}"
    detail = replies.get(client, path, replies.DETAIL)
    if detail.id.lower() != iid.lower():
        raise BadReply(f"GET {path}: id: the reply is about another integration")
    return detail


def read_connection(client: Client, iid: str) -> Connection:
    return replies.get(client, f"/api/oauth/connections/{iid}", replies.CONNECTION)


def read(client: Client, wanted: list[IntegrationSpec], *, include_ledger_managed: bool) -> Live:
    """Live state for the manifest's integrations WANTED (and, for prune, the ledger's)."""
    orgs = {o.id: o.name for o in replies.get(client, "/api/organizations", replies.ORGS)}
    listed = {i.name: i for i in replies.get(client, "/api/integrations", replies.INTEGRATIONS).items}
    live = Live(orgs, listed, {}, {})
    ledger_entry = listed.get(LEDGER)
    if ledger_entry is not None:
        live.ledger_id = ledger_entry.id
        live.ledger, note = parse_ledger(read_detail(client, ledger_entry.id).config_defaults or {})
        if note:
            live.notes.append(note)
    ids: list[str] = []
    by_id = {i.id: i for i in listed.values()}
    for w in wanted:
        match = match_integration(w, listed, by_id)
        if match is not None:
            ids.append(match.id)
    if include_ledger_managed:
        ids += [i for i in live.ledger.get("integrations", {}) if i in by_id]
    ids = [i for i in dict.fromkeys(ids) if i != live.ledger_id]
    for iid, detail in zip(ids, client.map(lambda i: read_detail(client, i), ids), strict=True):
        live.details[iid] = detail
    with_oauth = [i for i in ids if live.details[i].oauth_config is not None]
    conns = client.map(lambda i: read_connection(client, i), with_oauth)
    live.connections = dict(zip(with_oauth, conns, strict=True))
    return live


def match_integration(
    wanted: IntegrationSpec, by_name: dict[str, Integration], by_id: dict[str, Integration]
) -> Integration | None:
    """The live integration a manifest entry stands for: by its declared id, else by exact name."""
    iid = wanted.get("id")
    if iid and iid in by_id:
        return by_id[iid]
    return by_name.get(wanted["name"])
