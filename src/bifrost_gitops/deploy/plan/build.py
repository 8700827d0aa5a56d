"""The whole plan: every declared integration, the live ones the repository does not declare
(drift, or retired with --prune), then the ledger."""

from __future__ import annotations

from ..live import Live, match_integration
from ..manifest import LEDGER
from ..spec import IntegrationSpec, Manifest, MappingSpec, OrganizationSpec
from .batch import MAX_BATCH, make_batches
from .integration import plan_integration
from .ledger import record, retire
from .mappings import org_key
from .ops import Options, Plan


def make_plan(
    desired: Manifest, live: Live, opts: Options, read_requests: int = 0, batch_size: int = MAX_BATCH
) -> Plan:
    """The plan; BATCH_SIZE: the most override-free mapping creates per batch request (1: none)."""
    plan = Plan([], list(live.notes), [], [], read_requests, ledger=live.ledger, ledger_id=live.ledger_id)
    desired = _lower_org_ids(desired)
    live_orgs = {str(k).lower(): v for k, v in live.orgs.items()}
    declared_orgs = {o["id"]: o["name"] for o in desired["organizations"] if o["id"]}
    unknown = sorted(f"{name} ({oid})" for oid, name in declared_orgs.items() if oid not in live_orgs)
    if unknown:
        plan.errors.append("organizations not found in Bifrost (or not active): " + ", ".join(unknown))
    # a live mapping's organization, by the repository's name for it, else Bifrost's
    org_names = {k: v for names in (live_orgs, declared_orgs) for k, v in names.items() if v}
    matched = {_integration(plan, want, live, opts, org_names) for want in desired["integrations"]}
    _undeclared(plan, live, opts, matched, org_names)
    record(plan, live)
    plan.batches = make_batches(plan, live_orgs, batch_size)
    return plan


def _integration(
    plan: Plan, want: IntegrationSpec, live: Live, opts: Options, org_names: dict[str, str]
) -> str | None:
    """Plan one declared integration; the id of the live one it matched."""
    if want["name"] == LEDGER:
        plan.errors.append(f"integration name {LEDGER!r} is reserved for bifrost-gitops's ownership ledger")
        return None
    by_id = {i.id: i for i in live.integrations.values()}
    have = match_integration(want, live.integrations, by_id)
    if have is not None:
        plan.ids[want["name"]] = have.id
        if want.get("id") and want["id"] != have.id:
            plan.drift.append(
                f"integration {want['name']}: the repository says id {want['id']}, Bifrost has {have.id}"
            )
    detail = live.details.get(have.id) if have else None
    connection = live.connections.get(have.id) if have else None
    plan_integration(plan, want, have, detail, connection, opts, org_names)
    plan.managed_names.append(want["name"])
    return have.id if have else None


def _undeclared(
    plan: Plan, live: Live, opts: Options, matched: set[str | None], org_names: dict[str, str]
) -> None:
    """Live integrations the repository does not declare: retired when managed and --prune,
    else drift. ORG_NAMES (lower-case id -> name) names their mappings."""
    managed = live.ledger.get("integrations", {})
    for name, entry in sorted(live.integrations.items()):
        iid = entry.id
        if name == LEDGER or iid in matched:
            continue
        if iid not in managed:
            plan.drift.append(f"integration {name}: exists in Bifrost but is not managed here (left alone)")
        elif opts.prune and iid in live.details:
            retire(plan, name, iid, live.details[iid], org_names)
        else:
            plan.drift.append(
                f"integration {name}: managed by bifrost-gitops but no longer in the repository "
                "(apply --prune retires it)"
            )


def _lower_org_ids(desired: Manifest) -> Manifest:
    """DESIRED with every organization UUID in Bifrost's spelling (lower-case hex)."""
    integrations: list[IntegrationSpec] = []
    for integ in desired["integrations"]:
        mappings: dict[str, MappingSpec] = {
            org: {**mp, "organization_id": org_key(mp.get("organization_id"))}
            for org, mp in (integ.get("mappings") or {}).items()
        }
        integrations.append({**integ, "mappings": mappings})
    organizations: list[OrganizationSpec] = [
        {**o, "id": org_key(o.get("id"))} for o in desired["organizations"]
    ]
    return {**desired, "organizations": organizations, "integrations": integrations}
