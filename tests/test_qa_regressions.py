"""Regressions from a new-user QA pass: each test is a report that once failed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyrage  # type: ignore[import-untyped]

from support import API, ENC, FAKE_SOPS, Run, codes, load, run_cli

MAPPING = "integrations/HaloPSA/mappings/contoso.yaml"
INTEGRATION = "integrations/HaloPSA/integration.yaml"
SOPS = str(Path(sys.executable).with_name("sops"))


def test_a_bad_label_does_not_hide_the_other_findings_of_a_document(make_repo: Any) -> None:
    root = make_repo(
        {
            MAPPING: API + "kind: Mapping\nintegration: HaloPSA\norganization: contoso\nentity_id: '12'\n"
            "entity_name: [oops]\nconfig: {api_key: CANARY-qa-1, page_size: x, region: mars, bogus: 1}\n"
        }
    )
    result = load(root)
    assert sorted(codes(result)) == ["C001", "C002", "C003", "C004", "S001"]
    assert "CANARY" not in repr(result.diagnostics)
    assert not any(d.code == "C007" for d in result.diagnostics)  # contoso still counts as mapped


def test_a_document_failing_its_schema_still_gets_the_secrets_check(make_repo: Any) -> None:
    root = make_repo(
        {
            MAPPING: API + "kind: Mapping\nintegration: HaloPSA\norganization: contoso\n"
            "entity_id: {not: text}\nsecrets: {api_key: CANARY-qa-2}\n"
        }
    )
    result = load(root)
    assert "K002" in codes(result) and "S001" in codes(result)
    assert "CANARY" not in repr(result.diagnostics)


def test_a_nested_value_under_secrets_is_a_type_error_not_a_leak(make_repo: Any) -> None:
    text = API + "kind: Mapping\nintegration: HaloPSA\norganization: contoso\nentity_id: '1'\n"
    text += f"secrets:\n  api_key:\n    nested: {ENC}\n" + FAKE_SOPS
    result = load(make_repo({MAPPING: text}))
    assert codes(result) == ["C002"]


def test_a_document_sops_encrypted_whole_is_reported(make_repo: Any, tmp_path: Path) -> None:
    """sops's default mode encrypts apiVersion and kind too: the file must not silently vanish."""
    root = make_repo()
    key = pyrage.x25519.Identity.generate()
    proc = subprocess.run(
        [SOPS, "--encrypt", "--age", str(key.to_public()), "--in-place", MAPPING],
        cwd=root, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = load(root)
    [d] = [d for d in result.diagnostics if d.code == "K003"]
    assert d.path == MAPPING and "whole document is encrypted" in d.message


def test_the_project_file_must_be_a_project(make_repo: Any) -> None:
    root = make_repo({"bifrost-gitops.yaml": API + "kind: Mapping\nintegration: x\n"})
    assert codes(load(root)) == ["S002"]


def test_an_unquoted_date_in_a_text_field_is_a_trap(make_repo: Any) -> None:
    text = API + "kind: Mapping\nintegration: HaloPSA\norganization: contoso\nentity_id: '1'\n"
    result = load(make_repo({MAPPING: text + "entity_name: 2024-01-01\n"}))
    [d] = result.diagnostics
    assert (d.code, d.line) == ("Y005", 6) and '"2024-01-01"' in (d.hint or "")


def test_c007_points_at_the_required_key(make_repo: Any) -> None:
    integration = (
        (Path(make_repo()) / INTEGRATION)
        .read_text()
        .replace("{key: beta, type: bool}", "{key: beta, type: bool, required: true}")
    )
    result = load(make_repo({INTEGRATION: integration}))
    [d] = [d for d in result.diagnostics if d.code == "C007"]
    assert d.line == integration.splitlines().index("  - {key: beta, type: bool, required: true}") + 1


def test_symlinks_loops_and_inside_links(make_repo: Any) -> None:
    root = make_repo()
    (root / "l").mkdir()
    os.symlink("loop2.yaml", root / "l" / "loop1")
    os.symlink("loop1", root / "l" / "loop2.yaml")
    os.symlink(Path(MAPPING).name, root / Path(MAPPING).parent / "alias.yaml")  # same mapping twice?
    result = load(root)
    assert [(d.code, d.path) for d in result.diagnostics] == [("Y007", "l/loop2.yaml")]


def test_every_finding_has_a_line_and_a_column(make_repo: Any) -> None:
    root = make_repo()
    (root / "big.yaml").write_text("a: " + "x" * (1 << 20) + "\n")
    run = run_cli("validate", "--format", "github", cwd=root)
    assert "::error file=big.yaml,line=1,col=1,title=Y004::" in run.stdout


def test_init_never_echoes_a_secret_key(tmp_path: Path) -> None:
    secret = str(pyrage.x25519.Identity.generate())
    run = run_cli("init", str(tmp_path / "new"), "--age", secret)
    assert run.code == 2 and secret not in run.output and "secret key" in run.stderr


def test_schema_with_a_kind_and_an_output_folder_writes_that_kind(tmp_path: Path) -> None:
    run = run_cli("schema", "mapping", "-o", str(tmp_path / "s"))
    assert run.code == 0 and sorted(os.listdir(tmp_path / "s")) == ["mapping.schema.json"]


def _set(root: Path, env: dict[str, str], value: str) -> Run:
    """`secrets set HaloPSA api_key --org contoso` with VALUE on stdin, as a real process."""
    proc = subprocess.run(
        [sys.executable, "-m", "bifrost_gitops", "secrets", "set", "HaloPSA", "api_key", "--org", "contoso"],
        cwd=root, input=value, capture_output=True, text=True, timeout=60,
        env={**os.environ, "HOME": str(root / "home"), "XDG_CONFIG_HOME": str(root / "home"), **env},
    )  # fmt: skip
    return Run(proc.returncode, proc.stdout, proc.stderr)


def _with_sops_rule(root: Path, rule: str) -> dict[str, str]:
    key = pyrage.x25519.Identity.generate()
    (root / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: \\.ya?ml$\n    {rule}\n    age: {key.to_public()}\n"
    )
    (root / "key.txt").write_text(f"{key}\n")
    return {"SOPS_AGE_KEY_FILE": str(root / "key.txt")}


def test_secrets_set_refuses_a_rule_that_would_encrypt_the_whole_document(make_repo: Any) -> None:
    root = make_repo()
    env = _with_sops_rule(root, "unencrypted_suffix: _clear")
    before = (root / MAPPING).read_bytes()
    run = _set(root, env, "CANARY-qa-3")
    assert run.code == 2 and "encrypted_regex: ^secrets$" in run.stderr, run
    assert (root / MAPPING).read_bytes() == before and "CANARY" not in run.output


def test_secrets_set_never_rewrites_a_clear_value(make_repo: Any) -> None:
    root = make_repo()
    env = _with_sops_rule(root, "encrypted_regex: ^secrets$\n    mac_only_encrypted: true")
    text = (root / MAPPING).read_text() + "  extra: {c: 2024-01-01, d: 0x10}\n"
    (root / MAPPING).write_text(text)
    run = _set(root, env, "CANARY-qa-4")  # the file's own lines are kept as written: nothing re-typed
    assert run.code == 0 and (root / MAPPING).read_text().startswith(text), run
    # a file that must be written anew (one flow mapping: no line of its own to keep) would
    # re-type them: refused
    flow = (
        "{apiVersion: bifrost-gitops/v1, kind: Mapping, integration: HaloPSA, organization: contoso,"
        " entity_id: '12', config: {extra: {c: 2024-01-01, d: 0x10}}}\n"
    )
    (root / MAPPING).write_text(flow)
    run = _set(root, env, "CANARY-qa-4b")
    assert run.code == 2 and "config.extra.c" in run.stderr and "quote them" in run.stderr, run
    assert (root / MAPPING).read_text() == flow


def test_keygen_makes_a_key_sops_uses(tmp_path: Path) -> None:
    keys = tmp_path / "cfg" / "sops" / "age" / "keys.txt"
    run = run_cli("secrets", "keygen", env={"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert run.code == 0 and keys.exists() and (keys.stat().st_mode & 0o777) == 0o600
    recipient = run.stdout.strip()
    assert recipient.startswith("age1") and "AGE-SECRET-KEY" not in run.output
    doc = tmp_path / "x.yaml"
    doc.write_text("secret: CANARY-qa-5\n")
    env = {**os.environ, "SOPS_AGE_KEY_FILE": str(keys)}
    subprocess.run([SOPS, "--encrypt", "--age", recipient, "--in-place", str(doc)], check=True, env=env,
                   cwd=tmp_path, capture_output=True)  # fmt: skip
    clear = subprocess.run(
        [SOPS, "--decrypt", str(doc)], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert "CANARY-qa-5" in clear.stdout
    again = run_cli("secrets", "keygen", env={"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert again.code == 2 and "not overwritten" in again.stderr


def test_a_list_of_our_documents_is_reported_not_skipped(make_repo: Any) -> None:
    root = make_repo(
        {"more.yaml": f"- {API.strip()}\n  kind: Organizations\n  organizations: [{{name: x}}]\n"}
    )
    assert [(d.code, d.path) for d in load(root).diagnostics] == [("Y008", "more.yaml")]


def test_a_string_under_a_json_key_that_bifrost_would_refuse_is_a_warning(make_repo: Any) -> None:
    base = API + "kind: Mapping\nintegration: HaloPSA\norganization: contoso\nentity_id: '1'\nconfig:\n"
    bad = load(make_repo({MAPPING: base + "  extra: not json\n"}))
    assert [(d.code, d.severity) for d in bad.diagnostics] == [("C010", "warning")]
    good = load(make_repo({MAPPING: base + "  extra: '{\"a\": 1}'\n"}))
    assert codes(good) == []


def test_oauth_scopes_hold_no_spaces_or_commas(make_repo: Any) -> None:
    integration = (Path(make_repo()) / INTEGRATION).read_text() + (
        "oauth:\n  flow: authorization_code\n  authorization_url: https://a.example/auth\n"
        "  token_url: https://a.example/token\n  client_id: x\n  scopes: [ok, 'two words', 'a,b']\n"
    )
    result = load(make_repo({INTEGRATION: integration}))
    assert codes(result) == ["S001", "S001"]
