"""`bifrost-gitops diff`: real git histories built in tmp_path, compared revision against revision.

Every test builds a repository with `git init` + commits (identity and config passed through the
environment, no global or system git config), runs the command in process, and reads what it
prints. Secrets are exercised against a copy of examples/integrations (sops-encrypted to its
TEST-ONLY key) with the real sops binary for rotation.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets as rnd
import shutil
import subprocess as sp
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyrage  # type: ignore[import-untyped]
import pytest

from bifrost_gitops.sops.binary import find_sops
from support import API, BASE_FILES, ROOT, Run, line_of, run_cli

EXAMPLE = ROOT / "examples" / "integrations"
KEY_NAME = "TEST-ONLY-age-key.txt"
HALO = "integrations/HaloPSA/integration.yaml"
CONTOSO = "integrations/HaloPSA/mappings/contoso.yaml"
SOPS = find_sops()
TOKEN = rnd.token_hex(8).upper()

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def canary(tag: str) -> str:
    return f"CANARY-{tag}-{TOKEN}"


# --- git histories -------------------------------------------------------------------------


class Git:
    """A git repository in a temp folder; the bifrost repository is at ``self.root`` (maybe a subfolder)."""

    def __init__(self, top: Path, sub: str = ""):
        self.top = top
        self.root = top / sub if sub else top
        top.mkdir(parents=True, exist_ok=True)
        self("init", "-q", "-b", "main")

    def __call__(self, *args: str) -> str:
        proc = sp.run(
            ["git", "-c", "commit.gpgsign=false", *args],
            cwd=self.top,
            env={**os.environ, **GIT_ENV},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 0, f"git {args}: {proc.stderr}"
        return proc.stdout

    def write(self, files: Mapping[str, str | None]) -> None:
        """``{path: text}`` writes, ``{path: None}`` deletes (paths relative to root)."""
        for rel, text in files.items():
            p = self.root / rel
            if text is None:
                p.unlink()
                continue
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")

    def commit(self, message: str, files: Mapping[str, str | None] | None = None) -> str:
        if files:
            self.write(files)
        self("add", "-A")
        self("commit", "-q", "--allow-empty", "-m", message)
        return self("rev-parse", "HEAD").strip()

    def text(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8")

    def edit(self, rel: str, old: str, new: str) -> str:
        """Replace ``old`` (must occur once) by ``new`` in a file; returns the new text."""
        text = self.text(rel)
        assert text.count(old) == 1, (rel, old)
        text = text.replace(old, new)
        self.write({rel: text})
        return text


def diff(g: Git, *args: str, env: Mapping[str, str | None] | None = None) -> Run:
    return run_cli("diff", str(g.root), *args, env=env)


def diff_json(g: Git, *args: str, env: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    run = diff(g, *args, "--format", "json", "--by-org", env=env)
    assert run.code in (0, 1), run
    doc: dict[str, Any] = json.loads(run.stdout)
    return doc


def changes_of(doc: dict[str, Any], org: str) -> list[tuple[Any, ...]]:
    return [(c["integration"], c["what"], c["key"], c["old"], c["new"]) for c in doc["changes"][org]]


def orgs_yaml(*names: str) -> str:
    return API + "kind: Organizations\norganizations:\n" + "".join(f"  - name: {n}\n" for n in names)


def mapping(integration: str, org: str, body: str = "") -> str:
    return (
        API
        + f"kind: Mapping\nintegration: {integration}\norganization: {org}\n"
        + textwrap.dedent(body).lstrip("\n")
    )


NINJA = API + textwrap.dedent(
    """\
    kind: Integration
    name: NinjaOne
    config_schema:
      - {key: region, type: string}
    defaults:
      config:
        region: eu
    """
)


@pytest.fixture
def small(tmp_path: Path) -> Git:
    """BASE_FILES (contoso mapped to HaloPSA, fabrikam not) committed once."""
    g = Git(tmp_path / "small")
    g.commit("base", BASE_FILES)
    return g


# --- blast radius, overrides, keys ---------------------------------------------------------


def test_default_change_touches_many_orgs_and_an_override_shields_one(tmp_path: Path) -> None:
    g = Git(tmp_path / "r")
    orgs = ["acme", "bravo", "charlie", "delta", "echo", "foxtrot"]
    files = {**BASE_FILES, "organizations.yaml": orgs_yaml(*orgs), CONTOSO: None}
    files["integrations/NinjaOne/integration.yaml"] = NINJA
    # acme overrides page_size (shielded); bravo and charlie are mapped without touching it
    files["integrations/HaloPSA/mappings/acme.yaml"] = mapping(
        "HaloPSA", "acme", "entity_id: '1'\nconfig:\n  page_size: 50\n"
    )
    files["integrations/HaloPSA/mappings/bravo.yaml"] = mapping("HaloPSA", "bravo", "entity_id: '2'\n")
    files["integrations/HaloPSA/mappings/charlie.yaml"] = mapping(
        "HaloPSA", "charlie", "entity_id: '3'\nconfig:\n  region: us\n"
    )
    g.commit("base", {k: v for k, v in files.items() if v is not None})
    text = g.edit(HALO, "page_size: 100", "page_size: 250")
    g.commit("raise the default page size")

    doc = diff_json(g, "--base", "HEAD~1", "--head", "HEAD")
    assert doc["organizations"] == 6
    assert doc["affected"] == 5
    assert doc["per_integration"] == {"HaloPSA": 5}
    assert "acme" not in doc["changes"]
    where = f"{HALO}:{line_of(text, 'page_size: 250')}"
    for org in ["bravo", "charlie", "delta", "echo", "foxtrot"]:
        assert doc["changes"][org] == [
            {
                "integration": "HaloPSA",
                "what": "config",
                "key": "page_size",
                "old": "100",
                "new": "250",
                "source": where,
                "old_value": 100,
                "new_value": 250,
                "secret": False,
                "kind": "config",
                "location": {"path": HALO, "line": line_of(text, "page_size: 250"), "side": "head"},
            }
        ]
    [group] = doc["groups"]
    assert group["kind"] == "config"
    assert group["locations"] == [doc["changes"]["bravo"][0]["location"]]

    text_out = diff(g, "--base", "HEAD~1", "--head", "HEAD")
    assert text_out.code == 0
    lines = text_out.stdout.splitlines()
    assert lines[0].startswith("5 of 6 organizations affected (HEAD~1 (")
    assert lines[1] == "  HaloPSA: 5 orgs"
    assert "\nacme\n" not in text_out.stdout
    assert f"config.page_size: 100 -> 250    ({where})" in text_out.stdout


def test_override_change_reports_the_head_file_and_line(small: Git) -> None:
    text = small.edit(CONTOSO, "page_size: 50", "page_size: 75")
    small.commit("contoso pages by 75")
    doc = diff_json(small, "--base", "HEAD~1", "--head", "HEAD")
    assert doc["affected"] == 1 and doc["organizations"] == 2
    assert doc["changes"]["contoso"] == [
        {
            "integration": "HaloPSA",
            "what": "config",
            "key": "page_size",
            "old": "50",
            "new": "75",
            "source": f"{CONTOSO}:{line_of(text, 'page_size: 75')}",
            "old_value": 50,
            "new_value": 75,
            "secret": False,
            "kind": "config",
            "location": {"path": CONTOSO, "line": line_of(text, "page_size: 75"), "side": "head"},
        }
    ]


def test_a_renamed_config_key_drops_a_value_for_some_orgs(tmp_path: Path) -> None:
    g = Git(tmp_path / "r")
    files = {
        **BASE_FILES,
        "organizations.yaml": orgs_yaml("contoso", "fabrikam", "wingtip"),
        "integrations/HaloPSA/mappings/fabrikam.yaml": mapping(
            "HaloPSA", "fabrikam", "entity_id: '5'\nconfig:\n  region: us\n"
        ),
    }
    g.commit("base", files)
    g.edit(HALO, "{key: region,", "{key: residency,")
    text = g.edit(CONTOSO, "region: eu", "residency: eu")
    g.edit("integrations/HaloPSA/mappings/fabrikam.yaml", "config:\n  region: us\n", "")  # lost in the rename
    g.commit("rename region to residency")

    doc = diff_json(g, "--base", "HEAD~1", "--head", "HEAD")
    assert doc["findings"]["head"] == []
    assert set(doc["changes"]) == {"contoso", "fabrikam"}  # wingtip never had a region
    assert changes_of(doc, "contoso") == [
        ("HaloPSA", "config", "region", '"eu"', None),
        ("HaloPSA", "config", "residency", None, '"eu"'),
    ]
    assert doc["changes"]["contoso"][1]["source"] == f"{CONTOSO}:{line_of(text, 'residency: eu')}"
    assert changes_of(doc, "fabrikam") == [("HaloPSA", "config", "region", '"us"', None)]
    out = diff(g, "--base", "HEAD~1", "--head", "HEAD").stdout
    assert 'config.region: "us" -> (removed)' in out
    assert 'config.residency: (unset) -> "eu"' in out
    # markdown says so too, not an empty cell
    md = diff(g, "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown").stdout
    assert '- **HaloPSA** config.region: `"us"` → (removed) — 1 organization: `fabrikam`' in md
    assert '- **HaloPSA** config.residency: (unset) → `"eu"` — 1 organization: `contoso`' in md
    by_org = diff(g, "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown", "--by-org").stdout
    assert '| HaloPSA | config.region | `"us"` | (removed) |' in by_org
    assert '| HaloPSA | config.residency | (unset) | `"eu"` |' in by_org


def test_mapping_added_and_removed(small: Git) -> None:
    small.commit(
        "fabrikam mapped, contoso back to defaults",
        {
            CONTOSO: None,
            "integrations/HaloPSA/mappings/fabrikam.yaml": mapping(
                "HaloPSA", "fabrikam", "entity_id: '7'\nconfig:\n  page_size: 10\n"
            ),
        },
    )
    doc = diff_json(small, "--base", "HEAD~1", "--head", "HEAD")
    assert changes_of(doc, "contoso") == [
        ("HaloPSA", "mapping", None, "mapped", "defaults only"),
        ("HaloPSA", "entity_id", None, '"12"', "null"),
        ("HaloPSA", "config", "page_size", "50", "100"),  # falls back to the default
        ("HaloPSA", "config", "region", '"eu"', None),
    ]
    assert changes_of(doc, "fabrikam") == [
        ("HaloPSA", "mapping", None, "defaults only", "mapped"),
        ("HaloPSA", "entity_id", None, "null", '"7"'),
        ("HaloPSA", "config", "page_size", "100", "10"),
    ]
    assert doc["changes"]["fabrikam"][0]["source"].startswith("integrations/HaloPSA/mappings/fabrikam.yaml:")


def contoso_ltd(text: str) -> str:
    """An organizations.yaml that keeps contoso's display name (BASE_FILES has one)."""
    return text.replace("- name: contoso\n", "- name: contoso\n    display_name: Contoso Ltd\n")


def test_organization_added_and_removed(small: Git) -> None:
    small.commit(
        "fabrikam leaves, northwind joins",
        {"organizations.yaml": contoso_ltd(orgs_yaml("contoso", "northwind"))},
    )
    doc = diff_json(small, "--base", "HEAD~1", "--head", "HEAD")
    assert doc["organizations"] == 3  # contoso, fabrikam (removed) and northwind (added)
    assert doc["per_integration"]["(organizations added/removed)"] == 2
    assert changes_of(doc, "fabrikam") == [(None, "organization", None, "declared", "removed")]
    assert changes_of(doc, "northwind")[0] == (None, "organization", None, None, "added")
    assert ("HaloPSA", "integration", None, None, "added") in changes_of(doc, "northwind")
    assert "contoso" not in doc["changes"]
    out = diff(small, "--base", "HEAD~1", "--head", "HEAD").stdout
    assert "\n(organizations)\n" in out and "\nHaloPSA\n" in out
    assert "  organization: added\n    1 organization: northwind\n" in out
    assert "  organization: removed\n    1 organization: fabrikam\n" in out
    by_org = diff(small, "--base", "HEAD~1", "--head", "HEAD", "--by-org").stdout
    assert "fabrikam\n  organization: removed" in by_org
    assert "northwind\n  organization: added" in by_org
    assert out.startswith("2 of 3 organizations affected (1 added, 1 removed) (HEAD~1 (")
    assert "  (organizations added/removed): 2 orgs\n" in out and "(organization):" not in out
    md = diff(small, "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown").stdout
    assert md.startswith("### bifrost-gitops diff: 2 of 3 organizations affected (1 added, 1 removed)\n")
    assert "| (organizations added/removed) | 2 |" in md


def test_removed_organization_counts_in_the_total(small: Git) -> None:
    """A removed organization is affected: "N of M" counts base and head, never N > M."""
    small.commit("fabrikam leaves", {"organizations.yaml": contoso_ltd(orgs_yaml("contoso"))})
    doc = diff_json(small, "--base", "HEAD~1", "--head", "HEAD")
    assert doc["organizations"] == 2 and doc["affected"] == 1
    out = diff(small, "--base", "HEAD~1", "--head", "HEAD").stdout
    assert out.startswith("1 of 2 organizations affected (1 removed) (HEAD~1 (")


def test_integration_added_and_removed(small: Git) -> None:
    small.commit("add NinjaOne", {"integrations/NinjaOne/integration.yaml": NINJA})
    doc = diff_json(small, "--base", "HEAD~1", "--head", "HEAD")
    assert doc["per_integration"] == {"NinjaOne": 2}
    assert all(
        changes_of(doc, o) == [("NinjaOne", "integration", None, None, "added")]
        for o in ("contoso", "fabrikam")
    )
    shutil.rmtree(small.root / "integrations/HaloPSA")
    small.commit("drop HaloPSA")
    doc = diff_json(small, "--base", "HEAD~1", "--head", "HEAD")
    assert doc["per_integration"] == {"HaloPSA": 2}
    assert changes_of(doc, "contoso") == [("HaloPSA", "integration", None, "present", "removed")]
    out = diff(small, "--base", "HEAD~1", "--head", "HEAD").stdout
    assert "HaloPSA\n  integration: removed\n    all 2 organizations\n" in out


def test_a_file_rename_without_semantic_change_is_no_change(small: Git) -> None:
    small("mv", "integrations/HaloPSA", "integrations/halo")
    small("mv", "organizations.yaml", "orgs.yaml")
    small.commit("reorganise folders")
    run = diff(small, "--base", "HEAD~1", "--head", "HEAD", "--exit-code")
    assert run.code == 0, run
    assert run.stdout.startswith("0 of 2 organizations affected")
    assert diff_json(small, "--base", "HEAD~1", "--head", "HEAD")["changes"] == {}


# --- secrets ------------------------------------------------------------------------------


@pytest.fixture
def example(tmp_path: Path) -> Git:
    """examples/integrations committed as it is (no key in the environment)."""
    g = Git(tmp_path / "ex")
    shutil.copytree(EXAMPLE, g.root, dirs_exist_ok=True)
    g.commit("example")
    return g


def keys(g: Git) -> dict[str, str]:
    return {"SOPS_AGE_KEY_FILE": str(g.root / KEY_NAME)}


def all_outputs(g: Git, *args: str, env: Mapping[str, str | None] | None = None) -> str:
    outs = []
    for fmt in ("text", "markdown", "json"):
        run = diff(g, *args, "--format", fmt, env=env)
        assert run.code in (0, 1), run
        outs.append(run.stdout + run.stderr)
    return "\n".join(outs)


@pytest.mark.skipif(SOPS is None, reason="the sops binary is not installed")
def test_secret_rotation_with_and_without_keys(example: Git) -> None:
    g = example
    # 1. re-encrypt with a new data key, same values: every ciphertext changes
    _rotate(g, "oauth/microsoft.yaml")
    rotated = g.commit("rotate the data key of the microsoft provider")
    with_keys = diff_json(g, "--base", "HEAD~1", "--head", "HEAD", env=keys(g))
    assert with_keys["changes"] == {}, with_keys
    without = diff_json(g, "--base", "HEAD~1", "--head", "HEAD")
    assert without["per_integration"] == {"Microsoft_Graph": 5}
    for org in ("contoso", "fabrikam", "northwind", "tailspin-toys", "wingtip"):
        assert changes_of(without, org) == [
            (
                "Microsoft_Graph",
                "oauth",
                "client_secret",
                "<secret>",
                "<secret> ciphertext changed (re-encrypted or rotated)",
            )
        ]

    # 2. a new value: "changed" with keys, "ciphertext changed" without; never the value
    value = canary("ROTATED")
    _secrets_set(g, "HaloPSA", "api_key", value, "--org", "fabrikam")
    g.commit("rotate fabrikam's Halo key")
    with_keys = diff_json(g, "--base", rotated, "--head", "HEAD", env=keys(g))
    assert changes_of(with_keys, "fabrikam") == [
        ("HaloPSA", "config", "api_key", "<secret>", "<secret> changed")
    ]
    assert list(with_keys["changes"]) == ["fabrikam"]
    without = diff_json(g, "--base", rotated, "--head", "HEAD")
    assert changes_of(without, "fabrikam") == [
        ("HaloPSA", "config", "api_key", "<secret>", "<secret> ciphertext changed (re-encrypted or rotated)")
    ]

    # 3. the same value set again: ciphertext kept byte for byte, nothing to report either way
    _secrets_set(g, "HaloPSA", "api_key", value, "--org", "fabrikam")
    assert diff_json(g, "--base", "HEAD")["changes"] == {}
    assert diff_json(g, "--base", "HEAD", env=keys(g))["changes"] == {}

    # 4. no output of any format, with or without keys, shows a value
    clear = {value, "halo-fabrikam-example-key-1111111111111111"}
    for env in (None, keys(g)):
        for args in (("--base", "HEAD~2", "--head", "HEAD"), ("--base", "HEAD~2"), ("--base", "HEAD~1")):
            out = all_outputs(g, *args, env=env)
            assert "<secret>" in out
            for v in clear:
                assert v not in out
            assert TOKEN not in out


def _rotate(g: Git, rel: str) -> None:
    """A new data key for REL (sops rotate): the same values, every ciphertext different."""
    assert SOPS is not None
    proc = sp.run(
        [SOPS, "rotate", "-i", rel],
        cwd=g.root,
        env={**os.environ, **keys(g)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def _secrets_set(g: Git, integration: str, key: str, value: str, *opts: str) -> None:
    proc = sp.run(
        [sys.executable, "-m", "bifrost_gitops", "secrets", "set", integration, key, *opts],
        cwd=g.root,
        input=value,
        text=True,
        capture_output=True,
        timeout=60,
        env={**os.environ, **keys(g)},
    )
    assert proc.returncode == 0, proc.stderr


def test_no_secret_value_in_any_output_with_clear_text_canaries(small: Git) -> None:
    """A head that (wrongly) holds a secret in clear: reported as a finding, never printed."""
    leak = canary("CLEAR")
    small.commit(
        "a secret in clear",
        {CONTOSO: BASE_FILES[CONTOSO] + f"secrets:\n  api_key: {leak}\n"},
    )
    for env in (None, {"SOPS_AGE_KEY_FILE": str(EXAMPLE / KEY_NAME)}):
        for fmt in ("text", "markdown", "json"):
            run = diff(small, "--base", "HEAD~1", "--format", fmt, env=env)
            assert run.code == 1, run  # the head's finding fails the check
            assert leak not in run.output and TOKEN not in run.output, fmt


@pytest.mark.skipif(SOPS is None, reason="the sops binary is not installed")
def test_keys_that_do_not_open_the_files_compare_by_ciphertext(example: Git, tmp_path: Path) -> None:
    """Someone else's age key: no error, no value, the same answer as without keys."""
    g = example
    _rotate(g, "oauth/microsoft.yaml")
    g.commit("rotate the data key of the microsoft provider")
    other = tmp_path / "someone-elses-key.txt"
    other.write_text(f"{pyrage.x25519.Identity.generate()}\n", encoding="utf-8")
    doc = diff_json(g, "--base", "HEAD~1", "--head", "HEAD", env={"SOPS_AGE_KEY_FILE": str(other)})
    assert doc["per_integration"] == {"Microsoft_Graph": 5}
    assert changes_of(doc, "contoso") == [
        (
            "Microsoft_Graph",
            "oauth",
            "client_secret",
            "<secret>",
            "<secret> ciphertext changed (re-encrypted or rotated)",
        )
    ]


# --- entity ids and OAuth ----------------------------------------------------------------


def test_entity_id_and_token_url_changes(example: Git) -> None:
    g = example
    graph = "integrations/Microsoft_Graph/mappings/contoso.yaml"
    new_tenant = "11111111-2222-4333-8444-555555555555"
    text = g.edit(graph, "entity_id: 7c1a0f3e-5b2d-4e8a-9f61-3d4c2b1a0e9f", f"entity_id: {new_tenant}")
    g.commit("contoso moved tenant")
    doc = diff_json(g, "--base", "HEAD~1", "--head", "HEAD")
    assert list(doc["changes"]) == ["contoso"]
    got = doc["changes"]["contoso"]
    assert [(c["what"], c["key"]) for c in got] == [("entity_id", None), ("oauth", "token_url")]
    assert got[0]["old"] == '"7c1a0f3e-5b2d-4e8a-9f61-3d4c2b1a0e9f"' and got[0]["new"] == f'"{new_tenant}"'
    assert got[0]["source"] == f"{graph}:{line_of(text, new_tenant)}"
    assert new_tenant in got[1]["new"] and got[1]["source"] == "oauth/microsoft.yaml:10"

    # the provider's token URL changes at its very end: every org, and the difference is visible
    text = g.edit("oauth/microsoft.yaml", "/oauth2/v2.0/token\n", "/oauth2/v2.0/token2\n")
    g.commit("token url")
    doc = diff_json(g, "--base", "HEAD~1", "--head", "HEAD")
    assert doc["per_integration"] == {"Microsoft_Graph": 5}
    for org, changes in doc["changes"].items():
        (c,) = changes
        assert (c["what"], c["key"]) == ("oauth", "token_url")
        assert c["source"] == f"oauth/microsoft.yaml:{line_of(text, 'token_url:')}"
        assert c["old"] != c["new"], (org, c)  # a long value is cut around the difference
        assert "token2" in c["new"]


def test_oauth_added_to_and_removed_from_an_integration(small: Git) -> None:
    block = (
        "oauth:\n  authorization_url: https://halo.example.com/auth\n"
        "  token_url: https://halo.example.com/token\n  client_id: abc\nconfig_schema:"
    )
    small.commit("Halo signs in with OAuth", {HALO: BASE_FILES[HALO].replace("config_schema:", block)})
    added = diff_json(small, "--base", "HEAD~1", "--head", "HEAD")
    assert added["findings"]["head"] == []
    for org in ("contoso", "fabrikam"):
        assert changes_of(added, org) == [("HaloPSA", "oauth", None, "none", "HaloPSA")]
    removed = diff(small, "--base", "HEAD", "--head", "HEAD~1")
    assert "  oauth: HaloPSA -> none\n    all 2 organizations\n" in removed.stdout


# --- revisions, exit codes, findings ------------------------------------------------------


def test_head_revision_versus_the_work_tree(small: Git) -> None:
    c1 = small("rev-parse", "HEAD").strip()
    small.edit(CONTOSO, "page_size: 50", "page_size: 60")
    c2 = small.commit("60")
    small.edit(HALO, "url: https://halo.example.com", "url: https://halo2.example.com")  # uncommitted

    committed = diff(small, "--base", c1, "--head", c2)
    assert committed.code == 0
    assert "(HEAD (" not in committed.stdout
    assert committed.stdout.splitlines()[0].endswith(f"({c1} ({c1[:12]}) -> {c2} ({c2[:12]}))")
    assert "config.page_size: 50 -> 60" in committed.stdout
    assert "config.url" not in committed.stdout

    work = diff(small, "--base", c1)
    assert work.stdout.splitlines()[0].endswith("-> work tree)")
    assert "config.page_size: 50 -> 60" in work.stdout
    assert 'config.url: "https://halo.example.com" -> "https://halo2.example.com"' in work.stdout
    assert work.stdout.startswith("2 of 2 organizations affected")


def test_exit_code(small: Git) -> None:
    clean = diff(small, "--base", "HEAD", "--exit-code")
    assert clean.code == 0 and clean.stdout.startswith("0 of 2 organizations affected")
    assert diff(small, "--base", "HEAD").code == 0
    small.edit(CONTOSO, "page_size: 50", "page_size: 51")
    assert diff(small, "--base", "HEAD").code == 0  # differences alone do not fail without --exit-code
    assert diff(small, "--base", "HEAD", "--exit-code").code == 1
    assert diff(small, "--base", "HEAD", "--exit-code", "--format", "json").code == 1
    assert diff(small, "--base", "HEAD", "--exit-code", "--format", "markdown").code == 1


def test_head_findings_are_errors_and_base_findings_a_note(small: Git) -> None:
    # base: a mapping for an undeclared organization
    small.commit(
        "stray mapping",
        {"integrations/HaloPSA/mappings/ghost.yaml": mapping("HaloPSA", "ghost", "entity_id: '9'\n")},
    )
    base = small("rev-parse", "HEAD").strip()
    # head: the stray mapping fixed, but an integration points at a missing provider, a
    # mapping at a missing integration, and the organizations file no longer parses
    small.commit(
        "broken head",
        {
            "integrations/HaloPSA/mappings/ghost.yaml": None,
            "integrations/Broken/integration.yaml": API
            + "kind: Integration\nname: Broken\noauth:\n  provider: nowhere\nconfig_schema: []\n",
            "integrations/Gone/mappings/contoso.yaml": mapping("Gone", "contoso"),
            "integrations/NinjaOne/integration.yaml": NINJA + "  : [unclosed\n",
        },
    )
    for fmt in ("text", "markdown", "json"):
        run = diff(small, "--base", base, "--head", "HEAD", "--format", fmt)
        assert run.code == 1, run
    base_only = diff(small, "--base", base, "--head", "HEAD~2")  # HEAD~2: before the stray mapping
    assert base_only.code == 0, base_only  # base's finding is only a note; head is clean
    assert "already had 1 finding(s)" in base_only.stdout and "fix before merging" not in base_only.stdout
    text = diff(small, "--base", base, "--head", "HEAD").stdout
    assert "findings in HEAD (" in text and "(fix before merging):" in text
    assert f"note: {base} ({base[:12]}) already had 1 finding(s)" in text
    assert "ghost.yaml" in text
    md = diff(small, "--base", base, "--head", "HEAD", "--format", "markdown").stdout
    assert (
        "finding(s) in the head revision:**" in md
        and "_Note: the base revision already had 1 finding(s)._" in md
    )
    doc = diff_json(small, "--base", base, "--head", "HEAD")
    assert doc["findings"]["base"] and doc["findings"]["head"]
    assert {f["severity"] for f in doc["findings"]["head"]} >= {"error"}
    assert any(f["path"] == "integrations/HaloPSA/mappings/ghost.yaml" for f in doc["findings"]["base"])
    assert not any(f["path"] == "integrations/HaloPSA/mappings/ghost.yaml" for f in doc["findings"]["head"])


def test_base_that_predates_the_repository_adds_everything(tmp_path: Path) -> None:
    g = Git(tmp_path / "mono", sub="config/bifrost")
    g.write({"../../README.md": "a monorepo\n"})
    first = g.commit("before bifrost-gitops")
    g.commit("adopt bifrost-gitops", BASE_FILES)
    doc = diff_json(g, "--base", first, "--head", "HEAD")
    assert doc["organizations"] == 2 and doc["affected"] == 2
    assert doc["findings"] == {"head": [], "base": []}
    assert changes_of(doc, "contoso") == [
        (None, "organization", None, None, "added"),
        ("HaloPSA", "integration", None, None, "added"),
    ]
    assert diff(g, "--base", first, "--exit-code").code == 1
    # the subfolder is read from the right place in the tree: HEAD against itself is clean
    assert diff_json(g, "--base", "HEAD")["changes"] == {}


def test_unknown_revision_and_not_a_git_repository(small: Git, tmp_path: Path) -> None:
    for args in (
        ("--base", "no-such-branch"),
        ("--base", "HEAD", "--head", "deadbeef" * 5),
        ("--base", "HEAD~5"),
    ):
        run = diff(small, *args)
        assert run.code == 2, run
        assert run.stdout == ""
        assert len(run.stderr.strip().splitlines()) == 1 and "unknown revision" in run.stderr, run.stderr
    sub = run_cli("diff", str(small.root), "--base", "nope", subprocess=True)
    assert sub.code == 2 and sub.stderr.strip().splitlines() == ["bifrost-gitops: unknown revision 'nope'"]
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "bifrost-gitops.yaml").write_text(BASE_FILES["bifrost-gitops.yaml"])
    run = run_cli("diff", str(plain), "--base", "HEAD", env={"GIT_CEILING_DIRECTORIES": str(tmp_path)})
    assert run.code == 2 and len(run.stderr.strip().splitlines()) == 1, run


def _snapshot(g: Git) -> dict[str, Any]:
    files = {
        str(p.relative_to(g.top)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(g.top.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(g.top).parts
    }
    git_dir = g.top / ".git"
    return {
        "files": files,
        "status": g("status", "--porcelain=v1", "--untracked-files=all", "--ignored"),
        "stash": g("stash", "list"),
        "head": (git_dir / "HEAD").read_text(),
        "rev": g("rev-parse", "HEAD"),
        "reflog": g("reflog", "--all"),
        "refs": g("for-each-ref"),
        "index": hashlib.sha256((git_dir / "index").read_bytes()).hexdigest(),
    }


def test_the_work_tree_is_never_modified(small: Git) -> None:
    small.edit(CONTOSO, "page_size: 50", "page_size: 51")  # staged below
    small("add", CONTOSO)
    small.edit(HALO, "page_size: 100", "page_size: 101")  # unstaged
    small.write({"notes.txt": "untracked\n"})
    before = _snapshot(small)
    assert "M  " + CONTOSO in before["status"] and " M " + HALO in before["status"]
    for args in (("--base", "HEAD"), ("--base", "HEAD", "--head", "HEAD"), ("--base", "HEAD", "--exit-code")):
        for fmt in ("text", "markdown", "json"):
            diff(small, *args, "--format", fmt)
    assert _snapshot(small) == before


# --- output formats ------------------------------------------------------------------------


def default_changed(top: Path, orgs: int) -> Git:
    """contoso (which overrides page_size) and ORGS more organizations; then the page_size
    default changed from 100 to 120 (HEAD~1 -> HEAD)."""
    g = Git(top)
    names = [f"org{i:02d}" for i in range(orgs)]
    g.commit("base", {**BASE_FILES, "organizations.yaml": orgs_yaml("contoso", *names)})
    g.edit(HALO, "page_size: 100", "page_size: 120")
    g.commit("default")
    return g


def test_markdown_summary_table_and_details_when_long(tmp_path: Path) -> None:
    g = default_changed(tmp_path / "r", 6)
    grouped = diff(g, "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown").stdout
    assert grouped.count("config.page\\_size") == 1  # one change, read once
    assert (
        "`100` → `120` — 6 of 7 organizations: all but `contoso`, which overrides it · `integrations/HaloPSA/"
        in grouped
    )
    md = diff(g, "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown", "--by-org").stdout
    assert md.startswith("### bifrost-gitops diff: 6 of 7 organizations affected\n")
    assert "| integration | organizations affected |\n|---|---:|\n| HaloPSA | 6 |\n" in md
    assert md.count("<details><summary>") == 6 and md.count("</details>") == 6
    assert "<details><summary><b>org03</b>: 1 change</summary>" in md
    assert "contoso" not in md  # its override shields it
    assert re.search(
        r"\| HaloPSA \| config\.page\\_size \| `100` \| `120` \| `integrations/HaloPSA/integration\.yaml:\d+` \|",
        md,
    )

    # short: plain headings, no <details>
    small = Git(tmp_path / "s")
    small.commit("base", BASE_FILES)
    small.edit(CONTOSO, "page_size: 50", "page_size: 5")
    md = diff(small, "--base", "HEAD", "--format", "markdown", "--by-org").stdout
    assert "<details>" not in md and "#### contoso\n" in md
    assert "| HaloPSA | 1 |" in md


def test_markdown_escapes_table_breaking_values(small: Git) -> None:
    small.edit(CONTOSO, "region: eu", "region: eu\n  extra: {a: 'x|y`z'}")
    md = diff(small, "--base", "HEAD", "--format", "markdown", "--by-org").stdout
    (row,) = [ln for ln in md.splitlines() if "config.extra" in ln]
    assert row.count(" | ") == 4  # the pipe in the value is escaped, the row keeps five cells
    md = diff(small, "--base", "HEAD", "--format", "markdown").stdout
    (line,) = [ln for ln in md.splitlines() if "config.extra" in ln]
    assert '(unset) → ``{"a": "x\\|y`z"}`` — 1 organization: `contoso`' in line  # one code span


def test_json_has_the_documented_keys(small: Git) -> None:
    small.edit(CONTOSO, "page_size: 50", "page_size: 5")
    doc = diff_json(small, "--base", "HEAD")
    assert set(doc) == {
        "base",
        "head",
        "security",
        "organizations",
        "affected",
        "per_integration",
        "schema",
        "created",
        "groups",
        "changes",  # with --by-org
        "findings",
    }
    assert doc["security"] == []
    assert doc["head"] == "work tree" and doc["base"].startswith("HEAD (")
    assert doc["organizations"] == 2 and doc["affected"] == 1 and doc["per_integration"] == {"HaloPSA": 1}
    (change,) = doc["changes"]["contoso"]
    assert set(change) == {
        *("integration", "what", "key", "old", "new", "source"),
        *("old_value", "new_value", "secret", "kind", "location"),
    }
    assert (change["old"], change["new"]) == ("50", "5")  # display text, kept for existing readers
    assert (change["old_value"], change["new_value"], change["secret"]) == (50, 5, False)
    assert set(doc["findings"]) == {"head", "base"}


def test_json_values_are_typed_and_secrets_stay_null(small: Git) -> None:
    """Scripts read old_value/new_value as YAML typed them; a secret-typed key, even one left
    in clear under config:, is secret: true with both values null."""
    leak = canary("TYPED")
    small.commit("a key given in clear", {CONTOSO: BASE_FILES[CONTOSO] + "  api_key: first-value\n"})
    small.edit(CONTOSO, "region: eu", "region: uk\n  beta: true")
    small.edit(CONTOSO, 'entity_id: "12"', 'entity_id: "13"')
    small.edit(CONTOSO, "api_key: first-value", f"api_key: {leak}")
    run = diff(small, "--base", "HEAD", "--format", "json", "--by-org")
    assert leak not in run.stdout and "first-value" not in run.stdout
    doc = json.loads(run.stdout)
    typed = {
        (c["what"], c["key"]): (c["old_value"], c["new_value"], c["secret"])
        for c in doc["changes"]["contoso"]
    }
    assert typed[("config", "region")] == ("eu", "uk", False)
    assert typed[("config", "beta")] == (None, True, False)
    assert typed[("entity_id", None)] == ("12", "13", False)
    assert typed[("config", "api_key")] == (None, None, True)
