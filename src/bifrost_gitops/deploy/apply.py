"""Execute a plan: in order, a bounded number of requests at a time, a report per operation.

Stages run one after another (0 integration/schema/defaults, 1 mappings, 2 OAuth, 3-4
retirements, 5 the ledger); inside a stage, independent groups (one integration's head, one
organization's mapping, one provider) run concurrently and each group runs its operations in
order. An operation whose prerequisite failed is skipped, so nothing is written out of the safe
order; a re-run plans only what is left.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .client import ApiError, Client
from .manifest import LEDGER
from .plan import LEDGER_SCHEMA, Op, Plan, secret_digest


@dataclass
class Result:
    op: Op
    status: str  # ok | failed | skipped
    message: str = ""


def _fill(value: Any, iid: str) -> Any:
    if isinstance(value, str):
        return value.replace("{iid}", iid)
    if isinstance(value, dict):
        return {k: (_fill(v, iid) if k == "integration_id" else v) for k, v in value.items()}
    return value


class _Run:
    def __init__(self, client: Client, plan: Plan) -> None:
        self.client, self.plan = client, plan
        self.ids = dict(plan.ids)
        self.results: list[Result | None] = [None] * len(plan.ops)

    def ok(self, i: int) -> bool:
        r = self.results[i]
        return r is not None and r.status == "ok"

    def group(self, members: list[int]) -> None:
        for i in members:
            op = self.plan.ops[i]
            if not all(self.ok(d) for d in op.deps):
                self.results[i] = Result(op, "skipped", "an earlier step of it failed")
                continue
            try:
                message = self.execute(op)
            except ApiError as e:
                self.results[i] = Result(op, "failed", self.client.scrub(str(e)))
            else:
                self.results[i] = Result(op, "ok" if message is None else "failed", message or "")

    def execute(self, op: Op) -> str | None:
        if op.resource == "ledger":
            return self.ledger()
        iid = self.ids.get(op.integration, "")
        if "{iid}" in op.path and not iid:
            return "the integration does not exist (its creation failed)"
        path = op.path.replace("{iid}", iid)
        body = _fill(op.body, iid) if op.resource == "oauth" and op.action == "create" else op.body
        answer = self.client.request(op.method, path, body)
        if op.resource == "integration" and op.action == "create":
            if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
                return "Bifrost answered the create without an id"
            self.ids[op.integration] = answer["id"]
        if op.action == "refresh" and isinstance(answer, dict) and answer.get("success") is False:
            return self.client.scrub(
                f"the token refresh did not succeed: {answer.get('message') or 'no reason given'}"
            )
        return None

    def ledger(self) -> str | None:
        plan = self.plan
        current = plan.ledger.get("integrations", {})
        retired = {
            iid
            for iid, name in plan.retiring.items()
            for i, op in enumerate(plan.ops)
            if op.resource == "integration"
            and op.action == "delete"
            and op.integration == name
            and self.ok(i)
        }
        managed = {i: n for i, n in current.items() if i not in retired}
        for name in plan.managed_names:
            if name in self.ids:
                managed = {i: n for i, n in managed.items() if n != name or i == self.ids[name]}
                managed[self.ids[name]] = name
        hashes = {i: h for i, h in plan.ledger.get("oauth_client_secret_sha256", {}).items() if i in managed}
        for i, op in enumerate(plan.ops):
            if op.sent_secret is not None and self.ok(i) and op.integration in self.ids:
                iid = self.ids[op.integration]
                hashes[iid] = secret_digest(iid, op.sent_secret)
        content: dict[str, Any] = {"integrations": dict(sorted(managed.items()))}
        if hashes:
            content["oauth_client_secret_sha256"] = dict(sorted(hashes.items()))
        if plan.ledger_id is not None and json.dumps(content, sort_keys=True) == json.dumps(
            plan.ledger, sort_keys=True
        ):
            return None
        ledger_id = plan.ledger_id
        if ledger_id is None:
            schema = [{k: v for k, v in item.items() if v is not None} for item in LEDGER_SCHEMA]
            created = self.client.post("/api/integrations", {"name": LEDGER, "config_schema": schema})
            ledger_id = created.get("id") if isinstance(created, dict) else None
            if not isinstance(ledger_id, str):
                return "Bifrost answered the ledger create without an id"
        self.client.put(f"/api/integrations/{ledger_id}/config", {"config": {"managed": content}})
        return None


def apply(client: Client, plan: Plan) -> list[Result]:
    """Run every operation of PLAN; returns one Result per operation, in plan order."""
    run = _Run(client, plan)
    for stage in sorted({op.stage for op in plan.ops}):
        groups: dict[str, list[int]] = {}
        for i, op in enumerate(plan.ops):
            if op.stage == stage:
                groups.setdefault(op.group, []).append(i)
        client.map(run.group, list(groups.values()))
    return [r if r is not None else Result(plan.ops[i], "skipped") for i, r in enumerate(run.results)]
