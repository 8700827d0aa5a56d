"""Bulk onboarding on the fake Bifrost: override-free mapping creates go 500 a request through
``POST /api/integrations/{id}/mappings/batch``; the rest, and the creates of a batch Bifrost
refuses, go one request each, and every mapping keeps its own line in apply's report.

Most tests drive plan and apply as the CLI does, but on a manifest built in memory (a repository
of 1,200 mapping files would spend the time budget on loading YAML); one test goes through the
CLI on a real repository.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bifrost_gitops.deploy import DeployError, batchrun
from bifrost_gitops.deploy.apply import LANDED, Result, apply
from bifrost_gitops.deploy.client import Client, Credentials
from bifrost_gitops.deploy.plan import Options, Plan
from bifrost_gitops.deploy.plan.batch import batch_size
from bifrost_gitops.deploy.render import render_json, render_results, render_text
from bifrost_gitops.deploy.run import plan_for, read_and_plan
from bifrost_gitops.deploy.spec import IntegrationSpec, Json, Manifest, MappingSpec, Status

from .deploy_support import Env, mapping
from .fakebifrost import FakeBifrost

BATCH = "/api/integrations/{integration_id}/mappings/batch"
SINGLE = "/api/integrations/{integration_id}/mappings"
ORGS = ("contoso", "fabrikam", "northwind")
SCHEMA: list[Any] = [
    {"key": "page_size", "type": "int", "required": False, "description": None, "options": None}
]


def org_ids(n: int) -> list[str]:
    return [str(uuid.UUID(int=0x5EED << 64 | k)) for k in range(n)]


def integration(
    name: str, orgs: list[str], overrides: dict[int, dict[str, Json]] | None = None
) -> IntegrationSpec:
    """An integration mapped to every org of ORGS; OVERRIDES: org index -> its config."""
    over = overrides or {}
    mappings = {
        f"org{k}": MappingSpec(
            organization_id=oid, entity_id=f"e{k}", entity_name=None, config=over.get(k, {})
        )
        for k, oid in enumerate(orgs)
    }
    return IntegrationSpec(
        name=name,
        id=None,
        entity_id=None,
        entity_id_name=None,
        default_entity_id=None,
        list_entities_data_provider_id=None,
        config_schema=SCHEMA,
        defaults={},
        oauth=None,
        mappings=mappings,
    )


def manifest(orgs: list[str], *integrations: IntegrationSpec) -> Manifest:
    return Manifest(
        format=1,
        kind="bifrost-gitops/deploy",
        secrets="revealed",
        organizations=[{"name": f"org{k}", "id": oid} for k, oid in enumerate(orgs)],
        integrations=list(integrations),
    )


@pytest.fixture
def client(bf: FakeBifrost) -> Iterator[Client]:
    """A client of the fake whose retries do not wait (a refused batch is retried first)."""
    creds = Credentials(bf.url, bf.tokens.access_token, bf.tokens.refresh_token)
    with Client(creds, sleep=lambda _: None) as c:
        yield c


def seed(bf: FakeBifrost, orgs: list[str]) -> None:
    for k, oid in enumerate(orgs):
        bf.add_org(f"Org {k}", id=oid)


def seeded(bf: FakeBifrost, n: int) -> list[str]:
    """N organization ids, every one known to the fake."""
    orgs = org_ids(n)
    seed(bf, orgs)
    return orgs


def plan_apply(client: Client, desired: Manifest) -> tuple[Plan, list[Result]]:
    p = plan_for(client, desired, Options())
    return p, apply(client, p)


def lines(results: list[Result]) -> dict[str, tuple[Status, str]]:
    return {r.op.address: (r.status, r.message) for r in results}


def test_1200_override_free_mappings_are_created_in_three_requests(bf: FakeBifrost, client: Client) -> None:
    orgs = seeded(bf, 1200)
    desired = manifest(orgs, integration("Notes", orgs))
    p = plan_for(client, desired, Options())
    summary = render_text(p).splitlines()[-1]
    # the integration, 3 batches, and the ledger (created, then written)
    assert "apply: 1201 operations in 6 requests, 1200 mapping creates in 3 batches" in summary
    doc = json.loads(render_json(p))
    assert doc["summary"]["apply_requests"] == 6 and doc["summary"]["batches"] == 3
    assert sorted({o.get("batch") for o in doc["operations"]}, key=str) == [0, 1, 2, None]
    bf.reset_requests()
    results = apply(client, p)
    assert bf.count("POST", BATCH) == 3 and bf.count("POST", SINGLE) == 0
    assert len(bf.requests) == 6
    assert [r.status for r in results] == [Status.OK] * len(p.ops)
    mappings = lines(results)
    assert len(mappings) == 1201 + 1 and mappings["Notes/org1199"] == (Status.OK, "")
    iid = p.ids.get("Notes") or next(i.id for i in bf.state.integrations.values() if i.name == "Notes")
    assert {m.entity_id for m in bf.state.mappings_of(iid)} == {f"e{k}" for k in range(1200)}
    report = render_results(results, client.requests, "text")
    assert "+ create mapping Notes/org0" in report and "1202 ok, 0 failed, 0 skipped" in report
    assert plan_for(client, desired, Options()).ops == []  # the ledger holds Notes too


def test_mappings_with_overrides_are_sent_alone_and_batching_can_be_turned_off(
    bf: FakeBifrost, client: Client
) -> None:
    orgs = seeded(bf, 10)
    overridden: dict[int, dict[str, Json]] = {1: {"page_size": 5}, 4: {"page_size": 6}, 7: {"page_size": 7}}
    desired = manifest(orgs, integration("Halo", orgs, overridden), integration("Notes", orgs[:1]))
    p, results = plan_apply(client, desired)
    assert [len(b.ops) for b in p.batches] == [7]  # Notes has one create: alone, with its answer
    assert bf.count("POST", BATCH) == 1 and bf.count("POST", SINGLE) == 3 + 1
    assert all(r.status is Status.OK for r in results)
    halo = next(i.id for i in bf.state.integrations.values() if i.name == "Halo")
    assert {k: bf.state.overrides(halo, orgs[k]) for k in overridden} == overridden
    assert not plan_for(client, desired, Options()).changes

    off = manifest(orgs, integration("Other", orgs))
    p = read_and_plan(client, off, Options(), batch_size=1)[1]
    # 11 operations: the integration and its mappings; one more request: the ledger
    assert not p.batches and "apply: 11 operations in 12 requests)." in render_text(p)
    bf.reset_requests()
    apply(client, p)
    assert bf.count("POST", BATCH) == 0 and bf.count("POST", SINGLE) == 10


def test_an_organization_bifrost_does_not_know_is_sent_alone_and_fails_alone(
    bf: FakeBifrost, client: Client
) -> None:
    orgs = org_ids(6)
    seed(bf, orgs[:5])  # the sixth is declared, but Bifrost has no such organization
    p, results = plan_apply(client, manifest(orgs, integration("Notes", orgs)))
    assert p.errors and orgs[5] in p.errors[0]  # the CLI refuses this plan; apply() runs it anyway
    assert [len(b.ops) for b in p.batches] == [5]
    assert bf.count("POST", BATCH) == 1 and bf.count("POST", SINGLE) == 1  # no 500, no retry
    got = lines(results)
    assert got["Notes/org5"][0] is Status.FAILED and "Referenced resource not found" in got["Notes/org5"][1]
    assert all(got[f"Notes/org{k}"] == (Status.OK, "") for k in range(5))


def test_a_batch_that_fails_on_one_organization_is_retried_one_by_one(
    bf: FakeBifrost, client: Client
) -> None:
    orgs = seeded(bf, 8)
    p = plan_for(client, manifest(orgs, integration("Notes", orgs)), Options())
    with bf.state.lock:  # deleted between plan and apply: the batch fails whole (500), as Bifrost's does
        del bf.state.organizations[orgs[3]]
    bf.reset_requests()
    got = lines(apply(client, p))
    assert bf.count("POST", BATCH) == client.max_attempts  # 500s are retried, then given up
    assert bf.count("POST", SINGLE) == 8
    assert got["Notes/org3"][0] is Status.FAILED and "Referenced resource not found" in got["Notes/org3"][1]
    assert [got[f"Notes/org{k}"][0] for k in (0, 1, 2, 4, 5, 6, 7)] == [Status.OK] * 7
    assert len(bf.state.mappings_of(p.ids.get("Notes") or _iid(bf, "Notes"))) == 7


def _iid(bf: FakeBifrost, name: str) -> str:
    return next(i.id for i in bf.state.integrations.values() if i.name == name)


def test_a_refused_batch_is_sent_as_single_creates(bf: FakeBifrost, client: Client) -> None:
    orgs = seeded(bf, 4)
    bf.fail_next(1, 413, match=lambda m, path: path.endswith("/mappings/batch"))
    _, results = plan_apply(client, manifest(orgs, integration("Notes", orgs)))
    assert bf.count("POST", BATCH) == 1 and bf.count("POST", SINGLE) == 4
    assert all(r.status is Status.OK and r.message == "" for r in results)


def test_a_batch_that_landed_without_an_answer_is_not_created_twice(bf: FakeBifrost, client: Client) -> None:
    orgs = seeded(bf, 3)
    batch = lambda m, path: path.endswith("/mappings/batch")  # noqa: E731
    bf.fail_next(5, "drop_after", match=batch)  # written every time, never answered
    _, results = plan_apply(client, manifest(orgs, integration("Notes", orgs)))
    got = lines(results)
    assert bf.count("POST", SINGLE) == 3  # each met 409, then read its mapping back
    assert all(
        got[f"Notes/org{k}"][0] is Status.OK and "already applied" in got[f"Notes/org{k}"][1]
        for k in range(3)
    )
    assert len(bf.state.mappings_of(_iid(bf, "Notes"))) == 3


def test_a_batch_answered_with_errors_is_checked_one_by_one(bf: FakeBifrost, client: Client) -> None:
    """An answer that admits errors (or is of another shape) says nothing sure about any item:
    each create is sent alone, and one the batch did write is read back, not created twice."""
    orgs = seeded(bf, 3)
    bf.rewrite(
        lambda m, path: path.endswith("/mappings/batch"), lambda body: {**body, "errors": ["org x: boom"]}
    )
    _, results = plan_apply(client, manifest(orgs, integration("Notes", orgs)))
    got = lines(results)
    assert bf.count("POST", SINGLE) == 3 and len(bf.state.mappings_of(_iid(bf, "Notes"))) == 3
    assert all(got[f"Notes/org{k}"] == (Status.OK, LANDED) for k in range(3))


def test_an_error_of_ours_in_a_batch_leaves_its_creates_to_single_requests(
    bf: FakeBifrost, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    orgs = seeded(bf, 3)

    def broken(body: object) -> dict[str, object]:
        raise KeyError("a bug")

    monkeypatch.setattr(batchrun, "item", broken)
    _, results = plan_apply(client, manifest(orgs, integration("Notes", orgs)))
    assert bf.count("POST", BATCH) == 0 and bf.count("POST", SINGLE) == 3
    assert all(r.status is Status.OK for r in results)


def test_batched_creates_wait_for_their_integration(bf: FakeBifrost, client: Client) -> None:
    orgs = seeded(bf, 3)
    bf.fail_next(1, 400, match=lambda m, path: m == "POST" and path == "/api/integrations")
    _, results = plan_apply(client, manifest(orgs, integration("Notes", orgs)))
    got = lines(results)
    assert got["Notes"][0] is Status.FAILED and bf.count("POST", BATCH) == 0
    assert all(got[f"Notes/org{k}"] == (Status.SKIPPED, "an earlier step of it failed") for k in range(3))


def test_creates_whose_overrides_cannot_be_checked_say_so(bf: FakeBifrost, client: Client) -> None:
    orgs = seeded(bf, 4)
    plan_apply(client, manifest(orgs, integration("Notes", orgs[:1])))  # Notes exists from now on
    iid = _iid(bf, "Notes")
    desired = manifest(orgs, integration("Notes", orgs))
    p = plan_for(client, desired, Options())
    assert [len(b.ops) for b in p.batches] == [3] and p.batches[0].leftovers
    bf.fail_next(
        client.max_attempts, 503, match=lambda m, path: m == "GET" and path == f"/api/integrations/{iid}"
    )
    got = lines(apply(client, p))
    for k in (1, 2, 3):
        status, message = got[f"Notes/org{k}"]
        assert status is Status.FAILED and message.startswith(
            "created, but its overrides could not be checked"
        )
    assert len(bf.state.mappings_of(iid)) == 4
    assert not plan_for(client, desired, Options()).changes  # the next plan checks them


def test_leftover_overrides_of_recreated_mappings_are_nulled_after_the_batch(
    bf: FakeBifrost, client: Client
) -> None:
    orgs = seeded(bf, 3)
    desired = manifest(orgs, integration("Halo", orgs, {0: {"page_size": 1}, 1: {"page_size": 2}}))
    plan_apply(client, desired)
    iid = _iid(bf, "Halo")
    # someone deletes two mappings by hand: their override rows stay behind in Bifrost
    for m in list(bf.state.mappings_of(iid))[:2]:
        bf.state.delete_mapping(iid, m.id)
    declared = manifest(orgs, integration("Halo", orgs))  # the repository now declares no override
    p = plan_for(client, declared, Options())
    assert [len(b.ops) for b in p.batches] == [2]
    bf.reset_requests()
    results = apply(client, p)
    # one batch, one read of the integration's detail, one PUT per mapping with leftovers
    assert bf.counts() == {
        f"POST {BATCH}": 1,
        "GET /api/integrations/{integration_id}": 1,
        "PUT /api/integrations/{integration_id}/mappings/{mapping_id}": 2,
    }
    got = lines(results)
    assert "removed leftover overrides of an earlier mapping: page_size (was 1)" in got["Halo/org0"][1]
    assert {k: bf.state.overrides(iid, orgs[k]) for k in (0, 1)} == {0: {}, 1: {}}
    assert not plan_for(client, declared, Options()).changes


def test_the_batch_size_comes_from_the_environment() -> None:
    assert batch_size({}) == 500 and batch_size({"BIFROST_BATCH_SIZE": " 1 "}) == 1
    for bad in ("0", "501", "ten", "-3"):
        with pytest.raises(DeployError, match="BIFROST_BATCH_SIZE must be a whole number from 1"):
            batch_size({"BIFROST_BATCH_SIZE": bad})


def test_plan_and_apply_on_a_repository(denv: Env) -> None:
    """Through the CLI: plan says how many requests apply sends; each mapping has its line."""
    notes = "apiVersion: bifrost-gitops/v1\nkind: Integration\nname: Notes\n"
    denv.write("integrations/Notes/integration.yaml", "# yaml-language-server: $schema=x\n" + notes)
    for org in ORGS:
        denv.write(f"integrations/Notes/mappings/{org}.yaml", mapping("Notes", org, f"n-{org}"))
    plan = denv.cli("plan", str(denv.root))
    assert plan.code == 0, plan.output
    assert "3 mapping creates in 1 batch)." in plan.stdout
    bad = denv.cli("plan", str(denv.root), env=denv.env(BIFROST_BATCH_SIZE="9999"))
    assert bad.code == 2 and bad.stderr.count("\n") == 1 and "BIFROST_BATCH_SIZE" in bad.stderr
    run = denv.cli("apply", str(denv.root), "--yes")
    assert run.code == 0, run.output
    assert denv.bf.count("POST", BATCH) == 1
    reported = [
        line.split() for line in run.stdout.splitlines() if line.startswith(("ok", "FAILED", "skipped"))
    ]
    created = [words for words in reported if "Notes/" in words[-1]]
    assert sorted(created) == [["ok", "+", "create", "mapping", f"Notes/{o}"] for o in ORGS]
    again = denv.cli("plan", str(denv.root), "--format", "json")
    assert json.loads(again.stdout)["summary"]["changes"] == 0


def test_the_fake_batch_endpoint_answers_as_bifrost_does(bf: FakeBifrost) -> None:
    """What the real endpoint answered (tests/real/test_real_batch.py meets it for real)."""
    orgs = seeded(bf, 2)
    with httpx.Client(base_url=bf.url, headers=bf.auth_headers(), timeout=30) as http:
        iid = http.post("/api/integrations", json={"name": "Probe"}).json()["id"]
        path = f"/api/integrations/{iid}/mappings/batch"

        def send(items: list[dict[str, str]], to: str = path) -> tuple[int, Any]:
            r = http.post(to, json={"mappings": items})
            return r.status_code, r.json()

        one = {"organization_id": orgs[0], "entity_id": "a"}
        unknown = {"organization_id": str(uuid.uuid4()), "entity_id": "x"}
        assert (
            send([one, unknown])[0] == 500
            and http.get(f"/api/integrations/{iid}/mappings").json()["total"] == 0
        )
        assert send([one, {**one, "entity_id": "b"}]) == (200, {"created": 1, "updated": 1, "errors": []})
        assert send([]) == (
            422,
            _validation("mappings: List should have at least 1 item after validation, not 0"),
        )
        assert send([one] * 501) == (
            422,
            _validation("mappings: List should have at most 500 items after validation, not 501"),
        )
        assert send([one] * 500) == (200, {"created": 0, "updated": 500, "errors": []})
        assert send([one], f"/api/integrations/{uuid.uuid4()}/mappings/batch") == (
            404,
            {"detail": "Integration not found"},
        )


def _validation(message: str) -> dict[str, Any]:
    return {"error": "validation_error", "message": message, "details": None}
