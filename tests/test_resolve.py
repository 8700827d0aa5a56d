"""Resolution exactly as Bifrost does it (docs/bifrost-api.md#resolution).

The repository used here (and by test_compile.py / test_explain.py, which import its builder)
carries real sops-encrypted secrets (age, TEST-ONLY-age-key.txt) holding canary values, so the
same repository proves both the rules and that no secret leaks. Resolution itself needs no key.
"""

from __future__ import annotations

import re
import secrets as rnd
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from bifrost_gitops import sops
from bifrost_gitops.resolve import SecretRef, resolve, resolve_org
from support import API, ROOT, dedent, load

KEY_FILE = ROOT / "examples" / "integrations" / "TEST-ONLY-age-key.txt"
REPO_RECIPIENT = "age17lkt25aqjtxlvdvklfh5ccp2kuy0jf0fclp9jyl45f30lfk5q4aq6cqnvz"

TOKEN = rnd.token_hex(6).upper()


def canary(tag: str) -> str:
    return f"CANARY-{tag}-{TOKEN}"


SECRETS = {
    "halo-default-api-key": canary("HALODEF"),
    "halo-contoso-api-key": canary("HALOCONTOSO"),
    "halo-contoso-pin": canary("PIN"),
    "halo-inline-client-secret": canary("HALOCS"),
    "halo-provider-refresh": canary("HALOREFRESH"),
    "halo-contoso-refresh": canary("CONTOSOREFRESH"),
    "halo-contoso-expires": canary("CONTOSOEXP"),
    "ms-client-secret": canary("MSCS"),
    "ms-access-token": canary("MSACCESS"),
}
#: Every secret value of the repository: none may ever reach stdout/stderr.
NEEDLES = [*SECRETS.values(), TOKEN]

ORG_IDS = {"contoso": "3f0c1d2e-0000-4000-8000-000000000001"}

HALO = "integrations/HaloPSA/integration.yaml"
HALO_CONTOSO = "integrations/HaloPSA/mappings/contoso.yaml"
HALO_FABRIKAM = "integrations/HaloPSA/mappings/fabrikam.yaml"
HALO_TAILSPIN = "integrations/HaloPSA/mappings/tailspin.yaml"
GRAPH = "integrations/Graph/integration.yaml"
GRAPH_CONTOSO = "integrations/Graph/mappings/contoso.yaml"
DOCS = "integrations/Docs/integration.yaml"
DOCS_TAILSPIN = "integrations/Docs/mappings/tailspin.yaml"
NINJA = "integrations/Ninja/integration.yaml"
MICROSOFT = "oauth/microsoft.yaml"

#: Clear-text sources; files with a secrets: block are sops-encrypted before they are written.
FILES: dict[str, str] = {
    "bifrost-gitops.yaml": API + "kind: Project\n",
    ".sops.yaml": dedent(
        f"""
        creation_rules:
          - path_regex: \\.ya?ml$
            encrypted_regex: ^secrets$
            mac_only_encrypted: true
            age: {REPO_RECIPIENT}
        """
    ),
    "organizations.yaml": API
    + dedent(
        f"""
        kind: Organizations
        organizations:
          - name: contoso
            id: {ORG_IDS["contoso"]}
            display_name: Contoso Ltd
          - name: fabrikam
          - name: northwind
            display_name: Northwind (no mapping anywhere)
          - name: tailspin
        """
    ),
    MICROSOFT: API
    + dedent(
        f"""
        kind: OAuthProvider
        name: microsoft
        flow: client_credentials
        authorization_url: https://login.example.com/common/authorize
        token_url: https://login.example.com/{{entity_id}}/oauth2/v2.0/token
        scopes: [https://graph.microsoft.com/.default, offline_access]
        client_id: ms-client-id
        secrets:
          client_secret: {SECRETS["ms-client-secret"]}
          access_token: {SECRETS["ms-access-token"]}
        """
    ),
    # default_entity_id AND entity_id; an inline provider with provider-level token material
    HALO: API
    + dedent(
        f"""
        kind: Integration
        name: HaloPSA
        id: 11111111-2222-4333-8444-555555555555
        default_entity_id: halo-default-entity
        entity_id: halo-global-entity
        oauth:
          flow: authorization_code
          authorization_url: https://halo.example.com/authorize
          token_url: https://halo.example.com/{{entity_id}}/token
          client_id: halo-client
          scopes: [all]
          secrets:
            client_secret: {SECRETS["halo-inline-client-secret"]}
            refresh_token: {SECRETS["halo-provider-refresh"]}
        config_schema:
          - {{key: url, type: string, required: true}}
          - {{key: page_size, type: int}}
          - {{key: verbose, type: bool}}
          - {{key: extra, type: json}}
          - {{key: region, type: string, options: [us, eu]}}
          - {{key: tenant, type: string}}
          - {{key: api_key, type: secret}}
          - {{key: pin, type: secret}}
        defaults:
          config:
            url: https://halo.example.com
            page_size: 100
            verbose: true
            extra: {{a: 1, nested: {{x: 1, y: 2}}}}
            tenant: msp
          secrets:
            api_key: {SECRETS["halo-default-api-key"]}
        """
    ),
    HALO_CONTOSO: API
    + dedent(
        f"""
        kind: Mapping
        integration: HaloPSA
        organization: contoso
        entity_id: "12"
        entity_name: Contoso in Halo
        config:
          page_size: 50
          verbose: false
          extra: {{nested: {{z: 3}}}}
          region: eu
          url: null
          tenant: ""
        secrets:
          api_key: {SECRETS["halo-contoso-api-key"]}
          pin: {SECRETS["halo-contoso-pin"]}
          refresh_token: {SECRETS["halo-contoso-refresh"]}
          expires_at: {SECRETS["halo-contoso-expires"]}
        """
    ),
    HALO_FABRIKAM: API
    + dedent(
        """
        kind: Mapping
        integration: HaloPSA
        organization: fabrikam
        entity_id: "13"
        config:
          region: us
        """
    ),
    # empty entity_id: default_entity_id, never the integration-level entity_id
    HALO_TAILSPIN: API
    + dedent(
        """
        kind: Mapping
        integration: HaloPSA
        organization: tailspin
        entity_id: ""
        """
    ),
    # entity_id but no default_entity_id: the provider's {entity_id} template
    GRAPH: API
    + dedent(
        """
        kind: Integration
        name: Graph
        entity_id: partner-tenant
        oauth: {provider: microsoft}
        config_schema:
          - {key: graph_url, type: string}
        defaults:
          config:
            graph_url: https://graph.microsoft.com/v1.0
        """
    ),
    GRAPH_CONTOSO: API
    + dedent(
        """
        kind: Mapping
        integration: Graph
        organization: contoso
        entity_id: tenant-contoso
        entity_name: contoso.onmicrosoft.com
        """
    ),
    # entity_id but no default_entity_id, no OAuth
    DOCS: API
    + dedent(
        """
        kind: Integration
        name: Docs
        entity_id: docs-global-entity
        config_schema:
          - {key: space, type: string}
        """
    ),
    DOCS_TAILSPIN: API
    + dedent(
        """
        kind: Mapping
        integration: Docs
        organization: tailspin
        entity_id: ""
        entity_name: Tailspin docs
        """
    ),
    # no entity id anywhere: the token URL stays the raw template
    NINJA: API
    + dedent(
        """
        kind: Integration
        name: Ninja
        oauth:
          authorization_url: https://app.ninja.example.com/oauth/authorize
          token_url: https://{entity_id}.ninja.example.com/oauth/token
          client_id: ninja-client
        config_schema:
          - {key: instance, type: string}
        """
    ),
}


def seal_yaml(text: str) -> str:
    """TEXT with its secrets: block encrypted as `sops encrypt` would (age, mac_only_encrypted)."""
    tree = sops.loads(text, "yaml")
    enc = sops.encrypt_document(
        tree, recipients=[REPO_RECIPIENT], encrypted_regex="^secrets$", mac_only_encrypted=True
    )
    return sops.dump_yaml(enc, indent=2)


def build_repo(root: Path, files: Mapping[str, str | None] | None = None) -> Path:
    """The repository above (plus FILES changes) in ROOT, secrets encrypted to the test key."""
    merged: dict[str, str | None] = {**FILES, **(files or {})}
    for rel, text in merged.items():
        if text is None:
            continue
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sealed = seal_yaml(text) if re.search(r"^ *secrets:", text, re.M) and "\nsops:" not in text else text
        path.write_text(sealed, encoding="utf-8")
    return root


@pytest.fixture
def isolated(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example's test key as SOPS_AGE_KEY_FILE, the only key there is (isolated_home is global)."""
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(KEY_FILE))
    return isolated_home


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repo(tmp_path_factory.mktemp("resolve") / "repo")


@pytest.fixture(scope="module")
def catalog(repo: Path) -> Any:
    result = load(repo)
    assert not result.errors, result.errors
    return result.catalog


def ref(file: str, *path: str) -> SecretRef:
    return SecretRef(file, tuple(path))


# --- config overlay ------------------------------------------------------------------------


def test_repo_is_valid_and_really_encrypted(repo: Path) -> None:
    result = load(repo)
    assert result.errors == []
    for rel in (HALO, HALO_CONTOSO, MICROSOFT):
        text = (repo / rel).read_text()
        assert "ENC[AES256_GCM," in text and "sops:" in text
        assert not any(n in text for n in NEEDLES)


def test_overrides_overlay_defaults_key_by_key(catalog: Any) -> None:
    r = resolve(catalog, "contoso", "HaloPSA")
    assert r.mapped
    assert r.config["page_size"] == 50  # override
    assert r.config["verbose"] is False  # a false override still wins
    assert r.config["region"] == "eu"  # override of a key without default
    assert r.sources["config.page_size"].kind == "override"
    assert r.sources["config.page_size"].file == HALO_CONTOSO


def test_json_value_is_replaced_whole_never_deep_merged(catalog: Any) -> None:
    assert resolve(catalog, "contoso", "HaloPSA").config["extra"] == {"nested": {"z": 3}}
    assert resolve(catalog, "fabrikam", "HaloPSA").config["extra"] == {"a": 1, "nested": {"x": 1, "y": 2}}


def test_null_or_empty_override_falls_back_to_the_default(catalog: Any) -> None:
    r = resolve(catalog, "contoso", "HaloPSA")
    assert r.config["url"] == "https://halo.example.com"  # url: null
    assert r.config["tenant"] == "msp"  # tenant: ""
    assert r.sources["config.url"].kind == "default"
    assert r.sources["config.url"].file == HALO
    assert r.sources["config.tenant"].kind == "default"


def test_secret_overrides_and_defaults_are_refs_to_their_files(catalog: Any) -> None:
    contoso = resolve(catalog, "contoso", "HaloPSA")
    assert contoso.config["api_key"] == ref(HALO_CONTOSO, "secrets", "api_key")
    assert contoso.config["pin"] == ref(HALO_CONTOSO, "secrets", "pin")
    fabrikam = resolve(catalog, "fabrikam", "HaloPSA")
    assert fabrikam.config["api_key"] == ref(HALO, "defaults", "secrets", "api_key")
    assert "pin" not in fabrikam.config
    assert fabrikam.sources["config.pin"].kind == "missing"
    # token material under a mapping's secrets: is OAuth, not config
    assert "refresh_token" not in contoso.config and "expires_at" not in contoso.config


def test_config_secret_keys_are_the_schema_secret_keys(catalog: Any) -> None:
    for org in ("contoso", "fabrikam", "northwind", None):
        assert resolve(catalog, org, "HaloPSA").config_secret_keys == ["api_key", "pin"]
    assert resolve(catalog, "contoso", "Graph").config_secret_keys == []


def test_config_keeps_schema_order(catalog: Any) -> None:
    assert list(resolve(catalog, "contoso", "HaloPSA").config) == [
        "url", "page_size", "verbose", "extra", "region", "tenant", "api_key", "pin",
    ]  # fmt: skip


# --- organizations without a mapping, and the global scope --------------------------------


@pytest.mark.parametrize("org", ["northwind", None])
def test_unmapped_org_and_global_get_defaults_only(catalog: Any, org: str | None) -> None:
    r = resolve(catalog, org, "HaloPSA")
    assert not r.mapped
    assert r.config == {
        "url": "https://halo.example.com",
        "page_size": 100,
        "verbose": True,
        "extra": {"a": 1, "nested": {"x": 1, "y": 2}},
        "tenant": "msp",
        "api_key": ref(HALO, "defaults", "secrets", "api_key"),
    }
    assert r.entity_name is None
    assert r.entity_id == "halo-default-entity"  # default_entity_id first
    assert r.sources["entity_id"].kind == "integration"


def test_global_scope_ignores_every_override(catalog: Any) -> None:
    # contoso has overrides; the global view must not see them
    assert resolve(catalog, None, "HaloPSA").config["page_size"] == 100
    assert resolve(catalog, None, "HaloPSA").organization is None


def test_unmapped_without_default_entity_id_gets_the_integration_entity_id(catalog: Any) -> None:
    r = resolve(catalog, "northwind", "Graph")
    assert r.entity_id == "partner-tenant"
    assert r.entity_name is None
    assert r.oauth is not None
    assert r.oauth.token_url == "https://login.example.com/partner-tenant/oauth2/v2.0/token"


def test_unmapped_without_any_entity_id(catalog: Any) -> None:
    r = resolve(catalog, "northwind", "Ninja")
    assert r.entity_id is None
    assert r.sources["entity_id"].kind == "missing"
    assert r.oauth is not None
    assert r.oauth.token_url == "https://{entity_id}.ninja.example.com/oauth/token"  # raw template


# --- entity ids of mapped orgs -------------------------------------------------------------


def test_mapped_org_gets_its_entity_id_and_name(catalog: Any) -> None:
    r = resolve(catalog, "contoso", "HaloPSA")
    assert (r.entity_id, r.entity_name) == ("12", "Contoso in Halo")
    assert r.sources["entity_id"] == (r.sources["entity_id"].kind, HALO_CONTOSO, 5)


def test_mapped_org_with_empty_entity_id_gets_default_entity_id(catalog: Any) -> None:
    r = resolve(catalog, "tailspin", "HaloPSA")
    assert r.entity_id == "halo-default-entity"  # not halo-global-entity
    assert r.entity_name is None
    assert r.oauth is not None and r.oauth.token_url == "https://halo.example.com/halo-default-entity/token"


def test_mapped_empty_entity_id_never_falls_back_to_the_integration_entity_id(catalog: Any) -> None:
    # Docs has entity_id but no default_entity_id: Bifrost's mapped path does not consult
    # the integration-level entity_id (docs/bifrost-api.md#resolution); the unmapped path does
    r = resolve(catalog, "tailspin", "Docs")
    assert r.mapped
    assert (r.entity_id, r.entity_name) == (None, "Tailspin docs")
    assert r.sources["entity_id"].kind == "missing"
    assert resolve(catalog, "contoso", "Docs").entity_id == "docs-global-entity"
    assert resolve(catalog, None, "Docs").entity_id == "docs-global-entity"


# --- OAuth ---------------------------------------------------------------------------------


def test_oauth_provider_fields_and_filled_token_url(catalog: Any) -> None:
    r = resolve(catalog, "contoso", "Graph")
    o = r.oauth
    assert o is not None
    assert o.connection_name == "Graph"  # Bifrost names the connection after the integration
    assert o.provider == "microsoft"
    assert o.client_id == "ms-client-id"
    assert o.authorization_url == "https://login.example.com/common/authorize"
    assert o.token_url == "https://login.example.com/tenant-contoso/oauth2/v2.0/token"
    assert o.token_url_template == "https://login.example.com/{entity_id}/oauth2/v2.0/token"
    assert o.scopes == ["https://graph.microsoft.com/.default", "offline_access"]
    assert o.client_secret == ref(MICROSOFT, "secrets", "client_secret")
    assert o.access_token == ref(MICROSOFT, "secrets", "access_token")
    assert o.refresh_token is None and o.expires_at is None


def test_mapping_token_material_replaces_the_provider_tokens(catalog: Any) -> None:
    contoso = resolve(catalog, "contoso", "HaloPSA").oauth
    assert contoso is not None
    assert contoso.provider is None  # inline block
    assert contoso.refresh_token == ref(HALO_CONTOSO, "secrets", "refresh_token")
    assert contoso.expires_at == ref(HALO_CONTOSO, "secrets", "expires_at")
    assert contoso.client_secret == ref(HALO, "oauth", "secrets", "client_secret")
    assert contoso.sources["refresh_token"].kind == "override"
    # others keep the provider-level token; unmapped orgs never get a mapping's token
    for org in ("fabrikam", "northwind", None):
        o = resolve(catalog, org, "HaloPSA").oauth
        assert o is not None
        assert o.refresh_token == ref(HALO, "oauth", "secrets", "refresh_token")
        assert o.expires_at is None


def test_no_oauth_is_none(catalog: Any) -> None:
    assert resolve(catalog, "tailspin", "Docs").oauth is None
    assert resolve(catalog, None, "Docs").oauth is None


def test_resolve_org_covers_every_integration_sorted(catalog: Any) -> None:
    assert list(resolve_org(catalog, "northwind")) == ["Docs", "Graph", "HaloPSA", "Ninja"]
    assert resolve_org(catalog, "contoso")["HaloPSA"].integration_id == "11111111-2222-4333-8444-555555555555"
    assert resolve_org(catalog, "contoso")["Graph"].integration_id is None
