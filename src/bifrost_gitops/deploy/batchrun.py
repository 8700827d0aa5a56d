"""Apply's side of bulk onboarding: send a plan's mapping batches (:mod:`.plan.batch`).

Per integration, its batches one after another, then (when the integration existed before this
apply) one read of its detail to null the overrides an earlier mapping of an organization left
behind, as a single create does (docs/bifrost-api.md#mapping-overrides). A batch Bifrost
refuses, or answers with errors, is not reported as failed: its creates are left for the stage
to send one by one, so one bad item fails alone with Bifrost's own message. Those singles may
meet a mapping the refused batch wrote after all: a 409 then reads it back, as a retried create
does.
"""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, NamedTuple

from ..errors import debugging
from .client import ApiError
from .live import read_detail
from .plan.batch import BATCH_PATH, Batch, item
from .replies import BadReply
from .spec import DEPENDENCY_FAILED, NO_INTEGRATION, Json, Status

if TYPE_CHECKING:
    from .apply import _Run

#: the note of a batch in which Bifrost found mappings existing (made meanwhile, or by an
#: earlier attempt of this request) and set their entity fields: it upserts by organization
UPDATED = "Bifrost found {} mapping(s) of this batch existing already and set their entity fields"


class Answer(NamedTuple):
    """``IntegrationMappingBatchResponse``: how many were created and updated, and the errors."""

    created: int
    updated: int
    errors: int


def _answer(reply: Json) -> Answer | None:
    """The batch's answer, or None when it is not of that shape (then nothing is assumed)."""
    if not isinstance(reply, dict):
        return None
    created, updated, errors = reply.get("created"), reply.get("updated"), reply.get("errors", [])
    if not isinstance(created, int) or not isinstance(updated, int) or not isinstance(errors, list):
        return None
    return Answer(created, updated, len(errors))


def send_batches(run: _Run, batches: list[Batch]) -> None:
    """Send BATCHES (of one integration), then null leftover overrides; results go into RUN."""
    sent: list[int] = []
    for batch in batches:
        try:
            sent += _send(run, batch)
        except Exception:  # a bug of ours: sent alone, each create reports its own failure
            if debugging():  # as apply does for a step
                traceback.print_exc()
            run.uncertain.update(i for i in batch.ops if run.results[i] is None)
    if sent and batches[0].leftovers:
        _clear_leftovers(run, batches[0].integration, sent)


def _send(run: _Run, batch: Batch) -> list[int]:
    """One batch request; the creates it made (their results set ok). When it fails, the
    creates keep no result (the stage sends them alone) and count as possibly applied."""
    ops = [run.plan.ops[i] for i in batch.ops]
    if not all(run.ok(d) for op in ops for d in op.deps):
        for i in batch.ops:
            run.settle(i, Status.SKIPPED, DEPENDENCY_FAILED)
        return []
    iid = run.ids.get(batch.integration, "")
    if not iid:
        for i in batch.ops:
            run.settle(i, Status.FAILED, NO_INTEGRATION)
        return []
    body = {"mappings": [item(op.body) for op in ops]}
    try:
        answer = _answer(run.client.post(BATCH_PATH.replace("{iid}", iid), body))
    except ApiError:
        answer = None
    if answer is None or answer.errors or answer.created + answer.updated != len(ops):
        run.uncertain.update(batch.ops)  # sent alone next; a 409 then reads the mapping back
        return []
    note = UPDATED.format(answer.updated) if answer.updated else ""
    for i in batch.ops:
        run.settle(i, Status.OK, note)
    return list(batch.ops)


def _clear_leftovers(run: _Run, name: str, created: list[int]) -> None:
    """Null, per created mapping, the overrides the repository does not declare for it: read
    from the integration's detail, since the batch answers no mapping."""
    iid = run.ids[name]
    try:
        detail = read_detail(run.client, iid)
    except (ApiError, BadReply) as e:
        reason = run.client.scrub(str(e))
        for i in created:
            message = (
                f"created, but its overrides could not be checked for leftovers ({reason}): run apply again"
            )
            run.settle(i, Status.FAILED, message)
        return
    by_org = {str(m.organization_id).lower(): m for m in detail.mappings}
    for i in created:
        op = run.plan.ops[i]
        body = op.body if isinstance(op.body, dict) else {}
        found = by_org.get(str(body.get("organization_id", "")).lower())
        if found is None or not found.config:
            continue
        mapping: Json = {"id": found.id, "config": dict(found.config)}
        failure = run.clear_leftovers(i, op, iid, mapping)
        previous = run.results[i]
        if failure is not None:
            run.settle(i, Status.FAILED, failure)
        elif i in run.notes and previous is not None:
            run.settle(
                i, Status.OK, f"{previous.message}; {run.notes[i]}" if previous.message else run.notes[i]
            )
