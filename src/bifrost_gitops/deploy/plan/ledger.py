"""Retirement and ownership: retire a managed integration the repository no longer declares
(docs/bifrost-api.md#soft-delete), and record, last, which integrations this repository owns
(the ledger: the integration named :data:`~..manifest.LEDGER`)."""

from __future__ import annotations

from collections.abc import Mapping

from ..live import Live
from ..manifest import LEDGER
from ..replies import Detail
from ..spec import Action, Edit, Resource, SchemaItemSpec
from .mappings import delete_mapping, org_label
from .ops import Change, Op, Plan, secret_digest
from .values import Keys

LEDGER_SCHEMA = [SchemaItemSpec(key="managed", type="json", required=False, description=None, options=None)]
#: the stages of a plan's retirements (after OAuth's 2) and of the ledger, last
RETIRE_STAGE, DELETE_STAGE, LEDGER_STAGE = 3, 4, 5


def retire(plan: Plan, name: str, iid: str, detail: Detail, org_names: Mapping[str, str]) -> None:
    """Retire a managed integration no longer declared: mappings, config, OAuth, then soft-delete.
    Its mappings are named by ORG_NAMES (the repository's name for an organization, else
    Bifrost's; see :func:`.mappings.org_label`).

    docs/bifrost-api.md#soft-delete"""
    plan.retiring[iid] = name
    plan.ids[name] = iid
    group = f"{name}#retire"
    deps: list[int] = []
    # per the live schema: a key is secret when typed so, or when the schema does not know it
    keys = Keys({}, {i.key: i.type for i in detail.config_schema or []})
    for lm in sorted(detail.mappings, key=lambda m: str(m.organization_id)):
        addr = f"{name}/{org_label(org_names, lm.organization_id)}"
        deps.append(delete_mapping(plan, name, addr, lm, [], keys, stage=RETIRE_STAGE))
    defaults = dict(detail.config_defaults or {})
    if defaults:
        deps.append(
            plan.add(
                Action.UPDATE,
                Resource.DEFAULTS,
                name,
                "/api/integrations/{iid}/config",
                body={"config": dict.fromkeys(sorted(defaults))},
                changes=keys.removals(defaults),
                destructive=True,
                group=group,
                stage=RETIRE_STAGE,
            )
        )
    if detail.oauth_config is not None:
        path = "/api/oauth/connections/{iid}"
        oauth = plan.add(
            Action.DELETE, Resource.OAUTH, name, path, destructive=True, group=group, stage=RETIRE_STAGE
        )
        deps.append(oauth)
    path = "/api/integrations/{iid}"
    plan.add(
        Action.DELETE,
        Resource.INTEGRATION,
        name,
        path,
        deps=deps,
        destructive=True,
        group=group,
        stage=DELETE_STAGE,
    )


def _new_hash(plan: Plan, live: Live, op: Op) -> bool:
    """Whether OP sends a client secret whose hash the ledger does not hold yet (a resend of
    the recorded one, --rotate-oauth-secrets, leaves the ledger as it is)."""
    if op.sent_secret is None:
        return False
    iid = plan.ids.get(op.integration)
    recorded = live.ledger.get("oauth_client_secret_sha256", {}).get(iid) if iid else None
    return iid is None or recorded != secret_digest(iid, op.sent_secret)


def record(plan: Plan, live: Live) -> None:
    """Record (after everything else) which integrations this repository manages, when that
    or a sent OAuth secret changes what the ledger holds."""
    current = live.ledger.get("integrations", {})
    pending_create = [n for n in plan.managed_names if n not in plan.ids]
    wanted = {plan.ids[n]: n for n in plan.managed_names if n in plan.ids}
    keep = {i: n for i, n in current.items() if i not in wanted and i not in plan.retiring}
    sends_secret = any(_new_hash(plan, live, o) for o in plan.ops)
    missing = live.ledger_id is None and bool(plan.managed_names)
    if pending_create or sends_secret or plan.retiring or {**keep, **wanted} != current or missing:
        changes = [
            Change(f"managed.{n}", Edit.ADD, None, None)
            for n in sorted(set(plan.managed_names) - set(current.values()))
        ]
        path = f"/api/integrations/{live.ledger_id}/config" if live.ledger_id else "/api/integrations"
        plan.add(
            Action.RECORD,
            Resource.LEDGER,
            LEDGER,
            path,
            changes=changes,
            stage=LEDGER_STAGE,
            bookkeeping=True,
        )
