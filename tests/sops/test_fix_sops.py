"""``validate --fix`` on files encrypted by the real sops: what it fixes still decrypts.

sops's MAC covers clear values too (unless mac_only_encrypted): --fix makes a change there only
when sops hashes the same bytes before and after, and leaves the rest for ``sops edit``. The
proof is the real binary opening the fixed file, MAC verified.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from support import API, Run, dedent
from test_fix import INTEGRATION, MAPPING

from ._sops_helpers import R1, run_sops

PLAIN = (
    "# yaml-language-server: $schema=../.schemas/mapping.schema.json\n# Contoso\n"
    + API
    + dedent(
        """
    kind: Mapping
    integration: HaloPSA
    organization: contoso
    entity_id: 01234
    config:
        region: no
        window: 1:30
        version: 1.10
        verbose: yes
        page_size: "50"
    secrets:
        api_key: s3cr3t-value
    """
    )
)


@pytest.mark.parametrize("mac_only", [False, True], ids=["mac-over-all", "mac-only-encrypted"])
def test_a_fixed_encrypted_file_still_decrypts(
    mac_only: bool, make_repo: Callable[..., Path], cli: Callable[..., Run], sops_bin: str, vectors: Path
) -> None:
    repo = make_repo({"integrations/HaloPSA/integration.yaml": INTEGRATION, MAPPING: PLAIN})
    (repo / ".schemas").mkdir()
    (repo / ".schemas/mapping.schema.json").write_text("{}\n")
    flags = ["--mac-only-encrypted"] if mac_only else []
    enc = run_sops(
        sops_bin,
        "--encrypt",
        *flags,
        "--age",
        R1,
        "--encrypted-regex",
        "^secrets$",
        "--in-place",
        MAPPING,
        cwd=repo,
    )
    assert enc.returncode == 0, enc.stderr
    encrypted = (repo / MAPPING).read_text()
    # sops re-types clear values as go-yaml does (01234 -> 668, 1.10 -> 1.1, yes -> "yes"): the
    # reason to run --fix before encrypting; what is left are the traps in sops's own spelling
    for spelled in (
        "$schema=../.schemas/",
        "entity_id: 668",
        "version: 1.1",
        'verbose: "yes"',
        'page_size: "50"',
    ):
        assert spelled in encrypted

    run = cli("validate", "--fix", str(repo))

    fixed = (repo / MAPPING).read_text()
    dec = run_sops(sops_bin, "--decrypt", MAPPING, cwd=repo, key_file=vectors / "keys.txt")
    assert dec.returncode == 0, dec.stderr  # the MAC still holds
    assert "api_key: s3cr3t-value" in dec.stdout
    assert "s3cr3t-value" not in run.output
    # MAC-neutral: sops hashes the same bytes for 668 and "668", "50" and 50
    want = (
        encrypted.replace("../.schemas/", "../../../.schemas/")
        .replace("entity_id: 668", 'entity_id: "668"')
        .replace("version: 1.1", 'version: "1.1"')
        .replace('page_size: "50"', "page_size: 50")
    )
    if mac_only:  # clear values are outside the MAC: the bool word is fixed too
        want = want.replace('verbose: "yes"', "verbose: true")
        assert run.code == 0, run.output
        assert "verbose: true" in dec.stdout
    else:  # sops hashes the text "yes", but True for true: that would break the MAC
        assert run.code == 1
        assert f"{MAPPING}:12:14: LEFT C002 'verbose' is a bool key, got text" in run.stdout
        assert f"hint: make the change in `sops edit {MAPPING}`" in run.stdout
        assert "fixed 4 in 1 file, 1 left for a person" in run.stdout
    assert fixed == want
    assert 'entity_id: "668"' in dec.stdout and "page_size: 50" in dec.stdout
