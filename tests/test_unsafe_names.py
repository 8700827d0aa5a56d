"""Names and labels with control, bidi or invisible characters are refused (S004), and the CLI
never prints a path, name or exception text from the repository unescaped."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from support import API, BASE_FILES, FAKE_SOPS, Run, dedent, line_of

INTEG = "integrations/HaloPSA/integration.yaml"
MAPPING = "integrations/HaloPSA/mappings/contoso.yaml"
ORGS = "organizations.yaml"
PROVIDER = "oauth/microsoft.yaml"

PROVIDER_DOC = API + dedent(
    """
    kind: OAuthProvider
    name: microsoft
    flow: authorization_code
    authorization_url: https://login.example.com/authorize
    token_url: https://login.example.com/token
    client_id: abc
    scopes: [openid]
    """
)


def _swap(path: str, old: str, new: str, base: str | None = None) -> dict[str, str]:
    text = base if base is not None else BASE_FILES[path]
    assert old in text, (path, old)
    return {path: text.replace(old, new, 1)}


# (what, files, file, needle on the offending line, field named, shown as)
CASES = [
    ("integration name", _swap(INTEG, "name: HaloPSA", 'name: "Halo\\e[31mPSA"'), INTEG, "name:", "name",
     "a control character (\\x1b)"),
    ("integration description", _swap(INTEG, "kind: Integration\n", 'kind: Integration\ndescription: "a\\u202eb"\n'),
     INTEG, "description:", "description", "a bidi control (\\u202e)"),
    ("entity_id_name", _swap(INTEG, "entity_id_name: Client ID", 'entity_id_name: "Client\\nID"'), INTEG,
     "entity_id_name:", "entity_id_name", "a control character (\\x0a)"),
    ("schema key description", _swap(INTEG, "{key: page_size, type: int}",
     '{key: page_size, type: int, description: "x\\u2028y"}'), INTEG, "page_size, type: int", "config_schema.1.description",
     "a line or paragraph separator (\\u2028)"),
    ("schema option", _swap(INTEG, "options: [us, eu, uk]", 'options: [us, "e\\x7fu", uk]'), INTEG, "options:",
     "config_schema.4.options.1", "a control character (\\x7f)"),
    ("organization display_name", _swap(ORGS, "display_name: Contoso Ltd", 'display_name: "Contoso\\u200b Ltd"'), ORGS,
     "display_name:", "organizations.0.display_name", "an invisible character (\\u200b)"),
    ("mapping entity_id", _swap(MAPPING, 'entity_id: "12"', 'entity_id: "12\\x85"'), MAPPING, "entity_id:",
     "entity_id", "a control character (\\x85)"),
    ("mapping entity_name", _swap(MAPPING, "kind: Mapping\n", 'kind: Mapping\nentity_name: "\\ufeffContoso"\n'),
     MAPPING, "entity_name:", "entity_name", "an invisible character (\\ufeff)"),
    ("provider name", _swap(PROVIDER, "name: microsoft", 'name: "micro\\u2066soft"', PROVIDER_DOC), PROVIDER,
     "name:", "name", "a bidi control (\\u2066)"),
    ("provider scope", _swap(PROVIDER, "scopes: [openid]", 'scopes: ["open\\x00id"]', PROVIDER_DOC), PROVIDER,
     "scopes:", "scopes.0", "a control character (\\x00)"),
    ("provider token_url", _swap(PROVIDER, "token_url: https://login.example.com/token",
     'token_url: "https://login.example.com/token\\r"', PROVIDER_DOC), PROVIDER, "token_url:", "token_url",
     "a control character (\\x0d)"),
    ("bundle recipient", {"bifrost-gitops.yaml": API + 'kind: Project\nbundle:\n  recipients: ["age1x\\e]0;t\\a"]\n'},
     "bifrost-gitops.yaml", "recipients:", "bundle.recipients.0", "a control character (\\x1b)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("files", "rel", "needle", "field", "shown"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_unsafe_character_in_a_name_is_s004(
    make_repo: Callable[..., Path],
    cli: Callable[..., Run],
    files: dict[str, str],
    rel: str,
    needle: str,
    field: str,
    shown: str,
) -> None:
    root = make_repo(files)
    text = (root / rel).read_text(encoding="utf-8")
    line = line_of(text, needle)
    run = cli("validate", str(root))
    assert run.code == 1, run.output
    found = [x for x in run.stdout.splitlines() if " S004 " in x]
    assert len(found) == 1, run.stdout
    prefix = f"{rel}:{line}:"
    assert found[0].startswith(prefix), run.stdout
    assert f"S004 {field} holds {shown}" in found[0], run.stdout
    col = int(found[0][len(prefix) :].split(":", 1)[0])
    source_line = text.splitlines()[line - 1]
    assert source_line[col - 1] in "\"'[{", (source_line, col)  # points at the value itself
    assert "hint:" in run.stdout


def test_a_bad_label_hides_no_other_finding(make_repo: Callable[..., Path], cli: Callable[..., Run]) -> None:
    """A display_name with a control character drops only that label: the organizations stay
    declared, and a mapping's own mistakes are still reported in the same run."""
    files = _swap(ORGS, "display_name: Contoso Ltd", 'display_name: "Contoso\\e[2J"')
    mapping = BASE_FILES[MAPPING].replace("page_size: 50", "page_size: fifty")
    files[MAPPING] = mapping.replace("organization: contoso", "organization: contosso")
    run = cli("validate", str(make_repo(files)), "--format", "json")
    assert run.code == 1
    found = {d["code"]: d for d in json.loads(run.stdout)["diagnostics"]}
    assert sorted(found) == ["C002", "R002", "S004"], run.stdout
    assert found["R002"]["hint"] == "did you mean 'contoso'?"


def test_newline_hint_suggests_folding(make_repo: Callable[..., Path], cli: Callable[..., Run]) -> None:
    files = _swap(INTEG, "kind: Integration\n", "kind: Integration\ndescription: |\n  two\n  lines\n")
    run = cli("validate", str(make_repo(files)))
    assert "S004 description holds a control character (\\x0a)" in run.stdout
    assert "`>-`" in run.stdout
    folded = _swap(INTEG, "kind: Integration\n", "kind: Integration\ndescription: >-\n  two\n  lines\n")
    assert cli("validate", str(make_repo(folded))).code == 0


def test_values_under_config_stay_data(make_repo: Callable[..., Path], cli: Callable[..., Run]) -> None:
    """Config values are data, not names: control characters are allowed there (escaped on output)."""
    files = _swap(INTEG, "url: https://halo.example.com", 'url: "https://halo\\e[31m\\u202e.example.com\\n"')
    assert cli("validate", str(make_repo(files))).code == 0


def test_workflow_command_markers_in_names_are_allowed(
    make_repo: Callable[..., Path], cli: Callable[..., Run]
) -> None:
    """'::' and '##[' are printable: names may hold them; every output breaks them up instead."""
    name = "Halo ::error::x ##[group]y"
    files = _swap(INTEG, "name: HaloPSA", f'name: "{name}"')
    files |= _swap(MAPPING, "integration: HaloPSA", f'integration: "{name}"')
    assert cli("validate", str(make_repo(files))).code == 0


def test_schema_files_refuse_what_validate_refuses() -> None:
    """Editors get the rule from the checked-in schemas (no invisible character in them)."""
    from support import ROOT

    text = (ROOT / "schemas" / "integration.schema.json").read_text(encoding="utf-8")
    assert text.isascii()
    schema = json.loads(text)
    assert "not" in schema["properties"]["name"]


# --- the CLI escapes what it quotes ----------------------------------------------------------

EVIL = "x\x1b[2J\n::error::owned\u202e"


def _assert_clean(text: str) -> None:
    from bifrost_gitops.escape import has_unsafe

    assert not has_unsafe(text.replace("\n", "")), repr(text)
    assert not any(line.lstrip().startswith("::") for line in text.splitlines()), text


def test_usage_error_quoting_a_path_stays_one_line(tmp_path: Path, cli: Callable[..., Run]) -> None:
    run = cli("validate", str(tmp_path / EVIL))
    assert run.code == 2
    assert run.stderr.count("\n") == 1, run.stderr
    _assert_clean(run.stderr)
    assert "\\x1b[2J\\x0a::error::owned\\u202e" in run.stderr


def test_init_echoes_escaped_paths(tmp_path: Path, cli: Callable[..., Run]) -> None:
    run = cli("init", str(tmp_path / EVIL), "--age", "age1" + "q" * 58)
    assert run.code == 0, run.output
    _assert_clean(run.output)
    assert "next: cd " in run.stdout and "\\x1b[2J" in run.stdout


def test_compile_lists_a_stale_file_escaped(make_repo: Callable[..., Path], cli: Callable[..., Run]) -> None:
    root = make_repo()
    out = root.parent / "bundle"
    assert cli("compile", str(root), "-o", str(out), "--secrets", "redact").code == 0
    (out / "orgs" / f"{EVIL}.json").write_text("{}")
    run = cli("compile", str(root), "-o", str(out), "--secrets", "redact")
    assert run.code == 0, run.output
    _assert_clean(run.output)
    assert "(removed)" in run.stderr and "\\x1b[2J" in run.stderr


def test_secrets_recipients_escapes_paths_and_recipients(
    make_repo: Callable[..., Path], cli: Callable[..., Run]
) -> None:
    """A fork controls both the file names and the sops block's recipient strings."""
    evil_sops = FAKE_SOPS.replace("- recipient: age1", '- recipient: "age1\\e]0;t\\a::error::x\\u202e')
    evil_sops = evil_sops.replace("3290gq\n", '3290gq"\n', 1)
    doc = BASE_FILES[MAPPING].replace("contoso", "fabrikam") + evil_sops
    root = make_repo({f"integrations/HaloPSA/mappings/{EVIL.replace(chr(10), '')}.yaml": doc})
    text = cli("secrets", "recipients", str(root))
    assert "\\x1b]0;t\\x07::error" in text.stdout, text.output
    _assert_clean(text.output)
    as_json = cli("secrets", "recipients", str(root), "--format", "json")
    assert as_json.stdout.isascii() and "\x7f" not in as_json.stdout
    assert json.loads(as_json.stdout)["files"][0]["path"].startswith("integrations/HaloPSA/mappings/x\x1b")


def test_a_file_name_that_is_not_utf8_is_shown_escaped(
    make_repo: Callable[..., Path], cli: Callable[..., Run]
) -> None:
    """Not a crash on a strict UTF-8 stdout, and not a raw invalid byte in the log."""
    root = make_repo()
    name = os.path.join(os.fsencode(root / "integrations"), b"\xff\x1b.yaml")
    with open(name, "w") as f:
        f.write(API + "kind: Mapping\n")
    run = cli("validate", str(root), subprocess=True, env={"PYTHONIOENCODING": "utf-8:strict"})
    assert run.code == 1, run.output
    assert "integrations/\\udcff\\x1b.yaml:1:1: S001" in run.stdout
    _assert_clean(run.output)
