"""The bundle's fast canonical JSON writes exactly what json.dumps(indent=2, sort_keys=True) does."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bifrost_gitops.jsontext import indented


def reference(node: object) -> str:
    return json.dumps(node, indent=2, sort_keys=True, ensure_ascii=False)


TRICKY = {
    "text": ["", "é ü 漢字 🙂", 'quote " backslash \\ slash /', "\x00\x01\x1f\x7f", "\u2028\u2029", "\ud800"],
    "numbers": [0, -1, 2**70, -(2**70), 0.1, -0.0, 1e16, 1e-7, 123456789.125, 1.5e300],
    "flags": [True, False, None],
    "empty": {"dict": {}, "list": [], "nested": [[], {}, [[]], {"a": {}}]},
    "order": {"b": 1, "a": 2, "B": 3, "é": 4, "": 5, "a b": 6},
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


def test_tricky_values_are_written_as_json_dumps_writes_them() -> None:
    assert indented(TRICKY) == reference(TRICKY)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_any_plain_tree_is_written_as_json_dumps_writes_it(node: object) -> None:
    assert indented(node) == reference(node)


@pytest.mark.parametrize(
    "node",
    [math.nan, {"x": math.inf}, [(1, 2)], {1: "a"}, {"a": b"bytes"}, type("S", (str,), {})("x")],
    ids=["nan", "infinity", "tuple", "int key", "bytes", "str subclass"],
)
def test_anything_else_is_refused_so_the_caller_keeps_json_dumps(node: object) -> None:
    with pytest.raises(TypeError):
        indented(node)
