"""Every vector made by the real sops 3.11 decrypts natively to its .plain file, or is rejected."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from bifrost_gitops import sops
from bifrost_gitops.sops import IntegrityError, NoKeyError, Secret

from ._sops_helpers import R1, R2, typed

GOOD = [
    "basic.sops.yaml",
    "config.sops.json",
    "encrypted-regex.sops.yaml",
    "mapping-contoso.sops.yaml",
    "mapping-contoso-edited.sops.yaml",
    "two-recipients.sops.yaml",
    "types.sops.yaml",
    "unencrypted-suffix.sops.yaml",
]
TAMPERED = ["tampered-value.sops.yaml", "tampered-unencrypted.sops.yaml", "tampered-mac.sops.yaml"]


def _plain(vectors: Path, name: str) -> Any:
    return sops.load_file(vectors / name.replace(".sops.", ".plain."))


@pytest.mark.parametrize("name", GOOD)
def test_vector_decrypts_to_plain(vectors: Path, key1: Any, name: str) -> None:
    out = sops.decrypt_file(vectors / name, identities=[key1], use_binary=False)
    assert typed(out) == typed(_plain(vectors, name))


def test_key_groups_needs_both(vectors: Path, key1: Any, key2: Any) -> None:
    path = vectors / "key-groups.sops.yaml"
    out = sops.decrypt_file(path, identities=[key1, key2], use_binary=False)
    assert typed(out) == typed(_plain(vectors, "key-groups.sops.yaml"))
    for only in (key1, key2):
        with pytest.raises(NoKeyError) as e:
            sops.decrypt_file(path, identities=[only], use_binary=False)
        msg = str(e.value)
        assert str(path) in msg and "threshold of 2" in msg and "only 1 group" in msg
        assert R1 in msg and R2 in msg
        assert "needs-both" not in msg


def test_key_groups_one_key_fails_with_binary_too(vectors: Path, key1: Any, sops_bin: str) -> None:
    with pytest.raises(NoKeyError) as e:
        sops.decrypt_file(vectors / "key-groups.sops.yaml", identities=[key1])
    assert "sops binary" in str(e.value) and "needs-both" not in str(e.value)


@pytest.mark.parametrize("which", ["first", "second"])
def test_two_recipients_each_key_alone(vectors: Path, key1: Any, key2: Any, which: str) -> None:
    key = key1 if which == "first" else key2
    out = sops.decrypt_file(vectors / "two-recipients.sops.yaml", identities=[key], use_binary=False)
    assert out["webhook"]["signing_key"] == "whsk_two_recipient_value"


@pytest.mark.parametrize("name", TAMPERED)
def test_tampered_vectors_rejected(vectors: Path, key1: Any, name: str) -> None:
    with pytest.raises(IntegrityError) as e:
        sops.decrypt_file(vectors / name, identities=[key1], use_binary=False)
    assert name in str(e.value)
    assert "s3cr3t" not in str(e.value) and "8081" not in str(e.value)


def test_mac_only_encrypted_allows_clear_edit(vectors: Path, key1: Any) -> None:
    out = sops.decrypt_file(vectors / "mapping-contoso-edited.sops.yaml", identities=[key1], use_binary=False)
    assert out["config"]["page_size"] == 75
    assert out["secrets"]["expires_in"] == 3600


def test_json_numbers_tagged_float_come_back_as_ints(vectors: Path, key1: Any) -> None:
    out = sops.decrypt_file(vectors / "config.sops.json", identities=[key1], use_binary=False)
    assert type(out["port"]) is int and out["port"] == 8443
    assert type(out["limits"]["burst"]) is float


def test_types_vector_values(vectors: Path, key1: Any) -> None:
    out = sops.decrypt_file(vectors / "types.sops.yaml", identities=[key1], use_binary=False)
    assert out["big_int"] == 9007199254740993 and type(out["big_int"]) is int
    assert isinstance(out["expires_at"], sops.Timestamp) and out["expires_at"] == "2030-06-30T12:00:00Z"
    assert out["yes_string"] == "yes" and out["quoted_bool"] == "true" and out["quoted_number"] == "0123"
    assert out["nothing"] is None and out["empty"] == ""
    assert out["ns:key"] == "colon in key"


def test_list_comment_items_dropped(vectors: Path, key1: Any) -> None:
    out = sops.decrypt_file(vectors / "basic.sops.yaml", identities=[key1], use_binary=False)
    assert out["servers"] == ["alpha.example.com", "beta.example.com"]


def test_wrap_marks_encrypted_leaves_only(vectors: Path, key1: Any) -> None:
    out = sops.decrypt_file(
        vectors / "mapping-contoso.sops.yaml", identities=[key1], wrap=True, use_binary=False
    )
    s = out["secrets"]["webhook_secret"]
    assert isinstance(s, Secret) and s.reveal() == "whsec_contoso_123"
    assert repr(s) == str(s) == f"{s}" == f"{s:>20}" == "<secret>"
    assert out["config"]["page_size"] == 50 and out["entity_id"] == "12345"
    assert sops.reveal(out) == _plain(vectors, "mapping-contoso.sops.yaml")
    assert "whsec" not in repr(out)


@pytest.mark.parametrize(
    "setup",
    ["SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", "SOPS_AGE_KEY_CMD", "xdg"],
)
def test_key_sources(vectors: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch, setup: str) -> None:
    keys = vectors / "keys.txt"
    if setup == "SOPS_AGE_KEY_FILE":
        monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(keys))
    elif setup == "SOPS_AGE_KEY":
        monkeypatch.setenv("SOPS_AGE_KEY", keys.read_text())
    elif setup == "SOPS_AGE_KEY_CMD":
        monkeypatch.setenv("SOPS_AGE_KEY_CMD", f"cat {keys}")
    else:
        target = isolated_home / ".config" / "sops" / "age"
        target.mkdir(parents=True)
        shutil.copy(keys, target / "keys.txt")
    out = sops.decrypt_file(vectors / "basic.sops.yaml", use_binary=False)
    assert out["database"]["password"] == "s3cr3t-P@ssw0rd!"


def test_sources_are_combined(vectors: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY", (vectors / "keys.txt").read_text())
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(vectors / "keys-second.txt"))
    out = sops.decrypt_file(vectors / "key-groups.sops.yaml", use_binary=False)
    assert out["quorum_secret"] == "needs-both-key-groups"


def test_no_key_error_names_file_recipients_and_sources(
    vectors: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", "/nonexistent/keys.txt")
    with pytest.raises(NoKeyError) as e:
        sops.decrypt_file(vectors / "basic.sops.yaml")
    msg = str(e.value)
    assert "basic.sops.yaml" in msg and R1 in msg
    assert "SOPS_AGE_KEY_FILE=/nonexistent/keys.txt" in msg and "SOPS_AGE_KEY: not set" in msg
    assert "sops/age/keys.txt" in msg and "AGE-SECRET-KEY" not in msg


def test_key_text_parsing(vectors: Path) -> None:
    text = "# comment\n\n" + (vectors / "keys.txt").read_text() + "\n  \nAGE-PLUGIN-YUBIKEY-1XYZ\nnot-a-key\n"
    ring = sops.find_identities({"SOPS_AGE_KEY": text, "HOME": "/nonexistent"})
    assert ring.recipients == {R1}
    desc = ring.describe()
    assert "1 key" in desc and "plugin" in desc and "unreadable" in desc and "AGE-SECRET" not in desc
