"""The fake Bifrost server behaves as docs/bifrost-api.md says (and documents it).

Each test is a worked example of one API rule, for whoever writes a client against it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .fakebifrost import FakeBifrost


@pytest.fixture
def api(bf: FakeBifrost) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bf.url, headers=bf.auth_headers(), timeout=5) as client:
        yield client


SCHEMA = [
    {"key": "base_url", "type": "string", "required": True},
    {"key": "timeout", "type": "int"},
    {"key": "verbose", "type": "bool"},
    {"key": "extra", "type": "json"},
    {"key": "api_key", "type": "secret"},
]


def make(api: httpx.Client, name: str = "HaloPSA", **kw: Any) -> dict[str, Any]:
    r = api.post("/api/integrations", json={"name": name, "config_schema": SCHEMA, **kw})
    assert r.status_code == 201, r.text
    doc: dict[str, Any] = r.json()
    return doc


def test_auth_401_403_refresh_rotation_and_version(bf: FakeBifrost) -> None:
    url = bf.url
    assert httpx.get(url + "/api/version").json() == {"version": bf.version, "contract_version": 1}
    r = httpx.get(url + "/api/integrations")
    assert (r.status_code, r.json()) == (401, {"detail": "Not authenticated"})
    r = httpx.get(url + "/api/integrations", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    user = bf.issue_tokens(superuser=False)
    for path in ("/api/integrations", "/api/oauth/connections/x"):
        r = httpx.get(url + path, headers=bf.auth_headers(user.access_token))
        assert (r.status_code, r.json()) == (403, {"detail": "Superuser privileges required"})

    bf.expire_access_tokens()
    assert httpx.get(url + "/api/integrations", headers=bf.auth_headers()).status_code == 401
    r = httpx.post(url + "/auth/refresh", json={"refresh_token": bf.tokens.refresh_token})
    assert r.status_code == 200
    pair = r.json()
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert pair["refresh_token"] != bf.tokens.refresh_token
    assert (
        httpx.get(url + "/api/integrations", headers=bf.auth_headers(pair["access_token"])).status_code == 200
    )
    # refresh tokens are single use
    assert (
        httpx.post(url + "/auth/refresh", json={"refresh_token": bf.tokens.refresh_token}).status_code == 401
    )
    assert httpx.post(url + "/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 200

    bf.contract_version = 2
    assert httpx.get(url + "/api/version").json()["contract_version"] == 2


def test_organizations_plain_list_active_only(bf: FakeBifrost, api: httpx.Client) -> None:
    a = bf.add_org("Contoso")
    bf.add_org("Gone", is_active=False)
    fixed = bf.add_org("Fabrikam", id="11111111-1111-1111-1111-111111111111")
    orgs = api.get("/api/organizations").json()
    assert isinstance(orgs, list)
    assert [(o["id"], o["name"]) for o in orgs] == [(a, "Contoso"), (fixed, "Fabrikam")]
    assert set(orgs[0]) >= {"id", "name", "domain", "is_active", "is_provider", "settings", "created_at"}


def test_integration_create_list_detail_and_error_shapes(bf: FakeBifrost, api: httpx.Client) -> None:
    created = make(api, entity_id="partner-1")
    assert created["config_schema"][0] == {
        "key": "base_url",
        "type": "string",
        "required": True,
        "description": None,
        "options": None,
    }
    assert "position" not in created["config_schema"][0]
    empty = api.post("/api/integrations", json={"name": "Acme"}).json()
    assert empty["config_schema"] == []

    r = api.post("/api/integrations", json={"name": "HaloPSA"})
    assert (r.status_code, r.json()) == (409, {"detail": "Integration 'HaloPSA' already exists"})
    r = api.post(
        "/api/integrations", json={"name": "B", "config_schema": [{"key": "bad-key", "type": "int"}]}
    )
    assert r.status_code == 422
    assert r.json() == {
        "error": "validation_error",
        "message": "config_schema.0.key: String should match pattern '^[a-zA-Z0-9_]+$'",
        "details": None,
    }
    r = api.post("/api/integrations", json={"name": "B", "config_schema": [{"key": "k", "type": "float"}]})
    assert r.status_code == 422 and r.json()["message"].startswith("config_schema.0.type: Input should be")

    listed = api.get("/api/integrations").json()
    assert listed["total"] == 2 and [i["name"] for i in listed["items"]] == ["Acme", "HaloPSA"]
    assert api.get("/api/integrations/by-name/HaloPSA").json()["id"] == created["id"]
    assert api.get("/api/integrations/by-name/halopsa").status_code == 404  # case-sensitive

    detail = api.get(f"/api/integrations/{empty['id']}").json()
    assert detail["config_schema"] is None and detail["config_defaults"] is None
    assert detail["mappings"] == [] and detail["oauth_config"] is None

    # soft delete: hidden, name blocked forever with the *conflict* shape
    assert api.delete(f"/api/integrations/{empty['id']}").status_code == 204
    assert api.get(f"/api/integrations/{empty['id']}").json() == {"detail": "Integration not found"}
    assert api.get("/api/integrations").json()["total"] == 1
    r = api.post("/api/integrations", json={"name": "Acme"})
    assert (r.status_code, r.json()) == (
        409,
        {"error": "conflict", "message": "Resource already exists", "details": None},
    )
    assert bf.state.integrations[empty["id"]].is_deleted

    assert api.get("/api/nope").status_code == 404
    assert api.get("/api/integrations/not-a-uuid").status_code == 422


def test_put_is_partial_and_schema_replacement_cascades(bf: FakeBifrost, api: httpx.Client) -> None:
    org = bf.add_org("Contoso")
    i = make(api, default_entity_id="common")
    iid = i["id"]
    api.put(
        f"/api/integrations/{iid}/config",
        json={"config": {"base_url": "https://x", "timeout": 30, "api_key": "s"}},
    )
    api.post(
        f"/api/integrations/{iid}/mappings",
        json={"organization_id": org, "entity_id": "e", "config": {"timeout": 5}},
    )

    r = api.put(f"/api/integrations/{iid}", json={"entity_id_name": "Tenant", "default_entity_id": None})
    assert r.status_code == 200 and r.json()["default_entity_id"] == "common"  # null = unchanged
    assert (
        api.put(f"/api/integrations/{iid}", json={"default_entity_id": ""}).json()["default_entity_id"]
        is None
    )

    # drop `timeout`, reorder, change a type: timeout's default AND override go; others keep values
    new_schema = [
        {"key": "api_key", "type": "secret"},
        {"key": "base_url", "type": "string"},
        {"key": "verbose", "type": "string"},
    ]
    out = api.put(f"/api/integrations/{iid}", json={"config_schema": new_schema}).json()
    assert [s["key"] for s in out["config_schema"]] == ["api_key", "base_url", "verbose"]
    assert [s.position for s in bf.state.integrations[iid].config_schema] == [0, 1, 2]
    assert api.get(f"/api/integrations/{iid}/config").json()["config"] == {
        "base_url": "https://x",
        "api_key": "s",
    }
    assert bf.state.overrides(iid, org) == {}

    # rename to a taken name: no pre-check, conflict shape
    make(api, "Other")
    r = api.put(f"/api/integrations/{iid}", json={"name": "Other"})
    assert r.status_code == 409 and r.json()["error"] == "conflict"


def test_config_partial_merge_deletes_and_validation(bf: FakeBifrost, api: httpx.Client) -> None:
    iid = make(api)["id"]
    path = f"/api/integrations/{iid}/config"
    r = api.put(
        path,
        json={
            "config": {"base_url": "https://a", "timeout": "5", "extra": {"a": 1}, "api_key": "pw", "free": 1}
        },
    )
    assert r.json() == {
        "integration_id": iid,
        "config": {"base_url": "https://a", "timeout": "5", "extra": {"a": 1}, "api_key": "pw", "free": 1},
    }  # stored verbatim ("5" stays a string), secrets returned in plaintext, unknown keys accepted
    rows = bf.state.configs
    assert rows[(iid, None, "api_key")].config_type == "secret" and rows[(iid, None, "api_key")].encrypted
    assert (
        rows[(iid, None, "free")].config_type == "string"
        and rows[(iid, None, "free")].config_schema_id is None
    )

    assert api.put(path, json={"config": {"timeout": None, "extra": ""}}).json()["config"] == {
        "base_url": "https://a",
        "api_key": "pw",
        "free": 1,
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({"timeout": "abc"}, "Config key 'timeout' expects integer, got invalid value"),
        ({"timeout": 1.5}, "Config key 'timeout' expects integer, got float"),
        ({"verbose": "true"}, "Config key 'verbose' expects boolean, got str"),
        ({"extra": "{nope"}, "Config key 'extra' contains invalid JSON"),
    ]
    for bad, message in cases:
        r = api.put(path, json={"config": {"base_url": "https://changed", **bad}})
        assert (r.status_code, r.json()) == (400, {"detail": message})
    assert bf.state.defaults(iid)["base_url"] == "https://a"  # all-or-nothing
    assert api.put(path, json={"config": {"timeout": True}}).status_code == 200  # bools are ints
    assert (
        api.put(
            f"/api/integrations/{'0' * 8}-0000-0000-0000-{'0' * 12}/config", json={"config": {}}
        ).status_code
        == 404
    )


def test_mappings_overrides_linger_and_errors(bf: FakeBifrost, api: httpx.Client) -> None:
    org, org2 = bf.add_org("Contoso"), bf.add_org("Fabrikam")
    iid = make(api)["id"]
    api.put(f"/api/integrations/{iid}/config", json={"config": {"base_url": "https://d", "timeout": 10}})
    base = f"/api/integrations/{iid}/mappings"
    r = api.post(
        base, json={"organization_id": org, "entity_id": "", "config": {"timeout": 20, "api_key": "k"}}
    )
    assert r.status_code == 201
    m = r.json()
    assert m["config"] == {"timeout": 20, "api_key": "k"} and m["entity_id"] == ""
    r = api.post(base, json={"organization_id": org, "entity_id": "x"})
    assert (r.status_code, r.json()) == (
        409,
        {"detail": "Mapping already exists for this organization and integration"},
    )
    r = api.post(base, json={"organization_id": "22222222-2222-2222-2222-222222222222", "entity_id": "x"})
    assert (r.status_code, r.json()["message"]) == (409, "Referenced resource not found")

    assert api.get(base).json()["items"][0]["config"] is None  # the list never carries config
    assert api.get(f"{base}/by-org/{org}").json()["id"] == m["id"]
    r = api.get(f"{base}/by-org/{org2}")
    assert (r.status_code, r.json()) == (404, {"detail": "Mapping not found for this organization"})
    assert api.get(f"/api/integrations/{iid}").json()["mappings"][0]["config"] == {
        "timeout": 20,
        "api_key": "k",
    }

    r = api.put(
        f"{base}/{m['id']}", json={"entity_id": "tenant-1", "config": {"api_key": None, "verbose": True}}
    )
    assert r.json()["config"] == {"timeout": 20, "verbose": True} and r.json()["entity_name"] is None

    assert api.delete(f"{base}/{m['id']}").status_code == 204
    assert api.get(f"{base}/{m['id']}").json() == {"detail": "Mapping not found"}
    assert bf.state.overrides(iid, org) == {"timeout": 20, "verbose": True}  # they linger
    again = api.post(base, json={"organization_id": org, "entity_id": "t"}).json()
    assert again["config"] == {"timeout": 20, "verbose": True}  # ...and come back

    r = api.post(
        f"{base}/batch",
        json={
            "mappings": [
                {"organization_id": org, "entity_id": "u"},
                {"organization_id": org2, "entity_id": "v"},
            ]
        },
    )
    assert r.json() == {"created": 1, "updated": 1, "errors": []}


def test_oauth_connections_scopes_asymmetry_and_refresh(bf: FakeBifrost, api: httpx.Client) -> None:
    iid = make(api, "Graph", default_entity_id="common")["id"]
    body = {
        "integration_id": iid,
        "oauth_flow_type": "client_credentials",
        "client_id": "cid",
        "client_secret": "shh",
        "token_url": "https://login/{entity_id}/token",
        "scopes": "a, b,c",
    }
    assert api.post("/api/oauth/connections", json={**body, "client_secret": ""}).json()["message"] == (
        ": Value error, client_secret is required for client_credentials flow"
    )
    r = api.post("/api/oauth/connections", json={**body, "token_url": "http://insecure"})
    assert (
        r.status_code == 422 and r.json()["message"] == "token_url: String should match pattern '^https://'"
    )
    r = api.post(
        "/api/oauth/connections", json={**body, "integration_id": "33333333-3333-3333-3333-333333333333"}
    )
    assert r.status_code == 404

    r = api.post("/api/oauth/connections", json=body)
    assert r.status_code == 201
    conn = r.json()
    assert conn["scopes"] == "a  b c"  # split on "," without trimming, returned space-joined
    assert conn["connection_name"] == "Graph" and conn["integration_id"] == iid
    assert "client_secret" not in conn
    provider = bf.state.provider_for(iid)
    assert provider is not None and provider.scopes == ["a", " b", "c"]
    r = api.post("/api/oauth/connections", json=body)
    assert (r.status_code, r.json()) == (
        409,
        {"detail": "OAuth connection for integration 'Graph' already exists"},
    )

    # GET/PUT by integration UUID or by name; PUT takes a list or a comma/space string
    assert api.get("/api/oauth/connections/Graph").json()["integration_id"] == iid
    out = api.put(f"/api/oauth/connections/{iid}", json={"scopes": "x, y z", "audience": ""}).json()
    assert out["scopes"] == "x y z" and out["audience"] == ""
    assert api.put(f"/api/oauth/connections/{iid}", json={"scopes": ["p", "q"]}).json()["scopes"] == "p q"
    assert api.put(f"/api/oauth/connections/{iid}", json={"client_secret": ""}).status_code == 422
    assert api.get(f"/api/integrations/{iid}/oauth").json()["scopes"] == ["p", "q"]
    assert api.get(f"/api/integrations/{iid}").json()["oauth_config"]["provider_name"] == "Graph"

    r = api.post(f"/api/oauth/connections/{iid}/refresh")
    assert r.status_code == 200 and r.json()["success"] is True and r.json()["expires_at"]
    provider = bf.state.provider_for(iid)
    assert provider is not None and bf.state.global_token(provider.id) is not None
    assert api.delete(f"/api/oauth/connections/{iid}").status_code == 204
    assert api.get(f"/api/oauth/connections/{iid}").status_code == 404
    assert bf.state.oauth_tokens == {}


def test_sdk_get_resolution(bf: FakeBifrost, api: httpx.Client) -> None:
    org, unmapped = bf.add_org("Contoso"), bf.add_org("Fabrikam")
    iid = make(api, "Halo", entity_id="partner", default_entity_id="common")["id"]
    api.put(f"/api/integrations/{iid}/config", json={"config": {"base_url": "https://d", "api_key": "dk"}})
    api.post(
        f"/api/integrations/{iid}/mappings",
        json={"organization_id": org, "entity_id": "", "entity_name": "C", "config": {"api_key": "ok"}},
    )
    api.post(
        f"/api/integrations/{iid}/mappings",
        json={"organization_id": unmapped, "entity_id": "f", "config": {"base_url": "https://f"}},
    )
    mid = api.get(f"/api/integrations/{iid}/mappings/by-org/{unmapped}").json()["id"]
    api.delete(f"/api/integrations/{iid}/mappings/{mid}")  # overrides linger but are ignored

    def get(scope: str) -> Any:
        return api.post("/api/sdk/integrations/get", json={"name": "Halo", "scope": scope}).json()

    mapped = get(org)
    assert mapped["config"] == {"base_url": "https://d", "api_key": "ok"}
    assert mapped["entity_id"] == "common" and mapped["entity_name"] == "C"  # empty -> default_entity_id
    assert mapped["config_secret_keys"] == ["api_key"] and mapped["oauth"] is None
    assert get(unmapped)["config"] == {"base_url": "https://d", "api_key": "dk"}
    glob = get("global")
    assert glob["entity_id"] == "common" and glob["entity_name"] is None
    api.put(f"/api/integrations/{iid}", json={"default_entity_id": ""})
    assert get("global")["entity_id"] == "partner"

    api.delete(f"/api/integrations/{iid}")
    assert get(org)["integration_id"] == iid  # soft-deleted integrations still resolve
    assert api.post("/api/sdk/integrations/get", json={"name": "Nope", "scope": "global"}).json() is None
    assert api.post("/api/sdk/integrations/get", json={"name": "Halo", "scope": "bogus"}).status_code == 422

    # OAuth: {entity_id} templating; client_credentials + templated token_url fetches a fresh token
    iid2 = make(api, "Graph", default_entity_id="common")["id"]
    api.post(f"/api/integrations/{iid2}/mappings", json={"organization_id": org, "entity_id": "tenant-9"})
    api.post(
        "/api/oauth/connections",
        json={
            "integration_id": iid2,
            "oauth_flow_type": "client_credentials",
            "client_id": "c",
            "client_secret": "s",
            "token_url": "https://login/{entity_id}/token",
            "scopes": "a,b",
        },
    )
    oauth = api.post("/api/sdk/integrations/get", json={"name": "Graph", "scope": org}).json()["oauth"]
    assert oauth["token_url"] == "https://login/tenant-9/token" and oauth["client_secret"] == "s"
    assert oauth["access_token"] and oauth["scopes"] == ["a", "b"] and oauth["connection_name"] == "Graph"


def test_fault_injection_and_request_log(bf: FakeBifrost, api: httpx.Client) -> None:
    bf.fail_next(1, 500)
    r = api.get("/api/integrations")
    assert (r.status_code, r.json()["error"]) == (500, "internal_error")
    assert api.get("/api/integrations").status_code == 200

    bf.fail_next(1, 429, retry_after=2, match=lambda method, path: method == "POST")
    assert api.get("/api/integrations").status_code == 200  # not matched
    r = api.post("/api/integrations", json={"name": "X"})
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    assert bf.state.integrations == {}

    bf.fail_next(1, "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        api.get("/api/organizations")

    bf.fail_next(1, "drop_after", match=lambda m, p: p == "/api/integrations")
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/api/integrations", json={"name": "Landed"})
    assert bf.state.integration_by_name("Landed") is not None  # applied, response lost

    bf.fail_next(1, "slow", delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        api.get("/api/integrations", timeout=0.1)
    bf.wait_idle()

    counts = bf.counts()
    assert counts["GET /api/integrations"] == 4
    assert counts["POST /api/integrations"] == 2
    assert bf.count("GET", "/api/organizations") == 1
    assert [r.status for r in bf.requests][:2] == [500, 200]
    assert bf.errors == []
