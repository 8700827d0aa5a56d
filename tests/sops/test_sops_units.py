"""Go-compatible typing and formatting, Shamir, and the YAML writer's round trip."""

from __future__ import annotations

import json
import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bifrost_gitops import sops
from bifrost_gitops.sops import shamir
from bifrost_gitops.sops.gotypes import Timestamp, format_float, mac_aad, resolve_plain


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("y", "y"),
        ("True", True),
        ("FALSE", False),
        ("~", None),
        ("null", None),
        ("0o17", 15),
        ("0123", 83),
        ("0x1F", 31),
        ("0b101", 5),
        ("1_000", 1000),
        ("-42", -42),
        ("09", 9.0),
        ("1e3", 1000.0),
        ("+.5", 0.5),
        (".5", 0.5),
        ("1.0", 1.0),
        ("abc", "abc"),
        ("1.2.3", "1.2.3"),
        ("12345678901234567890123", 1.2345678901234568e22),
        ("2024-01-15", Timestamp("2024-01-15T00:00:00Z")),
        ("2030-06-30T12:00:00Z", Timestamp("2030-06-30T12:00:00Z")),
        ("2001-12-14t21:59:43.10-05:00", Timestamp("2001-12-14T21:59:43.1-05:00")),
        ("2001-12-14 21:59:43.10", Timestamp("2001-12-14T21:59:43.1Z")),
        ("2024-02-30", "2024-02-30"),
        ("2024-1-5", Timestamp("2024-01-05T00:00:00Z")),
    ],
)
def test_go_yaml_typing(text: str, expected: object) -> None:
    got = resolve_plain(text)
    assert type(got) is type(expected) and got == expected


def test_special_floats_and_uint64() -> None:
    nan = resolve_plain(".nan")
    assert isinstance(nan, float) and math.isnan(nan) and resolve_plain("-.Inf") == -math.inf
    with pytest.raises(ValueError):
        resolve_plain("18446744073709551615")


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (0.75, "0.75"),
        (1.0, "1"),
        (1e3, "1000"),
        (0.001, "0.001"),
        (1e21, "1000000000000000000000"),
        (-0.0, "-0"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
        (2.5, "2.5"),
        (1e-7, "0.0000001"),
    ],
)
def test_go_format_float(x: float, text: str) -> None:
    assert format_float(x) == text


def test_mac_aad_reformats_to_seconds() -> None:
    assert mac_aad("2026-11-24T23:38:51.123+00:00") == "2026-11-24T23:38:51Z"
    assert mac_aad("2026-11-24T23:38:51+02:00") == "2026-11-24T23:38:51+02:00"
    assert mac_aad("yesterday") is None


@given(st.binary(min_size=1, max_size=40), st.integers(2, 5), st.data())
@settings(max_examples=30, deadline=None)
def test_shamir_round_trip(secret: bytes, parts: int, data: st.DataObject) -> None:
    threshold = data.draw(st.integers(2, parts))
    shares = shamir.split(secret, parts, threshold)
    chosen = data.draw(st.permutations(shares))[:threshold]
    assert shamir.combine(chosen) == secret


scalars = st.one_of(
    st.text(max_size=30),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.sampled_from(["yes", "0o17", "- x", "a: b", "#x", "1e3", "2024-01-15", "|", "\n", " x "]),
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)


@given(st.dictionaries(st.text(max_size=10), trees, max_size=5))
@settings(max_examples=200, deadline=None)
def test_yaml_writer_round_trips(tree: dict[str, object]) -> None:
    text = sops.dump_yaml(tree)
    assert repr(sops.loads(text)) == repr(tree), text


def test_json_writer() -> None:
    tree = {"a": 1, "b": [1.5, "x"], "c": {"d": None}}
    text = sops.dump_json(tree)
    assert text.startswith('{\n\t"a": 1') and text.endswith("}\n") and json.loads(text) == tree


def test_loader_refuses_bad_documents() -> None:
    for text in ("a: 1\na: 2\n", "- 1\n", "1: x\n", "a: 1\n---\nb: 2\n", "a: !!python/object x\n"):
        with pytest.raises(sops.SopsError):
            sops.loads(text)


def test_values_needing_encryption_must_be_encrypted(tmp_path: os.PathLike[str]) -> None:
    import pyrage  # type: ignore[import-untyped]

    ident = pyrage.x25519.Identity.generate()
    doc = sops.encrypt_document({"a": "x", "b": 1}, recipients=[str(ident.to_public())])
    doc["b"] = 2  # a clear value where an encrypted one belongs
    with pytest.raises(sops.IntegrityError, match="should be encrypted"):
        sops.decrypt_document(doc, identities=[ident], use_binary=False)


def test_every_value_gets_its_own_iv_across_batches() -> None:
    """IVs are drawn from the OS in batches: more values than one batch still get distinct IVs."""
    import pyrage

    from bifrost_gitops.sops import values

    ident = pyrage.x25519.Identity.generate()
    doc = {f"k{i}": f"v{i % 3}" for i in range(values.IV_BATCH * 2 + 7)}
    enc = sops.encrypt_document(doc, recipients=[str(ident.to_public())])
    ivs = [values.parse(enc[k]).iv for k in doc]
    assert len(set(ivs)) == len(ivs) and {len(iv) for iv in ivs} == {values.IV_SIZE}
    assert sops.decrypt_document(enc, identities=[ident], use_binary=False) == doc


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_json_refuses_what_it_cannot_hold(bad: float) -> None:
    with pytest.raises(sops.SopsError, match="JSON cannot hold Inf or NaN"):
        sops.dump_json({"a": {"b": [1, bad]}})
