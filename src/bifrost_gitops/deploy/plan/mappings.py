"""An integration's organization mappings: one group per organization, after the head.

A mapping is created (then its leftover overrides nulled, docs/bifrost-api.md#mapping-overrides),
updated (entity fields and the override diff: a mapping's overrides are declared whole), or,
with --prune, deleted (its overrides nulled first: they outlive the mapping otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping as Map

from ..replies import Mapping
from ..spec import Action, Edit, IntegrationSpec, MappingSpec, Resource
from .connections import plan_connection
from .ops import Change, Options, Plan, blank
from .values import Keys, config_diff

LEFTOVERS = (
    "leftover overrides (kept by Bifrost from an earlier mapping of this organization) will be removed"
)


def org_key(oid: str | None) -> str | None:
    """Organization UUIDs compare case-insensitively (the repository may spell them upper-case)."""
    return oid.lower() if isinstance(oid, str) else oid


def org_label(org_names: Map[str, str], oid: object) -> str:
    """How a live mapping's organization is named: ORG_NAMES holds the repository's name for
    it when the repository declares it, else Bifrost's (keys lower-case); else its UUID."""
    return org_names.get(str(oid).lower()) or str(oid)


def plan_mappings(
    plan: Plan,
    want: IntegrationSpec,
    live_mappings: list[Mapping],
    keys: Keys,
    head: list[int],
    *,
    exists: bool,
    opts: Options,
    org_names: Map[str, str],
) -> None:
    """Create, update or (with --prune) delete each organization's mapping of WANT.

    EXISTS: the integration is live already (a new one has no leftover overrides);
    ORG_NAMES: organization id -> name, to name a live mapping the repository does not declare."""
    name = want["name"]
    live_by_org = {org_key(m.organization_id): m for m in live_mappings}
    for org, mp in want["mappings"].items():
        addr = f"{name}/{org}"
        lm = live_by_org.get(mp["organization_id"])
        if lm is None:
            _create(plan, name, addr, mp, keys, head, exists=exists)
        else:
            _update(plan, name, addr, mp, lm, keys, head)
        plan_connection(plan, name, org, mp, lm, want["oauth"], head, opts)
    wanted = {mp["organization_id"] for mp in want["mappings"].values()}
    for oid, lm in sorted(live_by_org.items(), key=lambda kv: str(kv[0])):
        if oid in wanted:
            continue
        addr = f"{name}/{org_label(org_names, oid)}"
        if opts.prune:
            delete_mapping(plan, name, addr, lm, head, keys, stage=1)
        else:
            plan.drift.append(
                f"mapping {addr}: exists in Bifrost but not in the repository (apply --prune deletes it)"
            )


def _create(
    plan: Plan, name: str, addr: str, mp: MappingSpec, keys: Keys, head: list[int], *, exists: bool
) -> None:
    cfg = {k: v for k, v in mp["config"].items() if v is not None}
    body: dict[str, object] = {"organization_id": mp["organization_id"], "entity_id": mp["entity_id"] or ""}
    changes = [Change("entity_id", Edit.ADD, None, mp["entity_id"] or "")]
    if not blank(mp["entity_name"]):
        body["entity_name"] = mp["entity_name"]
        changes.append(Change("entity_name", Edit.ADD, None, mp["entity_name"]))
    if cfg:
        body["config"] = cfg
    changes += [keys.change(k, Edit.ADD, None, v) for k, v in cfg.items()]
    if exists:  # a new integration has no rows an earlier mapping could leave
        changes.append(Change("config.*", Edit.CLEAR, new=LEFTOVERS))
    plan.add(
        Action.CREATE,
        Resource.MAPPING,
        addr,
        "/api/integrations/{iid}/mappings",
        integration=name,
        body=body,
        changes=changes,
        deps=head,
        stage=1,
        keep_keys=frozenset(cfg) if exists else None,
        public_keys=keys.public(),
    )


def _update(
    plan: Plan, name: str, addr: str, mp: MappingSpec, lm: Mapping, keys: Keys, head: list[int]
) -> None:
    body: dict[str, object] = {}
    changes: list[Change] = []
    if (mp["entity_id"] or "") != (lm.entity_id or ""):
        body["entity_id"] = mp["entity_id"] or ""
        changes.append(Change("entity_id", Edit.CHANGE, lm.entity_id, mp["entity_id"]))
    if not (blank(mp["entity_name"]) and blank(lm.entity_name)) and mp["entity_name"] != lm.entity_name:
        body["entity_name"] = mp["entity_name"] or ""
        changes.append(Change("entity_name", Edit.CHANGE, lm.entity_name, mp["entity_name"]))
    # a declared mapping's overrides are declared whole: undeclared keys go
    what = f"mapping {addr}: override"
    cfg, config_changes = config_diff(plan, what, mp["config"], dict(lm.config or {}), keys, True)
    if cfg:
        body["config"] = cfg
    if body:
        _put(plan, name, addr, lm, body, changes + config_changes, head, stage=1)


def _put(
    plan: Plan,
    name: str,
    addr: str,
    lm: Mapping,
    body: dict[str, object],
    changes: list[Change],
    deps: list[int],
    stage: int,
) -> int:
    """A PUT of live mapping LM (partial: entity fields, override keys; null removes one)."""
    path = f"/api/integrations/{{iid}}/mappings/{lm.id}"
    return plan.add(
        Action.UPDATE,
        Resource.MAPPING,
        addr,
        path,
        integration=name,
        body=body,
        changes=changes,
        deps=deps,
        stage=stage,
    )


def delete_mapping(
    plan: Plan, name: str, addr: str, lm: Mapping, deps: list[int], keys: Keys, stage: int
) -> int:
    """Null the organization's overrides first (they outlive the mapping otherwise), then delete it."""
    overrides = dict(lm.config or {})
    if overrides:
        body: dict[str, object] = {"config": dict.fromkeys(sorted(overrides))}
        deps = [*deps, _put(plan, name, addr, lm, body, keys.removals(overrides), deps, stage)]
    path = f"/api/integrations/{{iid}}/mappings/{lm.id}"
    return plan.add(
        Action.DELETE,
        Resource.MAPPING,
        addr,
        path,
        integration=name,
        deps=deps,
        destructive=True,
        stage=stage,
    )
