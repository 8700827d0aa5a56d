"""`secrets check` opens a file whose MAC covers only its encrypted values from the parse the load
already made (no second parse), with the same findings, positions and exit codes as when every
file was parsed again the sops way. Files made by the real sops 3.11 (tests/sops/vectors)."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from bifrost_gitops import secretops, sops
from support import API, ROOT, Run, dedent, run_cli, write_repo

VECTORS = ROOT / "tests" / "sops" / "vectors"
MAPPING = (VECTORS / "mapping-contoso.sops.yaml").read_text()
EDITED = (VECTORS / "mapping-contoso-edited.sops.yaml").read_text()
INTEGRATION = API + dedent(
    """
    kind: Integration
    name: HaloPSA
    entity_id_name: Client ID
    config_schema:
      - {key: page_size, type: int}
      - {key: region, type: string}
      - {key: webhook_secret, type: secret}
      - {key: refresh_token, type: secret}
      - {key: expires_in, type: secret}
    """
)


def flip_first_byte(text: str, key: str) -> str:
    """The ciphertext of KEY's ENC value with its first byte changed (an altered value)."""
    m = re.search(rf"{key}: ENC\[AES256_GCM,data:([^,]+),", text)
    assert m is not None
    raw = bytearray(base64.b64decode(m.group(1)))
    raw[0] ^= 1
    return text[: m.start(1)] + base64.b64encode(bytes(raw)).decode() + text[m.end(1) :]


#: organization -> its mapping file: sops's own files, and the same altered in the ways that matter
VARIANTS: dict[str, str] = {
    "contoso": MAPPING,
    "edited": EDITED,  # a clear value changed: outside the MAC, still opens
    "value": flip_first_byte(MAPPING, "refresh_token"),  # K005 at the value
    "mac": flip_first_byte(MAPPING, "mac"),  # K005 at sops.mac
    "stamp": MAPPING.replace('lastmodified: "2026-11-24T23:38:51Z"', 'lastmodified: "2026-11-24T23:38:52Z"'),
    "unquoted": MAPPING.replace('lastmodified: "2026-11-24T23:38:51Z"', "lastmodified: 2026-11-24 23:38:51Z"),
    "removed": re.sub(r"\n    expires_in: ENC\[[^\n]+", "", MAPPING),  # MAC mismatch
    "bytes": MAPPING.replace(
        "tag:xpkNzh9TXR3tNzcR8V39nw==,type:str]", "tag:xpkNzh9TXR3tNzcR8V39nw==,type:bytes]"
    ),
    # YAML 1.1 reads yes as true, sops reads text: the MAC covers the clear values, which changed
    "yes": MAPPING.replace("mac_only_encrypted: true", "mac_only_encrypted: yes"),
    "merged": MAPPING.replace("config:\n", "base: &b {page_size: 1}\nconfig:\n    <<: *b\n"),
    # the secrets merged in from an anchor: YAML 1.1 merges them, sops reads a key "<<"
    "anchored": MAPPING.replace("secrets:\n", "vault: &s\n").replace(
        "sops:\n", "secrets:\n    <<: *s\nsops:\n"
    ),
}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(VECTORS / "keys.txt"))
    orgs = "".join(f"  - name: {org}\n" for org in VARIANTS)
    files: dict[str, str | None] = {
        "organizations.yaml": API + "kind: Organizations\norganizations:\n" + orgs,
        "integrations/HaloPSA/integration.yaml": INTEGRATION,
        "integrations/HaloPSA/mappings/contoso.yaml": None,
    }
    for org, text in VARIANTS.items():
        files[f"integrations/HaloPSA/mappings/{org}.yaml"] = text.replace(
            "organization: contoso", f"organization: {org}"
        )
    return write_repo(tmp_path / "repo", files)


def check(repo: Path, *args: str) -> Run:
    return run_cli("secrets", "check", str(repo), *args)


def test_vectors_are_what_the_test_says() -> None:
    assert VARIANTS["value"] != MAPPING and VARIANTS["mac"] != MAPPING and VARIANTS["removed"] != MAPPING
    assert "type:bytes" in VARIANTS["bytes"] and "<<: *b" in VARIANTS["merged"]
    assert "vault: &s" in VARIANTS["anchored"] and "    <<: *s\nsops:" in VARIANTS["anchored"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_same_findings_as_parsing_every_file_again(
    repo: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    once = check(repo, "--format", fmt)
    monkeypatch.setattr(secretops, "_same_either_way", lambda doc: False)  # the sops store's parse, always
    twice = check(repo, "--format", fmt)
    assert once == twice
    assert once.code == 1
    text = check(repo).stdout
    for org in ("value", "mac", "stamp", "unquoted", "removed", "yes", "anchored"):
        assert f"integrations/HaloPSA/mappings/{org}.yaml:" in text
    assert re.search(r"mappings/value\.yaml:\d+:\d+: K005 .*refresh_token", text)
    assert re.search(r"mappings/bytes\.yaml:\d+:\d+: K007 ", text)
    for org in ("contoso", "edited", "merged"):
        assert f"mappings/{org}.yaml" not in text


def test_files_whose_mac_covers_only_secrets_are_not_parsed_again(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed_again: list[str] = []
    real = sops.decrypt_file

    def counting(path: Any, **kw: Any) -> Any:
        parsed_again.append(Path(path).stem)
        return real(path, **kw)

    monkeypatch.setattr(sops, "decrypt_file", counting)
    check(repo)
    # opened from the load's parse: sops's files and the clear edit; the rest are settled by sops's
    # own parse (an error, a block YAML 1.1 and go-yaml type differently, a merge key)
    assert sorted(parsed_again) == sorted(
        ["value", "mac", "stamp", "unquoted", "removed", "yes", "merged", "anchored"]
    )


def test_without_the_key_exit_2_either_way(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(VECTORS / "keys-second.txt"))
    monkeypatch.setenv("PATH", "")  # no sops binary to fall back to
    once = check(repo, "--format", "json")
    monkeypatch.setattr(secretops, "_same_either_way", lambda doc: False)
    assert once == check(repo, "--format", "json")
    assert once.code == 2


def test_the_guards_alone_keep_the_results(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even for files the load did not flag (here: its findings dropped), a sops block YAML 1.1
    types otherwise (yes, an unquoted time) and a merge key go to sops's own parse."""
    from support import load

    result = load(repo)
    result.diagnostics.clear()
    ring = sops.make_keyring(sops.parse_identities((VECTORS / "keys.txt").read_text()))
    once = secretops.check_files(result, ring)
    monkeypatch.setattr(secretops, "_same_either_way", lambda doc: False)
    assert once == secretops.check_files(result, ring)
    assert {d.path.rsplit("/", 1)[-1] for d in once} == {
        f"{org}.yaml" for org in ("value", "mac", "stamp", "unquoted", "removed", "bytes", "yes", "anchored")
    }


def test_jobs_give_the_same_findings_in_the_same_order(
    repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import os

    from support import load

    result = load(repo)
    ring = sops.make_keyring(sops.parse_identities((VECTORS / "keys.txt").read_text()))
    pids = tmp_path / "pids"
    real = secretops._check

    def noting(*args: Any) -> Any:
        with pids.open("a") as f:
            f.write(f"{os.getpid()}\n")
        return real(*args)

    monkeypatch.setattr(secretops, "_check", noting)
    monkeypatch.setattr(secretops, "PARALLEL_MIN", 1)  # these few files in workers too
    one = secretops.check_files(result, ring, jobs=1)
    three = secretops.check_files(result, ring, jobs=3)
    assert three == one and len(one) == 8
    assert len(set(pids.read_text().split()) - {str(os.getpid())}) >= 2  # opened by other processes
    text = [check(repo, "--jobs", str(n)).stdout for n in (1, 2)]
    assert text[0] == text[1] and "K005" in text[0]


def test_packed_positions_keep_the_guards_without_being_unpacked(
    repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Documents read from the cache (or parsed by a worker) carry their positions packed: the
    merge-key guard reads them as they are, and the findings are the same as unpacked ones'."""
    from bifrost_gitops import loader
    from bifrost_gitops import repo as repository

    monkeypatch.setenv("BIFROST_GITOPS_CACHE_DIR", str(tmp_path / "cache"))
    ring = sops.make_keyring(sops.parse_identities((VECTORS / "keys.txt").read_text()))
    plain = repository.load(str(repo), repository.LoadOptions(jobs=1, cache=False))
    repository.load(str(repo), repository.LoadOptions(jobs=1))  # fills the cache
    packed = repository.load(str(repo), repository.LoadOptions(jobs=1))  # every document from it
    docs = {p.doc.path.rsplit("/", 1)[-1]: p.doc for p in packed.catalog.documents()}
    assert docs["contoso.yaml"]._packed, "read from the cache: positions packed"
    unpacked: list[str] = []
    monkeypatch.setattr(loader.Document, "_unpack", lambda doc: unpacked.append(doc.path))
    assert docs["merged.yaml"].on_a_path("<<") and docs["anchored.yaml"].on_a_path("<<")
    assert not docs["contoso.yaml"].on_a_path("<<") and not docs["edited.yaml"].on_a_path("<<")
    assert secretops._same_either_way(docs["contoso.yaml"]) and not secretops._same_either_way(
        docs["merged.yaml"]
    )
    assert unpacked == []
    monkeypatch.undo()
    assert secretops.check_files(packed, ring) == secretops.check_files(plain, ring)


def test_a_warm_check_loads_only_the_encrypted_documents(
    repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On a warm run the documents stay in the cache until asked for: `secrets check` asks only
    for the encrypted ones (their facts say which), with the findings of a cold run."""
    from bifrost_gitops import repo as repository

    monkeypatch.setenv("BIFROST_GITOPS_CACHE_DIR", str(tmp_path / "cache"))
    ring = sops.make_keyring(sops.parse_identities((VECTORS / "keys.txt").read_text()))
    cold = repository.load(str(repo), repository.LoadOptions(jobs=1))  # fills the cache
    warm = repository.load(str(repo), repository.LoadOptions(jobs=1))
    unloaded = [p for p in warm.catalog.documents() if p._doc is None and p.facts.age is None]
    assert "bifrost-gitops.yaml" in {p.path for p in unloaded}
    found = secretops.check_files(warm, ring)
    assert secretops.encrypted_files(warm) == secretops.encrypted_files(cold)
    assert len(secretops.encrypted_files(warm)) == len(VARIANTS)
    assert all(p._doc is None for p in unloaded), "left in the cache"
    assert found == secretops.check_files(cold, ring) and found
