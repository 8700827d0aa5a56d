"""`oauth: own` on a mapping (an organization's own OAuth connection): validate, schema, diff."""

from __future__ import annotations

from typing import Any

from support import API, codes, dedent, line_of, load, only, run_cli

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
