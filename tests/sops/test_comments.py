"""sops.comments: which comments get encrypted, and that they decrypt to their text."""

from __future__ import annotations

import os
import re

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bifrost_gitops.sops import values
from bifrost_gitops.sops.comments import seal_comments

KEY = os.urandom(32)
REGEX = {"encrypted_regex": "^secrets$"}
TEXT = """\
# top: stays clear
config:
  # under config: clear
  a: 1
secrets:
  # head of api_key
  api_key: ENC[x]  # trailing
  nested:
    # deeper, still under secrets
    b: ENC[y]
  # after the last entry, indented: still secrets
# back at the top: clear
sops:
  version: 3.11.0  # never touched
"""


def opened(text: str) -> list[tuple[str, str]]:
    """(AAD, clear text) of every encrypted comment, in order."""
    out = []
    for m in re.finditer(r"#(ENC\[[^\]]+\])", text):
        ev = values.parse(m.group(1))
        for aad in ("secrets:", "secrets:nested:", ":"):
            try:
                out.append((aad, values.decrypt_bytes(AESGCM(KEY), ev, aad).decode()))
                break
            except values.ValueAuthError:
                continue
    return out


def test_comments_under_a_selected_key_are_encrypted_with_their_mappings_path() -> None:
    sealed = seal_comments(TEXT, REGEX, KEY)
    assert opened(sealed) == [
        ("secrets:", " head of api_key"),
        ("secrets:", " trailing"),
        ("secrets:nested:", " deeper, still under secrets"),
        ("secrets:", " after the last entry, indented: still secrets"),
    ]
    assert [line for line in sealed.splitlines() if "#" in line and "ENC[" not in line] == [
        "# top: stays clear",
        "  # under config: clear",
        "# back at the top: clear",
        "  version: 3.11.0  # never touched",
    ]
    assert re.search(r"^  #ENC\[[^\]]+\]\n  #ENC\[[^\]]+\]\n  api_key: ENC\[x\]\n", sealed, re.M)


def test_comment_rules_and_unreadable_text_are_left_alone() -> None:
    assert seal_comments(TEXT, {"encrypted_comment_regex": "sops:enc"}, KEY) == TEXT
    assert seal_comments("a: [1\n", REGEX, KEY) == "a: [1\n"
    assert seal_comments(seal_comments(TEXT, REGEX, KEY), REGEX, KEY).count("#ENC[") == 4  # idempotent
