"""`oauth: own` on a mapping (an organization's own OAuth connection): validate, schema, diff."""

from __future__ import annotations

import json
import secrets as rnd
from pathlib import Path
from typing import Any

import pyrage  # type: ignore[import-untyped]
import pytest

from bifrost_gitops import bundle, repo, sops
from bifrost_gitops.runtime import Bundle
from deploy.deploy_support import seal_file
from support import API, BASE_FILES, codes, dedent, line_of, load, only, run_cli, write_repo
from test_diff import Git, changes_of, diff_json

MAP = "integrations/Graph/mappings/contoso.yaml"
GRAPH = "integrations/Graph/integration.yaml"


def integration(oauth: str) -> str:
    return API + dedent(
        f"""
        kind: Integration
        name: Graph
        {oauth}
        config_schema: []
        """
    )


AUTH_CODE = """oauth:
          flow: authorization_code
          authorization_url: https://login.example.invalid/authorize
          token_url: https://login.example.invalid/token
          client_id: app-1"""
CLIENT_CREDENTIALS = """oauth:
          flow: client_credentials
          token_url: https://login.example.invalid/token
          client_id: app-1"""


def own_mapping(extra: str = "oauth: own\n") -> str:
    return API + 'kind: Mapping\nintegration: Graph\norganization: contoso\nentity_id: "7"\n' + extra


def test_own_connection_with_an_authorization_code_provider_is_clean(make_repo: Any) -> None:
    result = load(make_repo({GRAPH: integration(AUTH_CODE), MAP: own_mapping()}))
    assert result.diagnostics == []


def test_own_connection_without_a_provider_is_c012(make_repo: Any) -> None:
    text = own_mapping()
    result = load(make_repo({GRAPH: integration(""), MAP: text}))
    d = only(result, "C012")
    assert (d.path, d.line, d.severity) == (MAP, line_of(text, "oauth: own"), "error")
    assert "'Graph' has no OAuth provider" in d.message


def test_own_connection_with_client_credentials_is_a_c013_warning_saying_what_to_do(make_repo: Any) -> None:
    result = load(make_repo({GRAPH: integration(CLIENT_CREDENTIALS), MAP: own_mapping()}))
    d = only(result, "C013")
    assert d.severity == "warning"
    assert "keeps the integration's token" in d.message
    assert "{entity_id}" in (d.hint or "")
    assert [d.code for d in result.diagnostics if d.path == MAP] == ["C013"]


def test_an_unknown_connection_word_is_a_schema_error(make_repo: Any) -> None:
    result = load(make_repo({GRAPH: integration(AUTH_CODE), MAP: own_mapping("oauth: mine\n")}))
    assert "S001" in codes(result) or "S002" in codes(result), codes(result)


def test_validate_cli_refuses_own_connection_without_provider(make_repo: Any) -> None:
    root = make_repo({GRAPH: integration(""), MAP: own_mapping()})
    r = run_cli("validate", str(root))
    assert r.code == 1
    assert f"{MAP}:6:8: C012" in r.output


# --- diff: a change of connection per organization ------------------------------------------


def test_diff_shows_the_connection_change_for_that_organization_only(tmp_path: Path) -> None:
    g = Git(tmp_path / "g")
    g.commit(
        "base",
        {
            **BASE_FILES,
            GRAPH: integration(AUTH_CODE),
            MAP: own_mapping(""),
            "integrations/Graph/mappings/fabrikam.yaml": own_mapping("").replace("contoso", "fabrikam"),
        },
    )
    g.commit("own", {MAP: own_mapping()})
    doc = diff_json(g, "--base", "HEAD~1")
    assert ("Graph", "oauth", "connection", '"shared"', '"own"') in changes_of(doc, "contoso"), doc
    assert "fabrikam" not in doc["changes"]


# --- runtime: the token source of each organization -----------------------------------------


def test_runtime_gives_an_own_connection_only_its_own_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ident = pyrage.x25519.Identity.generate()
    recipient, identity = str(ident.to_public()), str(ident)
    monkeypatch.setenv("SOPS_AGE_KEY", identity)
    shared, own = f"shared-{rnd.token_hex(4)}", f"own-{rnd.token_hex(4)}"
    fabrikam = own_mapping().replace("contoso", "fabrikam")
    root = write_repo(
        tmp_path / "repo",
        {
            GRAPH: integration(AUTH_CODE),
            MAP: own_mapping(),
            "integrations/Graph/mappings/fabrikam.yaml": fabrikam,
        },
    )
    seal_file(root / GRAPH, ["oauth", "secrets"], {"access_token": shared}, recipient, identity)
    seal_file(root / MAP, ["secrets"], {"access_token": own}, recipient, identity)
    result = repo.load(str(root))
    assert not result.errors, result.errors
    out = tmp_path / "bundle"
    bundle.write(result.catalog, result.root, str(out), "plain", keyring=sops.default_keyring())
    b = Bundle(out)
    contoso, fab, glob = (b.get("Graph", org) for org in ("contoso", "fabrikam", "global"))
    assert contoso is not None and contoso.oauth is not None
    assert (contoso.oauth.token_source, contoso.oauth.access_token) == ("own", own)
    assert fab is not None and fab.oauth is not None
    assert (fab.oauth.token_source, fab.oauth.access_token) == ("own", None)  # never the shared one
    assert glob is not None and glob.oauth is not None
    assert (glob.oauth.token_source, glob.oauth.access_token) == ("integration", shared)
    assert own not in repr(contoso) and "token_source" not in contoso.oauth.model_dump()
    org_file = json.loads((out / "orgs" / "fabrikam.json").read_text())
    assert org_file["own_connection"] == ["Graph"]
    assert shared not in (out / "orgs" / "fabrikam.json").read_text()


def test_explain_says_which_connection_an_organization_uses(make_repo: Any) -> None:
    root = make_repo({GRAPH: integration(AUTH_CODE), MAP: own_mapping()})
    r = run_cli("explain", str(root), "contoso", "Graph")
    assert r.code == 0, r.output
    assert f"connection  own: this organization's own account    {MAP}:6" in r.stdout
    doc = json.loads(run_cli("explain", str(root), "fabrikam", "Graph", "--format", "json").stdout)
    assert (doc["oauth"]["connection"], doc["oauth"]["connection_source"]) == ("shared", None)
