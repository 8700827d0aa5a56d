"""Random and mutated input: only Diagnostics come out, never an exception."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bifrost_gitops import loader, repo
from bifrost_gitops.diagnostics import CODES, Diagnostic
from support import BASE_FILES, ENC, FAKE_SOPS, write_repo

# BIFROST_FUZZ_EXAMPLES=5000 runs a longer, randomised hunt locally; CI stays derandomised.
_HUNT = int(os.environ.get("BIFROST_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_HUNT or 200,
    deadline=None,
    derandomize=not _HUNT,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

FRAGMENTS = [
    "apiVersion: bifrost-gitops/v1\n",
    "kind: Mapping\n",
    "kind: Integration\n",
    "kind: Organizations\n",
    "kind: OAuthProvider\n",
    "kind: Project\n",
    "integration: HaloPSA\n",
    "organization: contoso\n",
    "entity_id: 12345\n",
    'entity_id: "12"\n',
    "name: HaloPSA\n",
    "config:\n",
    "secrets:\n",
    "config_schema:\n",
    "  - {key: url, type: string, required: true}\n",
    "  - {key: n, type: int}\n",
    "  page_size: 5\n",
    "  region: no\n",
    "  since: 2024-01-01\n",
    f"  api_key: {ENC}\n",
    "  api_key: clear\n",
    "organizations:\n",
    "  - name: contoso\n",
    "  - {name: Fabrikam, id: 1}\n",
    "oauth: {provider: microsoft}\n",
    "oauth:\n  token_url: https://x/{entity_id}\n  client_id: c\n",
    "defaults:\n  config: {url: x}\n",
    FAKE_SOPS,
    "---\n",
    "...\n",
    "&a [1, 2]\n",
    "*a\n",
    "x: &a {k: v}\n",
    "y: *a\n",
    "<<: *a\n",
    "<<: [*a, *b]\n",
    "!!python/object/apply:os.system ['id']\n",
    "!foo\n",
    "!!binary aGk=\n",
    "? complex\n: key\n",
    "- item\n",
    "[\n",
    "]\n",
    "{\n",
    "}\n",
    "'\n",
    '"\n',
    "|\n  block\n",
    ">-\n  folded\n",
    "\t\n",
    "  \n",
    "# comment\n",
    "%YAML 1.1\n",
    "%TAG ! tag:example.com,2000:\n",
    "key: value\n",
    "key: value\n",
    "0o17: 1\n",
    "on: yes\n",
    "1.10: 0x1F\n",
    "null: ~\n",
    ".inf: .nan\n",
    "\ufeff",
    "\x00",
    "\x85",
    "é: ü\n",
]

VALID_DOCS = [
    BASE_FILES["organizations.yaml"],
    BASE_FILES["integrations/HaloPSA/integration.yaml"],
    BASE_FILES["integrations/HaloPSA/mappings/contoso.yaml"],
    BASE_FILES["integrations/HaloPSA/mappings/contoso.yaml"] + f"secrets:\n  api_key: {ENC}\n" + FAKE_SOPS,
    "apiVersion: bifrost-gitops/v1\nkind: OAuthProvider\nname: microsoft\nflow: client_credentials\n"
    "token_url: https://login/{entity_id}/token\nclient_id: abc\nsecrets:\n"
    f"  client_secret: {ENC}\n" + FAKE_SOPS,
    "base: &b {url: https://x, page_size: 1}\nother:\n  <<: *b\n  page_size: 2\nlist: [*b, *b]\n",
]


def check_diags(diags: list[Any], where: str = "") -> None:
    for d in diags:
        assert isinstance(d, Diagnostic), d
        assert d.code in CODES, d
        assert d.severity in ("error", "warning"), d
        assert isinstance(d.line, int) and d.line >= 0, d
        assert isinstance(d.col, int) and d.col >= 0, d
        assert isinstance(d.message, str) and d.message, d
        assert d.hint is None or isinstance(d.hint, str), d
        assert not os.path.isabs(d.path), d
        assert not d.path.startswith(".."), d
        assert "\\" not in d.path, d
        if where:
            assert where in d.path or d.path == ".", d


def parse_ok(data: str | bytes) -> None:
    doc, diags = loader.parse(data, "fuzz/x.yaml")
    check_diags(diags)
    assert doc is None or isinstance(doc, loader.Document)
    if doc is None:
        return
    assert all(d.path == "fuzz/x.yaml" for d in diags)
    for pos in list(doc.values.values()) + list(doc.keys.values()):
        assert pos[0] >= 1 and pos[1] >= 1


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    parse_ok(text)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    parse_ok(data)


yamlish = st.lists(
    st.tuples(st.sampled_from(FRAGMENTS), st.sampled_from(["", "  ", "    ", "- ", "a: "])),
    max_size=25,
).map(lambda parts: "".join(indent + frag for frag, indent in parts))


@FUZZ
@given(yamlish)
def test_yamlish_fragments(text: str) -> None:
    parse_ok(text)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID_DOCS)).encode())
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup", "truncate", "splice"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(
                st.sampled_from([b":", b"-", b" ", b"\n", b"[", b"{", b"&x", b"*x", b"!", b"'", b"\t"])
            )
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 10))]
        elif op == "dup":
            j = draw(st.integers(i, min(len(data), i + 40)))
            data[j:j] = data[i:j]
        elif op == "truncate":
            del data[i:]
        else:
            frag = draw(st.sampled_from(FRAGMENTS)).encode()
            data[i:i] = frag
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_documents_parse(data: bytes) -> None:
    parse_ok(data)


@pytest.fixture(scope="module")
def fuzz_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_repo(tmp_path_factory.mktemp("fuzz") / "repo")


TARGETS = [
    "organizations.yaml",
    "integrations/HaloPSA/integration.yaml",
    "integrations/HaloPSA/mappings/contoso.yaml",
    "oauth/extra.yaml",
    "bifrost-gitops.yaml",
]


@FUZZ
@given(target=st.sampled_from(TARGETS), data=mutated())
def test_mutated_documents_in_a_repository(fuzz_repo: Path, target: str, data: bytes) -> None:
    path = fuzz_repo / target
    path.parent.mkdir(parents=True, exist_ok=True)
    original = path.read_bytes() if path.exists() else None
    path.write_bytes(data)
    try:
        try:
            result = repo.load(str(fuzz_repo))
        except repo.RepoError:
            # only a broken root marker may make the repository unusable
            assert target == "bifrost-gitops.yaml"
            return
        check_diags(result.diagnostics)
        for d in result.diagnostics:
            assert (fuzz_repo / d.path).exists(), d
    finally:
        if original is None:
            path.unlink()
        else:
            path.write_bytes(original)
