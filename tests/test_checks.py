"""One test per rule: the code, the file and the line a user is pointed at."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from support import API, ENC, FAKE_SOPS, codes, dedent, line_of, load, only

MAPPING = "integrations/HaloPSA/mappings/contoso.yaml"
INTEGRATION = "integrations/HaloPSA/integration.yaml"


def mapping(body: str, org: str = "contoso", integration: str = "HaloPSA", entity_id: str = '"12"') -> str:
    return (
        API
        + f"kind: Mapping\nintegration: {integration}\norganization: {org}\nentity_id: {entity_id}\n"
        + dedent(body)
    )


def check_one(make_repo: Any, files: Mapping[str, str | None], code: str) -> tuple[Any, Any]:
    result = load(make_repo(files))
    return result, only(result, code)


def assert_at(d: Any, path: str, text: str, needle: str, occurrence: int = 1) -> None:
    assert d.path == path, d
    assert d.line == line_of(text, needle, occurrence), d
    assert d.col >= 1


# --- Y005: YAML 1.1 traps ------------------------------------------------------------------

TRAP_INTEGRATION = API + dedent(
    """
    kind: Integration
    name: Legacy
    config_schema:
      - {key: region, type: string}
      - {key: version, type: string}
      - {key: zip, type: string}
      - {key: since, type: string}
    """
)


@pytest.mark.parametrize(
    ("line", "quoted"),
    [
        pytest.param("region: no", '"no"', id="bool-no"),
        pytest.param("region: off", '"off"', id="bool-off"),
        pytest.param("version: 1.10", '"1.10"', id="float"),
        pytest.param("zip: 01234", '"01234"', id="octal-int"),
        pytest.param("since: 2024-01-01", '"2024-01-01"', id="date"),
    ],
)
@pytest.mark.parametrize("where", ["defaults", "mapping"])
def test_yaml11_trap_on_string_config_key_is_y005(make_repo: Any, line: str, quoted: str, where: str) -> None:
    if where == "defaults":
        text = TRAP_INTEGRATION + f"defaults:\n  config:\n    {line}\n"
        files = {"integrations/Legacy/integration.yaml": text}
        path = "integrations/Legacy/integration.yaml"
    else:
        text = mapping(f"config:\n  {line}\n", integration="Legacy")
        path = "integrations/Legacy/mappings/contoso.yaml"
        files = {"integrations/Legacy/integration.yaml": TRAP_INTEGRATION, path: text}
    _, d = check_one(make_repo, files, "Y005")
    assert_at(d, path, text, line)
    indent = 4 if where == "defaults" else 2
    assert d.col == indent + len(line.split(": ")[0]) + 3  # the value's column
    assert quoted in d.hint
    assert d.severity == "error"


def test_trap_on_mapping_entity_id_is_y005(make_repo: Any) -> None:
    text = mapping("", entity_id="12345")
    result, d = check_one(make_repo, {MAPPING: text}, "Y005")
    assert_at(d, MAPPING, text, "entity_id: 12345")
    assert d.col == len("entity_id: ") + 1
    assert '"12345"' in d.hint
    assert codes(result) == ["Y005"]  # not reported twice as a schema error too


def test_quoted_trap_values_are_clean(make_repo: Any) -> None:
    text = mapping(
        'config:\n  region: "no"\n  version: "1.10"\n  zip: "01234"\n  since: "2024-01-01"\n',
        integration="Legacy",
    )
    result = load(
        make_repo(
            {
                "integrations/Legacy/integration.yaml": TRAP_INTEGRATION,
                "integrations/Legacy/mappings/contoso.yaml": text,
            }
        )
    )
    assert result.diagnostics == []


# --- S001 / S002: structure ----------------------------------------------------------------


def test_unknown_field_is_s001_with_did_you_mean(make_repo: Any) -> None:
    text = mapping("entity_nme: Contoso\n")
    _, d = check_one(make_repo, {MAPPING: text}, "S001")
    assert_at(d, MAPPING, text, "entity_nme")
    assert d.col == 1
    assert "entity_nme" in d.message
    assert "entity_name" in d.hint


def test_unknown_field_in_config_schema_item_is_s001(make_repo: Any) -> None:
    text = API + dedent(
        """
        kind: Integration
        name: HaloPSA
        config_schema:
          - {key: url, type: string}
          - key: page_size
            type: int
            requried: true
        """
    )
    _, d = check_one(make_repo, {INTEGRATION: text}, "S001")
    assert_at(d, INTEGRATION, text, "requried")
    assert "required" in d.hint


def test_missing_required_field_is_s001(make_repo: Any) -> None:
    text = API + "kind: Mapping\nintegration: HaloPSA\norganization: contoso\n"
    _, d = check_one(make_repo, {MAPPING: text}, "S001")
    assert d.path == MAPPING
    assert "entity_id" in d.message


def test_unknown_kind_is_s002_with_did_you_mean(make_repo: Any) -> None:
    text = mapping("").replace("kind: Mapping", "kind: Mappng")
    _, d = check_one(make_repo, {MAPPING: text}, "S002")
    assert_at(d, MAPPING, text, "kind: Mappng")
    assert "Mappng" in d.message
    assert "Mapping" in d.hint


def test_unknown_api_version_is_s002(make_repo: Any) -> None:
    text = mapping("").replace("bifrost-gitops/v1", "bifrost-gitops/v2")
    _, d = check_one(make_repo, {MAPPING: text}, "S002")
    assert_at(d, MAPPING, text, "apiVersion")
    assert "bifrost-gitops/v1" in d.message + (d.hint or "")


def test_second_project_is_s003(make_repo: Any) -> None:
    _, d = check_one(make_repo, {"sub/bifrost-gitops.yaml": API + "kind: Project\n"}, "S003")
    assert d.path == "sub/bifrost-gitops.yaml"


# --- R001..R006: names and references ------------------------------------------------------


def test_duplicate_org_name_is_r001(make_repo: Any) -> None:
    more = API + "kind: Organizations\norganizations:\n  - name: tailspin\n  - name: contoso\n"
    _, d = check_one(make_repo, {"orgs-more.yaml": more}, "R001")
    assert_at(d, "orgs-more.yaml", more, "name: contoso")
    assert "contoso" in d.message
    assert "organizations.yaml:4" in d.message  # names where the first one is


def test_duplicate_org_in_same_file_is_r001(make_repo: Any) -> None:
    orgs = (
        API
        + "kind: Organizations\norganizations:\n  - name: contoso\n  - name: fabrikam\n  - name: contoso\n"
    )
    _, d = check_one(make_repo, {"organizations.yaml": orgs}, "R001")
    assert_at(d, "organizations.yaml", orgs, "name: contoso", 2)


PROVIDER = (
    API
    + dedent(
        f"""
        kind: OAuthProvider
        name: microsoft
        flow: client_credentials
        token_url: https://login.microsoftonline.com/{{entity_id}}/oauth2/v2.0/token
        scopes: [https://graph.microsoft.com/.default]
        client_id: 0b7f1111-2222-3333-4444-555566667777
        secrets:
          client_secret: {ENC}
        """
    )
    + FAKE_SOPS
)


def test_duplicate_provider_name_case_insensitive_is_r001(make_repo: Any) -> None:
    other = PROVIDER.replace("name: microsoft", "name: Microsoft")
    _, d = check_one(make_repo, {"oauth/microsoft.yaml": PROVIDER, "oauth/zz-microsoft.yaml": other}, "R001")
    assert_at(d, "oauth/zz-microsoft.yaml", other, "name: Microsoft")
    assert "oauth/microsoft.yaml" in d.message


def test_duplicate_integration_name_case_insensitive_is_r001(make_repo: Any) -> None:
    other = API + "kind: Integration\nname: halopsa\nconfig_schema: []\n"
    _, d = check_one(make_repo, {"integrations/halo2/integration.yaml": other}, "R001")
    assert_at(d, "integrations/halo2/integration.yaml", other, "name: halopsa")
    assert "HaloPSA" in d.message


def test_unknown_organization_is_r002_with_did_you_mean(make_repo: Any) -> None:
    text = mapping("", org="contosso")
    _, d = check_one(make_repo, {MAPPING: text}, "R002")
    assert_at(d, MAPPING, text, "organization: contosso")
    assert d.col == len("organization: ") + 1
    assert "contoso" in d.hint


def test_unknown_integration_is_r003_with_did_you_mean(make_repo: Any) -> None:
    text = mapping("", integration="HaloPS")
    _, d = check_one(make_repo, {MAPPING: text}, "R003")
    assert_at(d, MAPPING, text, "integration: HaloPS")
    assert "HaloPSA" in d.hint


def test_duplicate_mapping_is_r004(make_repo: Any) -> None:
    second = mapping("config:\n  page_size: 7\n")
    path = "integrations/HaloPSA/mappings/zz-contoso.yaml"
    _, d = check_one(make_repo, {path: second}, "R004")
    assert_at(d, path, second, "organization: contoso")
    assert MAPPING in d.message


def test_unknown_oauth_provider_is_r005(make_repo: Any) -> None:
    integ = API + "kind: Integration\nname: Graph\noauth:\n  provider: microsft\nconfig_schema: []\n"
    path = "integrations/Graph/integration.yaml"
    _, d = check_one(make_repo, {"oauth/microsoft.yaml": PROVIDER, path: integ}, "R005")
    assert_at(d, path, integ, "provider: microsft")
    assert "microsoft" in d.hint


def test_duplicate_schema_key_is_r006(make_repo: Any) -> None:
    text = API + dedent(
        """
        kind: Integration
        name: HaloPSA
        config_schema:
          - {key: url, type: string}
          - {key: page_size, type: int}
          - {key: url, type: string}
        """
    )
    _, d = check_one(make_repo, {INTEGRATION: text}, "R006")
    assert_at(d, INTEGRATION, text, "key: url", 2)
    assert f"line {line_of(text, 'key: url')}" in d.message


def test_two_organizations_with_one_id_is_r001_naming_both(make_repo: Any) -> None:
    orgs = API + dedent(
        """
        kind: Organizations
        organizations:
          - name: contoso
            id: 6B1E3F0A-1111-4222-8333-444455556666
          - name: fabrikam
            id: 6b1e3f0a-1111-4222-8333-444455556666
        """
    )
    _, d = check_one(make_repo, {"organizations.yaml": orgs}, "R001")
    assert_at(d, "organizations.yaml", orgs, "id: 6b1e")  # the second one, whatever its case
    assert "'fabrikam' has the same id as 'contoso'" in d.message
    assert f"organizations.yaml:{line_of(orgs, 'id: 6B1E')}" in d.message


def test_options_on_a_key_that_is_not_a_string_is_s001(make_repo: Any) -> None:
    text = API + dedent(
        """
        kind: Integration
        name: HaloPSA
        config_schema:
          - {key: url, type: string, required: true}
          - key: page_size
            type: int
            options: ["10", "50"]
        """
    )
    _, d = check_one(make_repo, {INTEGRATION: text}, "S001")
    assert_at(d, INTEGRATION, text, "options:")
    assert d.message == "options apply to string keys, not to int key 'page_size'"


# --- C001..C009: config values -------------------------------------------------------------


def test_unknown_config_key_is_c001_with_did_you_mean(make_repo: Any) -> None:
    text = mapping("config:\n  pagesize: 10\n")
    _, d = check_one(make_repo, {MAPPING: text}, "C001")
    assert_at(d, MAPPING, text, "pagesize")
    assert d.col == 3
    assert "page_size" in d.hint


def test_unknown_key_in_defaults_is_c001(make_repo: Any) -> None:
    text = API + dedent(
        """
        kind: Integration
        name: HaloPSA
        config_schema:
          - {key: url, type: string}
        defaults:
          config:
            URL: https://x
        """
    )
    _, d = check_one(make_repo, {INTEGRATION: text, MAPPING: None}, "C001")
    assert_at(d, INTEGRATION, text, "URL:")
    assert "'url'" in d.hint


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        pytest.param("page_size: true", "int", id="bool-is-not-int"),
        pytest.param('page_size: "5"', "int", id="quoted-int"),
        pytest.param("page_size: 5.5", "int", id="float-for-int"),
        pytest.param('beta: "yes"', "bool", id="quoted-yes-for-bool"),
        pytest.param("beta: 1", "bool", id="int-for-bool"),
        pytest.param("url: [a, b]", "string", id="list-for-string"),
    ],
)
def test_type_mismatch_is_c002(make_repo: Any, line: str, needle: str) -> None:
    text = mapping(f"config:\n  {line}\n")
    _, d = check_one(make_repo, {MAPPING: text}, "C002")
    assert_at(d, MAPPING, text, line)
    assert needle in d.message


def test_quoted_number_hint_says_unquote(make_repo: Any) -> None:
    _, d = check_one(make_repo, {MAPPING: mapping('config:\n  page_size: "5"\n')}, "C002")
    assert "unquoted" in d.hint


def test_json_key_accepts_any_yaml_value(make_repo: Any) -> None:
    for value in ["[1, two, {three: 3}]", "{a: {b: [true, null]}}", "just text", "42", "3.5", "false"]:
        result = load(make_repo({MAPPING: mapping(f"config:\n  extra: {value}\n")}))
        assert not result.errors, value
        # text that is not JSON is valid, but Bifrost's API would refuse it: a warning says so
        assert [d.code for d in result.diagnostics] == (["C010"] if value == "just text" else []), value


def test_option_not_allowed_is_c003(make_repo: Any) -> None:
    text = mapping("config:\n  region: fr\n")
    _, d = check_one(make_repo, {MAPPING: text}, "C003")
    assert_at(d, MAPPING, text, "region: fr")
    assert "us" in d.hint and "eu" in d.hint


def test_secret_key_under_config_is_c004(make_repo: Any) -> None:
    text = mapping("config:\n  api_key: hunter2\n")
    _, d = check_one(make_repo, {MAPPING: text}, "C004")
    assert_at(d, MAPPING, text, "api_key")
    assert "secrets" in d.message


def test_non_secret_key_under_secrets_is_c005(make_repo: Any) -> None:
    text = mapping(f"secrets:\n  page_size: {ENC}\n") + FAKE_SOPS
    _, d = check_one(make_repo, {MAPPING: text}, "C005")
    assert_at(d, MAPPING, text, "page_size")
    assert "config" in d.message


REQUIRED_INTEGRATION = API + dedent(
    """
    kind: Integration
    name: HaloPSA
    config_schema:
      - {key: url, type: string, required: true}
      - {key: tenant, type: string, required: true}
      - {key: page_size, type: int}
    defaults:
      config:
        url: https://halo.example.com
    """
)


def test_required_key_missing_for_mapped_org_is_c006_naming_org(make_repo: Any) -> None:
    text = mapping("config:\n  page_size: 3\n")
    _result, d = check_one(make_repo, {INTEGRATION: REQUIRED_INTEGRATION, MAPPING: text}, "C006")
    assert d.path == MAPPING
    assert d.line >= 1
    assert "'contoso'" in d.message
    assert "'tenant'" in d.message
    assert d.severity == "error"


def test_required_key_from_defaults_or_override_is_satisfied(make_repo: Any) -> None:
    text = mapping("config:\n  tenant: t1\n")
    result = load(make_repo({INTEGRATION: REQUIRED_INTEGRATION, MAPPING: text}))
    # contoso is satisfied; only the defaults-only view (fabrikam) lacks 'tenant'
    assert codes(result) == ["C007"]


def many_orgs(n: int) -> str:
    return API + "kind: Organizations\norganizations:\n" + "".join(f"  - name: org-{i}\n" for i in range(n))


def test_defaults_missing_required_key_is_one_c007_warning(make_repo: Any, cli: Any) -> None:
    files = {INTEGRATION: REQUIRED_INTEGRATION, MAPPING: None, "organizations.yaml": many_orgs(25)}
    root = make_repo(files)
    result = load(root)
    assert codes(result) == ["C007"]
    d = result.diagnostics[0]
    assert d.severity == "warning"
    assert d.path == INTEGRATION
    assert "'tenant'" in d.message
    assert "25" in d.message
    assert cli("validate", str(root)).code == 0
    assert cli("validate", "--strict", str(root)).code == 1


GRAPH = API + dedent(
    """
    kind: Integration
    name: Graph
    oauth: {provider: microsoft}
    config_schema: []
    """
)
GRAPH_PATH = "integrations/Graph/integration.yaml"
GRAPH_MAP = "integrations/Graph/mappings/contoso.yaml"


def test_token_url_entity_id_missing_for_mapped_org_is_c008(make_repo: Any) -> None:
    text = mapping("", integration="Graph", entity_id='""')
    result = load(make_repo({"oauth/microsoft.yaml": PROVIDER, GRAPH_PATH: GRAPH, GRAPH_MAP: text}))
    d = only(result, "C008")
    assert_at(d, GRAPH_MAP, text, "entity_id:")
    assert "'contoso'" in d.message
    assert d.severity == "error"


def test_default_entity_id_fills_token_url(make_repo: Any) -> None:
    text = mapping("", integration="Graph", entity_id='""')
    graph = GRAPH.replace("config_schema: []", "default_entity_id: common\nconfig_schema: []")
    result = load(make_repo({"oauth/microsoft.yaml": PROVIDER, GRAPH_PATH: graph, GRAPH_MAP: text}))
    assert result.diagnostics == []


def test_unmapped_orgs_without_default_entity_id_is_c009_warning(make_repo: Any) -> None:
    text = mapping("", integration="Graph", entity_id="7c1a0f3e-tenant")
    orgs = many_orgs(10).replace("  - name: org-0\n", "  - name: contoso\n")
    result = load(
        make_repo(
            {
                "oauth/microsoft.yaml": PROVIDER,
                GRAPH_PATH: GRAPH,
                GRAPH_MAP: text,
                "organizations.yaml": orgs,
                MAPPING: None,
            }
        )
    )
    d = only(result, "C009")
    assert d.severity == "warning"
    assert_at(d, GRAPH_PATH, GRAPH, "oauth:")
    assert codes(result) == ["C009"]


def test_inline_oauth_block_is_checked_too(make_repo: Any) -> None:
    graph = API + dedent(
        """
        kind: Integration
        name: Graph
        oauth:
          flow: client_credentials
          token_url: https://login.example.com/{entity_id}/token
          client_id: abc
          secrets:
            client_secret: plain-text-oops
        config_schema: []
        """
    )
    result = load(make_repo({GRAPH_PATH: graph}))
    d = only(result, "K002")
    assert d.path == GRAPH_PATH
    assert "C009" in codes(result)


@pytest.mark.parametrize(
    ("oauth", "needle", "message"),
    [
        pytest.param(
            "flow: client_credentials\n  token_url: https://login.example.com/token\n",
            "flow:",
            "flow client_credentials needs secrets.client_secret",
            id="client-credentials-without-secret",
        ),
        pytest.param(
            "flow: authorization_code\n  token_url: https://login.example.com/token\n",
            "flow:",
            "flow authorization_code needs authorization_url",
            id="authorization-code-without-url",
        ),
        pytest.param(
            "token_url: https://login.example.com/token\n",  # the flow defaults to authorization_code
            "token_url:",  # no flow: line, so the oauth block itself (its first line)
            "flow authorization_code needs authorization_url",
            id="default-flow-without-url",
        ),
    ],
)
def test_oauth_settings_bifrost_refuses_are_s001(
    make_repo: Any, oauth: str, needle: str, message: str
) -> None:
    graph = API + f"kind: Integration\nname: Graph\noauth:\n  {oauth}  client_id: abc\nconfig_schema: []\n"
    _, d = check_one(make_repo, {GRAPH_PATH: graph}, "S001")
    assert_at(d, GRAPH_PATH, graph, needle)
    assert d.message == message


def test_loopback_http_token_url_is_a_c011_warning(make_repo: Any) -> None:
    """Accepted for a local token server (the runtime uses it), but Bifrost's API wants https."""
    graph = API + (
        "kind: Integration\nname: Graph\noauth:\n  flow: authorization_code\n"
        "  authorization_url: https://login.example.com/authorize\n"
        "  token_url: http://127.0.0.1:8080/token\n  client_id: abc\nconfig_schema: []\n"
    )
    result, d = check_one(make_repo, {GRAPH_PATH: graph}, "C011")
    assert_at(d, GRAPH_PATH, graph, "token_url:")
    assert d.severity == "warning" and "https" in d.message
    assert not result.errors  # a warning: --strict makes it fail
    elsewhere = graph.replace("http://127.0.0.1:8080", "http://tokens.example.com")
    assert "S001" in codes(load(make_repo({GRAPH_PATH: elsewhere})))  # http off loopback: refused


def test_ciphertext_as_a_plain_config_value_is_c002(make_repo: Any) -> None:
    text = mapping(f"config:\n  region: {ENC}\n")
    _, d = check_one(make_repo, {MAPPING: text}, "C002")
    assert_at(d, MAPPING, text, "region:")
    assert d.message == "'region' is a string key but its value is sops ciphertext"
    assert "encrypted_regex" in d.hint


# --- K001 / K002: secrets ------------------------------------------------------------------


def test_clear_text_secret_in_sops_file_is_k001(make_repo: Any) -> None:
    text = mapping("secrets:\n  api_key: not-encrypted\n") + FAKE_SOPS
    _result, d = check_one(make_repo, {MAPPING: text}, "K001")
    assert_at(d, MAPPING, text, "api_key:")
    assert d.severity == "error"
    assert "sops" in d.hint


def test_encrypted_secret_in_sops_file_is_clean(make_repo: Any) -> None:
    text = mapping(f"secrets:\n  api_key: {ENC}\n") + FAKE_SOPS
    assert load(make_repo({MAPPING: text})).diagnostics == []


def test_secrets_without_sops_metadata_is_k002(make_repo: Any) -> None:
    text = mapping(f"secrets:\n  api_key: {ENC}\n")
    _, d = check_one(make_repo, {MAPPING: text}, "K002")
    assert_at(d, MAPPING, text, "secrets:")
    assert "sops" in d.hint


def test_provider_clear_client_secret_is_k001(make_repo: Any) -> None:
    text = PROVIDER.replace(ENC, "clear-value")
    _, d = check_one(make_repo, {"oauth/microsoft.yaml": text}, "K001")
    assert_at(d, "oauth/microsoft.yaml", text, "client_secret:")


def test_emptied_sops_block_is_k003_listing_everything_missing(make_repo: Any) -> None:
    text = mapping(f"secrets:\n  api_key: {ENC}\n") + "sops:\n"
    _, d = check_one(make_repo, {MAPPING: text}, "K003")
    assert_at(d, MAPPING, text, "sops:")
    assert d.message == (
        "sops metadata is incomplete: no encrypted mac, no lastmodified, no master key (age, pgp, kms, ...)"
    )


# --- everything at once, files that are not ours, exclude ----------------------------------


def test_all_findings_are_reported_at_once(make_repo: Any) -> None:
    files = {
        MAPPING: mapping("config:\n  pagesize: 10\n"),  # C001
        "integrations/HaloPSA/mappings/fabrikam.yaml": mapping("", org="fabrikm"),  # R002
        "broken.yaml": "a: [1, 2\n",  # Y001
        "dupe.yaml": "a: 1\na: 2\n",  # Y002
        "integrations/Other/integration.yaml": API
        + "kind: Integration\nname: Other\nconfig_schema:\n  - {key: a, type: strng}\n",  # S001
    }
    result = load(make_repo(files))
    found = {(d.code, d.path) for d in result.diagnostics}
    assert found >= {
        ("C001", MAPPING),
        ("R002", "integrations/HaloPSA/mappings/fabrikam.yaml"),
        ("Y001", "broken.yaml"),
        ("Y002", "dupe.yaml"),
        ("S001", "integrations/Other/integration.yaml"),
    }
    assert len(result.diagnostics) == 5, result.diagnostics


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("on: [push]\njobs: {}\n", id="github-workflow-on-key"),
        pytest.param("responses:\n  200: {description: ok}\n  404: {description: nope}\n", id="int-keys"),
    ],
)
def test_foreign_files_with_non_text_keys_are_ignored(make_repo: Any, text: str) -> None:
    result = load(make_repo({"ci/foreign.yaml": text}))
    assert result.diagnostics == []


def test_files_that_are_not_ours_are_ignored(make_repo: Any) -> None:
    files = {
        "list.yaml": "- a\n- b\n- {c: d}\n",
        "docker-compose.yml": dedent(
            """
            version: "3.9"
            services:
              web:
                image: nginx:1.25
                ports: ["80:80"]
            """
        ),
        "ci/workflow.yaml": "name: ci\njobs: {build: {runs-on: ubuntu-latest}}\n",
        "scalar.yaml": "just a string\n",
        "k8s.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    }
    result = load(make_repo(files))
    assert result.diagnostics == []


def test_exclude_in_project_skips_files(make_repo: Any) -> None:
    files = {
        "bifrost-gitops.yaml": API + "kind: Project\nexclude:\n  - vendor\n  - '*.generated.yaml'\n",
        "vendor/junk.yaml": "a: [1\n",
        "vendor/deep/dupe.yaml": "a: 1\na: 2\n",
        "out.generated.yaml": mapping("", org="nobody"),
    }
    result = load(make_repo(files))
    assert result.diagnostics == []
    without = load(make_repo({k: v for k, v in files.items() if k != "bifrost-gitops.yaml"}))
    assert {d.path for d in without.diagnostics} == {
        "vendor/junk.yaml",
        "vendor/deep/dupe.yaml",
        "out.generated.yaml",
    }


def test_base_repository_is_clean(make_repo: Any) -> None:
    result = load(make_repo())
    assert result.diagnostics == []
    assert result.files == 4


@pytest.mark.parametrize("value", [".nan", ".inf", "[1, -.inf]", "{a: {b: .NaN}}"])
def test_json_rejects_nan_and_infinity_c002(make_repo: Any, value: str) -> None:
    text = mapping(f"config:\n  extra: {value}\n")
    _, d = check_one(make_repo, {MAPPING: text}, "C002")
    assert_at(d, MAPPING, text, "extra:")


def test_one_mistake_gives_one_finding(make_repo: Any) -> None:
    """A declaration that fails its schema still counts: references to it are not reported."""
    orgs = API + "kind: Organizations\norganizations:\n  - name: contoso\n    tenant: x\n  - name: fabrikam\n"
    result = load(make_repo({"organizations.yaml": orgs}))
    assert codes(result) == ["S001"], result.diagnostics
    integ = API + "kind: Integration\nname: HaloPSA\nconfig_schema: {}\n"
    result = load(make_repo({"integrations/HaloPSA/integration.yaml": integ}))
    assert codes(result) == ["S001"], result.diagnostics


def test_warnings_and_errors_are_sorted_by_file_and_line(make_repo: Any) -> None:
    files = {
        MAPPING: mapping("config:\n  region: fr\n  pagesize: 1\n"),
        "a.yaml": "a: 1\na: 2\n",
    }
    result = load(make_repo(files))
    keys = [(d.path, d.line, d.col) for d in result.diagnostics]
    assert keys == sorted(keys)
    assert len(keys) == 3
