"""plan / apply against the fake Bifrost over real HTTP on loopback."""

from __future__ import annotations

import json
from typing import Any

from .deploy_support import CONTOSO, FABRIKAM, Env, canary, mapping, no_leaks

HALO_FILE = "integrations/HaloPSA/integration.yaml"


def test_plan_apply_reapply_is_empty(denv: Env) -> None:
    e = denv
    r = e.cli("plan", str(e.root), "--exit-code")
    print(r.stdout, r.stderr)
    assert r.code == 1, r.output
    assert "+ create integration HaloPSA" in r.stdout
    assert "+ create mapping HaloPSA/contoso" in r.stdout
    assert "api_key: set (secret)" in r.stdout
    no_leaks(r.output, e)
    r = e.cli("apply", str(e.root), "--yes")
    print(r.stdout, r.stderr)
    assert r.code == 0, r.output
    no_leaks(r.output, e)
    st = e.bf.state
    halo = st.integration_by_name("HaloPSA")
    assert halo is not None
    assert st.defaults(halo.id)["api_key"] == canary("default")
    assert st.overrides(halo.id, FABRIKAM) == {"api_key": canary("fabrikam")}
    assert st.overrides(halo.id, CONTOSO) == {"page_size": 50, "region": "eu"}
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 0, r.output
    assert "No changes" in r.stdout
    e.bf.reset_requests()
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 0, r.output
    writes = [x for x in e.bf.requests if x.method != "GET"]
    assert writes == [], writes
    _ = json, mapping


def _ledger(e: Env) -> dict[str, str]:
    st = e.bf.state
    led = st.integration_by_name("bifrost-gitops-state")
    assert led is not None
    managed = st.defaults(led.id)["managed"]
    return dict(managed["integrations"])


def test_ledger_records_managed_integrations(denv: Env) -> None:
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    st = e.bf.state
    names = sorted(_ledger(e).values())
    assert names == ["HaloPSA", "Microsoft_Graph"]
    graph = st.integration_by_name("Microsoft_Graph")
    assert graph is not None and _ledger(e)[graph.id] == "Microsoft_Graph"


def test_json_format_and_exit_codes(denv: Env) -> None:
    e = denv
    r = e.cli("plan", str(e.root), "--format", "json")
    assert r.code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["summary"]["create"] == 6 and doc["summary"]["changes"] > 0
    secrets = [c for o in doc["operations"] for c in o["changes"] if c["secret"]]
    assert secrets and all("old" not in c and "new" not in c for c in secrets)
    no_leaks(r.output, e)


def test_one_mapping_change_is_shown_inline_and_only_that_org_is_written(denv: Env) -> None:
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    e.write(
        "integrations/HaloPSA/mappings/contoso.yaml",
        mapping("HaloPSA", "contoso", "13", {"page_size": 50, "region": "eu"}),
    )
    r = e.cli("plan", str(e.root))
    assert '~ update mapping HaloPSA/contoso: entity_id "12" -> "13"' in r.stdout, r.stdout
    e.bf.reset_requests()
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 0, r.output
    writes = [(x.method, x.route) for x in e.bf.requests if x.method != "GET"]
    assert writes == [("PUT", "/api/integrations/{integration_id}/mappings/{mapping_id}")]


def test_secret_change_is_shown_as_changed_never_the_value(denv: Env) -> None:
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    e.seal("integrations/HaloPSA/mappings/fabrikam.yaml", ["secrets"], {"api_key": canary("rotated")})
    r = e.cli("plan", str(e.root))
    assert "~ config.api_key: changed (secret)" in r.stdout
    no_leaks(r.output, e)
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 0
    halo = e.bf.state.integration_by_name("HaloPSA")
    assert halo is not None and e.bf.state.overrides(halo.id, FABRIKAM)["api_key"] == canary("rotated")


def test_removed_default_is_drift_then_pruned_and_explicit_null_removes(denv: Env) -> None:
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    e.edit(HALO_FILE, lambda d: d["defaults"]["config"].pop("extra"))
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 0, r.output  # not declared any more: drift, left alone
    assert "'extra' is set in Bifrost but not in the repository" in r.stdout
    r = e.cli("plan", str(e.root), "--prune", "--exit-code")
    assert r.code == 1 and "- config.extra: removed" in r.stdout
    assert e.cli("apply", str(e.root), "--yes", "--prune").code == 0
    halo = e.bf.state.integration_by_name("HaloPSA")
    assert halo is not None and "extra" not in e.bf.state.defaults(halo.id)
    # a null in the repository removes without --prune
    e.write(
        "integrations/HaloPSA/mappings/contoso.yaml",
        mapping("HaloPSA", "contoso", "12", {"page_size": None, "region": "eu"}),
    )
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 0 and "page_size" not in e.bf.state.overrides(halo.id, CONTOSO)


def test_key_removal_refused_then_allowed(denv: Env) -> None:
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    e.edit(HALO_FILE, lambda d: d.update(config_schema=[i for i in d["config_schema"] if i["key"] != "beta"]))
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 2, r.output  # apply would refuse: something is wrong, not just a change
    assert "- schema.beta: removed" in r.stdout and "--allow-key-removal" in r.stdout
    assert e.cli("plan", str(e.root)).code == 0
    assert e.cli("plan", str(e.root), "--exit-code", "--allow-key-removal").code == 1
    e.bf.reset_requests()
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 2 and "--allow-key-removal" in r.stderr
    assert [x for x in e.bf.requests if x.method != "GET"] == []
    r = e.cli("apply", str(e.root), "--yes", "--allow-key-removal")
    assert r.code == 0, r.output
    halo = e.bf.state.integration_by_name("HaloPSA")
    assert halo is not None and halo.schema_item("beta") is None
    assert e.cli("plan", str(e.root), "--exit-code").code == 0


def test_type_change_resends_values(denv: Env) -> None:
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0

    def retype(d: dict[str, Any]) -> None:
        for i in d["config_schema"]:
            if i["key"] == "page_size":
                i["type"] = "json"

    e.edit(HALO_FILE, retype)
    r = e.cli("plan", str(e.root))
    assert "schema.page_size.type" in r.stdout and "config.page_size" in r.stdout, r.stdout
    assert e.cli("apply", str(e.root), "--yes").code == 0
    assert e.cli("plan", str(e.root), "--exit-code").code == 0


def test_prune_only_ledger_listed_and_drift(denv: Env) -> None:
    import httpx

    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    with httpx.Client(base_url=e.bf.url, headers=e.bf.auth_headers()) as api:
        assert api.post("/api/integrations", json={"name": "Manual"}).status_code == 201
        halo = e.bf.state.integration_by_name("HaloPSA")
        assert halo is not None
        resp = api.post(
            f"/api/integrations/{halo.id}/mappings",
            json={
                "organization_id": "3f0c1d2e-0000-4000-8000-000000000003",
                "entity_id": "9",
                "config": {"page_size": 7},
            },
        )
        assert resp.status_code == 201, resp.text
    for rel in (
        "integrations/Microsoft_Graph/integration.yaml",
        "integrations/Microsoft_Graph/mappings/contoso.yaml",
    ):
        e.write(rel, None)
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 0, r.output
    assert "integration Manual: exists in Bifrost but is not managed here" in r.stdout
    assert (
        "integration Microsoft_Graph: managed by bifrost-gitops but no longer in the repository" in r.stdout
    )
    assert "mapping HaloPSA/northwind: exists in Bifrost but not in the repository" in r.stdout
    r = e.cli("apply", str(e.root), "--yes", "--prune")
    assert r.code == 0, r.output
    st = e.bf.state
    assert st.integration_by_name("Manual") is not None  # never ours: untouched
    graph = st.integration_by_name("Microsoft_Graph", include_deleted=True)
    assert graph is not None and graph.is_deleted
    assert st.mappings_of(graph.id) == [] and st.defaults(graph.id) == {}
    assert st.provider_for(graph.id) is None
    halo = st.integration_by_name("HaloPSA")
    assert halo is not None
    assert st.mapping_for(halo.id, "3f0c1d2e-0000-4000-8000-000000000003") is None
    assert st.overrides(halo.id, "3f0c1d2e-0000-4000-8000-000000000003") == {}  # nulled before the delete
    assert sorted(_ledger(e).values()) == ["HaloPSA"]
    r = e.cli("plan", str(e.root), "--prune", "--exit-code")
    assert r.code == 0, r.output


def test_org_without_uuid_is_an_error(denv: Env) -> None:
    e = denv
    e.edit("organizations.yaml", lambda d: d["organizations"][1].pop("id"))
    r = e.cli("plan", str(e.root))
    assert r.code == 2 and "without a Bifrost UUID" in r.stderr and "fabrikam" in r.stderr
    assert e.cli("apply", str(e.root), "--yes").code == 2


def test_unknown_org_uuid_is_an_error(denv: Env) -> None:
    e = denv
    e.edit(
        "organizations.yaml",
        lambda d: d["organizations"][2].update(id="3f0c1d2e-0000-4000-8000-00000000abcd"),
    )
    r = e.cli("plan", str(e.root))
    assert r.code == 2 and "not found in Bifrost" in r.stdout


def test_apply_without_tty_or_yes_refuses(denv: Env) -> None:
    e = denv
    e.bf.reset_requests()
    r = e.cli("apply", str(e.root))
    assert r.code == 2 and "--yes" in r.stderr
    assert e.bf.requests == []


def test_contract_version_mismatch_refused(denv: Env) -> None:
    e = denv
    e.bf.contract_version = 2
    r = e.cli("plan", str(e.root))
    assert r.code == 2 and "contract_version 2" in r.stderr
    no_leaks(r.output, e)


def test_oauth_secret_policy(denv: Env) -> None:
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    graph = e.bf.state.integration_by_name("Microsoft_Graph")
    assert graph is not None
    provider = e.bf.state.provider_for(graph.id)
    assert provider is not None and provider.client_secret == canary("client")
    # unchanged in the repository: not sent again, not shown
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 0 and "client_secret" not in r.stdout
    # asked for: rotate
    r = e.cli("plan", str(e.root), "--rotate-oauth-secrets")
    assert "client_secret: rotate (secret)" in r.stdout
    # changed in the repository: rotate (the ledger holds a salted hash of what was sent)
    e.seal(
        "integrations/Microsoft_Graph/integration.yaml",
        ["oauth", "secrets"],
        {"client_secret": canary("client2")},
    )
    r = e.cli("plan", str(e.root))
    # its token URL holds {entity_id}: Bifrost fetches tokens per get, there is nothing to refresh
    assert "client_secret: rotate (secret)" in r.stdout and "refresh oauth token" not in r.stdout
    no_leaks(r.output, e)
    assert e.cli("apply", str(e.root), "--yes").code == 0
    provider = e.bf.state.provider_for(graph.id)
    assert provider is not None and provider.client_secret == canary("client2")
    assert e.cli("plan", str(e.root), "--exit-code").code == 0


def test_scopes_normalised(denv: Env) -> None:
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    e.edit("integrations/Microsoft_Graph/integration.yaml", lambda d: d["oauth"].update(scopes=["a", "b"]))
    r = e.cli("plan", str(e.root))
    assert "~ update oauth Microsoft_Graph" in r.stdout and '"a", "b"' in r.stdout, r.stdout
    assert e.cli("apply", str(e.root), "--yes").code == 0
    assert e.cli("plan", str(e.root), "--exit-code").code == 0


def test_pruned_mapping_shows_non_secret_overrides(denv: Env) -> None:
    """A whole mapping pruned: only secret-typed overrides are masked, the others show their value."""
    e = denv
    e.write(
        "integrations/HaloPSA/mappings/fabrikam.yaml",
        mapping("HaloPSA", "fabrikam", "34", {"page_size": 250, "beta": True}),
    )
    e.seal("integrations/HaloPSA/mappings/fabrikam.yaml", ["secrets"], {"api_key": canary("fabrikam")})
    assert e.cli("apply", str(e.root), "--yes").code == 0
    e.write("integrations/HaloPSA/mappings/fabrikam.yaml", None)
    r = e.cli("plan", str(e.root), "--prune")
    assert r.code == 0, r.output
    assert "- config.page_size: removed (was 250)" in r.stdout, r.stdout
    assert "- config.beta: removed (was true)" in r.stdout
    assert "- config.api_key: removed (secret)" in r.stdout
    no_leaks(r.output, e)
    doc = json.loads(e.cli("plan", str(e.root), "--prune", "--format", "json").stdout)
    changes = {c["field"]: c for op in doc["operations"] for c in op["changes"]}
    assert changes["config.page_size"]["old"] == 250 and not changes["config.page_size"]["secret"]
    assert changes["config.api_key"]["secret"] and "old" not in changes["config.api_key"]
    # a retired integration: its defaults and overrides the same way
    for rel in ("integration.yaml", "mappings/contoso.yaml"):
        e.write(f"integrations/HaloPSA/{rel}", None)
    r = e.cli("plan", str(e.root), "--prune")
    assert '- config.url: removed (was "https://halo.example.com")' in r.stdout, r.stdout
    assert '- config.region: removed (was "eu")' in r.stdout
    assert "- config.api_key: removed (secret)" in r.stdout
    no_leaks(r.output, e)


def test_plan_exit_code_is_2_for_a_repository_with_findings(denv: Env) -> None:
    e = denv
    e.edit(HALO_FILE, lambda d: d["config_schema"].append({"key": "broken", "type": "no-such-type"}))
    plain = e.cli("plan", str(e.root))
    assert plain.code == 1 and "the repository has errors" in plain.stderr, plain.output
    ci = e.cli("plan", str(e.root), "--exit-code")
    assert ci.code == 2 and "the repository has errors" in ci.stderr, ci.output
    assert ci.stdout == plain.stdout and ci.stdout  # the same findings reported either way
