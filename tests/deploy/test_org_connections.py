"""An organization's own OAuth connection (`oauth: own`) against the fake Bifrost: plan's token
states, apply's refresh and disconnect, `connect`, import and the drift of an undeclared token."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse

import httpx
import pytest
import yaml

from bifrost_gitops.deploy.connect import CI_VARIABLES
from support import API

from .deploy_support import CONTOSO, FABRIKAM, Env, mapping, no_leaks
from .fakebifrost.state import OAuthToken


@pytest.fixture(autouse=True)
def _not_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """`connect` refuses to run in CI: these tests run it as an admin's machine would."""
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)


XERO = API + (
    "kind: Integration\n"
    "name: Xero\n"
    "oauth:\n"
    "  flow: authorization_code\n"
    "  authorization_url: https://login.example.invalid/authorize\n"
    "  token_url: https://login.example.invalid/token\n"
    "  scopes: [accounting.read]\n"
    "  client_id: xero-app\n"
    "config_schema: []\n"
)
XERO_DIR = "integrations/Xero"


def own(org: str, entity: str) -> str:
    return mapping("Xero", org, entity) + "oauth: own\n"


def xero_env(e: Env) -> Env:
    e.write(f"{XERO_DIR}/integration.yaml", XERO)
    e.write(f"{XERO_DIR}/mappings/contoso.yaml", own("contoso", "c-1"))
    e.write(f"{XERO_DIR}/mappings/fabrikam.yaml", mapping("Xero", "fabrikam", "f-1"))
    return e


def _mapping_id(e: Env, org: str) -> tuple[str, str]:
    xero = e.bf.state.integration_by_name("Xero")
    assert xero is not None
    m = e.bf.state.mapping_for(xero.id, org)
    assert m is not None
    return xero.id, m.id


def _connect(e: Env, org: str = CONTOSO, refresh_token: str | None = "fake-refresh") -> OAuthToken:
    """Run `connect` and complete the flow as Bifrost's callback would; the token it linked."""
    r = e.cli("connect", "Xero", org)
    assert r.code == 0, r.output
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(r.stdout.strip()).query)["state"][0]
    return e.bf.state.oauth_tokens[e.bf.state.complete_mapping_authorization(state, refresh_token)]


def _plan_json(e: Env, *flags: str) -> dict[str, object]:
    r = e.cli("plan", str(e.root), "--format", "json", *flags)
    assert r.code == 0, r.output
    doc: dict[str, object] = json.loads(r.stdout)
    return doc


def test_missing_then_connect_then_connected_and_never_a_url_in_plan(denv: Env) -> None:
    e = xero_env(denv)
    r = e.cli("plan", str(e.root))
    assert "Xero/contoso: missing: an admin connects it in Bifrost's UI" in r.stdout
    assert "once apply has created the mapping" in r.stdout
    assert "Xero/fabrikam" not in r.stdout.split("their own OAuth connection")[1]
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 0, r.output
    assert "state=" not in r.output and "response_type" not in r.output
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 0, r.output  # a missing token is not a change: nothing will be sent
    assert (
        f"Xero/contoso: missing: an admin connects it in Bifrost's UI, or opens the URL `bifrost-gitops connect Xero {CONTOSO}` prints"
        in r.stdout
    )
    assert "state=" not in r.output and "response_type" not in r.output
    _connect(e)
    doc = _plan_json(e, "--exit-code")
    assert doc["connections"] == [{"address": "Xero/contoso", "state": "connected", "advice": ""}]
    no_leaks(json.dumps(doc), e)


def test_connect_prints_the_authorization_url_only_on_stdout(denv: Env) -> None:
    e = xero_env(denv)
    assert e.cli("apply", str(e.root), "--yes").code == 0
    r = e.cli("connect", "Xero", "Contoso Ltd")
    assert r.code == 0, r.output
    url = urllib.parse.urlsplit(r.stdout.strip())
    assert (url.scheme, url.netloc, url.path) == ("https", "login.example.invalid", "/authorize")
    query = urllib.parse.parse_qs(url.query)
    assert query["client_id"] == ["xero-app"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == [e.bf.url + "/oauth/callback/Xero"]
    assert "state=" not in r.stderr and "single-use" in r.stderr
    # in CI it refuses before it asks Bifrost for anything
    e.bf.reset_requests()
    r = e.cli("connect", "Xero", CONTOSO, env=e.env(CI="true"))
    assert r.code == 2 and "refuses to run in CI" in r.stderr and r.stdout == ""
    assert e.bf.requests == []


def test_connect_explains_what_it_cannot_do(denv: Env) -> None:
    e = xero_env(denv)
    assert e.cli("apply", str(e.root), "--yes").code == 0
    r = e.cli("connect", "Xero", "northwind")
    assert r.code == 2 and "has no mapping for organization 'Northwind'" in r.stderr
    r = e.cli("connect", "Microsoft_Graph", CONTOSO)
    assert r.code == 2 and "client_credentials" in r.stderr and r.stdout == ""
    r = e.cli("connect", "HaloPSA", CONTOSO)
    assert r.code == 2 and "has no OAuth provider" in r.stderr
    r = e.cli("connect", "Nope", CONTOSO)
    assert r.code == 2 and "'Nope' is not in Bifrost" in r.stderr


def _expired(denv: Env, refresh_token: str | None = "fake-refresh") -> tuple[Env, OAuthToken]:
    """Xero applied, contoso connected (with REFRESH_TOKEN), its token expired 5 minutes ago."""
    e = xero_env(denv)
    assert e.cli("apply", str(e.root), "--yes").code == 0
    token = _connect(e, CONTOSO, refresh_token)
    token.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    return e, token


def test_expired_token_is_refreshed_by_apply(denv: Env) -> None:
    e, token = _expired(denv)
    old = token.access_token
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 1, r.output  # a refresh will be sent
    assert "> refresh oauth token Xero/contoso" in r.stdout
    assert "Xero/contoso: expired: apply refreshes it" in r.stdout
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 0, r.output
    assert "ok      > refresh oauth token Xero/contoso" in r.stdout
    assert token.access_token is not None and token.access_token != old
    assert token.expires_at is not None and token.expires_at > dt.datetime.now(dt.UTC)
    no_leaks(r.output, e)
    assert token.access_token not in r.output
    assert e.cli("plan", str(e.root), "--exit-code").code == 0


def test_failed_refresh_is_reported_then_planned_as_failed(denv: Env) -> None:
    e, _ = _expired(denv)
    e.bf.state.token_endpoint_error = "invalid_grant"
    r = e.cli(
        "apply", str(e.root), "--yes", env=e.env(BIFROST_MAX_ATTEMPTS="1")
    )  # a 502 is retried otherwise
    assert r.code == 1, r.output
    assert "FAILED  > refresh oauth token Xero/contoso" in r.stdout and "502" in r.stdout
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 0, r.output  # nothing apply can send: an admin must connect it again
    assert "Xero/contoso: failed: its last refresh failed" in r.stdout
    assert f"bifrost-gitops connect Xero {CONTOSO}` prints again" in r.stdout


def test_a_token_on_a_shared_mapping_is_drift_and_disconnected_only_with_the_flag(denv: Env) -> None:
    e = xero_env(denv)
    assert e.cli("apply", str(e.root), "--yes").code == 0
    _connect(e, FABRIKAM)
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 0, r.output
    assert "mapping Xero/fabrikam: has an OAuth token of its own in Bifrost" in r.stdout
    assert "--disconnect-org-tokens" in r.stdout
    r = e.cli("plan", str(e.root), "--exit-code", "--disconnect-org-tokens")
    assert r.code == 1 and "- disconnect oauth token of Xero/fabrikam (destructive)" in r.stdout
    assert "1 organization token to disconnect" in r.stdout
    _, mid = _mapping_id(e, FABRIKAM)
    assert e.bf.state.mappings[mid].oauth_token_id is not None
    r = e.cli("apply", str(e.root), "--yes", "--disconnect-org-tokens")
    assert r.code == 0, r.output
    assert e.bf.state.mappings[mid].oauth_token_id is None
    assert e.cli("plan", str(e.root), "--exit-code").code == 0


def test_saved_plan_keeps_the_disconnect_flag(denv: Env, tmp_path: object) -> None:
    e = xero_env(denv)
    assert e.cli("apply", str(e.root), "--yes").code == 0
    _connect(e, FABRIKAM)
    out = str(e.root.parent / "plan.json")
    assert e.cli("plan", str(e.root), "--disconnect-org-tokens", "-o", out).code == 0
    r = e.cli("apply", out, "--yes")
    assert r.code == 0 and "disconnect oauth token of Xero/fabrikam" in r.stdout, r.output
    _, mid = _mapping_id(e, FABRIKAM)
    assert e.bf.state.mappings[mid].oauth_token_id is None


def test_import_writes_oauth_own_for_a_mapping_with_its_own_token(denv: Env) -> None:
    e = xero_env(denv)
    assert e.cli("apply", str(e.root), "--yes").code == 0
    _connect(e)
    out = e.root.parent / "imported"
    r = e.cli("import", "-o", str(out), "--age", e.recipient)
    assert r.code == 0, r.output
    contoso = yaml.safe_load((out / "integrations/Xero/mappings/contoso-ltd.yaml").read_text())
    fabrikam = yaml.safe_load((out / "integrations/Xero/mappings/fabrikam.yaml").read_text())
    assert contoso["oauth"] == "own" and "oauth" not in fabrikam
    doc = _plan_json(e)
    assert doc["connections"] == [{"address": "Xero/contoso", "state": "connected", "advice": ""}]


def test_client_credentials_own_connection_is_explained_not_attempted(denv: Env) -> None:
    e = denv
    e.write(
        "integrations/Microsoft_Graph/mappings/contoso.yaml",
        mapping("Microsoft_Graph", "contoso", "contoso.onmicrosoft.com") + "oauth: own\n",
    )
    r = e.cli("validate", str(e.root))
    assert r.code == 0 and "C013" in r.stdout, r.output
    assert e.cli("apply", str(e.root), "--yes").code == 0
    r = e.cli("plan", str(e.root), "--exit-code")
    assert r.code == 0, r.output
    assert "Microsoft_Graph/contoso: missing: Bifrost cannot create it over its API" in r.stdout
    assert "bifrost-gitops connect" not in r.stdout


def test_a_token_without_a_refresh_token_is_refused_with_bifrosts_reason(denv: Env) -> None:
    e, _ = _expired(denv, refresh_token=None)
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 1
    assert "FAILED  > refresh oauth token Xero/contoso" in r.stdout and "reconnect this mapping" in r.stdout


def test_fake_per_mapping_endpoints_answer_as_bifrost_does(denv: Env) -> None:
    """The statuses routers/integrations.py gives, for whoever reads the fake."""
    e = xero_env(denv)
    assert e.cli("apply", str(e.root), "--yes").code == 0
    iid, mid = _mapping_id(e, CONTOSO)
    base = f"{e.bf.url}/api/integrations/{iid}/mappings/{mid}/oauth"
    with httpx.Client(headers=e.bf.auth_headers(), timeout=5) as http:
        assert http.post(base + "/refresh").json() == {
            "detail": "Mapping has no per-row OAuth connection to refresh"
        }
        assert http.post(base + "/refresh").status_code == 400
        assert http.post(base + "/disconnect").status_code == 204  # nothing to delete is fine too
        assert http.post(base + "/authorize", json={}).status_code == 422  # redirect_uri is required
        other = f"{e.bf.url}/api/integrations/{iid}/mappings/{CONTOSO}/oauth/authorize"
        assert http.post(other, json={"redirect_uri": "https://x"}).status_code == 404
        token = _connect(e)
        refreshed = http.post(base + "/refresh")
        assert refreshed.status_code == 200 and refreshed.json()["connection_status"] == "completed"
        assert http.post(base + "/disconnect").status_code == 204
        assert token.id not in e.bf.state.oauth_tokens
        assert e.bf.state.mappings[mid].oauth_token_id is None
