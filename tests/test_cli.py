"""The command line as a user and CI see it: exit codes, formats, colour, schema, init."""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from support import API, ENC, FAKE_SOPS, dedent

BAD_MAPPING = API + dedent(
    """
    kind: Mapping
    integration: HaloPSA
    organization: contoso
    entity_id: "12"
    config:
      pagesize: 10
      region: fr
    """
)
MAPPING = "integrations/HaloPSA/mappings/contoso.yaml"
GITHUB_LINE = re.compile(r"^::(error|warning) file=([^,:]+),line=(\d+),col=(\d+),title=([A-Z]\d{3})::(.+)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# --- exit codes ----------------------------------------------------------------------------


def test_clean_repo_exits_0(any_cli: Any, make_repo: Any) -> None:
    run = any_cli("validate", str(make_repo()))
    assert run.code == 0, run
    assert "no problems" in run.stdout
    assert run.stderr == ""


def test_findings_exit_1_with_path_line_col_code(any_cli: Any, make_repo: Any) -> None:
    root = make_repo({MAPPING: BAD_MAPPING})
    run = any_cli("validate", str(root))
    assert run.code == 1, run
    lines = run.stdout.splitlines()
    assert f"{MAPPING}:7:3: C001 " in run.stdout
    assert f"{MAPPING}:8:11: C003 " in run.stdout
    assert any(line.strip().startswith("hint: did you mean 'page_size'") for line in lines)
    assert "2 errors" in lines[-1]


def test_missing_project_file_exits_2_with_one_line(any_cli: Any, tmp_path: Path) -> None:
    empty = tmp_path / "not-a-repo"
    empty.mkdir()
    (empty / "organizations.yaml").write_text(API + "kind: Organizations\norganizations: []\n")
    run = any_cli("validate", str(empty))
    assert run.code == 2, run
    assert "Traceback" not in run.output
    assert len(run.stderr.strip().splitlines()) == 1
    assert "bifrost-gitops.yaml" in run.stderr
    assert run.stdout == ""


def test_nonexistent_path_exits_2(any_cli: Any, tmp_path: Path) -> None:
    run = any_cli("validate", str(tmp_path / "nope"))
    assert run.code == 2
    assert "Traceback" not in run.output
    assert len(run.stderr.strip().splitlines()) == 1


def test_bad_option_exits_2(cli: Any, make_repo: Any) -> None:
    run = cli("validate", "--format", "xml", str(make_repo()))
    assert run.code == 2
    assert "Traceback" not in run.output


def test_unreadable_file_is_a_finding_not_a_crash(any_cli: Any, make_repo: Any) -> None:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root reads everything")
    root = make_repo()
    (root / MAPPING).chmod(0)
    try:
        run = any_cli("validate", str(root))
    finally:
        (root / MAPPING).chmod(0o644)
    assert "Traceback" not in run.output
    assert "Y007" in run.stdout


# --- REPO argument -------------------------------------------------------------------------


def test_repo_defaults_to_cwd(any_cli: Any, make_repo: Any) -> None:
    root = make_repo({MAPPING: BAD_MAPPING})
    run = any_cli("validate", cwd=root)
    assert run.code == 1
    assert f"{MAPPING}:7:3: C001" in run.stdout


def test_subfolder_finds_its_root(any_cli: Any, make_repo: Any) -> None:
    root = make_repo({MAPPING: BAD_MAPPING})
    sub = root / "integrations" / "HaloPSA"
    run = any_cli("validate", cwd=sub)
    assert run.code == 1
    # paths stay relative to the repository root, not to the cwd
    assert f"{MAPPING}:7:3: C001" in run.stdout
    run2 = any_cli("validate", str(sub / "mappings"))
    assert f"{MAPPING}:7:3: C001" in run2.stdout


# --- formats -------------------------------------------------------------------------------


def test_json_format(any_cli: Any, make_repo: Any) -> None:
    root = make_repo({MAPPING: BAD_MAPPING})
    run = any_cli("validate", "--format", "json", str(root))
    assert run.code == 1
    doc = json.loads(run.stdout)
    assert doc["errors"] == 2
    assert doc["warnings"] == 0
    assert doc["files"] == 4
    by_code = {d["code"]: d for d in doc["diagnostics"]}
    assert set(by_code) == {"C001", "C003"}
    c001 = by_code["C001"]
    assert (c001["path"], c001["line"], c001["col"], c001["severity"]) == (MAPPING, 7, 3, "error")
    assert "page_size" in c001["hint"]
    assert "pagesize" in c001["message"]


def test_json_format_clean(cli: Any, make_repo: Any) -> None:
    run = cli("validate", "--format", "json", str(make_repo()))
    assert run.code == 0
    assert json.loads(run.stdout)["diagnostics"] == []


def test_github_format(any_cli: Any, make_repo: Any) -> None:
    root = make_repo({MAPPING: BAD_MAPPING, "broken.yaml": "a: [1\n"})
    run = any_cli("validate", "--format", "github", cwd=root)
    assert run.code == 1
    annotations = [line for line in run.stdout.splitlines() if line.startswith("::")]
    assert len(annotations) == 3
    matches = [GITHUB_LINE.match(line) for line in annotations]
    assert all(matches), annotations
    parsed = {m.group(5): m for m in matches if m}
    assert set(parsed) == {"C001", "C003", "Y001"}
    m = parsed["C001"]
    assert (m.group(1), m.group(2), m.group(3), m.group(4)) == ("error", MAPPING, "7", "3")
    assert parsed["Y001"].group(2) == "broken.yaml"


def test_github_format_paths_from_checkout_root(cli: Any, make_repo: Any, tmp_path: Path) -> None:
    root = make_repo({MAPPING: BAD_MAPPING})
    run = cli("validate", "--format", "github", root.name, cwd=root.parent)
    lines = [line for line in run.stdout.splitlines() if line.startswith("::")]
    assert lines
    for line in lines:
        m = GITHUB_LINE.match(line)
        assert m, line
        assert m.group(2) == f"{root.name}/{MAPPING}"


def test_github_warning_annotation(cli: Any, make_repo: Any) -> None:
    integ = API + dedent(
        """
        kind: Integration
        name: HaloPSA
        config_schema:
          - {key: tenant, type: string, required: true}
        """
    )
    root = make_repo({"integrations/HaloPSA/integration.yaml": integ, MAPPING: None})
    run = cli("validate", "--format", "github", cwd=root)
    assert run.code == 0
    (line,) = [line for line in run.stdout.splitlines() if line.startswith("::")]
    m = GITHUB_LINE.match(line)
    assert m and m.group(1) == "warning" and m.group(5) == "C007"


# --- colour --------------------------------------------------------------------------------


def test_no_colour_when_not_a_tty(any_cli: Any, make_repo: Any) -> None:
    run = any_cli("validate", str(make_repo({MAPPING: BAD_MAPPING})))
    assert "\x1b[" not in run.output


def run_on_tty(args: list[str], env: dict[str, str]) -> str:
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bifrost_gitops", *args],
            stdout=slave,
            stderr=slave,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        os.close(slave)
        chunks = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        proc.wait(timeout=30)
    finally:
        os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
def test_colour_on_tty_and_no_color_honoured(make_repo: Any) -> None:
    root = str(make_repo({MAPPING: BAD_MAPPING}))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    coloured = run_on_tty(["validate", root], env)
    assert "C001" in coloured
    assert ANSI.search(coloured), "expected colour on a TTY"
    plain = run_on_tty(["validate", root], {**env, "NO_COLOR": "1"})
    assert "C001" in plain
    assert "\x1b[" not in plain


def test_no_color_env_in_process(cli: Any, make_repo: Any) -> None:
    run = cli("validate", str(make_repo({MAPPING: BAD_MAPPING})), env={"NO_COLOR": "1"})
    assert "\x1b[" not in run.output


# --- schema --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mapping", "Mapping", "integration", "project"])
def test_schema_prints_json(any_cli: Any, kind: str) -> None:
    run = any_cli("schema", kind)
    assert run.code == 0
    schema = json.loads(run.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/draft/2020-12")
    assert "properties" in schema


def test_schema_mapping_is_a_valid_json_schema(cli: Any) -> None:
    import jsonschema

    schema = json.loads(cli("schema", "mapping").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert {"integration", "organization", "entity_id"} <= set(schema["required"])


def test_schema_unknown_kind_exits_2(any_cli: Any) -> None:
    run = any_cli("schema", "nope")
    assert run.code == 2
    assert "Traceback" not in run.output
    assert "Mapping" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_schema_output_dir(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    run = cli("schema", "-o", str(out))
    assert run.code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "bundle.schema.json",
        "integration.schema.json",
        "mapping.schema.json",
        "oauthprovider.schema.json",
        "organizations.schema.json",
        "project.schema.json",
    ]


# --- init ----------------------------------------------------------------------------------


def test_init_then_validate_strict_is_clean(any_cli: Any, tmp_path: Path) -> None:
    target = tmp_path / "new-repo"
    run = any_cli("init", str(target))
    assert run.code == 0, run
    assert (target / "bifrost-gitops.yaml").is_file()
    sops = (target / ".sops.yaml").read_text()
    assert "^secrets$" in sops
    assert "mac_only_encrypted" in sops
    assert (target / ".pre-commit-config.yaml").is_file()
    check = any_cli("validate", "--strict", str(target))
    assert check.code == 0, check
    assert "no problems" in check.stdout


# --- validate is read-only -----------------------------------------------------------------


def tree_state(root: Path) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + dirnames):
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if p.is_symlink() or p.is_dir():
                state[rel] = (st.st_mode, os.readlink(p) if p.is_symlink() else None)
            else:
                state[rel] = (st.st_mode, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return state


def test_validate_never_modifies_the_repository(any_cli: Any, make_repo: Any) -> None:
    root = make_repo(
        {
            MAPPING: BAD_MAPPING,
            "integrations/HaloPSA/mappings/fabrikam.yaml": API
            + dedent(
                f"""
                kind: Mapping
                integration: HaloPSA
                organization: fabrikam
                entity_id: "13"
                secrets:
                  api_key: {ENC}
                """
            )
            + FAKE_SOPS,
            "broken.yaml": "a: [\n",
            ".sops.yaml": "creation_rules:\n  - encrypted_regex: ^secrets$\n",
            "notes.txt": "hello\n",
        }
    )
    before = tree_state(root)
    for fmt in ("text", "json", "github"):
        any_cli("validate", "--format", fmt, str(root))
        any_cli("validate", "--strict", "--format", fmt, cwd=root)
    assert tree_state(root) == before


def test_unexpected_errors_are_one_line_without_their_text(
    make_repo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug must not print a traceback, nor the exception's text (it may hold a secret)."""
    from click.testing import CliRunner

    from bifrost_gitops import cli, repo

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("CANARY-internal-7f3a")

    monkeypatch.setattr(repo, "load", broken)
    monkeypatch.delenv("BIFROST_GITOPS_DEBUG", raising=False)
    result = CliRunner().invoke(cli.main, ["validate", str(make_repo())])
    assert result.exit_code == 2
    assert "CANARY" not in result.output and "Traceback" not in result.output
    assert "internal error (RuntimeError)" in result.output
