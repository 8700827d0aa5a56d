"""No finding ever repeats a secret value, in any output format, wherever the secret stands."""

from __future__ import annotations

import secrets as rnd
from pathlib import Path
from typing import Any

import pytest

from support import API, FAKE_SOPS, dedent, write_repo

TOKEN = rnd.token_hex(6).upper()


def canary(tag: str) -> str:
    return f"CANARY-{tag}-{TOKEN}"


# an octal-looking secret: YAML 1.1 reads it as an int, so both spellings must stay hidden
OCTAL = "0" + "".join(str(rnd.randbelow(8)) for _ in range(14))
OCTAL_DECIMAL = str(int(OCTAL, 8))
CLEAR_INT = str(10**15 + rnd.randbelow(10**14))

CANARIES = {
    "config-secret": canary("CFG"),
    "clear-with-sops": canary("CLEARSOPS"),
    "clear-no-sops": canary("CLEARNOSOPS"),
    "oauth-provider": canary("OAUTH"),
    "oauth-inline": canary("INLINE"),
    "typo-key": canary("TYPO"),
    "defaults-config": canary("DEFCFG"),
    "refresh-token": canary("REFRESH"),
    "multiline": canary("MULTI"),
}
NEEDLES = [*CANARIES.values(), OCTAL, OCTAL_DECIMAL, CLEAR_INT, TOKEN]

INTEGRATION = API + dedent(
    f"""
    kind: Integration
    name: HaloPSA
    config_schema:
      - {{key: url, type: string, required: true}}
      - {{key: page_size, type: int}}
      - {{key: api_key, type: secret}}
      - {{key: pin, type: secret}}
    defaults:
      config:
        url: https://halo.example.com
        api_key: {CANARIES["defaults-config"]}
    """
)

FILES: dict[str, str | None] = {
    "integrations/HaloPSA/integration.yaml": INTEGRATION,
    # a secret-typed key under config: (C004)
    "integrations/HaloPSA/mappings/contoso.yaml": API
    + dedent(
        f"""
        kind: Mapping
        integration: HaloPSA
        organization: contoso
        entity_id: "12"
        config:
          api_key: {CANARIES["config-secret"]}
          pin: {OCTAL}
        """
    ),
    # clear text under secrets: in a sops file (K001), a clear int, a typo'd key, a YAML trap
    "integrations/HaloPSA/mappings/fabrikam.yaml": API
    + dedent(
        f"""
        kind: Mapping
        integration: HaloPSA
        organization: fabrikam
        entity_id: "13"
        secrets:
          api_key: {CANARIES["clear-with-sops"]}
          pin: {CLEAR_INT}
          api_kye: {CANARIES["typo-key"]}
          refresh_token: {CANARIES["refresh-token"]}
        """
    )
    + FAKE_SOPS,
    # clear text under secrets: without sops metadata (K002), and a trap-looking secret
    "integrations/HaloPSA/mappings/tailspin.yaml": API
    + dedent(
        f"""
        kind: Mapping
        integration: HaloPSA
        organization: tailspin
        entity_id: "14"
        secrets:
          api_key: {CANARIES["clear-no-sops"]}
          pin: {OCTAL}
        """
    ),
    "integrations/HaloPSA/mappings/woodgrove.yaml": API
    + dedent(
        f"""
        kind: Mapping
        integration: HaloPSA
        organization: woodgrove
        entity_id: "15"
        secrets:
          pin: {OCTAL}
          api_key: |
            {CANARIES["multiline"]}
            second line
        """
    )
    + FAKE_SOPS,
    "organizations.yaml": API
    + dedent(
        """
        kind: Organizations
        organizations:
          - name: contoso
          - name: fabrikam
          - name: tailspin
          - name: woodgrove
        """
    ),
    # an OAuth client_secret in clear, in a provider document and in an inline block
    "oauth/microsoft.yaml": API
    + dedent(
        f"""
        kind: OAuthProvider
        name: microsoft
        flow: client_credentials
        token_url: https://login.microsoftonline.com/{{entity_id}}/oauth2/v2.0/token
        client_id: 0b7f
        secrets:
          client_secret: {CANARIES["oauth-provider"]}
          access_token: {OCTAL}
        """
    )
    + FAKE_SOPS,
    "integrations/Graph/integration.yaml": API
    + dedent(
        f"""
        kind: Integration
        name: Graph
        default_entity_id: common
        oauth:
          flow: client_credentials
          token_url: https://login.example.com/{{entity_id}}/token
          client_id: abc
          secrets:
            client_secret: {CANARIES["oauth-inline"]}
        config_schema: []
        """
    ),
}

EXPECTED = {"C004", "K001", "K002", "C001"}


@pytest.fixture(scope="module")
def leaky_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_repo(tmp_path_factory.mktemp("leaky") / "repo", FILES)


def assert_no_canary(text: str) -> None:
    for needle in NEEDLES:
        assert needle not in text, f"secret value {needle!r} leaked into output:\n{text}"


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
@pytest.mark.parametrize("subprocess", [False, True], ids=["inprocess", "subprocess"])
def test_no_secret_in_any_output_format(leaky_repo: Path, fmt: str, subprocess: bool, cli: Any) -> None:
    run = cli("validate", "--strict", "--format", fmt, str(leaky_repo), subprocess=subprocess)
    assert run.code == 1
    assert "Traceback" not in run.output
    for code in EXPECTED:
        assert code in run.stdout, f"{code} missing from:\n{run.stdout}"
    assert_no_canary(run.stdout)
    assert_no_canary(run.stderr)


def test_every_planted_secret_is_reported(leaky_repo: Path) -> None:
    from bifrost_gitops import repo

    result = repo.load(str(leaky_repo))
    found = {(d.code, d.path, d.line) for d in result.diagnostics}
    fab = "integrations/HaloPSA/mappings/fabrikam.yaml"
    assert ("C004", "integrations/HaloPSA/mappings/contoso.yaml", 7) in found
    assert ("C004", "integrations/HaloPSA/mappings/contoso.yaml", 8) in found
    assert ("C004", "integrations/HaloPSA/integration.yaml", 12) in found
    assert {("K001", fab, line) for line in (7, 8, 9, 10)} <= found
    assert ("C001", fab, 9) in found
    assert ("K002", "integrations/HaloPSA/mappings/tailspin.yaml", 6) in found
    assert ("K001", "oauth/microsoft.yaml", 8) in found
    assert ("K002", "integrations/Graph/integration.yaml", 9) in found
    wood = "integrations/HaloPSA/mappings/woodgrove.yaml"
    assert {("K001", wood, 7), ("K001", wood, 8)} <= found
    for d in result.diagnostics:
        assert_no_canary(d.message + (d.hint or ""))


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(f"client_secret: {OCTAL}", id="octal-int"),
        pytest.param(f"client_secret: [{CANARIES['oauth-provider']}]", id="list"),
        pytest.param(f"client_secret: {{nested: {CANARIES['oauth-provider']}}}", id="mapping"),
        pytest.param(f"client_secrt: {CANARIES['oauth-provider']}", id="typo"),
    ],
)
def test_malformed_oauth_secret_never_echoed(make_repo: Any, cli: Any, line: str) -> None:
    provider = (
        API
        + dedent(
            f"""
        kind: OAuthProvider
        name: microsoft
        flow: authorization_code
        authorization_url: https://login.example.com/authorize
        token_url: https://login.example.com/token
        client_id: 0b7f
        secrets:
          {line}
        """
        )
        + FAKE_SOPS
    )
    root = make_repo({"oauth/microsoft.yaml": provider})
    for fmt in ("text", "json", "github"):
        run = cli("validate", "--format", fmt, str(root))
        assert run.code == 1, run
        assert_no_canary(run.output)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(OCTAL, id="octal"),
        pytest.param("yes", id="bool-trap"),
        pytest.param("1.10", id="float-trap"),
    ],
)
def test_trap_looking_secret_under_mapping_secrets(make_repo: Any, cli: Any, value: str) -> None:
    """`api_key: 0123` under secrets: is a clear secret (K001) and is never repeated."""
    mapping = (
        API
        + dedent(
            f"""
        kind: Mapping
        integration: HaloPSA
        organization: contoso
        entity_id: "12"
        secrets:
          api_key: {value}
        """
        )
        + FAKE_SOPS
    )
    root = make_repo({"integrations/HaloPSA/mappings/contoso.yaml": mapping})
    run = cli("validate", "--format", "json", str(root))
    assert run.code == 1
    assert "K001" in run.stdout
    if value == OCTAL:
        assert_no_canary(run.output)
    else:
        assert f"'{value}'" not in run.output and f'"{value}"' not in run.output.replace('"code"', "")
