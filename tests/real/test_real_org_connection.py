"""An organization's own OAuth connection (`oauth: own`) against the real Bifrost API.

What the real server shows: a mapping declared own with an authorization-code provider plans as
`missing` (Bifrost has no token linked to it), `connect` gets a per-mapping authorization URL
from Bifrost itself (host and path checked; the signed state is never printed, not even in an
assertion message), and a mapping declared own on an integration without a provider is refused
by validate before anything is sent.
"""

from __future__ import annotations

import json
import secrets as rnd
import shutil
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyrage  # type: ignore[import-untyped]
import pytest

from bifrost_gitops.deploy.connect import CI_VARIABLES
from deploy.deploy_support import seal_file
from support import API, run_cli

from .conftest import RealBifrost
from .test_real_deploy import Repo, _write

SFX = rnd.token_hex(4)
XERO, GRAPH = f"RtOwn_{SFX}", f"RtOwnCc_{SFX}"
ORGS = ("own", "shared")


@pytest.fixture(autouse=True)
def _not_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """`connect` refuses to run in CI: these tests run it as an admin's machine would."""
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _mapping(org: str, own: bool, integration: str = XERO) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "Mapping",
        "integration": integration,
        "organization": org,
        "entity_id": f"{org}-1",
    }
    return {**doc, "oauth": "own"} if own else doc


@pytest.fixture(scope="module")
def repo(real_bifrost: RealBifrost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    root = tmp_path_factory.mktemp("realown")
    token = json.loads(real_bifrost.credentials.read_text(encoding="utf-8"))["access_token"]
    ids: dict[str, str] = {}
    with httpx.Client(
        base_url=real_bifrost.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as h:
        for name in ORGS:
            r = h.post("/api/organizations", json={"name": f"rt-{name}-{SFX}"})
            assert r.status_code in (200, 201), r.text
            ids[name] = str(r.json()["id"])
    (root / "bifrost-gitops.yaml").write_text(API + "kind: Project\n", encoding="utf-8")
    orgs = [{"name": n, "id": ids[n], "display_name": f"rt-{n}-{SFX}"} for n in ORGS]
    _write(root, "organizations.yaml", {"kind": "Organizations", "organizations": orgs})
    oauth = {
        "flow": "authorization_code",
        "authorization_url": "https://login.example.invalid/oauth2/authorize",
        "token_url": "https://login.example.invalid/oauth2/token",
        "scopes": ["accounting.read"],
        "client_id": f"rt-app-{SFX}",
    }
    integ = {"kind": "Integration", "name": XERO, "oauth": oauth, "config_schema": []}
    _write(root, f"integrations/{XERO}/integration.yaml", integ)
    _write(root, f"integrations/{XERO}/mappings/own.yaml", _mapping("own", True))
    _write(root, f"integrations/{XERO}/mappings/shared.yaml", _mapping("shared", False))
    # client credentials: a templated token URL (Bifrost fetches per get; apply plans no refresh)
    cc = {
        "flow": "client_credentials",
        "token_url": "https://login.example.invalid/{entity_id}/oauth2/token",
        "client_id": f"rt-cc-{SFX}",
    }
    _write(root, f"integrations/{GRAPH}/integration.yaml", {**integ, "name": GRAPH, "oauth": cc})
    _write(root, f"integrations/{GRAPH}/mappings/own.yaml", _mapping("own", True, GRAPH))
    ident = pyrage.x25519.Identity.generate()
    secret = {"client_secret": f"rt-secret-{SFX}"}
    seal_file(
        root / f"integrations/{GRAPH}/integration.yaml",
        ["oauth", "secrets"],
        secret,
        str(ident.to_public()),
        str(ident),
    )
    made = Repo(root, real_bifrost, str(ident), str(ident.to_public()), ids)
    yield made
    with httpx.Client(
        base_url=real_bifrost.url, headers={"Authorization": f"Bearer {made.token()}"}, timeout=60
    ) as h:
        listed = h.get("/api/integrations")
        for item in listed.json().get("items", []) if listed.status_code == 200 else []:
            if item.get("name") in (XERO, GRAPH):
                h.delete(f"/api/integrations/{item['id']}")
        for org_id in ids.values():
            h.delete(f"/api/organizations/{org_id}")


def test_an_own_connection_plans_as_missing_and_nothing_to_send(repo: Repo) -> None:
    applied = repo.cli("apply", str(repo.root), "-y")
    assert applied.code == 0, applied.output
    run = repo.cli("plan", str(repo.root), "--format", "json", "--exit-code")
    assert run.code == 0, run.output  # a missing token is not a change: apply has nothing to send
    doc = json.loads(run.stdout)
    states = {c["address"]: (c["state"], c["advice"]) for c in doc["connections"]}
    assert {a: s for a, (s, _) in states.items()} == {f"{GRAPH}/own": "missing", f"{XERO}/own": "missing"}
    assert f"bifrost-gitops connect {XERO} {repo.org_ids['own']}" in states[f"{XERO}/own"][1]
    assert "cannot create it over its API" in states[f"{GRAPH}/own"][1]
    assert [d for d in doc["drift"] if SFX in d] == [] and doc["operations"] == []  # others share the server
    assert "state=" not in run.output and "response_type" not in run.output


def test_connect_returns_bifrosts_authorization_url(repo: Repo) -> None:
    run = repo.cli("connect", XERO, f"rt-own-{SFX}")
    assert run.code == 0, run.stderr  # stderr only: stdout holds the signed state
    url = urllib.parse.urlsplit(run.stdout.strip())
    query = urllib.parse.parse_qs(url.query)
    assert (url.scheme, url.netloc, url.path) == ("https", "login.example.invalid", "/oauth2/authorize")
    assert query["client_id"] == [f"rt-app-{SFX}"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == [f"{repo.bf.url}/oauth/callback/{XERO}"]
    assert query["scope"] == ["accounting.read"]
    assert len(query["state"][0]) > 20  # a signed state is there (never shown)
    assert "state=" not in run.stderr
    # the mapping has no token until an admin completes the flow: still missing, nothing linked
    again = repo.cli("plan", str(repo.root), "--format", "json")
    assert [c["state"] for c in json.loads(again.stdout)["connections"]] == ["missing", "missing"]


def test_connect_on_client_credentials_says_what_bifrost_answered(repo: Repo) -> None:
    run = repo.cli("connect", GRAPH, repo.org_ids["own"])
    assert run.code == 2 and run.stdout == "", run.output
    assert "does not require user authorization" in run.stderr  # Bifrost's own 400 detail
    checked = run_cli("validate", str(repo.root), env={"SOPS_AGE_KEY": repo.identity})
    assert checked.code == 0 and "C013" in checked.stdout, checked.output


def test_connect_in_ci_is_refused(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """(That nothing is sent first is shown against the fake server, which counts requests.)"""
    monkeypatch.setenv("CI", "true")
    run = repo.cli("connect", XERO, repo.org_ids["own"])
    assert run.code == 2 and run.stdout == "" and "refuses to run in CI" in run.stderr


def test_own_connection_without_a_provider_is_refused_by_validate(repo: Repo, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(repo.root, copy)
    _write(
        copy,
        f"integrations/{XERO}/integration.yaml",
        {"kind": "Integration", "name": XERO, "config_schema": []},
    )
    run = run_cli("validate", str(copy))
    assert run.code == 1 and "C012" in run.stdout, run.output
    planned = repo.cli("plan", str(copy))
    assert planned.code == 1 and "C012" in planned.output
