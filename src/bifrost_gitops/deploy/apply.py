"""Execute a plan: in order, a bounded number of requests at a time, a report per operation.

Stages run one after another (0 integration/schema/defaults, 1 mappings, 2 OAuth, 3-4
retirements, 5 the ledger); inside a stage, independent groups (one integration's head, one
organization's mapping, one provider) run concurrently and each group runs its operations in
order. An operation that fails (Bifrost refuses it, a value JSON cannot carry, or an error of
our own) is reported with its reason; the operations that need it are skipped, so nothing is
written out of the safe order, the others still run, and the ledger records what was done: a
re-run plans only what is left.

A stage's mapping batches (:mod:`.plan.batch`) go before its other operations
(:mod:`.batchrun`); the creates of a batch Bifrost refuses are sent alone with them.

A create the client had to retry after a timeout, a dropped connection or a 5xx may have
landed the first time: when the retry meets 409 "already exists", the resource is read back
(by name, by organization, by integration id) and, when it is there as sent, the create counts
as done (its id is used by the operations that follow).
"""

from __future__ import annotations

import json
import traceback
import urllib.parse
from dataclasses import dataclass

from .. import storable
from ..errors import debugging
from .batchrun import send_batches
from .client import ApiError, Client
from .manifest import LEDGER
from .plan import LEDGER_SCHEMA, Op, Plan, secret_digest, show
from .plan.batch import Batch
from .spec import DEPENDENCY_FAILED, NO_INTEGRATION, Action, Json, Ledger, Resource, Status


@dataclass
class Result:
    op: Op
    status: Status
    message: str = ""

    def __post_init__(self) -> None:
        self.status = Status(self.status)


def _fill(value: object, iid: str) -> object:
    if isinstance(value, str):
        return value.replace("{iid}", iid)
    if isinstance(value, dict):
        return {k: (_fill(v, iid) if k == "integration_id" else v) for k, v in value.items()}
    return value


#: fields of a create's body that the resource read back must match for the create to count
#: as the one that landed (never a secret)
_IDENTITY = {
    Resource.INTEGRATION: ("name",),
    Resource.MAPPING: ("organization_id", "entity_id"),
    Resource.OAUTH: ("oauth_flow_type", "client_id"),
}
LANDED = "already applied by an earlier attempt whose answer was lost"
#: the failure of an operation that raised something else than an ApiError (its text may hold
#: a value, so only the exception's type is named)
UNEXPECTED = (
    "internal error ({}) in bifrost-gitops: this step may or may not have been applied; "
    "the others ran, and plan shows what is left (please report it; BIFROST_GITOPS_DEBUG=1 "
    "prints the traceback, which may contain values)"
)


def _same_field(name: str, sent: object, found: object) -> bool:
    if sent in (None, "") and found in (None, ""):
        return True
    if name == "organization_id" and isinstance(sent, str) and isinstance(found, str):
        return sent.lower() == found.lower()
    return bool(sent == found)


def _soft_deleted(op: Op, body: object, e: ApiError) -> ApiError:
    """An integration create refused in the DB-conflict shape: the name is held by a
    soft-deleted integration (a live duplicate answers {"detail": "... already exists"})."""
    if op.resource is not Resource.INTEGRATION or op.action is not Action.CREATE or e.status != 409:
        return e
    if not e.message.startswith("conflict:"):
        return e
    name = body.get("name", op.integration) if isinstance(body, dict) else op.integration
    message = (
        f"the name {name!r} is blocked by a soft-deleted integration in Bifrost (a deleted "
        "integration keeps its name for good, see docs/bifrost-api.md#soft-delete; the API lists "
        "no deleted ones): "
        "rename this integration in the repository, or have an admin restore the deleted one "
        f"with a Bifrost manifest import ({e.message})"
    )
    return ApiError(e.status, message, e.method, e.path, retried=e.retried)


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


class _Run:
    def __init__(self, client: Client, plan: Plan) -> None:
        self.client, self.plan = client, plan
        self.ids = dict(plan.ids)
        self.results: list[Result | None] = [None] * len(plan.ops)
        self.notes: dict[int, str] = {}  # op index -> a note for an op that went ok
        self.skips: dict[int, str] = {}  # op index -> why an op that ran sent nothing
        #: creates a refused batch may have written: sent alone, a 409 reads them back
        self.uncertain: set[int] = set()

    def ok(self, i: int) -> bool:
        r = self.results[i]
        return r is not None and r.status is Status.OK

    def settle(self, i: int, status: Status, message: str = "") -> None:
        """Record operation I's result (a batch settles its creates all at once)."""
        self.results[i] = Result(self.plan.ops[i], status, message)

    def group(self, members: list[int]) -> None:
        """Run one group's operations in order. Nothing raised by one operation escapes: it
        becomes that operation's failure, its dependents are skipped, and the rest still run."""
        for i in members:
            op = self.plan.ops[i]
            if not all(self.ok(d) for d in op.deps):
                self.results[i] = Result(op, Status.SKIPPED, DEPENDENCY_FAILED)
                continue
            try:
                message = self.execute(i, op)
            except ApiError as e:
                self.results[i] = Result(op, Status.FAILED, self.client.scrub(str(e)))
            except Exception as e:  # a bug of ours, or an answer it did not foresee: no text of it
                if debugging():  # as the CLI does: the user asked for it
                    traceback.print_exc()
                self.results[i] = Result(op, Status.FAILED, UNEXPECTED.format(type(e).__name__))
            else:
                if i in self.skips:
                    self.results[i] = Result(op, Status.SKIPPED, self.skips[i])
                elif message is None:
                    self.results[i] = Result(op, Status.OK, self.notes.get(i, ""))
                else:
                    self.results[i] = Result(op, Status.FAILED, message)

    def create(self, i: int, op: Op, path: str, body: object) -> Json:
        """POST a create; when a retry of it (an earlier attempt may have landed) meets 409
        "already exists", read the resource back: if it is there, as sent, the create is done."""
        try:
            return self.client.request(op.method, path, body)
        except ApiError as e:
            if e.status != 409 or not (e.retried or i in self.uncertain):
                raise _soft_deleted(op, body, e) from None
            found = self.read_back(op, body)
            if found is None:
                raise _soft_deleted(op, body, e) from None
            self.notes[i] = LANDED
            return found

    def read_back(self, op: Op, body: object) -> dict[str, Json] | None:
        """The resource OP creates, as Bifrost has it now; None when absent or not the one sent."""
        sent = body if isinstance(body, dict) else {}
        iid = self.ids.get(op.integration, "")
        if op.resource in (Resource.INTEGRATION, Resource.LEDGER):
            path = f"/api/integrations/by-name/{_quote(str(sent.get('name', op.integration)))}"
        elif op.resource is Resource.MAPPING and iid and isinstance(sent.get("organization_id"), str):
            path = f"/api/integrations/{iid}/mappings/by-org/{_quote(sent['organization_id'])}"
        elif op.resource is Resource.OAUTH and iid:
            path = f"/api/oauth/connections/{iid}"
        else:
            return None
        try:
            found = self.client.get(path)
        except ApiError:
            return None
        if not isinstance(found, dict):
            return None
        for f in _IDENTITY.get(op.resource, ("name",)):
            if f in sent and f in found and not _same_field(f, sent[f], found[f]):
                return None
        return found

    def execute(self, i: int, op: Op) -> str | None:
        if op.resource is Resource.LEDGER:
            return self.ledger(i, op)
        iid = self.ids.get(op.integration, "")
        if "{iid}" in op.path and not iid:
            return NO_INTEGRATION
        path = op.path.replace("{iid}", iid)
        creates_oauth = op.resource is Resource.OAUTH and op.action is Action.CREATE
        body = _fill(op.body, iid) if creates_oauth else op.body
        unsendable = storable.unsendable(body)
        if unsendable:  # e.g. NaN in a hand-made deploy.json: JSON cannot carry it
            return f"not sent: {unsendable}; {storable.WHAT}"
        if op.action is Action.CREATE:
            answer = self.create(i, op, path, body)
        else:
            answer = self.client.request(op.method, path, body)
        if op.resource is Resource.INTEGRATION and op.action is Action.CREATE:
            new_id = answer.get("id") if isinstance(answer, dict) else None
            if not isinstance(new_id, str):
                return "Bifrost answered the create without an id"
            self.ids[op.integration] = new_id
        if op.resource is Resource.MAPPING and op.action is Action.CREATE and op.keep_keys is not None:
            return self.clear_leftovers(i, op, iid, answer)
        if op.action is Action.REFRESH and isinstance(answer, dict) and answer.get("success") is False:
            return self.client.scrub(
                f"the token refresh did not succeed: {answer.get('message') or 'no reason given'}"
            )
        return None

    def clear_leftovers(self, i: int, op: Op, iid: str, answer: Json) -> str | None:
        """Null the overrides a mapping create brought back (docs/bifrost-api.md#mapping-overrides):
        Bifrost keeps an organization's override rows when its mapping is deleted, and the create's
        answer holds them with the ones just sent. Keys the repository does not declare go."""
        if not isinstance(answer, dict):
            return None
        raw = answer.get("config")
        config: dict[str, Json] = raw if isinstance(raw, dict) else {}
        keep = op.keep_keys or frozenset()
        leftovers = sorted(k for k in config if k not in keep)
        if not leftovers:
            return None
        shown = ", ".join(
            f"{k} (was {show(config[k])})" if k in op.public_keys else f"{k} (secret)" for k in leftovers
        )
        mid = answer.get("id")
        if not isinstance(mid, str):
            return self.client.scrub(f"created, but without an id: leftover overrides {shown} remain")
        try:
            self.client.put(f"/api/integrations/{iid}/mappings/{mid}", {"config": dict.fromkeys(leftovers)})
        except ApiError as e:
            return self.client.scrub(
                f"created, but removing the leftover overrides {shown} failed ({e}): run apply again"
            )
        note = self.client.scrub(f"removed leftover overrides of an earlier mapping: {shown}")
        self.notes[i] = f"{self.notes[i]}; {note}" if i in self.notes else note
        return None

    def ledger(self, i: int, op: Op) -> str | None:
        """Record which integrations exist now and which OAuth secrets were sent: from what
        the other operations did (ok), whichever of them failed, wherever this one sits."""
        plan = self.plan
        done = [(n, other) for n, other in enumerate(plan.ops) if n != i and self.ok(n)]
        current = plan.ledger.get("integrations", {})
        retired = {
            iid
            for iid, name in plan.retiring.items()
            if any(
                d.resource is Resource.INTEGRATION and d.action is Action.DELETE and d.integration == name
                for _, d in done
            )
        }
        managed = {iid: n for iid, n in current.items() if iid not in retired}
        for name in plan.managed_names:
            if name in self.ids:
                managed = {iid: n for iid, n in managed.items() if n != name or iid == self.ids[name]}
                managed[self.ids[name]] = name
        hashes = {
            iid: h for iid, h in plan.ledger.get("oauth_client_secret_sha256", {}).items() if iid in managed
        }
        for _, sent in done:
            if sent.sent_secret is not None and sent.integration in self.ids:
                iid = self.ids[sent.integration]
                hashes[iid] = secret_digest(iid, sent.sent_secret)
        content = Ledger(integrations=dict(sorted(managed.items())))
        if hashes:
            content["oauth_client_secret_sha256"] = dict(sorted(hashes.items()))
        if plan.ledger_id is not None and json.dumps(content, sort_keys=True) == json.dumps(
            plan.ledger, sort_keys=True
        ):
            self.skips[i] = self._nothing_written(i)
            return None
        ledger_id = plan.ledger_id
        if ledger_id is None:
            schema = [{k: v for k, v in item.items() if v is not None} for item in LEDGER_SCHEMA]
            create = Op(
                Action.CREATE, Resource.LEDGER, op.address, op.integration, "POST", "/api/integrations"
            )
            created = self.create(i, create, create.path, {"name": LEDGER, "config_schema": schema})
            new_id = created.get("id") if isinstance(created, dict) else None
            if not isinstance(new_id, str):
                return "Bifrost answered the ledger create without an id"
            ledger_id = new_id
        self.client.put(f"/api/integrations/{ledger_id}/config", {"config": {"managed": content}})
        return None

    def _nothing_written(self, i: int) -> str:
        """Why the ledger, planned to change, was left as it is: what it was to record did not
        happen (a create refused, say with 409), or it already held it."""
        undone = sum(
            1 for n, r in enumerate(self.results) if n != i and (r is None or r.status is not Status.OK)
        )
        if undone:
            return (
                "nothing written: the ledger already holds what this apply did "
                f"({undone} operation{'s' if undone > 1 else ''} failed or skipped)"
            )
        return "nothing written: the ledger already holds this"


def apply(client: Client, plan: Plan) -> list[Result]:
    """Run every operation of PLAN; returns one Result per operation, in plan order.

    A stage's mapping batches go first (one integration's after another, integrations
    concurrently); the creates of a batch Bifrost refused are then sent alone with the rest."""
    run = _Run(client, plan)
    for stage in sorted({op.stage for op in plan.ops}):
        batches: dict[str, list[Batch]] = {}
        for b in plan.batches:
            if plan.ops[b.ops[0]].stage == stage:
                batches.setdefault(b.integration, []).append(b)
        client.map(lambda bs: send_batches(run, bs), list(batches.values()))
        groups: dict[str, list[int]] = {}
        for i, op in enumerate(plan.ops):
            if op.stage == stage and run.results[i] is None:
                groups.setdefault(op.group, []).append(i)
        client.map(run.group, list(groups.values()))
    return [r if r is not None else Result(plan.ops[i], Status.SKIPPED) for i, r in enumerate(run.results)]
