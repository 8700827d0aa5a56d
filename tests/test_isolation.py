"""No test uses a developer's real age key or Bifrost credentials (tests/conftest.py's isolated_home).

A developer's shell is planted (a real age key in HOME's sops keys file, an ssh key in ~/.ssh, a
key in SOPS_AGE_KEY / SOPS_AGE_KEY_FILE / SOPS_AGE_KEY_CMD, Bifrost credentials, GITHUB_*,
NO_COLOR); our key discovery and the real sops binary find the key there, and find nothing once
support.isolate, which isolated_home runs for every test, has cleared it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pyrage  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from bifrost_gitops import sops
from bifrost_gitops.sops.binary import find_sops
from support import isolate

CANARY = "CANARY-developer-secret-7f3a"


def _leaky() -> list[str]:
    """What a developer's shell may hold that a test must not see (spelled out, not support's list)."""
    return [n for n in os.environ if n.startswith(("SOPS_", "BIFROST_", "GITHUB_")) or n == "NO_COLOR"]


def _plant_developer(mp: pytest.MonkeyPatch, home: Path) -> tuple[str, Path]:
    """A developer's HOME with a real age key in every place sops looks, and the shell around it;
    returns the key's recipient and a file sealed to it."""
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
    sealed = home / "sealed.yaml"
    sealed.write_text(sops.dump_yaml(sops.encrypt_document({"secret": CANARY}, recipients=[recipient]), 2))
    for name, value in {
        "HOME": str(home),
        "SOPS_AGE_KEY": str(ident),
        "SOPS_AGE_KEY_FILE": str(key_file),
        "SOPS_AGE_KEY_CMD": f"cat {key_file}",
        "SOPS_AGE_RECIPIENTS": recipient,
        "BIFROST_API_URL": "https://bifrost.example.com",
        "BIFROST_ACCESS_TOKEN": CANARY,
        "GITHUB_ACTIONS": "true",
        "NO_COLOR": "1",
    }.items():
        mp.setenv(name, value)
    mp.delenv("XDG_CONFIG_HOME")
    return recipient, sealed


def _sops_decrypt(sops_bin: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sops_bin, "--decrypt", str(path)], capture_output=True, text=True, timeout=60)


def test_every_test_starts_isolated(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Without asking for it: the autouse fixture ran before this test, HOME is an empty folder."""
    home = Path(os.environ["HOME"])
    assert home.parent == tmp_path_factory.getbasetemp() and home.name.startswith("home")
    assert os.environ["XDG_CONFIG_HOME"] == str(home / ".config")
    assert [p.name for p in home.iterdir()] == [".config"] and not any((home / ".config").iterdir())
    assert _leaky() == []


def test_a_developers_planted_key_is_never_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sops_bin = find_sops()
    if sops_bin is None:
        pytest.skip("sops binary not installed")
    recipient, sealed = _plant_developer(monkeypatch, tmp_path / "developer")
    # the planted shell really hands the key out (so the checks below can fail)
    ring = sops.find_identities()
    assert recipient in ring.recipients and len(ring.identities) >= 5
    assert CANARY in _sops_decrypt(sops_bin, sealed).stdout

    isolate(monkeypatch, tmp_path / "clean-home")
    ring = sops.find_identities()
    assert ring.identities == () and recipient not in ring.recipients
    proc = _sops_decrypt(sops_bin, sealed)
    assert proc.returncode != 0 and CANARY not in proc.stdout
    assert _leaky() == []
