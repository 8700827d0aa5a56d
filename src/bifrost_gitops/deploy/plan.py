"""Desired (deploy manifest) vs live (Bifrost) -> ordered operations, in Bifrost's safe order.

Per integration: create it, or PUT its changed scalar fields; the schema in its own PUT,
before any value; the defaults PUT with changed keys only and explicit nulls for removals
(values whose key changed type, or is new to the schema while values exist, are re-sent); per
organization the mapping POST (then a PUT nulling leftover overrides the create's answer shows)
/ PUT (entity fields and the override diff: undeclared keys nulled) / delete (overrides nulled
first); the OAuth provider POST / PUT
and, for client_credentials, a token refresh. Last, the ownership ledger.
Why this order: docs/bifrost-api.md#apply-order.

Secrets never enter a Change: they show as set / changed / removed, decided by comparing
sha256 hashes. Request bodies (which hold them) are kept off repr and off every rendering.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .live import Live, match_integration
from .manifest import LEDGER
from .replies import Connection, Detail, Integration, Mapping, OAuthSummary, SchemaItem

#: What `import` writes for an OAuth client secret it cannot read back: "keep the live one".
KEEP_LIVE_SECRET = "bifrost-gitops:keep-live-client-secret"
LEDGER_SCHEMA = [{"key": "managed", "type": "json", "required": False, "description": None, "options": None}]


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def secret_digest(integration_id: str, secret: Any) -> str:
    """What the ledger records for an OAuth client secret that was sent (salted with the id)."""
    material = f"bifrost-gitops oauth client_secret\0{integration_id}\0".encode()
    return hashlib.sha256(material + json.dumps(secret, ensure_ascii=False).encode()).hexdigest()


def same(a: Any, b: Any) -> bool:
    """JSON equality (true is not 1, "5" is not 5)."""
    return digest(a) == digest(b)


def normalise_scopes(scopes: Any) -> list[str]:
    """Scopes go in comma-separated and come out space-joined: one list for both.

    docs/bifrost-api.md#oauth-scopes"""
    if scopes is None:
        return []
    if isinstance(scopes, str):
        scopes = scopes.replace(",", " ").split()
    return [s.strip() for s in scopes if isinstance(s, str) and s.strip()]


@dataclass
class Change:
    field: str
    action: str  # add | change | remove | set | rotate | keep | clear
    old: Any = None
    new: Any = None
    secret: bool = False

    def text(self) -> str:
        sign = {
            "add": "+",
            "change": "~",
            "remove": "-",
            "set": "+",
            "rotate": "~",
            "keep": "=",
            "clear": "-",
        }[self.action]
        if self.action == "clear":
            return f"{sign} {self.field}: {self.new}"
        if self.secret:
            word = {"add": "set", "change": "changed", "remove": "removed"}.get(self.action, self.action)
            return f"{sign} {self.field}: {word} (secret)"
        if self.action == "add":
            return f"{sign} {self.field}: {show(self.new)}"
        if self.action == "change":
            return f"{sign} {self.field}: {show(self.old)} -> {show(self.new)}"
        if self.action == "remove":
            return f"{sign} {self.field}: removed (was {show(self.old)})"
        return f"{sign} {self.field}: {self.action}"

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"field": self.field, "action": self.action, "secret": self.secret}
        if not self.secret:
            d["old"], d["new"] = self.old, self.new
        return d


def show(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass
class Op:
    action: str  # create | update | delete | refresh | record
    resource: str  # integration | schema | defaults | mapping | oauth | ledger
    address: str  # "HaloPSA", "HaloPSA/contoso"
    integration: str
    method: str
    path: str  # "{iid}" stands for the integration id (known once it exists)
    body: Any = field(default=None, repr=False)
    changes: list[Change] = field(default_factory=list)
    deps: list[int] = field(default_factory=list)  # indexes of ops that must succeed first
    destructive: bool = False
    group: str = ""  # ops of one group run in order; groups of one stage run concurrently
    stage: int = 0
    #: secret OAuth client secret sent by this op (its hash goes into the ledger); never shown
    sent_secret: Any = field(default=None, repr=False)
    bookkeeping: bool = False  # the ledger: not a change the user declared
    #: a mapping create: the override keys the repository declares for that organization; any
    #: other key in the create's answer is a leftover of an earlier mapping and is nulled right
    #: after, in the same apply (docs/bifrost-api.md#mapping-overrides)
    keep_keys: frozenset[str] | None = None
    #: of those leftovers, the keys whose value may be shown (typed, and not secret)
    public_keys: frozenset[str] = frozenset()

    def title(self) -> str:
        sign = {"create": "+", "update": "~", "delete": "-", "refresh": ">", "record": "~"}[self.action]
        what = {"refresh": "refresh oauth token", "record": "record ownership in"}.get(
            self.action, f"{self.action} {self.resource}"
        )
        if self.action in ("refresh", "record"):
            return f"{sign} {what} {self.address}"
        return f"{sign} {what} {self.address}"

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "resource": self.resource,
            "address": self.address,
            "method": self.method,
            "path": self.path,
            "destructive": self.destructive,
            "changes": [c.as_json() for c in self.changes],
        }


@dataclass
class Plan:
    ops: list[Op]
    drift: list[str]
    blocked: list[str]  # why apply must refuse (a schema key removal without --allow-key-removal)
    errors: list[str]  # the plan cannot be made (unknown organization, missing client secret)
    read_requests: int = 0
    ids: dict[str, str] = field(default_factory=dict)  # integration name -> live id
    ledger: dict[str, Any] = field(default_factory=dict)  # live ledger content
    ledger_id: str | None = None
    managed_names: list[str] = field(default_factory=list)
    retiring: dict[str, str] = field(default_factory=dict)  # id -> name, retired by this apply

    @property
    def changes(self) -> list[Op]:
        return [o for o in self.ops if not o.bookkeeping]

    def counts(self) -> dict[str, int]:
        c = {"create": 0, "update": 0, "delete": 0, "refresh": 0}
        for o in self.changes:
            c[o.action] = c.get(o.action, 0) + 1
        return c


@dataclass
class Options:
    prune: bool = False
    allow_key_removal: bool = False
    rotate_oauth_secrets: bool = False


# --- building ------------------------------------------------------------------------------


def make_plan(desired: dict[str, Any], live: Live, opts: Options, read_requests: int = 0) -> Plan:
    plan = Plan([], list(live.notes), [], [], read_requests, ledger=live.ledger, ledger_id=live.ledger_id)
    desired = _lower_org_ids(desired)
    live_orgs = {str(k).lower(): v for k, v in live.orgs.items()}
    by_id = {i.id: i for i in live.integrations.values()}
    declared_orgs = {o["id"]: o["name"] for o in desired["organizations"] if o["id"]}
    unknown = sorted(f"{name} ({oid})" for oid, name in declared_orgs.items() if oid not in live_orgs)
    if unknown:
        plan.errors.append("organizations not found in Bifrost (or not active): " + ", ".join(unknown))
    managed = live.ledger.get("integrations", {})
    matched_ids: set[str] = set()
    for want in desired["integrations"]:
        if want["name"] == LEDGER:
            plan.errors.append(
                f"integration name {LEDGER!r} is reserved for bifrost-gitops's ownership ledger"
            )
            continue
        have = match_integration(want, live.integrations, by_id)
        if have is not None:
            matched_ids.add(have.id)
            plan.ids[want["name"]] = have.id
            if want.get("id") and want["id"] != have.id:
                plan.drift.append(
                    f"integration {want['name']}: the repository says id {want['id']}, Bifrost has {have.id}"
                )
        detail = live.details.get(have.id) if have else None
        _integration(plan, want, have, detail, live, opts, declared_orgs)
        plan.managed_names.append(want["name"])
    # live integrations the repository does not declare
    for name, entry in sorted(live.integrations.items()):
        iid = entry.id
        if name == LEDGER or iid in matched_ids:
            continue
        if iid in managed:
            if opts.prune and iid in live.details:
                _retire(plan, name, iid, live.details[iid], live)
            else:
                plan.drift.append(
                    f"integration {name}: managed by bifrost-gitops but no longer in the repository "
                    "(apply --prune retires it)"
                )
        else:
            plan.drift.append(f"integration {name}: exists in Bifrost but is not managed here (left alone)")
    _ledger(plan, desired, live)
    return plan


def _org_key(oid: Any) -> Any:
    """Organization UUIDs compare case-insensitively (the repository may spell them upper-case)."""
    return oid.lower() if isinstance(oid, str) else oid


def _lower_org_ids(desired: dict[str, Any]) -> dict[str, Any]:
    """DESIRED with every organization UUID in Bifrost's spelling (lower-case hex)."""
    integrations = []
    for integ in desired["integrations"]:
        mappings = {
            org: {**mp, "organization_id": _org_key(mp.get("organization_id"))}
            for org, mp in (integ.get("mappings") or {}).items()
        }
        integrations.append({**integ, "mappings": mappings})
    organizations = [{**o, "id": _org_key(o.get("id"))} for o in desired["organizations"]]
    return {**desired, "organizations": organizations, "integrations": integrations}


def _add(plan: Plan, op: Op) -> int:
    plan.ops.append(op)
    return len(plan.ops) - 1


def _put_integration(
    plan: Plan, name: str, body: dict[str, Any], changes: list[Change], deps: list[int] | None = None
) -> int:
    """A PUT of an integration's scalar fields (partial: only what changed)."""
    path = "/api/integrations/{iid}"
    return _add(
        plan,
        Op("update", "integration", name, name, "PUT", path, body, changes, list(deps or []), group=name),
    )


def _schema_items(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [
        {
            "key": i.get("key"),
            "type": i.get("type"),
            "required": bool(i.get("required")),
            "description": i.get("description"),
            "options": list(i["options"]) if i.get("options") is not None else None,
        }
        for i in items or []
    ]


def _live_schema(items: list[SchemaItem] | None) -> list[dict[str, Any]]:
    """The live schema in the manifest's form, so the two compare item by item."""
    return [i.as_dict() for i in items or []]


def _blank(v: Any) -> bool:
    return v in (None, "")


def _integration(
    plan: Plan,
    want: dict[str, Any],
    have: Integration | None,
    detail: Detail | None,
    live: Live,
    opts: Options,
    declared_orgs: dict[str, str],
) -> None:
    name = want["name"]
    head: list[int] = []  # the ops every later op of this integration waits for
    want_schema = _schema_items(want["config_schema"])
    want_types = {i["key"]: i["type"] for i in want_schema}
    if have is None:
        body: dict[str, Any] = {"name": name, "config_schema": want_schema}
        changes = [Change(f"schema.{i['key']}", "add", None, i["type"]) for i in want_schema]
        for f in ("entity_id", "entity_id_name", "default_entity_id"):
            if not _blank(want[f]):
                body[f] = want[f]
                changes.append(Change(f, "add", None, want[f]))
        head.append(
            _add(
                plan,
                Op(
                    "create",
                    "integration",
                    name,
                    name,
                    "POST",
                    "/api/integrations",
                    body,
                    changes,
                    group=name,
                ),
            )
        )
        if want["list_entities_data_provider_id"]:  # create ignores it (4.3)
            b = {"list_entities_data_provider_id": want["list_entities_data_provider_id"]}
            c = [Change("list_entities_data_provider_id", "add", None, b["list_entities_data_provider_id"])]
            head.append(_put_integration(plan, name, b, c, deps=head))
        live_schema: list[dict[str, Any]] = []
        live_defaults: dict[str, Any] = {}
        live_mappings: list[Mapping] = []
        oauth_live: OAuthSummary | None = None
    else:
        assert detail is not None
        body, changes = {}, []
        for f in ("entity_id", "entity_id_name", "default_entity_id", "list_entities_data_provider_id"):
            new, old = want[f], getattr(detail, f)
            if (_blank(new) and _blank(old)) or new == old:
                continue
            if _blank(new) and f in ("entity_id", "list_entities_data_provider_id"):
                plan.drift.append(
                    f"integration {name}: {f} is set in Bifrost and cannot be cleared over the API"
                )
                continue
            body[f] = "" if new is None else new
            changes.append(Change(f, "change" if not _blank(old) else "add", old, new))
        if body:
            head.append(_put_integration(plan, name, body, changes))
        live_schema = _live_schema(detail.config_schema)
        live_defaults = dict(detail.config_defaults or {})
        live_mappings = list(detail.mappings)
        oauth_live = detail.oauth_config

    live_types = {i["key"]: i["type"] for i in live_schema}
    secret_keys = {k for k, t in {**live_types, **want_types}.items() if t == "secret"}
    removed_keys = [k for k in live_types if k not in want_types]
    retyped = {k for k in want_types if k in live_types and live_types[k] != want_types[k]}
    # a key new to the schema whose values already exist live: those rows were stored untyped
    # (type string, unencrypted, outside the cascade) and only a write types them
    # (docs/bifrost-api.md#config-values)
    live_valued = set(live_defaults).union(*(m.config or {} for m in live_mappings))
    retyped |= {k for k in want_types if k not in live_types and k in live_valued}

    def is_secret(key: str) -> bool:
        return key in secret_keys or (key not in want_types and key not in live_types)

    # schema (its own PUT, before values)
    if have is not None and want_schema != live_schema:
        changes = []
        live_by_key = {i["key"]: i for i in live_schema}
        for item in want_schema:
            old_item = live_by_key.get(item["key"])
            if old_item is None:
                changes.append(Change(f"schema.{item['key']}", "add", None, item["type"]))
            elif old_item != item:
                for f in ("type", "required", "description", "options"):
                    if old_item[f] != item[f]:
                        changes.append(Change(f"schema.{item['key']}.{f}", "change", old_item[f], item[f]))
        for k in removed_keys:
            changes.append(Change(f"schema.{k}", "remove", live_types[k], None))
        if not changes:
            changes.append(Change("schema", "change", "order", "declared order"))
        op = Op(
            "update",
            "schema",
            name,
            name,
            "PUT",
            "/api/integrations/{iid}",
            {"config_schema": want_schema},
            changes,
            list(head),
            destructive=bool(removed_keys),
            group=name,
        )
        head.append(_add(plan, op))
        if removed_keys and not opts.allow_key_removal:
            plan.blocked.append(
                f"integration {name}: removing schema key{'s' if len(removed_keys) > 1 else ''} "
                f"{', '.join(removed_keys)} deletes {'their' if len(removed_keys) > 1 else 'its'} default and "
                "every organization's value in Bifrost: apply with --allow-key-removal to do it"
            )
    gone = set(removed_keys)  # their values go with the schema key (cascade)

    # defaults
    body_cfg, changes = _config_diff(
        f"integration {name}: default",
        want["defaults"],
        live_defaults,
        retyped,
        gone,
        is_secret,
        opts.prune,
        plan,
    )
    if body_cfg:
        head.append(
            _add(
                plan,
                Op(
                    "update",
                    "defaults",
                    name,
                    name,
                    "PUT",
                    "/api/integrations/{iid}/config",
                    {"config": body_cfg},
                    changes,
                    list(head),
                    group=name,
                ),
            )
        )

    # mappings: one group per organization, all after the head
    live_by_org = {_org_key(m.organization_id): m for m in live_mappings}
    wanted_orgs = set()
    for org, mp in want["mappings"].items():
        oid = mp["organization_id"]
        wanted_orgs.add(oid)
        addr = f"{name}/{org}"
        lm = live_by_org.get(oid)
        if lm is None:
            cfg = {k: v for k, v in mp["config"].items() if v is not None}
            body = {"organization_id": oid, "entity_id": mp["entity_id"] or ""}
            changes = [Change("entity_id", "add", None, mp["entity_id"] or "")]
            if not _blank(mp["entity_name"]):
                body["entity_name"] = mp["entity_name"]
                changes.append(Change("entity_name", "add", None, mp["entity_name"]))
            if cfg:
                body["config"] = cfg
            changes += [
                Change(f"config.{k}", "add", None, None if is_secret(k) else v, is_secret(k))
                for k, v in cfg.items()
            ]
            if have is not None:  # a new integration has no rows an earlier mapping could leave
                changes.append(
                    Change(
                        "config.*",
                        "clear",
                        new="leftover overrides (kept by Bifrost from an earlier mapping of this "
                        "organization) will be removed",
                    )
                )
            _add(
                plan,
                Op(
                    "create",
                    "mapping",
                    addr,
                    name,
                    "POST",
                    "/api/integrations/{iid}/mappings",
                    body,
                    changes,
                    list(head),
                    group=addr,
                    stage=1,
                    keep_keys=frozenset(cfg) if have is not None else None,
                    public_keys=frozenset(k for k, t in want_types.items() if t != "secret"),
                ),
            )
            continue
        body, changes = {}, []
        if (mp["entity_id"] or "") != (lm.entity_id or ""):
            body["entity_id"] = mp["entity_id"] or ""
            changes.append(Change("entity_id", "change", lm.entity_id, mp["entity_id"]))
        if not (_blank(mp["entity_name"]) and _blank(lm.entity_name)) and mp["entity_name"] != lm.entity_name:
            body["entity_name"] = mp["entity_name"] or ""
            changes.append(Change("entity_name", "change", lm.entity_name, mp["entity_name"]))
        cfg, cchanges = _config_diff(
            f"mapping {addr}: override",
            mp["config"],
            dict(lm.config or {}),
            retyped,
            gone,
            is_secret,
            True,  # a declared mapping's overrides are declared whole: undeclared keys go
            plan,
        )
        if cfg:
            body["config"] = cfg
        if body:
            _add(
                plan,
                Op(
                    "update",
                    "mapping",
                    addr,
                    name,
                    "PUT",
                    f"/api/integrations/{{iid}}/mappings/{lm.id}",
                    body,
                    changes + cchanges,
                    list(head),
                    group=addr,
                    stage=1,
                ),
            )
    for oid, lm in sorted(live_by_org.items(), key=lambda kv: str(kv[0])):
        if oid in wanted_orgs:
            continue
        org = declared_orgs.get(str(oid)) or live.orgs.get(str(oid)) or str(oid)
        addr = f"{name}/{org}"
        if not opts.prune:
            plan.drift.append(
                f"mapping {addr}: exists in Bifrost but not in the repository (apply --prune deletes it)"
            )
            continue
        _delete_mapping(plan, name, addr, lm, list(head), is_secret, stage=1)

    _oauth(
        plan,
        name,
        want.get("oauth"),
        oauth_live,
        live.connections.get(have.id) if have else None,
        list(head),
        opts,
    )


def _config_diff(
    what: str,
    want: dict[str, Any],
    have: dict[str, Any],
    retyped: set[str],
    gone: set[str],
    is_secret: Callable[[str], bool],
    prune: bool,
    plan: Plan,
) -> tuple[dict[str, Any], list[Change]]:
    """The partial-merge body (changed keys, null for removals) and its Changes."""
    body: dict[str, Any] = {}
    changes: list[Change] = []
    for key in sorted(want):
        new = want[key]
        secret = is_secret(key)
        if new is None:
            if key in have and key not in gone:
                body[key] = None
                changes.append(Change(f"config.{key}", "remove", None if secret else have[key], None, secret))
            continue
        if key not in have:
            body[key] = new
            changes.append(Change(f"config.{key}", "add", None, None if secret else new, secret))
        elif not same(have[key], new) or key in retyped:
            body[key] = new
            old = have[key]
            changes.append(
                Change(f"config.{key}", "change", None if secret else old, None if secret else new, secret)
            )
    for key in sorted(have):
        if key in want or key in gone:
            continue
        if prune:
            body[key] = None
            changes.append(
                Change(f"config.{key}", "remove", None if is_secret(key) else have[key], None, is_secret(key))
            )
        else:
            plan.drift.append(
                f"{what} {key!r} is set in Bifrost but not in the repository (apply --prune removes it)"
            )
    return body, changes


def _removals(values: dict[str, Any], is_secret: Callable[[str], bool]) -> list[Change]:
    """A Change per removed config value: secret-typed keys masked, the others with their value."""
    return [
        Change(f"config.{k}", "remove", None if is_secret(k) else values[k], None, is_secret(k))
        for k in sorted(values)
    ]


def _secret_keys_of(detail: Detail) -> Callable[[str], bool]:
    """Per the live schema: a key is secret when typed so, or when the schema does not know it."""
    types = {i.key: i.type for i in detail.config_schema or []}
    return lambda key: types.get(key, "secret") == "secret"


def _delete_mapping(
    plan: Plan,
    name: str,
    addr: str,
    lm: Mapping,
    deps: list[int],
    is_secret: Callable[[str], bool],
    stage: int,
) -> int:
    """Null the org's overrides first (they outlive the mapping otherwise), then delete it."""
    overrides = dict(lm.config or {})
    path = f"/api/integrations/{{iid}}/mappings/{lm.id}"
    changes = _removals(overrides, is_secret)
    if overrides:
        body = {"config": dict.fromkeys(sorted(overrides))}
        deps = [
            *deps,
            _add(
                plan,
                Op(
                    "update", "mapping", addr, name, "PUT", path, body, changes, deps, group=addr, stage=stage
                ),
            ),
        ]
    return _add(
        plan,
        Op(
            "delete",
            "mapping",
            addr,
            name,
            "DELETE",
            path,
            None,
            [],
            deps,
            destructive=True,
            group=addr,
            stage=stage,
        ),
    )


def _oauth(
    plan: Plan,
    name: str,
    want: dict[str, Any] | None,
    summary: OAuthSummary | None,
    conn: Connection | None,
    deps: list[int],
    opts: Options,
) -> None:
    path = "/api/oauth/connections/{iid}"
    iid = plan.ids.get(name)
    recorded = plan.ledger.get("oauth_client_secret_sha256", {}).get(iid) if iid else None
    if want is None:
        if summary is None:
            return
        if opts.prune:
            _add(
                plan,
                Op(
                    "delete",
                    "oauth",
                    name,
                    name,
                    "DELETE",
                    path,
                    None,
                    [],
                    deps,
                    destructive=True,
                    group=f"{name}#oauth",
                    stage=2,
                ),
            )
        else:
            plan.drift.append(
                f"oauth {name}: Bifrost has a provider the repository does not declare (apply --prune deletes it)"
            )
        return
    secret = want.get("client_secret")
    usable = secret is not None and secret != KEEP_LIVE_SECRET
    if summary is None:
        if want["flow"] == "client_credentials" and not usable:
            plan.errors.append(
                f"oauth {name}: flow client_credentials needs the client secret; the repository holds the "
                "import placeholder: put the real secret in (sops edit) and plan again"
            )
            return
        body: dict[str, Any] = {
            "integration_id": "{iid}",
            "oauth_flow_type": want["flow"],
            "client_id": want["client_id"],
            "token_url": want["token_url"],
            "scopes": ",".join(normalise_scopes(want["scopes"])),
        }
        changes = [
            Change("oauth_flow_type", "add", None, want["flow"]),
            Change("client_id", "add", None, want["client_id"]),
            Change("token_url", "add", None, want["token_url"]),
            Change("scopes", "add", None, normalise_scopes(want["scopes"])),
        ]
        for f in ("authorization_url", "audience"):
            if not _blank(want.get(f)):
                body[f] = want[f]
                changes.append(Change(f, "add", None, want[f]))
        if usable:
            body["client_secret"] = secret
            changes.append(Change("client_secret", "set", secret=True))
        op = Op(
            "create",
            "oauth",
            name,
            name,
            "POST",
            "/api/oauth/connections",
            body,
            changes,
            deps,
            group=f"{name}#oauth",
            stage=2,
            sent_secret=secret if usable else None,
        )
        i = _add(plan, op)
        if want["flow"] == "client_credentials":
            _add(
                plan,
                Op(
                    "refresh",
                    "oauth",
                    name,
                    name,
                    "POST",
                    path + "/refresh",
                    None,
                    [],
                    [i],
                    group=f"{name}#oauth",
                    stage=2,
                ),
            )
        return
    live_scopes = normalise_scopes(conn.scopes if conn and conn.scopes is not None else summary.scopes)
    live_audience = conn.audience if conn else None
    body, changes = {}, []
    pairs = [
        ("oauth_flow_type", want["flow"], summary.oauth_flow_type),
        ("client_id", want["client_id"], summary.client_id),
        ("authorization_url", want.get("authorization_url"), summary.authorization_url),
        ("token_url", want["token_url"], summary.token_url),
        ("audience", want.get("audience"), live_audience),
    ]
    for f, new, old in pairs:
        if (_blank(new) and _blank(old)) or new == old:
            continue
        if _blank(new) and f in ("authorization_url", "token_url"):
            plan.drift.append(f"oauth {name}: {f} is set in Bifrost and cannot be cleared over the API")
            continue
        body[f] = new if new is not None else ""
        changes.append(Change(f, "change" if not _blank(old) else "add", old, new))
    want_scopes = normalise_scopes(want["scopes"])
    if want_scopes != live_scopes:
        body["scopes"] = want_scopes
        changes.append(Change("scopes", "change", live_scopes, want_scopes))
    sent = None
    if usable:
        if opts.rotate_oauth_secrets:
            sent, why = secret, "rotate"
        elif recorded is None:
            sent, why = secret, "set"  # never recorded: Bifrost's may differ, so send the declared one
        elif iid is not None and recorded != secret_digest(iid, secret):
            sent, why = secret, "rotate"  # changed in the repository since the last apply
        if sent is not None:
            body["client_secret"] = secret
            changes.append(Change("client_secret", why, secret=True))
    after = deps
    if body:
        after = [
            _add(
                plan,
                Op(
                    "update",
                    "oauth",
                    name,
                    name,
                    "PUT",
                    path,
                    body,
                    changes,
                    deps,
                    group=f"{name}#oauth",
                    stage=2,
                    sent_secret=sent,
                ),
            )
        ]
    if want["flow"] == "client_credentials" and (body or summary.status not in ("completed", "connected")):
        # a client-credentials provider has no stored token until one is minted
        # (docs/bifrost-api.md#oauth-tokens)
        _add(
            plan,
            Op(
                "refresh",
                "oauth",
                name,
                name,
                "POST",
                path + "/refresh",
                None,
                [],
                after,
                group=f"{name}#oauth",
                stage=2,
            ),
        )


def _retire(plan: Plan, name: str, iid: str, detail: Detail, live: Live) -> None:
    """Retire a managed integration no longer declared: mappings, config, OAuth, then soft-delete.

    docs/bifrost-api.md#soft-delete"""
    plan.retiring[iid] = name
    plan.ids[name] = iid
    deps: list[int] = []
    is_secret = _secret_keys_of(detail)
    for lm in sorted(detail.mappings, key=lambda m: str(m.organization_id)):
        org = live.orgs.get(str(lm.organization_id), str(lm.organization_id))
        deps.append(_delete_mapping(plan, name, f"{name}/{org}", lm, [], is_secret, stage=3))
    defaults = detail.config_defaults or {}
    if defaults:
        changes = _removals(dict(defaults), is_secret)
        deps.append(
            _add(
                plan,
                Op(
                    "update",
                    "defaults",
                    name,
                    name,
                    "PUT",
                    "/api/integrations/{iid}/config",
                    {"config": dict.fromkeys(sorted(defaults))},
                    changes,
                    [],
                    destructive=True,
                    group=f"{name}#retire",
                    stage=3,
                ),
            )
        )
    if detail.oauth_config is not None:
        deps.append(
            _add(
                plan,
                Op(
                    "delete",
                    "oauth",
                    name,
                    name,
                    "DELETE",
                    "/api/oauth/connections/{iid}",
                    None,
                    [],
                    [],
                    destructive=True,
                    group=f"{name}#retire",
                    stage=3,
                ),
            )
        )
    _add(
        plan,
        Op(
            "delete",
            "integration",
            name,
            name,
            "DELETE",
            "/api/integrations/{iid}",
            None,
            [],
            deps,
            destructive=True,
            group=f"{name}#retire",
            stage=4,
        ),
    )


def _ledger(plan: Plan, desired: dict[str, Any], live: Live) -> None:
    """Record (after everything else) which integrations this repository manages."""
    current = live.ledger.get("integrations", {})
    pending_create = [n for n in plan.managed_names if n not in plan.ids]
    wanted = {plan.ids[n]: n for n in plan.managed_names if n in plan.ids}
    keep = {i: n for i, n in current.items() if i not in wanted and i not in plan.retiring}
    sends_secret = any(o.sent_secret is not None for o in plan.ops)
    missing = live.ledger_id is None and bool(plan.managed_names)
    if pending_create or sends_secret or plan.retiring or {**keep, **wanted} != current or missing:
        changes = [
            Change(f"managed.{n}", "add", None, None)
            for n in sorted(set(plan.managed_names) - set(current.values()))
        ]
        path = f"/api/integrations/{live.ledger_id}/config" if live.ledger_id else "/api/integrations"
        plan.ops.append(
            Op(
                "record",
                "ledger",
                LEDGER,
                LEDGER,
                "PUT",
                path,
                None,
                changes,
                group=LEDGER,
                stage=5,
                bookkeeping=True,
            )
        )
