"""QA regressions: lingering overrides, values typed late, org UUID case, soft-deleted names."""

from __future__ import annotations

from typing import Any

from .deploy_support import CONTOSO, FABRIKAM, NORTHWIND, ORGS, Env, canary, mapping, no_leaks

HALO_FILE = "integrations/HaloPSA/integration.yaml"
CONTOSO_FILE = "integrations/HaloPSA/mappings/contoso.yaml"


def _halo_id(e: Env) -> str:
    halo = e.bf.state.integration_by_name("HaloPSA")
    assert halo is not None
    return halo.id


def test_recreated_mapping_drops_lingering_overrides(denv: Env) -> None:
    """docs/bifrost-api.md#mapping-overrides: a hand-deleted mapping's overrides come back on re-create."""
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    st, iid = e.bf.state, _halo_id(denv)
    m = st.mapping_for(iid, CONTOSO)
    assert m is not None
    st.update_mapping(
        iid, m.id, {"config": {"beta": True, "legacy": "x", "api_key": canary("leftover")}}, "admin@x"
    )
    st.delete_mapping(iid, m.id)  # by hand, in the UI: the override rows stay
    assert set(st.overrides(iid, CONTOSO)) == {"page_size", "region", "beta", "legacy", "api_key"}

    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 1, r.output
    assert "+ create mapping HaloPSA/contoso" in r.stdout
    assert "leftover overrides" in r.stdout and "will be removed" in r.stdout, r.stdout
    no_leaks(r.output, e)

    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 0, r.output
    assert "removed leftover overrides" in r.stdout, r.stdout
    assert "beta (was true)" in r.stdout and "api_key (secret)" in r.stdout
    assert "legacy (secret)" in r.stdout  # not in the schema: treated as a secret
    no_leaks(r.output, e)
    assert st.overrides(iid, CONTOSO) == {"page_size": 50, "region": "eu"}
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 0 and "No changes" in r.stdout, r.output


def test_recreated_mapping_without_leftovers_sends_no_extra_put(denv: Env) -> None:
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    e.write(
        "integrations/HaloPSA/mappings/northwind.yaml", mapping("HaloPSA", "northwind", "9", {"region": "us"})
    )
    e.bf.reset_requests()
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 0 and "removed leftover" not in r.stdout, r.output
    writes = [(x.method, x.route) for x in e.bf.requests if x.method != "GET"]
    assert ("PUT", "/api/integrations/{integration_id}/mappings/{mapping_id}") not in writes, writes
    assert e.bf.state.overrides(_halo_id(e), NORTHWIND) == {"region": "us"}


def test_undeclared_override_on_a_declared_mapping_is_removed_without_prune(denv: Env) -> None:
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    st, iid = e.bf.state, _halo_id(denv)
    m = st.mapping_for(iid, FABRIKAM)
    assert m is not None
    st.update_mapping(iid, m.id, {"config": {"beta": False, "legacy": canary("hand")}}, "admin@x")
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 1, r.output
    assert "~ update mapping HaloPSA/fabrikam" in r.stdout
    assert (
        "- config.beta: removed (was false)" in r.stdout and "- config.legacy: removed (secret)" in r.stdout
    )
    no_leaks(r.output, e)
    assert e.cli("apply", str(e.root), "--yes").code == 0
    assert st.overrides(iid, FABRIKAM) == {"api_key": canary("fabrikam")}
    assert e.cli("plan", str(e.root), "--exit-code").code == 0


def test_key_new_to_the_schema_with_live_values_is_rewritten_typed(denv: Env) -> None:
    """Values stored before their key was in the schema are untyped until re-sent.

    docs/bifrost-api.md#config-values"""
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    st, iid = e.bf.state, _halo_id(denv)
    st.save_config(iid, None, {"limit": 5, "token": canary("untyped")}, "admin@x")
    m = st.mapping_for(iid, CONTOSO)
    assert m is not None
    st.update_mapping(iid, m.id, {"config": {"limit": 7}}, "admin@x")
    assert st.configs[(iid, None, "limit")].config_schema_id is None

    def add_keys(d: dict[str, Any]) -> None:
        d["config_schema"] += [{"key": "limit", "type": "int"}, {"key": "token", "type": "secret"}]
        d["defaults"]["config"]["limit"] = 5

    e.edit(HALO_FILE, add_keys)
    e.seal(HALO_FILE, ["defaults", "secrets"], {"token": canary("untyped")})
    e.write(CONTOSO_FILE, mapping("HaloPSA", "contoso", "12", {"page_size": 50, "region": "eu", "limit": 7}))
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 1, r.output
    assert "+ schema.limit" in r.stdout and "~ update defaults HaloPSA" in r.stdout, r.stdout
    assert "config.limit" in r.stdout and "config.token: changed (secret)" in r.stdout
    assert "update mapping HaloPSA/contoso" in r.stdout
    no_leaks(r.output, e)
    assert e.cli("apply", str(e.root), "--yes").code == 0
    for ck, typ in (
        ((iid, None, "limit"), "int"),
        ((iid, CONTOSO, "limit"), "int"),
        ((iid, None, "token"), "secret"),
    ):
        row = st.configs[ck]
        assert row.config_type == typ and row.config_schema_id is not None, (ck, row.config_type)
    assert st.configs[(iid, None, "token")].encrypted
    assert e.cli("plan", str(e.root), "--exit-code").code == 0


def test_org_uuids_compare_case_insensitively(denv: Env) -> None:
    e = denv
    text = ORGS
    for oid in (CONTOSO, FABRIKAM, NORTHWIND):
        text = text.replace(oid, oid.upper())
    assert text != ORGS
    e.write("organizations.yaml", text)
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 1 and "not found" not in r.output, r.output
    assert "leftover" not in r.stdout  # a new integration has no rows an earlier mapping left
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 0, r.output
    iid = _halo_id(e)
    assert e.bf.state.overrides(iid, CONTOSO) == {"page_size": 50, "region": "eu"}
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 0 and "No changes" in r.stdout, r.output


def test_create_blocked_by_soft_deleted_name_says_so(denv: Env) -> None:
    e = denv
    old = e.bf.state.create_integration("HaloPSA")
    e.bf.state.delete_integration(old.id)  # soft delete: the name stays taken
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 1, r.output
    assert "blocked by a soft-deleted integration" in r.stdout, r.stdout
    assert "manifest import" in r.stdout
    assert e.bf.state.integration_by_name("Microsoft_Graph") is not None  # the rest went on


def _orphan_contoso_overrides(e: Env) -> str:
    """Apply, then give contoso an extra override and delete its mapping by hand."""
    assert e.cli("apply", str(e.root), "--yes").code == 0
    st, iid = e.bf.state, _halo_id(e)
    m = st.mapping_for(iid, CONTOSO)
    assert m is not None
    st.update_mapping(iid, m.id, {"config": {"legacy": "x"}}, "admin@x")
    st.delete_mapping(iid, m.id)
    return iid


def test_leftover_removal_that_fails_is_reported_and_finished_by_the_next_apply(denv: Env) -> None:
    e = denv
    iid = _orphan_contoso_overrides(e)
    e.bf.fail_next(1, 400, match=lambda method, path: method == "PUT" and "/mappings/" in path)
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 1, r.output
    assert "removing the leftover overrides legacy (secret) failed" in r.stdout, r.stdout
    assert "legacy" in e.bf.state.overrides(iid, CONTOSO)
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 1 and "- config.legacy: removed (secret)" in r.stdout, r.output
    assert e.cli("apply", str(e.root), "--yes").code == 0
    assert e.bf.state.overrides(iid, CONTOSO) == {"page_size": 50, "region": "eu"}


def test_leftovers_removed_when_a_retried_mapping_create_had_landed(denv: Env) -> None:
    e = denv
    iid = _orphan_contoso_overrides(e)
    e.bf.fail_next(
        1, "drop_after", match=lambda method, path: method == "POST" and path.endswith("/mappings")
    )
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 0, r.output
    assert "already applied by an earlier attempt" in r.stdout and "removed leftover overrides" in r.stdout
    assert e.bf.state.overrides(iid, CONTOSO) == {"page_size": 50, "region": "eu"}
