"""Bulk onboarding: mapping creates that carry no override are sent up to 500 a request through
``POST /api/integrations/{id}/mappings/batch`` (docs/bifrost-api.md#mapping-batch).

That endpoint takes only ``organization_id``, ``entity_id`` and ``entity_name``, answers no
mapping id, and one item the database refuses (an organization it does not know) fails the
whole request with a 500 and writes nothing. So a create is batched only when its body holds
nothing else, its organization is in the live list the plan read, and no other operation waits
on it (that one would need the id). Everything else is sent alone, as before; apply sends the
items of a batch Bifrost refuses again one by one, so a bad item fails alone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from .. import DeployError
from ..spec import Action, Resource
from .ops import Plan

#: what Bifrost takes in one request (IntegrationMappingBatchRequest: 1 to 500 items)
MAX_BATCH = 500
ENV_BATCH = "BIFROST_BATCH_SIZE"
BATCH_PATH = "/api/integrations/{iid}/mappings/batch"
#: the fields a batch item carries; a create body with anything else is sent alone
ITEM_FIELDS = frozenset({"organization_id", "entity_id", "entity_name"})


@dataclass(frozen=True)
class Batch:
    """Mapping creates of one integration sent in one request."""

    integration: str
    ops: tuple[int, ...]  # indexes into the plan's operations, in plan order
    #: the integration exists already: an organization's overrides from an earlier mapping may
    #: come back with the create, so apply reads the detail once and nulls them
    leftovers: bool


def batch_size(environ: Mapping[str, str]) -> int:
    """The most creates per batch request: ``BIFROST_BATCH_SIZE`` (1 turns batching off),
    default and at most 500. A malformed value is a usage error (exit 2)."""
    raw = environ.get(ENV_BATCH, "").strip()
    if not raw:
        return MAX_BATCH
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_BATCH:
        raise DeployError(
            f"{ENV_BATCH} must be a whole number from 1 (no batching) to {MAX_BATCH}, not {raw!r}"
        )
    return int(raw)


def batchable(plan: Plan, i: int, orgs: Collection[str], waited_on: Collection[int]) -> bool:
    """Whether operation I is a mapping create the batch endpoint can carry as it is."""
    op = plan.ops[i]
    if op.action is not Action.CREATE or op.resource is not Resource.MAPPING or i in waited_on:
        return False
    body = op.body
    if not isinstance(body, dict) or not set(body) <= ITEM_FIELDS:
        return False
    oid, entity, name = body.get("organization_id"), body.get("entity_id"), body.get("entity_name")
    return (
        isinstance(oid, str)
        and oid.lower() in orgs
        and isinstance(entity, str)
        and (name is None or isinstance(name, str))
    )


def make_batches(plan: Plan, orgs: Collection[str], size: int) -> list[Batch]:
    """PLAN's override-free mapping creates, per integration, SIZE a request; ORGS: the live
    organization ids (lower-case). Fewer than two creates left for an integration go alone (a
    single create answers the mapping, with any leftover override to null)."""
    if size < 2:
        return []
    waited_on = {d for op in plan.ops for d in op.deps}
    by_group: dict[str, int] = {}
    for op in plan.ops:
        by_group[op.group] = by_group.get(op.group, 0) + 1
    per_integration: dict[str, list[int]] = {}
    for i, op in enumerate(plan.ops):
        if by_group[op.group] == 1 and batchable(plan, i, orgs, waited_on):
            per_integration.setdefault(op.integration, []).append(i)
    batches: list[Batch] = []
    for name, members in per_integration.items():
        leftovers = plan.ops[members[0]].keep_keys is not None
        for start in range(0, len(members), size):
            chunk = tuple(members[start : start + size])
            if len(chunk) >= 2:
                batches.append(Batch(name, chunk, leftovers))
    return batches


def item(body: object) -> dict[str, object]:
    """One batch item from a create's body (the fields the endpoint takes)."""
    fields = body if isinstance(body, dict) else {}
    return {k: v for k, v in fields.items() if k in ITEM_FIELDS and v is not None}


def planned_requests(plan: Plan) -> int:
    """The requests apply sends when everything goes as planned: one per operation, one per
    batch instead of its creates, a detail read per existing integration with batches (for
    leftover overrides), two for a ledger still to create. Retries, token refreshes and the
    leftover overrides found add to it."""
    batched = {i for b in plan.batches for i in b.ops}
    count = len(plan.batches) + len({b.integration for b in plan.batches if b.leftovers})
    for i, op in enumerate(plan.ops):
        if i not in batched:
            count += 2 if op.resource is Resource.LEDGER and plan.ledger_id is None else 1
    return count
