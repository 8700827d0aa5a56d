"""The suite never uses a developer's real age key or Bifrost credentials (tests/conftest.py's isolated_home).

A child pytest run gets a developer's shell: a real age key in HOME's sops keys file, an ssh key
in ~/.ssh, a key in SOPS_AGE_KEY / SOPS_AGE_KEY_FILE / SOPS_AGE_KEY_CMD, Bifrost credentials,
GITHUB_*, NO_COLOR. The same three checks run once with the project's conftest (they must pass) and once without it (they
must fail: the planted key is found, so the checks can fail).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyrage  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from bifrost_gitops import sops
from bifrost_gitops.sops.binary import find_sops
from support import ROOT

CANARY = "CANARY-developer-secret-7f3a"

INNER = """\
import os
import subprocess

from bifrost_gitops import sops

RECIPIENT, SEALED, SOPS, CANARY = {args}


def test_our_key_discovery_finds_no_key_at_all():
    ring = sops.default_keyring()
    assert RECIPIENT not in ring.recipients and ring.identities == ()


def test_the_sops_binary_cannot_open_a_file_sealed_to_it():
    proc = subprocess.run([SOPS, "--decrypt", SEALED], capture_output=True, text=True)
    assert proc.returncode != 0 and CANARY not in proc.stdout


def test_no_credential_or_colour_setting_is_left():
    left = [n for n in os.environ if n.startswith(("SOPS_", "BIFROST_", "GITHUB_")) or n == "NO_COLOR"]
    assert left == []
"""


def _developer(home: Path) -> tuple[dict[str, str], str, Path]:
    """A developer's HOME with a real age key in every place sops looks, and the shell around it."""
    ident = pyrage.x25519.Identity.generate()
    recipient = str(ident.to_public())
    key_text = f"# created: 2026-01-01T00:00:00Z\n# public key: {recipient}\n{ident}\n"
    for config in (home / ".config", home / "Library" / "Application Support"):
        (config / "sops" / "age").mkdir(parents=True)
        (config / "sops" / "age" / "keys.txt").write_text(key_text)
    ssh = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_bytes(ssh)  # sops uses it as an age identity
    key_file = home / "work-keys.txt"
    key_file.write_text(key_text)
    sealed = sops.encrypt_document({"secret": CANARY}, recipients=[recipient])
    path = home / "sealed.yaml"
    path.write_text(sops.dump_yaml(sealed, 2))
    shell = {
        "HOME": str(home),
        "SOPS_AGE_KEY": str(ident),
        "SOPS_AGE_KEY_FILE": str(key_file),
        "SOPS_AGE_KEY_CMD": f"cat {key_file}",
        "SOPS_AGE_RECIPIENTS": recipient,
        "BIFROST_API_URL": "https://bifrost.example.com",
        "BIFROST_ACCESS_TOKEN": CANARY,
        "GITHUB_ACTIONS": "true",
        "NO_COLOR": "1",
    }
    return shell, recipient, path


@pytest.mark.parametrize("with_conftest", [True, False], ids=["isolated", "control"])
def test_a_developers_real_key_in_home_is_never_used(tmp_path: Path, with_conftest: bool) -> None:
    sops_bin = find_sops()
    if sops_bin is None:
        pytest.skip("sops binary not installed")
    shell, recipient, sealed = _developer(tmp_path / "developer")
    inner = tmp_path / "test_inner.py"
    inner.write_text(INNER.format(args=repr((recipient, str(sealed), sops_bin, CANARY))))
    env = {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"}
    env.update(shell, PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT / "src")]))
    plugins = ["-p", "conftest"] if with_conftest else []
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugins, str(inner)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    if with_conftest:
        assert proc.returncode == 0 and "3 passed" in summary, proc.stdout + proc.stderr
    else:
        assert proc.returncode == 1 and "3 failed" in summary, proc.stdout + proc.stderr
