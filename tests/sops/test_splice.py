"""The comment-keeping rewrite (sops.splice): only changed entries move, everything else stays."""

from __future__ import annotations

import pytest

from bifrost_gitops import sops
from bifrost_gitops.sops import splice

TEXT = """\
# ünïcode header: indices must count characters
top: 1  # trailing
nested:
  # inside
  keep: "quoted"   # spaced comment
  lit: |
    line one
    line two

  # after the block scalar
  last: x
flow: {a: 1}
empty:
# closing comment
"""


def changed(text: str, **edits: object) -> str:
    tree = sops.loads(text)
    for dotted, value in edits.items():
        *parents, leaf = dotted.split("__")
        node = tree
        for p in parents:
            node = node[p]
        node[leaf] = value
    out = splice.rewrite(text, tree, 2)
    assert out is not None
    assert sops.loads(out) == tree
    return out


def test_unchanged_text_comes_back_byte_for_byte() -> None:
    assert splice.rewrite(TEXT, sops.loads(TEXT), 2) == TEXT


def test_a_changed_scalar_keeps_its_trailing_comment() -> None:
    out = changed(TEXT, nested__keep="ENC[new]")
    assert out == TEXT.replace('keep: "quoted"   #', "keep: ENC[new]   #")


def test_a_changed_block_scalar_keeps_the_blank_line_and_comment_after_it() -> None:
    out = changed(TEXT, nested__lit="other\n")
    assert out == TEXT.replace("line one\n    line two\n", "other\n")


def test_new_keys_go_after_the_last_entry_or_at_the_end() -> None:
    out = changed(TEXT, nested__added="v", sops={"version": "3.11.0"})
    assert "  last: x\n  added: v\nflow:" in out
    assert out.endswith("# closing comment\nsops:\n  version: 3.11.0\n")


@pytest.mark.parametrize("key", ["flow", "empty"])
def test_a_flow_or_null_value_that_becomes_a_mapping_is_replaced_whole(key: str) -> None:
    out = changed(TEXT, **{key: {"secret": "ENC[x]"}})
    assert f"\n{key}:\n  secret: ENC[x]\n" in out
    assert out.count("#") == TEXT.count("#")


def test_a_file_without_a_final_newline() -> None:
    out = changed("a: 1\nb: 2", b=3, c=4)
    assert out == "a: 1\nb: 3\nc: 4\n"


@pytest.mark.parametrize(
    "text",
    [
        "base: &b {x: 1}\nother: *b\n",  # an alias: one node in two places
        "a: 1\nb: 2\n",  # a key removed below
    ],
)
def test_what_cannot_be_spliced_is_left_to_the_caller(text: str) -> None:
    tree = sops.loads(text)
    if "base" in tree:
        tree["other"] = {"x": 2}
    else:
        del tree["a"]
    assert splice.rewrite(text, tree, 2) is None


def test_unreadable_text_is_left_to_the_caller() -> None:
    assert splice.rewrite("a: [1\n", {"a": [1]}, 2) is None
    assert splice.rewrite("- a\n", {"a": 1}, 2) is None
