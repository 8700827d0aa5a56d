"""Interop with the real sops binary: it reads, edits and rejects what we write, and vice versa."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyrage  # type: ignore[import-untyped]
import pytest

from bifrost_gitops import sops
from bifrost_gitops.sops import IntegrityError, Secret, Timestamp

from ._sops_helpers import run_sops, typed

DATA: dict[str, Any] = {
    "apiVersion": "bifrost-gitops/v1",
    "config": {
        "page_size": 50,
        "ratio": 0.5,
        "enabled": True,
        "word": "yes",
        "when": Timestamp("2030-06-30T12:00:00Z"),
    },
    "secrets": {
        "api_key": "ключ 🚀 naïve",
        "empty": "",
        "count": -42,
        "big": 9007199254740993,
        "pi": 3.14159,
        "tiny": 0.001,
        "flag": False,
        "multi": "line one\nline two\n",
        "list": [1, "two", {"deep": "x"}, [True, None]],
        "nested": {"a": {"b": "c"}},
        "nothing": None,
        "octal_text": "0o17",
        "colon": "a: b # not a comment",
    },
    "top_list": [[1, 2], [{"x": "y"}]],
    "ns:key": "v",
    "token_unencrypted": "clear",
    "empty_map": {},
    "empty_list": [],
}

MODES: dict[str, dict[str, Any]] = {
    "regex-mac-only": {"encrypted_regex": "^secrets$", "mac_only_encrypted": True},
    "default-suffix": {},
    "unencrypted-regex": {"unencrypted_regex": "^(config|apiVersion)$"},
}


def _write(tmp_path: Path, name: str, doc: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(sops.dumps(doc, "json" if name.endswith(".json") else "yaml"), encoding="utf-8")
    return path


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("ext", ["yaml", "json"])
def test_sops_decrypts_what_we_encrypt(
    tmp_path: Path, sops_bin: str, fresh_key: Any, key1: Any, mode: str, ext: str
) -> None:
    _ident, recipient, keyfile = fresh_key
    data = DATA if ext == "yaml" else json.loads(json.dumps(DATA))  # JSON has no timestamps
    doc = sops.encrypt_document(data, recipients=[recipient, str(key1.to_public())], **MODES[mode])
    assert [e["recipient"] for e in doc["sops"]["age"]] == [recipient, str(key1.to_public())]
    path = _write(tmp_path, f"ours.{ext}", doc)
    proc = run_sops(sops_bin, "--decrypt", str(path), cwd=tmp_path, key_file=keyfile)
    assert proc.returncode == 0, proc.stderr
    assert typed(sops.loads(proc.stdout, ext)) == typed(data)
    assert typed(sops.decrypt_file(path, identities=[key1], use_binary=False)) == typed(data)
    if mode == "regex-mac-only":
        text = path.read_text()
        assert "page_size" in text and "ключ" not in text and "line one" not in text


def test_we_decrypt_what_sops_encrypts(tmp_path: Path, sops_bin: str, fresh_key: Any) -> None:
    ident, recipient, _keyfile = fresh_key
    src = tmp_path / "src.yaml"
    src.write_text(
        "# comment\nname: demo\nsecrets:\n  # inner comment\n  token: t0k\n  n: 7\n  f: 2.5\n  on: yes\n"
        "  when: 2024-01-15\n  items:\n    - a\n    # list comment\n    - b\nclear_unencrypted: 0x1F\n"
    )
    for flags in ([], ["--encrypted-regex", "^secrets$", "--mac-only-encrypted"]):
        out = tmp_path / "enc.yaml"
        proc = run_sops(
            sops_bin, "--encrypt", "--age", recipient, *flags, "--output", str(out), str(src), cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stderr
        got = sops.decrypt_file(out, identities=[ident], use_binary=False)
        assert typed(got) == typed(sops.load_file(src))
        assert got["secrets"]["when"] == "2024-01-15T00:00:00Z" and got["secrets"]["on"] == "yes"
        assert got["secrets"]["items"] == ["a", "b"] and got["clear_unencrypted"] == 31


def test_sops_can_set_a_value_in_our_file(tmp_path: Path, sops_bin: str, fresh_key: Any) -> None:
    ident, recipient, keyfile = fresh_key
    doc = sops.encrypt_document(
        DATA, recipients=[recipient], encrypted_regex="^secrets$", mac_only_encrypted=True
    )
    path = _write(tmp_path, "ours.yaml", doc)
    proc = run_sops(
        sops_bin, "set", str(path), '["secrets"]["added"]', '"by sops"', cwd=tmp_path, key_file=keyfile
    )
    assert proc.returncode == 0, proc.stderr
    got = sops.decrypt_file(path, identities=[ident], use_binary=False)
    assert got["secrets"]["added"] == "by sops" and got["secrets"]["api_key"] == DATA["secrets"]["api_key"]


@pytest.mark.parametrize("how", ["ciphertext", "clear-value"])
def test_both_reject_tampering_with_our_output(
    tmp_path: Path, sops_bin: str, fresh_key: Any, how: str
) -> None:
    ident, recipient, keyfile = fresh_key
    doc = sops.encrypt_document(DATA, recipients=[recipient])  # default suffix: clear values are in the MAC
    text = sops.dump_yaml(doc)
    if how == "ciphertext":
        line = next(ln for ln in text.splitlines() if ln.strip().startswith("count: ENC["))
        m = re.search(r"data:([^,]+)", line)
        assert m is not None
        flipped = ("A" if m.group(1)[0] != "A" else "B") + m.group(1)[1:]
        text = text.replace(line, line.replace(m.group(1), flipped))
    else:
        text = text.replace("token_unencrypted: clear", "token_unencrypted: changed")
    path = tmp_path / "tampered.yaml"
    path.write_text(text)
    with pytest.raises(IntegrityError):
        sops.decrypt_file(path, identities=[ident], use_binary=False)
    proc = run_sops(sops_bin, "--decrypt", str(path), cwd=tmp_path, key_file=keyfile)
    assert proc.returncode in (25, 51)


def _bundle_like(orgs: int) -> dict[str, Any]:
    """A document shaped like a sealed bundle file (everything encrypted, mostly text), with
    every value type and more values than one batch of IVs."""
    return {
        "organization": {"name": "ünïcode Örg 🚀", "id": "4fdc1351-5ba8-40dc-a45d-b6ca6f6a2196"},
        "integrations": {
            f"Integration{i}": {
                "entity_name": f'Kunde {i} "quoted" \\ back\tslash\nnew line ключ',
                "config": {
                    "url": f"https://api.example.com/{i}?q=ä&x=<{i}>",
                    "count": -i,
                    "big": 2**63 - 1 - i,
                    "ratio": (2 * i + 1) / 16,  # never integral: sops reads 1.0 back as 1
                    "flag": i % 2 == 0,
                    "nothing": None,
                    "empty": "",
                    "emoji": "🔑" * (i % 5 + 1),
                    "map": {"a": [i, f"x{i}", {"deep": True}], "b": [[1.5, "y"], []], "c": {}},
                },
                "scopes": ["read", "write", f"scope-{i}"],
            }
            for i in range(orgs)
        },
        "mapped": [f"Integration{i}" for i in range(orgs)],
    }


@pytest.mark.parametrize("ext", ["json", "yaml"])
def test_sops_decrypts_a_bundle_sized_document(
    tmp_path: Path, sops_bin: str, fresh_key: Any, ext: str
) -> None:
    """The sealing walk (text straight to the cipher, IVs drawn in batches, the ENC text made as
    bytes) writes what the real sops opens, for every value type and across IV batches."""
    from bifrost_gitops.sops import values

    ident, recipient, keyfile = fresh_key
    data = _bundle_like(40)
    doc = sops.encrypt_document(data, recipients=[recipient])
    leaves = [v for v in _leaves(doc) if isinstance(v, str) and v.startswith("ENC[")]
    assert len(leaves) > 2 * values.IV_BATCH
    assert len({values.parse(v).iv for v in leaves}) == len(leaves)  # each value its own IV
    path = tmp_path / f"bundle.{ext}"
    path.write_text(
        sops.dump_json(doc, indent=None) if ext == "json" else sops.dump_yaml(doc), encoding="utf-8"
    )
    text = path.read_text(encoding="utf-8")
    assert "ünïcode" not in text and "Kunde" not in text and "🔑" not in text and "example.com" not in text
    proc = run_sops(sops_bin, "--decrypt", "--output-type", "json", str(path), cwd=tmp_path, key_file=keyfile)
    assert proc.returncode == 0, proc.stderr
    assert typed(json.loads(proc.stdout)) == typed(data)
    assert typed(sops.decrypt_file(path, identities=[ident], use_binary=False)) == typed(data)


def _leaves(tree: Any) -> list[Any]:
    if isinstance(tree, dict):
        return [x for k, v in tree.items() if k != "sops" for x in _leaves(v)]
    if isinstance(tree, list):
        return [x for v in tree for x in _leaves(v)]
    return [tree]


def test_previous_keeps_unchanged_lines_identical(fresh_key: Any) -> None:
    ident, recipient, _ = fresh_key
    other = str(pyrage.x25519.Identity.generate().to_public())
    opts: dict[str, Any] = {"encrypted_regex": "^secrets$", "mac_only_encrypted": True}
    first = sops.dump_yaml(
        sops.encrypt_document(
            DATA, recipients=[recipient, other], **opts, lastmodified="2024-01-01T00:00:00Z"
        )
    )
    prev = sops.loads(first)
    changed = json.loads(json.dumps(DATA, default=str))
    changed["config"]["when"] = Timestamp(changed["config"]["when"])
    changed["secrets"]["api_key"] = "rotated"
    second = sops.dump_yaml(
        sops.encrypt_document(
            changed, recipients=[recipient, other], **opts, previous=prev, identities=[ident]
        )
    )
    diff = [(a, b) for a, b in zip(first.splitlines(), second.splitlines(), strict=True) if a != b]
    keys = sorted(a.strip().split(":")[0] for a, _ in diff)
    assert keys == ["api_key", "lastmodified", "mac"]
    assert sops.decrypt_document(sops.loads(second), identities=[ident])["secrets"]["api_key"] == "rotated"


def test_secret_in_clear_position_refused(fresh_key: Any) -> None:
    _, recipient, _ = fresh_key
    with pytest.raises(sops.SopsError) as e:
        sops.encrypt_document(
            {"config": {"x": Secret("CANARY-clear")}}, recipients=[recipient], encrypted_regex="^secrets$"
        )
    assert "CANARY" not in str(e.value) and "config.x" in str(e.value)


def test_wrapped_tree_reencrypts(fresh_key: Any) -> None:
    ident, recipient, _ = fresh_key
    doc = sops.encrypt_document(DATA, recipients=[recipient], encrypted_regex="^secrets$")
    wrapped = sops.decrypt_document(doc, identities=[ident], wrap=True)
    again = sops.encrypt_document(
        wrapped, recipients=[recipient], encrypted_regex="^secrets$", previous=doc, identities=[ident]
    )
    assert {k: v for k, v in again["secrets"].items()} == doc["secrets"]
    assert typed(sops.decrypt_document(again, identities=[ident])) == typed(DATA)


def test_key_groups_written_and_read(tmp_path: Path, sops_bin: str, fresh_key: Any, key1: Any) -> None:
    ident, recipient, _keyfile = fresh_key
    doc = sops.encrypt_document(
        {"s": "quorum"}, key_groups=[[recipient], [str(key1.to_public())]], shamir_threshold=2
    )
    assert doc["sops"]["shamir_threshold"] == 2 and len(doc["sops"]["key_groups"]) == 2
    assert sops.decrypt_document(doc, identities=[ident, key1]) == {"s": "quorum"}
    with pytest.raises(sops.NoKeyError):
        sops.decrypt_document(doc, identities=[ident], use_binary=False)
    both = tmp_path / "both.txt"
    both.write_text(f"{ident}\n{(Path(__file__).resolve().parent / 'vectors/keys.txt').read_text()}")
    path = _write(tmp_path, "groups.yaml", doc)
    proc = run_sops(sops_bin, "--decrypt", str(path), cwd=tmp_path, key_file=both)
    assert proc.returncode == 0, proc.stderr
    assert sops.loads(proc.stdout) == {"s": "quorum"}
