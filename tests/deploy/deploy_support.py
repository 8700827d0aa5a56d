"""Helpers for the deploy tests: a repository with org UUIDs, encrypted secrets, and the fake server."""

from __future__ import annotations

import secrets as rnd
import textwrap
from pathlib import Path
from typing import Any

import pyrage  # type: ignore[import-untyped]
import yaml

from bifrost_gitops import sops
from support import API, Run, run_cli, write_repo

from .fakebifrost import FakeBifrost

TOKEN = rnd.token_hex(6).upper()
CONTOSO = "3f0c1d2e-0000-4000-8000-000000000001"
FABRIKAM = "3f0c1d2e-0000-4000-8000-000000000002"
NORTHWIND = "3f0c1d2e-0000-4000-8000-000000000003"


def canary(tag: str) -> str:
    return f"CANARY-{tag}-{TOKEN}"


ORGS = API + textwrap.dedent(
    f"""\
    kind: Organizations
    organizations:
      - name: contoso
        id: {CONTOSO}
        display_name: Contoso Ltd
      - name: fabrikam
        id: {FABRIKAM}
      - name: northwind
        id: {NORTHWIND}
    """
)

HALO = API + textwrap.dedent(
    """\
    kind: Integration
    name: HaloPSA
    entity_id_name: Client ID
    default_entity_id: "0"
    config_schema:
      - {key: url, type: string, required: true}
      - {key: page_size, type: int}
      - {key: beta, type: bool}
      - {key: extra, type: json}
      - {key: region, type: string, options: [us, eu, uk]}
      - {key: api_key, type: secret}
    defaults:
      config:
        url: https://halo.example.com
        page_size: 100
        extra: {a: 1}
    """
)

GRAPH = API + textwrap.dedent(
    """\
    kind: Integration
    name: Microsoft_Graph
    default_entity_id: common
    oauth:
      flow: client_credentials
      token_url: https://login.microsoftonline.com/{entity_id}/oauth2/v2.0/token
      scopes: [https://graph.microsoft.com/.default, offline_access]
      client_id: app-1
    config_schema:
      - {key: graph_url, type: string}
    defaults:
      config: {graph_url: "https://graph.microsoft.com/v1.0"}
    """
)


def mapping(integration: str, org: str, entity_id: str, config: dict[str, Any] | None = None) -> str:
    doc: dict[str, Any] = {
        "kind": "Mapping",
        "integration": integration,
        "organization": org,
        "entity_id": entity_id,
    }
    if config:
        doc["config"] = config
    return yaml.safe_dump({"apiVersion": "bifrost-gitops/v1", **doc}, sort_keys=False)


class Env:
    """A repository + age key + fake Bifrost, and a CLI runner wired to them."""

    def __init__(self, root: Path, bf: FakeBifrost, recipient: str, identity: str) -> None:
        self.root, self.bf, self.recipient, self.identity = root, bf, recipient, identity

    def env(self, **extra: str | None) -> dict[str, str | None]:
        return {**self.bf.env(), "SOPS_AGE_KEY": self.identity, "BIFROST_CREDENTIALS_FILE": None, **extra}

    def cli(self, *args: str, env: dict[str, str | None] | None = None) -> Run:
        return run_cli(*args, env=env or self.env(), timeout=120)

    def write(self, rel: str, text: str | None) -> None:
        p = self.root / rel
        if text is None:
            p.unlink()
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")

    def edit(self, rel: str, fn: Any) -> None:
        """Change REL's data with FN (decrypted first, sealed again when it was sealed)."""
        path = self.root / rel
        data = sops.loads(path.read_bytes(), "yaml")
        sealed = "sops" in data
        if sealed:
            data = sops.decrypt_document(data, identities=sops.parse_identities(self.identity))
        fn(data)
        if sealed:
            data = sops.encrypt_document(
                data, recipients=[self.recipient], encrypted_regex="^secrets$", mac_only_encrypted=True
            )
        path.write_text(sops.dump_yaml(data, 2), encoding="utf-8")

    def seal(self, rel: str, secrets_at: list[str], values: dict[str, Any]) -> None:
        """Put VALUES under the secrets block at SECRETS_AT of REL, encrypted with sops."""
        seal_file(self.root / rel, secrets_at, values, self.recipient, self.identity)


def seal_file(
    path: Path, secrets_at: list[str], values: dict[str, Any], recipient: str, identity: str
) -> None:
    """Put VALUES under the secrets block at SECRETS_AT of PATH, encrypted with sops for RECIPIENT."""
    data = sops.loads(path.read_bytes(), "yaml")
    if "sops" in data:
        data = sops.decrypt_document(data, identities=sops.parse_identities(identity))
    node = data
    for part in secrets_at:
        node = node.setdefault(part, {})
    node.update(values)
    sealed = sops.encrypt_document(
        data, recipients=[recipient], encrypted_regex="^secrets$", mac_only_encrypted=True
    )
    path.write_text(sops.dump_yaml(sealed, 2), encoding="utf-8")


def make_env(tmp_path: Path, bf: FakeBifrost) -> Env:
    ident = pyrage.x25519.Identity.generate()
    root = write_repo(
        tmp_path / "repo",
        {
            "organizations.yaml": ORGS,
            "integrations/HaloPSA/integration.yaml": HALO,
            "integrations/HaloPSA/mappings/contoso.yaml": mapping(
                "HaloPSA", "contoso", "12", {"page_size": 50, "region": "eu"}
            ),
            "integrations/HaloPSA/mappings/fabrikam.yaml": mapping("HaloPSA", "fabrikam", "34"),
            "integrations/Microsoft_Graph/integration.yaml": GRAPH,
            "integrations/Microsoft_Graph/mappings/contoso.yaml": mapping(
                "Microsoft_Graph", "contoso", "contoso.onmicrosoft.com"
            ),
        },
    )
    e = Env(root, bf, str(ident.to_public()), str(ident))
    e.seal("integrations/HaloPSA/integration.yaml", ["defaults", "secrets"], {"api_key": canary("default")})
    e.seal("integrations/HaloPSA/mappings/fabrikam.yaml", ["secrets"], {"api_key": canary("fabrikam")})
    e.seal(
        "integrations/Microsoft_Graph/integration.yaml",
        ["oauth", "secrets"],
        {"client_secret": canary("client")},
    )
    bf.add_org("Contoso Ltd", id=CONTOSO)
    bf.add_org("Fabrikam", id=FABRIKAM)
    bf.add_org("Northwind", id=NORTHWIND)
    return e


def no_leaks(text: str, e: Env) -> None:
    assert TOKEN not in text, "a secret value leaked"
    assert e.bf.tokens.access_token not in text and e.bf.tokens.refresh_token not in text
    assert "fake-at-" not in text and "fake-rt-" not in text
