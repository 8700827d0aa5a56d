"""apply never stops half-way: whatever one operation raises is that operation's failure.

Its dependents are skipped, the other operations still run, exit status is 1 (not 2, "internal
error"), the ownership ledger records what was done, and the next plan holds only what is left.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bifrost_gitops import storable
from bifrost_gitops.deploy import apply as apply_mod
from bifrost_gitops.deploy.client import Client, Credentials
from bifrost_gitops.deploy.run import Options, Plan, load_desired, plan_for

from .deploy_support import FABRIKAM, Env, canary, no_leaks
from .fakebifrost import FakeBifrost

STATUS = re.compile(r"^(ok     |FAILED |skipped) ([-+~>] .*?)(?:: (.*))?$")


def results(stdout: str) -> dict[str, tuple[str, str]]:
    """Operation title -> (status, message) from apply's text report."""
    out: dict[str, tuple[str, str]] = {}
    for line in stdout.splitlines():
        m = STATUS.match(line)
        if m:
            out[m.group(2)] = (m.group(1).strip(), m.group(3) or "")
    return out


def planned(stdout: str) -> list[str]:
    """The operation titles of plan's text output."""
    return [line for line in stdout.splitlines() if re.match(r"^[-+~>] ", line)]


def ledger(bf: FakeBifrost) -> list[str]:
    led = bf.state.integration_by_name("bifrost-gitops-state")
    assert led is not None, "no ownership ledger was written"
    return sorted(bf.state.defaults(led.id)["managed"]["integrations"].values())


def raise_on(monkeypatch: pytest.MonkeyPatch, hit: Any) -> list[str]:
    """Make Client.request raise a RuntimeError (holding a secret) for requests HIT selects."""
    real = Client.request
    fired: list[str] = []

    def request(self: Client, method: str, path: str, body: Any = None) -> Any:
        if hit(method, path, body):
            fired.append(f"{method} {path}")
            raise RuntimeError(f"bug of ours, holding {canary('default')}")
        return real(self, method, path, body)

    monkeypatch.setattr(Client, "request", request)
    return fired


def fabrikam_mapping(method: str, path: str, body: Any) -> bool:
    return method == "POST" and path.endswith("/mappings") and body.get("organization_id") == FABRIKAM


def halo_create(method: str, path: str, body: Any) -> bool:
    return method == "POST" and path == "/api/integrations" and body.get("name") == "HaloPSA"


@pytest.mark.parametrize(
    ("hit", "failed", "skipped", "managed"),
    [
        pytest.param(
            fabrikam_mapping,
            "+ create mapping HaloPSA/fabrikam",
            [],
            ["HaloPSA", "Microsoft_Graph"],
            id="mapping",
        ),
        pytest.param(
            halo_create,
            "+ create integration HaloPSA",
            [
                "~ update defaults HaloPSA",
                "+ create mapping HaloPSA/contoso",
                "+ create mapping HaloPSA/fabrikam",
            ],
            ["Microsoft_Graph"],
            id="integration",
        ),
    ],
)
def test_an_operation_that_raises_fails_alone(
    denv: Env,
    monkeypatch: pytest.MonkeyPatch,
    hit: Any,
    failed: str,
    skipped: list[str],
    managed: list[str],
) -> None:
    e = denv
    ops = planned(e.cli("plan", str(e.root)).stdout)
    fired = raise_on(monkeypatch, hit)
    r = e.cli("apply", str(e.root), "--yes")
    assert fired, "the fault never fired"
    assert r.code == 1, r.output
    assert "please report it. BIFROST_GITOPS_DEBUG" not in r.stderr  # not the CLI's own crash line
    got = results(r.stdout)
    assert sorted(got) == sorted(ops + ["~ record ownership in bifrost-gitops-state"]), r.stdout
    assert got[failed][0] == "FAILED" and "internal error (RuntimeError)" in got[failed][1]
    assert {t for t, (s, _) in got.items() if s == "skipped"} == set(skipped)
    assert all(s == "ok" for t, (s, _) in got.items() if t != failed and t not in skipped)
    no_leaks(r.output, e)
    assert ledger(e.bf) == managed

    monkeypatch.undo()
    again = planned(e.cli("plan", str(e.root)).stdout)
    assert again == [op for op in ops if op == failed or op in skipped], again
    assert e.cli("apply", str(e.root), "--yes").code == 0
    assert e.cli("plan", str(e.root), "--exit-code").code == 0
    assert ledger(e.bf) == ["HaloPSA", "Microsoft_Graph"]


def test_a_bundle_value_retagged_bytes_is_refused_before_any_request(denv: Env, tmp_path: Path) -> None:
    """A sealed bundle whose secret was retagged type:bytes (the tag is outside the MAC)."""
    e = denv
    out = tmp_path / "bundle"
    r = e.cli("compile", str(e.root), "-o", str(out), "--secrets", "seal", "--recipient", e.recipient)
    assert r.code == 0, r.output
    doc = json.loads((out / "deploy.json").read_text())
    (halo,) = (i for i in doc["integrations"] if "api_key" in i["defaults"])
    assert halo["defaults"]["api_key"].endswith(",type:str]")
    halo["defaults"]["api_key"] = halo["defaults"]["api_key"].replace(",type:str]", ",type:bytes]")
    (out / "deploy.json").write_text(json.dumps(doc))
    before = len(e.bf.requests)
    for args in (("plan",), ("apply", "--yes")):
        r = e.cli(*args, str(out))
        assert r.code == 2, r.output
        assert "deploy.json: integrations[0].defaults.api_key is bytes (sops type:bytes)" in r.stderr
        no_leaks(r.output, e)
    assert len(e.bf.requests) == before


def _client(e: Env) -> Client:
    creds = Credentials(e.bf.url, e.bf.tokens.access_token, e.bf.tokens.refresh_token)
    return Client(creds, sleep=lambda _: None)


def plan_of(e: Env, client: Client, monkeypatch: pytest.MonkeyPatch) -> Plan:
    monkeypatch.setenv("SOPS_AGE_KEY", e.identity)
    return plan_for(client, load_desired(str(e.root)), Options())


def test_a_value_json_cannot_carry_fails_its_operation(denv: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan holding NaN (a value no JSON carries): that operation is not sent, the rest is."""
    e = denv
    with _client(e) as client:
        plan = plan_of(e, client, monkeypatch)
        (defaults,) = (op for op in plan.ops if op.title() == "~ update defaults HaloPSA")
        assert isinstance(defaults.body, dict)
        defaults.body["config"]["page_size"] = float("nan")
        done = {r.op.title(): r for r in apply_mod.apply(client, plan)}
    failed = done["~ update defaults HaloPSA"]
    assert (failed.status, failed.message) == (
        "failed",
        "not sent: config.page_size is a float that is not finite (NaN or infinity); " + storable.WHAT,
    )
    assert done["+ create mapping HaloPSA/fabrikam"].status == "skipped"
    assert done["+ create integration Microsoft_Graph"].status == "ok"
    assert done["~ record ownership in bifrost-gitops-state"].status == "ok"
    halo = e.bf.state.integration_by_name("HaloPSA")
    assert halo is not None and not e.bf.state.defaults(halo.id)
    assert ledger(e.bf) == ["HaloPSA", "Microsoft_Graph"]
    again = planned(e.cli("plan", str(e.root)).stdout)
    assert again == [
        "~ update defaults HaloPSA",
        "+ create mapping HaloPSA/contoso",
        "+ create mapping HaloPSA/fabrikam",
    ]


def test_the_ledger_does_not_depend_on_being_last(denv: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger op first in the list (it still runs last, in its stage): its retried create
    that landed is noted on it, and it records both integrations."""
    e = denv
    with _client(e) as client:
        plan = plan_of(e, client, monkeypatch)
        led = plan.ops.pop()
        assert led.resource == "ledger"
        for op in plan.ops:
            op.deps = [d + 1 for d in op.deps]
        plan.ops.insert(0, led)
        posts: list[str] = []

        def ledger_post(method: str, path: str) -> bool:
            if method == "POST" and path == "/api/integrations":
                posts.append(path)
                return len(posts) == 3  # two declared integrations, then the ledger
            return False

        e.bf.fail_next(1, "drop_after", match=ledger_post)
        done = apply_mod.apply(client, plan)
    assert [(r.op.resource, r.status) for r in done if r.status != "ok"] == []
    assert done[0].op.resource == "ledger" and done[0].message == apply_mod.LANDED
    assert all(r.message != apply_mod.LANDED for r in done[1:])
    assert ledger(e.bf) == ["HaloPSA", "Microsoft_Graph"]
