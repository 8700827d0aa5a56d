"""A canary secret never shows up in exception texts, reprs or refused writes."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from bifrost_gitops import sops
from bifrost_gitops.sops import Secret

from ._sops_helpers import run_sops

CANARY = "CANARY-7f3c-do-not-print"


def _doc(recipient: str) -> dict[str, Any]:
    return sops.encrypt_document({"secrets": {"token": CANARY, "other": "x"}}, recipients=[recipient])


def _texts(exc: BaseException) -> str:
    parts = [str(exc), repr(exc)]
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        parts += [str(cause), repr(cause)]
        cause = cause.__cause__ or cause.__context__
    return "\n".join(parts)


def test_secret_is_masked_everywhere() -> None:
    s = Secret(CANARY)
    for text in (repr(s), str(s), f"{s}", "%s" % s, "{}".format(s), repr([s]), repr({"k": s})):  # noqa: UP031, UP032
        assert CANARY not in text
    with pytest.raises(TypeError):
        json.dumps({"k": s})
    with pytest.raises(TypeError):
        pickle.dumps(s)
    assert s.reveal() == CANARY and s == Secret(CANARY)


def test_errors_never_carry_the_canary(
    tmp_path: Path, fresh_key: Any, sops_bin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ident, recipient, keyfile = fresh_key
    doc = _doc(recipient)
    good_token = doc["secrets"]["token"]
    cases: list[dict[str, Any]] = []
    # 1. the canary's ciphertext moved to another path (AAD mismatch)
    moved = json.loads(json.dumps(doc))
    moved["secrets"]["other"], moved["secrets"]["token"] = good_token, moved["secrets"]["other"]
    cases.append(moved)
    # 2. the canary written in clear where it must be encrypted (sops itself would echo it)
    clear = json.loads(json.dumps(doc))
    clear["secrets"]["token"] = CANARY
    cases.append(clear)
    # 3. MAC broken after the canary was decrypted
    mac = json.loads(json.dumps(doc))
    mac["sops"]["lastmodified"] = "2000-01-01T00:00:00Z"
    cases.append(mac)
    for case in cases:
        for use_binary in (False, True):
            with pytest.raises(sops.SopsError) as e:
                sops.decrypt_document(case, identities=[ident], use_binary=use_binary, file="x.yaml")
            assert CANARY not in _texts(e.value)
    # 4. no key at all: native, then the binary (which sees the clear canary in case 2)
    for case in [doc, clear]:
        with pytest.raises(sops.NoKeyError) as e:
            sops.decrypt_document(case, identities=[], file="x.yaml")
        assert CANARY not in _texts(e.value)
    # sops itself does leak it for a clear value where ENC is expected: we must not pass that on
    path = tmp_path / "clear.yaml"
    path.write_text(sops.dump_yaml(clear))
    proc = run_sops(sops_bin, "--decrypt", str(path), cwd=tmp_path, key_file=keyfile)
    assert proc.returncode != 0 and CANARY in proc.stderr
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(keyfile))  # only the binary gets a key
    with pytest.raises(sops.IntegrityError) as e:
        sops.decrypt_file(path, identities=[], file=str(path))
    assert CANARY not in _texts(e.value)


def test_decrypted_tree_repr_is_clean_when_wrapped(fresh_key: Any) -> None:
    ident, recipient, _ = fresh_key
    out = sops.decrypt_document(_doc(recipient), identities=[ident], wrap=True)
    assert CANARY not in repr(out) and CANARY not in str(out)
    with pytest.raises(sops.SopsError) as e:
        sops.dump_yaml(out)
    assert CANARY not in str(e.value)
    assert re.fullmatch(r"<secret>", format(out["secrets"]["token"]))
