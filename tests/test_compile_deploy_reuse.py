"""compile takes deploy.json's unchanged integration entries over from the previous bundle:
only what a change touches is built (and its secrets opened), the file stays byte for byte what
a cold compile writes and what plan/apply build in memory, and a sealed bundle is kept whole or
sealed anew, never half reused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyrage  # type: ignore[import-untyped]
import pytest

from bifrost_gitops import bundle, sops
from bifrost_gitops.deploymanifest import manifest
from support import load
from test_compile import RUNTIME, RUNTIME_RECIPIENT, compile_, snapshot
from test_compile_reuse import ALL, KEY, assert_as_cold, built, edit, recompiled, rendered, repo
from test_resolve import (
    DOCS_TAILSPIN,
    FILES,
    HALO,
    HALO_CONTOSO,
    HALO_FABRIKAM,
    KEY_FILE,
    MICROSOFT,
    REPO_RECIPIENT,
    build_repo,
)

__all__ = ["built", "rendered", "repo"]  # fixtures shared with test_compile_reuse


def opened(out: Path) -> dict[str, Any]:
    """Every file of a sealed bundle OUT, decrypted with the runtime's key (index.json as is)."""
    ring = sops.make_keyring([RUNTIME])
    return {
        rel: json.loads(data) if rel == "index.json" else sops.decrypt_file(out / rel, identities=ring)
        for rel, data in snapshot(out).items()
    }


@pytest.mark.parametrize("mode", ["redact", "plain"])
def test_deploy_json_is_the_manifest_plan_and_apply_build(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Put together entry by entry, deploy.json reads exactly as the manifest (deploy/source.py)."""
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(KEY_FILE))
    out = tmp_path / "bundle"
    assert compile_(repo, out, "--secrets", mode, env=KEY).code == 0
    result = load(repo)
    reveal = (
        None if mode == "redact" else bundle.SecretOpener(str(repo), result.catalog, sops.default_keyring())
    )
    assert (out / "deploy.json").read_bytes() == bundle.canonical(manifest(result.catalog, reveal))
    edit(repo / HALO_FABRIKAM, "region: us", "region: eu")  # and again from reused entries
    assert compile_(repo, out, "--secrets", mode, env=KEY).code == 0
    result = load(repo)
    reveal = (
        None if mode == "redact" else bundle.SecretOpener(str(repo), result.catalog, sops.default_keyring())
    )
    assert (out / "deploy.json").read_bytes() == bundle.canonical(manifest(result.catalog, reveal))


def test_no_integrations_at_all(tmp_path: Path) -> None:
    no_integrations = {rel: None for rel in FILES if rel.startswith("integrations/")}
    root = build_repo(tmp_path / "repo", no_integrations)
    out = tmp_path / "bundle"
    assert compile_(root, out, "--secrets", "redact").code == 0
    data = (out / "deploy.json").read_bytes()
    assert data == bundle.canonical(manifest(load(root).catalog, None))
    assert json.loads(data)["integrations"] == []
    assert json.loads((out / "index.json").read_text())["deploy"]["integrations"] == {}


def test_an_unchanged_integrations_secrets_are_not_opened(
    repo: Path, tmp_path: Path, rendered: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain compile after one change decrypts only what that change needs: contoso's secrets
    (its mapping of HaloPSA) stay closed when tailspin's Docs mapping changes."""
    files: list[str] = []
    real = bundle.SecretOpener.__call__

    def spy(self: bundle.SecretOpener, ref: Any) -> Any:
        files.append(ref.file)
        return real(self, ref)

    monkeypatch.setattr(bundle.SecretOpener, "__call__", spy)
    out = tmp_path / "bundle"
    recompiled(repo, out, rendered, "--secrets", "plain")
    assert HALO_CONTOSO in files  # a cold compile opens it (so the check below can fail)
    files.clear()
    edit(repo / DOCS_TAILSPIN, "entity_name: Tailspin docs", "entity_name: Tailspin wiki")
    assert recompiled(repo, out, rendered, "--secrets", "plain") == ["tailspin"]
    assert HALO_CONTOSO not in files
    assert_as_cold(repo, out, tmp_path, "--secrets", "plain")


def _deploy_part(out: Path, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    index = json.loads((out / "index.json").read_text())
    return index, index["deploy"]["integrations"][name]


TAMPERS = [
    "entry bytes",
    "entry bytes and the file's sha256",
    "a shifted span",
    "a span past the end",
    "not a table",
]


@pytest.mark.parametrize("how", TAMPERS)
def test_a_tampered_previous_entry_is_built_again(
    repo: Path, tmp_path: Path, rendered: list[str], built: list[str], how: str
) -> None:
    out = tmp_path / "bundle"
    recompiled(repo, out, rendered, "--secrets", "redact")
    good = (out / "deploy.json").read_bytes()
    index, part = _deploy_part(out, "HaloPSA")
    if how.startswith("entry bytes"):
        forged = good[: part["start"]] + good[part["start"] :].replace(
            b"Contoso in Halo", b"Someone else Co", 1
        )
        assert forged != good and len(forged) == len(good)
        (out / "deploy.json").unlink()  # a new file: the old one may be a hard link
        (out / "deploy.json").write_bytes(forged)
        if how.endswith("sha256"):
            index["deploy"]["sha256"] = hashlib.sha256(forged).hexdigest()
    elif how == "a shifted span":
        part["start"] += 1
    elif how == "a span past the end":
        part["end"] = len(good) + 10
    else:
        index["deploy"]["integrations"] = ["HaloPSA"]
    (out / "index.json").write_text(json.dumps(index))
    built.clear()
    assert recompiled(repo, out, rendered, "--secrets", "redact") == []
    assert sorted(built) == (ALL if how == "not a table" else ["HaloPSA"])
    assert (out / "deploy.json").read_bytes() == good
    assert_as_cold(repo, out, tmp_path, "--secrets", "redact")


def test_a_redacted_entry_never_lands_in_a_plain_bundle(
    repo: Path, tmp_path: Path, rendered: list[str], built: list[str]
) -> None:
    out = tmp_path / "bundle"
    recompiled(repo, out, rendered, "--secrets", "redact")
    built.clear()
    recompiled(repo, out, rendered, "--secrets", "plain")
    assert sorted(built) == ALL
    assert b"<redacted>" not in (out / "deploy.json").read_bytes()
    assert_as_cold(repo, out, tmp_path, "--secrets", "plain")


def test_sealed_deploy_json_is_kept_whole_or_sealed_anew(
    repo: Path, tmp_path: Path, rendered: list[str], built: list[str]
) -> None:
    """A sealed deploy.json is one sealed document: unchanged inputs keep the file (nothing is
    built or opened); any change seals all of it again, equal to a cold plain compile's."""
    out = tmp_path / "bundle"
    recompiled(repo, out, rendered, "--recipient", RUNTIME_RECIPIENT)
    before = snapshot(out)
    built.clear()
    assert recompiled(repo, out, rendered, "--recipient", RUNTIME_RECIPIENT) == []
    assert built == [] and snapshot(out) == before
    index = json.loads((out / "index.json").read_text())
    assert len(index["deploy"]["inputs"]) == 64 and "integrations" not in index["deploy"]
    edit(repo / HALO_FABRIKAM, "region: us", "region: eu")
    assert recompiled(repo, out, rendered, "--recipient", RUNTIME_RECIPIENT) == ["fabrikam"]
    assert sorted(built) == ALL
    after = snapshot(out)
    assert after["deploy.json"] != before["deploy.json"]
    assert after["global.json"] == before["global.json"]
    plain = tmp_path / "plain"
    assert compile_(repo, plain, "--secrets", "plain", env=KEY).code == 0
    clear = opened(out)
    assert clear["deploy.json"] == json.loads((plain / "deploy.json").read_text())
    assert clear["orgs/fabrikam.json"] == json.loads((plain / "orgs/fabrikam.json").read_text())


def test_a_new_repository_key_and_sops_rules_seal_everything_anew(
    repo: Path, tmp_path: Path, rendered: list[str], built: list[str]
) -> None:
    """The repository re-keyed (.sops.yaml to a new age key, every secret file re-encrypted, the
    old key gone): nothing of the previous sealed bundle is kept, and it opens to the same values."""
    out = tmp_path / "bundle"
    recompiled(repo, out, rendered, "--recipient", RUNTIME_RECIPIENT)
    before = opened(out)
    ident = pyrage.x25519.Identity.generate()
    new = str(ident.to_public())
    edit(repo / ".sops.yaml", REPO_RECIPIENT, new)
    for rel in (HALO, HALO_CONTOSO, MICROSOFT):
        tree = sops.loads(FILES[rel], "yaml")
        enc = sops.encrypt_document(
            tree, recipients=[new], encrypted_regex="^secrets$", mac_only_encrypted=True
        )
        (repo / rel).write_text(sops.dump_yaml(enc, indent=2))
    key = tmp_path / "new-key.txt"
    key.write_text(f"{ident}\n")
    built.clear()
    rendered.clear()
    run = compile_(repo, out, "--recipient", RUNTIME_RECIPIENT, env={"SOPS_AGE_KEY_FILE": str(key)})
    assert run.code == 0, run.output
    assert sorted(rendered) == sorted(
        before[rel]["organization"]["name"] for rel in before if rel.startswith("orgs/")
    )
    assert sorted(built) == ALL
    after = opened(out)
    assert {rel: v for rel, v in after.items() if rel != "index.json"} == {
        rel: v for rel, v in before.items() if rel != "index.json"
    }


def test_a_small_change_flushes_only_what_it_wrote(
    repo: Path, tmp_path: Path, rendered: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The few files a change writes are fsync'ed (with their folders); a system-wide sync,
    which also waits for every other program's writes, is kept for big writes."""
    import os

    out = tmp_path / "bundle"
    recompiled(repo, out, rendered, "--secrets", "redact")
    synced: list[str] = []
    flushed: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "sync", lambda: synced.append("sync"))

    def fsync(fd: int) -> None:
        flushed.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    edit(repo / HALO_FABRIKAM, "region: us", "region: eu")
    assert recompiled(repo, out, rendered, "--secrets", "redact") == ["fabrikam"]
    assert synced == [] and len(flushed) == 3 + 2  # its org file, deploy.json, index.json; 2 folders
    monkeypatch.setattr(bundle, "FSYNC_EACH", 2)  # more new files than that: one sync
    flushed.clear()
    edit(repo / HALO_FABRIKAM, "region: eu", "region: us")
    assert recompiled(repo, out, rendered, "--secrets", "redact") == ["fabrikam"]
    assert synced == ["sync"] and flushed == []
    assert_as_cold(repo, out, tmp_path, "--secrets", "redact")


def test_entries_after_non_ascii_text_are_found_by_their_bytes(
    tmp_path: Path, rendered: list[str], built: list[str]
) -> None:
    """Offsets are bytes: an entry after multi-byte text (Docs sorts first) is still taken over."""
    docs = FILES[DOCS_TAILSPIN].replace("entity_name: Tailspin docs", "entity_name: Tailspin döcs ☃")
    root = build_repo(tmp_path / "repo", {DOCS_TAILSPIN: docs})
    out = tmp_path / "bundle"
    recompiled(root, out, rendered, "--secrets", "redact")
    edit(root / HALO_FABRIKAM, "region: us", "region: eu")
    built.clear()
    assert recompiled(root, out, rendered, "--secrets", "redact") == ["fabrikam"]
    assert built == ["HaloPSA"]
    assert "döcs ☃" in (out / "deploy.json").read_text(encoding="utf-8")
    assert_as_cold(root, out, tmp_path, "--secrets", "redact")
