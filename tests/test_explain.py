"""`explain [REPO] ORG INTEGRATION [KEY]`: every value with where it came from; never a secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support import Run, line_of, run_cli
from test_resolve import (
    GRAPH,
    HALO,
    HALO_CONTOSO,
    MICROSOFT,
    NEEDLES,
    NINJA,
    ORG_IDS,
    build_repo,
    isolated,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return build_repo(tmp_path / "repo")


def explain(*args: str, **kw: Any) -> Run:
    run = run_cli("explain", *args, **kw)
    for needle in NEEDLES:
        assert needle not in run.output, f"secret in explain output: {run.output}"
    assert "Traceback" not in run.output
    return run


def line(repo: Path, rel: str, needle: str) -> int:
    return line_of((repo / rel).read_text(), needle)


def report(repo: Path, *args: str) -> dict[str, Any]:
    run = explain(str(repo), *args, "--format", "json")
    assert run.code == 0, run
    doc: dict[str, Any] = json.loads(run.stdout)
    return doc


def test_text_shows_override_default_and_missing_with_file_line(repo: Path) -> None:
    run = explain(str(repo), "contoso", "HaloPSA")
    assert run.code == 0, run
    out = run.stdout
    assert out.startswith("contoso / HaloPSA\n")
    assert f"{HALO_CONTOSO}:{line(repo, HALO_CONTOSO, 'page_size: 50')}  override" in out
    assert f"{HALO}:{line(repo, HALO, '    url: https://halo.example.com')}  default" in out  # url: null
    assert f"{HALO}:{line(repo, HALO, 'tenant: msp')}  default" in out  # tenant: ""
    assert f'entity_id    "12"    {HALO_CONTOSO}:{line(repo, HALO_CONTOSO, "entity_id:")}  mapping' in out
    api_key = next(x for x in out.splitlines() if x.strip().startswith("api_key"))
    assert "<secret>" in api_key
    assert f"{HALO_CONTOSO}:{line(repo, HALO_CONTOSO, 'api_key: ENC[')}" in api_key


def test_text_unmapped_org_says_defaults_only_and_not_set(repo: Path) -> None:
    out = explain(str(repo), "northwind", "HaloPSA").stdout
    assert "no mapping: integration defaults only" in out
    region = next(x for x in out.splitlines() if x.strip().startswith("region"))
    assert "(not set)" in region and "missing" in region
    assert f"{HALO}:{line(repo, HALO, 'default_entity_id:')}  integration" in out
    assert "entity_name  null" in out


def test_json_sources_and_secret_markers(repo: Path) -> None:
    r = report(repo, "contoso", "HaloPSA")
    assert r["organization"] == "contoso" and r["integration"] == "HaloPSA" and r["mapped"] is True
    config = {c["key"]: c for c in r["config"]}
    assert config["page_size"]["value"] == 50
    assert config["page_size"]["source"] == {
        "kind": "override", "file": HALO_CONTOSO, "line": line(repo, HALO_CONTOSO, "page_size: 50"),
    }  # fmt: skip
    assert config["url"]["source"]["kind"] == "default"
    assert config["extra"]["value"] == {"nested": {"z": 3}}
    assert config["api_key"]["value"] == "<secret>"
    assert config["api_key"]["source"]["file"] == HALO_CONTOSO
    assert config["pin"]["type"] == "secret"
    fabrikam = {c["key"]: c for c in report(repo, "fabrikam", "HaloPSA")["config"]}
    assert fabrikam["pin"] == {
        "key": "pin", "type": "secret", "required": False, "value": None, "set": False,
        "source": {"kind": "missing", "file": None, "line": None},
    }  # fmt: skip
    assert fabrikam["api_key"]["value"] == "<secret>"
    assert fabrikam["api_key"]["source"] == {
        "kind": "default", "file": HALO, "line": line(repo, HALO, "api_key: ENC["),
    }  # fmt: skip


def test_oauth_provider_token_url_and_secret_sources(repo: Path) -> None:
    o = report(repo, "contoso", "Graph")["oauth"]
    assert o["provider"] == "microsoft"
    assert o["connection_name"] == "Graph"
    assert o["token_url"] == "https://login.example.com/tenant-contoso/oauth2/v2.0/token"
    assert o["entity_id_filled"] is True
    assert o["source"] == f"{MICROSOFT}:{line(repo, MICROSOFT, 'token_url:')}"
    assert o["secrets"]["client_secret"] == {
        "set": True, "source": f"{MICROSOFT}:{line(repo, MICROSOFT, 'client_secret: ENC[')}",
    }  # fmt: skip
    assert o["secrets"]["refresh_token"] == {"set": False, "source": None}
    text = explain(str(repo), "contoso", "Graph").stdout
    assert f"oauth: provider microsoft ({MICROSOFT}:" in text
    assert (
        "token_url  https://login.example.com/tenant-contoso/oauth2/v2.0/token  (entity id filled in)" in text
    )
    assert "client_secret  <secret>" in text


def test_mapping_token_shown_with_the_mapping_as_source(repo: Path) -> None:
    o = report(repo, "contoso", "HaloPSA")["oauth"]
    assert o["provider"] == "(inline)"
    assert o["secrets"]["refresh_token"]["source"] == (
        f"{HALO_CONTOSO}:{line(repo, HALO_CONTOSO, 'refresh_token: ENC[')}"
    )
    assert o["secrets"]["client_secret"]["source"].startswith(f"{HALO}:")


def test_raw_template_when_no_entity_id(repo: Path) -> None:
    o = report(repo, "northwind", "Ninja")["oauth"]
    assert o["token_url"] == "https://{entity_id}.ninja.example.com/oauth/token"
    assert o["entity_id_filled"] is False
    assert o["source"].startswith(f"{NINJA}:")
    assert "raw template: no entity id resolves" in explain(str(repo), "northwind", "Ninja").stdout


def test_global_scope(repo: Path) -> None:
    r = report(repo, "global", "HaloPSA")
    assert r["organization"] == "global" and r["mapped"] is False
    assert r["entity_id"] == "halo-default-entity"
    assert {c["key"]: c["value"] for c in r["config"]}["page_size"] == 100
    g = report(repo, "global", "Graph")
    assert g["entity_id"] == "partner-tenant"
    assert g["entity_id_source"] == {
        "kind": "integration",
        "file": GRAPH,
        "line": line(repo, GRAPH, "entity_id:"),
    }
    assert "defaults only" in explain(str(repo), "global", "HaloPSA").stdout


def test_single_key_with_repo_argument(repo: Path) -> None:
    r = report(repo, "contoso", "HaloPSA", "page_size")
    assert [c["key"] for c in r["config"]] == ["page_size"]
    text = explain(str(repo), "contoso", "HaloPSA", "api_key").stdout
    assert "<secret>" in text and "page_size" not in text


def test_cwd_form_without_repo_argument(repo: Path) -> None:
    run = explain("contoso", "HaloPSA", cwd=repo)
    assert run.code == 0, run
    assert run.stdout == explain(str(repo), "contoso", "HaloPSA").stdout
    run = explain("contoso", "HaloPSA", "region", "--format", "json", cwd=repo / "integrations")
    assert run.code == 0, run
    assert json.loads(run.stdout)["config"][0]["value"] == "eu"


def test_subprocess_explain(repo: Path) -> None:
    run = explain(str(repo), "contoso", "HaloPSA", subprocess=True)
    assert run.code == 0, run
    assert "<secret>" in run.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("contso", "HaloPSA"), "organization 'contso' is not declared (did you mean 'contoso'?)"),
        (("contoso", "HaloPS"), "integration 'HaloPS' is not declared (did you mean 'HaloPSA'?)"),
        (
            ("contoso", "HaloPSA", "api_ky"),
            "'api_ky' is not in the config_schema of 'HaloPSA' (did you mean 'api_key'?)",
        ),
    ],
)
def test_unknown_names_exit_2_with_did_you_mean(repo: Path, args: tuple[str, ...], expected: str) -> None:
    run = explain(str(repo), *args)
    assert run.code == 2
    assert expected in run.stderr
    assert run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1


def test_wrong_arity_is_a_usage_error(repo: Path) -> None:
    run = explain("contoso", cwd=repo)
    assert run.code == 2
    assert "usage: explain" in run.stderr


def test_explain_needs_no_key(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    run = explain(str(repo), "contoso", "HaloPSA", "--format", "json")
    assert run.code == 0


def test_org_by_bifrost_uuid(repo: Path) -> None:
    """An organization's Bifrost UUID (organizations.yaml ``id``) works wherever its name does."""
    uuid = ORG_IDS["contoso"]
    by_name = explain(str(repo), "contoso", "HaloPSA")
    for given in (uuid, uuid.upper()):
        run = explain(str(repo), given, "HaloPSA")
        assert run.code == 0, run
        assert run.stdout == by_name.stdout
    assert report(repo, uuid, "HaloPSA", "page_size") == report(repo, "contoso", "HaloPSA", "page_size")
    run = explain(uuid, "HaloPSA", "region", cwd=repo)  # the cwd form
    assert run.code == 0, run
    run = explain(str(repo), "3f0c1d2e-0000-4000-8000-00000000ffff", "HaloPSA")
    assert run.code == 2 and "is not declared" in run.stderr


def test_a_secret_typed_value_left_under_config_is_masked(tmp_path: Path) -> None:
    """C004 (validate's finding) in defaults and in a mapping: explain still never prints it."""
    from support import BASE_FILES, write_repo
    from test_resolve import canary

    default, override = canary("CLEARDEFAULT"), canary("CLEAROVERRIDE")
    halo, contoso = "integrations/HaloPSA/integration.yaml", "integrations/HaloPSA/mappings/contoso.yaml"
    root = write_repo(
        tmp_path / "clear",
        {
            halo: BASE_FILES[halo] + f"    api_key: {default}\n",
            contoso: BASE_FILES[contoso] + f"  api_key: {override}\n",
        },
    )
    runs = [
        run_cli("explain", str(root), org, "HaloPSA", *key, *fmt)
        for org in ("contoso", "fabrikam", "global")
        for key in ((), ("api_key",))
        for fmt in ((), ("--format", "json"))
    ]
    for run in runs:
        assert run.code == 0, run
        assert default not in run.output and override not in run.output, run.output
        assert "CANARY" not in run.output
    doc = report(root, "contoso", "HaloPSA", "api_key")
    (item,) = doc["config"]
    assert item["value"] == "<secret>" and item["set"] is True
    line_no = line_of((root / contoso).read_text(), "api_key:")
    assert item["source"] == {"kind": "override", "file": contoso, "line": line_no}
    text = run_cli("explain", str(root), "fabrikam", "HaloPSA").stdout
    (line_,) = [x for x in text.splitlines() if x.strip().startswith("api_key")]
    assert "<secret>" in line_ and f"{halo}:" in line_


def test_hostile_values_and_names_are_escaped(tmp_path: Path) -> None:
    from support import BASE_FILES, write_repo

    hostile = "x\n::error::forged\x1b[2J\u202etxt"
    name = "<!--|`Halo"
    halo, contoso = "integrations/HaloPSA/integration.yaml", "integrations/HaloPSA/mappings/contoso.yaml"
    root = write_repo(
        tmp_path / "hostile",
        {
            halo: BASE_FILES[halo].replace("name: HaloPSA", f"name: {json.dumps(name)}"),
            contoso: BASE_FILES[contoso].replace("integration: HaloPSA", f"integration: {json.dumps(name)}")
            + f"  url: {json.dumps(hostile)}\n",
        },
    )
    text = run_cli("explain", str(root), "contoso", name)
    assert text.code == 0, text
    assert text.stdout.startswith(f"contoso / {name}\n")
    for line_ in text.stdout.splitlines():
        assert not any(c in line_ for c in "\x1b\u202e\r") and not line_.lstrip().startswith("::"), repr(
            line_
        )
    assert "::error::forged" in text.stdout  # shown as it is, but never at the start of a line
    doc = run_cli("explain", str(root), "contoso", name, "--format", "json").stdout
    url = next(c for c in json.loads(doc)["config"] if c["key"] == "url")
    assert doc.isascii() and url["value"] == hostile
