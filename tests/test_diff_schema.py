"""diff's integration- and schema-level section: what a reviewer weighs once for the fleet
(keys added/removed with how many organizations lose a value, type/required/options changes,
OAuth provider changes, integrations added/removed), and new organizations shown in full.

Real git histories in tmp dirs (test_diff.Git), the CLI run in process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support import API, BASE_FILES, dedent
from test_diff import (
    CONTOSO,
    HALO,
    NINJA,
    Git,
    all_outputs,
    canary,
    default_changed,
    diff,
    diff_json,
    mapping,
    orgs_yaml,
)


@pytest.fixture
def small(tmp_path: Path) -> Git:
    """BASE_FILES: contoso mapped to HaloPSA (page_size 50, region eu), fabrikam defaults only."""
    g = Git(tmp_path / "small")
    g.commit("base", BASE_FILES)
    return g


def schema_of(g: Git) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = diff_json(g, "--base", "HEAD~1", "--head", "HEAD")["schema"]
    return entries


def entry(entries: list[dict[str, Any]], change: str, key: str | None = None) -> dict[str, Any]:
    (found,) = [e for e in entries if e["change"] == change and e["key"] == key]
    return found


def test_key_removal_counts_the_organizations_that_lose_a_value(small: Git) -> None:
    halo = BASE_FILES[HALO].replace("  - {key: region, type: string, options: [us, eu, uk]}\n", "")
    halo = halo.replace("  - {key: page_size, type: int}\n", "").replace("    page_size: 100\n", "")
    small.commit("drop region and page_size", {HALO: halo, CONTOSO: BASE_FILES[CONTOSO].split("config:")[0]})
    entries = schema_of(small)
    # region: only contoso's mapping had a value; page_size had a default, so every organization
    assert entry(entries, "key_removed", "region") == {
        "integration": "HaloPSA",
        "change": "key_removed",
        "key": "region",
        "old_value": "string",
        "new_value": None,
        "destructive": True,
        "note": "destroys 1 organization's values; apply needs --allow-key-removal",
    }
    assert entry(entries, "key_removed", "page_size")["note"].startswith("destroys 2 organizations' values")
    out = diff(small, "--base", "HEAD~1", "--head", "HEAD").stdout
    section = out.index("Integration and schema changes (2, 2 destructive):")
    assert section < out.index("\nHaloPSA\n")  # before the per-change groups
    assert '  destructive HaloPSA key_removed region: "string" -> (none) (destroys 1 organization\'s' in out
    md = diff(small, "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown").stdout
    assert "| **destructive** | HaloPSA | key_removed | `page_size` |" in md
    assert md.index("#### Integration and schema changes") < md.index("- **HaloPSA**")


def test_type_required_options_and_description_changes(small: Git) -> None:
    halo = BASE_FILES[HALO].replace("{key: page_size, type: int}", "{key: page_size, type: string}")
    halo = halo.replace("{key: beta, type: bool}", "{key: beta, type: json, required: true}")
    halo = halo.replace("options: [us, eu, uk]}", "options: [us, uk], description: Data region}")
    small.commit("schema edits", {HALO: halo})
    entries = schema_of(small)
    page = entry(entries, "type", "page_size")
    assert (page["old_value"], page["new_value"], page["destructive"]) == ("int", "string", True)
    assert page["note"] == "2 organizations' values no longer fit string"  # the default and contoso's
    beta = entry(entries, "type", "beta")
    assert (beta["destructive"], beta["note"]) == (False, "every existing value fits")
    required = entry(entries, "required", "beta")
    assert (required["old_value"], required["new_value"], required["destructive"]) == (False, True, False)
    options = entry(entries, "options", "region")
    assert options["new_value"] == ["us", "uk"]
    assert (options["destructive"], options["note"]) == (True, "1 organization uses a removed option")
    assert entry(entries, "description", "region")["new_value"] == "Data region"


def test_dropping_an_unused_option_is_safe(small: Git) -> None:
    small.commit("no uk", {HALO: BASE_FILES[HALO].replace("options: [us, eu, uk]", "options: [us, eu]")})
    options = entry(schema_of(small), "options", "region")
    assert (options["destructive"], options["note"]) == (False, "")


def test_entity_id_name_change_alone_is_a_change(small: Git) -> None:
    small.commit("rename", {HALO: BASE_FILES[HALO].replace("Client ID", "Customer ID")})
    doc = diff_json(small, "--base", "HEAD~1", "--head", "HEAD")
    assert doc["schema"] == [
        {
            "integration": "HaloPSA",
            "change": "entity_id_name",
            "key": None,
            "old_value": "Client ID",
            "new_value": "Customer ID",
            "destructive": False,
            "note": "",
        }
    ]
    assert doc["groups"] == []
    assert diff(small, "--base", "HEAD~1", "--head", "HEAD", "--exit-code").code == 1


def test_integration_added_and_removed(small: Git) -> None:
    small.commit("add NinjaOne", {"integrations/NinjaOne/integration.yaml": NINJA})
    added = diff_json(small, "--base", "HEAD~1", "--head", "HEAD")
    assert [(e["integration"], e["change"], e["destructive"]) for e in added["schema"]] == [
        ("NinjaOne", "integration_added", False)
    ]
    assert added["created"] == [{"subject": "integration NinjaOne", "values": ['config.region = "eu"']}]
    small.commit("drop HaloPSA", {HALO: None, CONTOSO: None})
    removed = entry(schema_of(small), "integration_removed")
    assert (removed["integration"], removed["destructive"]) == ("HaloPSA", True)
    assert removed["note"] == "its 1 mapping is deleted on apply --prune"


PROVIDER = API + dedent(
    """
    kind: OAuthProvider
    name: {name}
    flow: {flow}
    token_url: https://login.example.com/{name}/token
    scopes: [{scope}]
    client_id: {client}
    """
)


def test_oauth_provider_changes(small: Git) -> None:
    linked = BASE_FILES[HALO].replace("config_schema:", "oauth:\n  provider: one\nconfig_schema:")
    files = {
        "oauth/one.yaml": PROVIDER.format(name="one", flow="client_credentials", scope="a", client="c1"),
        "oauth/two.yaml": PROVIDER.format(name="two", flow="authorization_code", scope="b", client="c2"),
    }
    small.commit("oauth", {**files, HALO: linked})
    small.commit("switch provider", {HALO: linked.replace("provider: one", "provider: two")})
    entries = schema_of(small)
    got = {e["change"]: (e["old_value"], e["new_value"]) for e in entries}
    assert got == {
        "oauth_provider": ("one", "two"),
        "oauth_flow": ("client_credentials", "authorization_code"),
        "oauth_token_url": ("https://login.example.com/one/token", "https://login.example.com/two/token"),
        "oauth_scopes": (["a"], ["b"]),
        "oauth_client_id": ("c1", "c2"),
    }
    assert not any(e["destructive"] for e in entries)


def test_new_organization_shows_its_values_and_never_a_secret(small: Git) -> None:
    leak = canary("NEWORG")
    small.commit(
        "newco joins",
        {
            "organizations.yaml": orgs_yaml("contoso", "fabrikam", "newco"),
            "integrations/HaloPSA/mappings/newco.yaml": mapping(
                "HaloPSA", "newco", f"entity_id: '77'\nconfig:\n  region: uk\n  api_key: {leak}\n"
            ),
        },
    )
    doc = diff_json(small, "--base", "HEAD~1", "--head", "HEAD")
    assert doc["created"] == [
        {
            "subject": "organization newco",
            "values": [
                "HaloPSA: mapped",
                '  entity_id = "77"',
                '  config.url = "https://halo.example.com"',
                "  config.page_size = 100",
                '  config.region = "uk"',
                "  config.api_key = set",
            ],
        }
    ]
    out = diff(small, "--base", "HEAD~1", "--head", "HEAD").stdout
    assert "+ create organization newco\n    HaloPSA: mapped\n" in out
    md = diff(small, "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown").stdout
    assert "<summary>+ create organization newco</summary>" in md and "    - `config.api_key = set`" in md
    assert leak not in all_outputs(small, "--base", "HEAD~1", "--head", "HEAD")


def test_all_but_says_the_others_override_the_key(tmp_path: Path) -> None:
    g = default_changed(tmp_path / "r", 6)
    out = diff(g, "--base", "HEAD~1", "--head", "HEAD").stdout
    assert "  config.page_size: 100 -> 120    (" in out
    assert "    6 of 7 organizations: all but contoso, which overrides it\n" in out
    # a change that leaves contoso out for another reason does not say so: contoso's region
    g.commit(
        "region default", {HALO: g.text(HALO).replace("page_size: 120", "page_size: 120\n    region: us")}
    )
    out = diff(g, "--base", "HEAD~1", "--head", "HEAD").stdout
    assert "all but contoso, which overrides it" in out  # contoso sets region itself
    g.commit("contoso drops its region", {CONTOSO: g.text(CONTOSO).replace("  region: eu\n", "")})
    out = diff(g, "--base", "HEAD~1", "--head", "HEAD").stdout
    assert "which overrides it" not in out
