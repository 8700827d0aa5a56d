"""Plans that settle, and apply reports that say what was done (issue 13's real-server findings).

- A client-credentials provider whose token URL holds {entity_id} gets no token refresh: Bifrost
  fetches its tokens per organization on each SDK get, and a refresh tries the literal template.
- The ownership record is reported ok only when it was written.
- Retired mappings are named by the repository's organization names.
"""

from __future__ import annotations

import json
import shutil

from .deploy_support import CONTOSO, FABRIKAM, NORTHWIND, ORGS, Env, no_leaks
from .test_apply_failures import results

GRAPH_FILE = "integrations/Microsoft_Graph/integration.yaml"
REFRESH = ("POST", "/api/oauth/connections/{connection_name}/refresh")
NOTE = (
    "(no token refresh for Microsoft_Graph: the token URL holds {entity_id}, so Bifrost fetches "
    "a token for each organization on every SDK get)"
)


def _refreshes(e: Env) -> int:
    return e.bf.count(*REFRESH)


def test_a_templated_token_url_plans_no_refresh_and_settles(denv: Env) -> None:
    e = denv
    # what the real server does with the template: the refresh fails (success: false)
    e.bf.state.token_endpoint_error = "token endpoint refused the URL"
    r = e.cli("plan", str(e.root))
    assert "+ create oauth Microsoft_Graph" in r.stdout and "refresh oauth token" not in r.stdout, r.stdout
    assert r.stdout.count(NOTE) == 1, r.stdout
    doc = json.loads(e.cli("plan", str(e.root), "--format", "json").stdout)
    assert doc["summary"]["refresh"] == 0 and "refresh" not in {o["action"] for o in doc["operations"]}
    assert set(doc) == {"operations", "bookkeeping", "drift", "blocked", "errors", "connections", "summary"}

    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 0, r.output
    assert _refreshes(e) == 0
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 0 and "No changes" in r.stdout and NOTE not in r.stdout, r.output

    # a change of the provider: still nothing to refresh, and the plan settles again
    e.edit(GRAPH_FILE, lambda d: d["oauth"].update(scopes=["https://graph.microsoft.com/.default"]))
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 1 and "~ update oauth Microsoft_Graph" in r.stdout and NOTE in r.stdout, r.output
    assert "refresh oauth token" not in r.stdout
    assert e.cli("apply", str(e.root), "--yes").code == 0
    assert e.cli("plan", str(e.root), "--exit-code").code == 0
    assert _refreshes(e) == 0
    no_leaks(r.output, e)


def test_a_fixed_token_url_still_gets_its_refresh(denv: Env) -> None:
    e = denv
    e.edit(GRAPH_FILE, lambda d: d["oauth"].update(token_url="https://login.example.com/oauth2/token"))
    r = e.cli("plan", str(e.root))
    assert "> refresh oauth token Microsoft_Graph" in r.stdout and "no token refresh" not in r.stdout
    assert e.cli("apply", str(e.root), "--yes").code == 0
    assert _refreshes(e) == 1
    assert e.cli("plan", str(e.root), "--exit-code").code == 0


def _add_extra(e: Env) -> None:
    e.write(
        "integrations/Extra/integration.yaml",
        "apiVersion: bifrost-gitops/v1\nkind: Integration\nname: Extra\n",
    )


def test_the_ownership_record_is_ok_only_when_written(denv: Env) -> None:
    """A create refused with 409: nothing new to record, so the record says it wrote nothing."""
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    _add_extra(e)
    e.bf.fail_next(1, 409, match=lambda m, p: m == "POST" and p == "/api/integrations")
    e.bf.reset_requests()
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 1, r.output
    got = results(r.stdout)
    assert got["+ create integration Extra"][0] == "FAILED"
    status, message = got["~ record ownership in bifrost-gitops-state"]
    assert status == "skipped" and "nothing written" in message, r.stdout
    assert "(1 operation failed or skipped)" in message
    assert e.bf.count("PUT") == 0  # it sent nothing, as it says

    # the retry writes it, and says ok
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 0, r.output
    assert results(r.stdout)["~ record ownership in bifrost-gitops-state"] == ("ok", "")
    assert e.cli("plan", str(e.root), "--exit-code").code == 0


def test_retired_mappings_are_named_by_the_repository(denv: Env) -> None:
    """The repository calls them contoso / fabrikam (Bifrost: "Contoso Ltd", "Fabrikam"), its
    UUIDs in upper case; a retired integration's mappings read as the repository's."""
    e = denv
    text = ORGS
    for oid in (CONTOSO, FABRIKAM, NORTHWIND):
        text = text.replace(oid, oid.upper())
    e.write("organizations.yaml", text)
    assert e.cli("apply", str(e.root), "--yes").code == 0
    shutil.rmtree(e.root / "integrations/HaloPSA")
    r = e.cli("plan", str(e.root), "--prune")
    assert "- delete mapping HaloPSA/contoso" in r.stdout, r.stdout
    assert "- delete mapping HaloPSA/fabrikam" in r.stdout
    assert "Contoso Ltd" not in r.stdout and "HaloPSA/Fabrikam" not in r.stdout
    r = e.cli("apply", str(e.root), "--yes", "--prune")
    assert r.code == 0, r.output
    assert "ok      - delete mapping HaloPSA/contoso" in r.stdout, r.stdout


def test_a_retired_mapping_of_an_undeclared_organization_keeps_bifrosts_name(denv: Env) -> None:
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    halo = e.bf.state.integration_by_name("HaloPSA")
    assert halo is not None
    e.bf.state.create_mapping(halo.id, NORTHWIND, "5")
    text = ORGS.replace(f"  - name: northwind\n    id: {NORTHWIND}\n", "")
    assert text != ORGS
    e.write("organizations.yaml", text)
    shutil.rmtree(e.root / "integrations/HaloPSA")
    r = e.cli("plan", str(e.root), "--prune")
    assert "- delete mapping HaloPSA/Northwind" in r.stdout, r.stdout
    assert "- delete mapping HaloPSA/contoso" in r.stdout


def test_resending_the_recorded_client_secret_plans_no_record(denv: Env) -> None:
    """--rotate-oauth-secrets with the secret the ledger holds: nothing to record, apply exits 0."""
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    r = e.cli("plan", str(e.root), "--rotate-oauth-secrets")
    assert "client_secret: rotate (secret)" in r.stdout and "records ownership" not in r.stdout, r.stdout
    r = e.cli("apply", str(e.root), "--yes", "--rotate-oauth-secrets")
    assert r.code == 0 and "record ownership" not in r.stdout, r.output
