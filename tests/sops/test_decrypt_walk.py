"""The per-file work of opening thousands of files (`secrets check`), made cheaper without
changing a result: the walk remembers, per selector rule, which keys match (files with
different rules still decrypt as their own rule says; the memory stays bounded), the K007 walk
still finds every unstorable secret, and ENC[...] values are split as sops's own regex splits
them."""

from __future__ import annotations

import re
from typing import Any

import pyrage  # type: ignore[import-untyped]
import pytest

from bifrost_gitops import sops
from bifrost_gitops.sops import tree

DOC = {"secrets": {"api_key": "k1", "note_unencrypted": "n1"}, "config": {"secrets": "s2", "plain": "p"}}


@pytest.fixture
def ring() -> Any:
    return sops.make_keyring([pyrage.x25519.Identity.generate()])


def test_files_with_different_rules_open_as_their_own_rule_says(ring: Any) -> None:
    recipient = next(iter(ring.recipients))
    by_regex = sops.encrypt_document(DOC, recipients=[recipient], encrypted_regex="^secrets$")
    by_suffix = sops.encrypt_document(DOC, recipients=[recipient])  # unencrypted_suffix
    assert by_regex["config"]["plain"] == "p" and by_regex["secrets"]["note_unencrypted"].startswith("ENC[")
    assert (
        by_suffix["config"]["plain"].startswith("ENC[") and by_suffix["secrets"]["note_unencrypted"] == "n1"
    )
    for _ in range(2):  # the second round answered from the rules' memos
        for enc in (by_regex, by_suffix, by_regex):
            clear = sops.decrypt_document(enc, identities=ring, wrap=True, use_binary=False)
            assert sops.reveal(clear) == DOC
            secrets = clear["secrets"]
            assert isinstance(secrets["api_key"], sops.Secret)
            assert isinstance(secrets["note_unencrypted"], sops.Secret) == (enc is by_regex)
            assert isinstance(clear["config"]["plain"], sops.Secret) == (enc is by_suffix)


def test_one_rule_object_per_rule_and_a_bounded_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    meta = {"encrypted_regex": "^(secrets|token)$"}
    rule = tree.rule_of(meta)
    assert tree.rule_of(dict(meta)) is rule and tree.rule_of({}) is tree.rule_of({})
    monkeypatch.setattr(tree, "_MEMO_MAX", len(rule.memo) + 3)
    keys = [f"k{i}" for i in range(10)] + ["secrets", "token", "secretsx"]
    assert [rule.matches(k) for k in keys] == [False] * 10 + [True, True, False]
    assert [rule.matches(k) for k in keys] == [False] * 10 + [True, True, False]  # past the bound too
    assert len(rule.memo) <= tree._MEMO_MAX


def test_unstorable_secrets_are_found_in_mappings_and_lists_clear_values_left_alone() -> None:
    from bifrost_gitops import loader, storable

    text = "secrets:\n  a: x\n  deep:\n    - y\n    - {b: z}\nconfig:\n  raw: w\n"
    doc, _ = loader.load_bytes(text.encode(), "m.yaml")
    assert doc is not None
    clear = {
        "secrets": {"a": sops.Secret(b"\x00"), "deep": [sops.Secret("ok"), {"b": sops.Secret(float("nan"))}]},
        "config": {"raw": b"clear bytes are validate's business"},
    }
    found = storable.findings(doc, clear)
    assert [(d.line, d.message.split(" decrypts")[0]) for d in found] == [
        (2, "secrets.a"),
        (5, "secrets.deep.1.b"),
    ]
    assert storable.findings(doc, sops.Secret(b"top")) and not storable.findings(doc, "text")


def _parsed(text: str) -> object:
    """values.parse's result, or the name of the error it raises."""
    from bifrost_gitops.sops import values

    try:
        return values.parse(text)
    except ValueError as e:
        return type(e).__name__


def _by_sops_regex(text: str) -> object:
    """What parse gives when only sops's own (greedy, prefix) regex splits the value."""
    from bifrost_gitops.sops import values

    real = values._WRITTEN
    values._WRITTEN = re.compile(r"(?!)")  # never matches
    try:
        return _parsed(text)
    finally:
        values._WRITTEN = real


GOOD = "ENC[AES256_GCM,data:QUJD,iv:" + "A" * 44 + ",tag:" + "B" * 22 + "==,type:str]"


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        GOOD + "trailing]",  # a prefix match: the greedy type group then reads "str]trailing"
        GOOD.replace("type:str", "type:bytes"),
        GOOD.replace("data:QUJD", "data:QU,iv:JD"),  # two ",iv:": greedy takes the last
        GOOD.replace("data:QUJD", "data:"),
        GOOD.replace("type:str", "type:Str"),
        GOOD.replace("QUJD", "QUJ"),  # not base64
        GOOD.replace("type:str]", "type:str"),
        "ENC[AES256_GCM,data:QUJD,iv:QUJD,tag:QUJD,type:str]",  # a short tag
    ],
)
def test_values_are_split_as_sops_splits_them(text: str) -> None:
    assert _parsed(text) == _by_sops_regex(text)
