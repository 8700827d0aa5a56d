"""The safe YAML loader: positions, duplicate keys, tags, limits, encodings, symlinks."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import pytest

from bifrost_gitops import loader
from bifrost_gitops.diagnostics import CODES
from support import API, codes, dedent, load, only


def parse(text: str | bytes) -> tuple[Any, list[Any]]:
    return loader.parse(text, "docs/x.yaml")


def walk(value: Any) -> Any:
    yield value
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)


# --- positions -----------------------------------------------------------------------------


def test_positions_of_keys_and_values_are_one_based() -> None:
    doc, diags = parse(
        dedent(
            """
            apiVersion: bifrost-gitops/v1
            outer:
              inner: value
              list:
                - first
                -   second
              flow: {a: 1,  b: two}
            """
        )
    )
    assert diags == []
    assert doc.data["outer"]["list"] == ["first", "second"]
    assert doc.keys[("apiVersion",)] == (1, 1)
    assert doc.values[("apiVersion",)] == (1, 13)
    assert doc.keys[("outer", "inner")] == (3, 3)
    assert doc.values[("outer", "inner")] == (3, 10)
    assert doc.values[("outer", "list", 0)] == (5, 7)
    assert doc.values[("outer", "list", 1)] == (6, 9)
    assert doc.keys[("outer", "flow", "b")] == (7, 17)
    assert doc.values[("outer", "flow", "b")] == (7, 20)
    # pos() falls back to the nearest existing ancestor
    assert doc.pos(("outer", "inner", "missing")) == (3, 10)
    assert doc.key_pos(("outer", "list")) == (4, 3)


# --- duplicate keys and syntax errors ------------------------------------------------------


def test_duplicate_key_is_y002_at_second_naming_first_line() -> None:
    _doc, diags = parse("a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\n")
    d = only_diag(diags, "Y002")
    assert (d.path, d.line, d.col) == ("docs/x.yaml", 5, 3)
    assert "'c'" in d.message
    assert "line 3" in d.message
    assert d.severity == "error"


def test_duplicate_key_at_top_level() -> None:
    _, diags = parse("\n\nkind: Mapping\nname: x\nkind: Integration\n")
    d = only_diag(diags, "Y002")
    assert d.line == 5
    assert "line 3" in d.message


def only_diag(diags: list[Any], code: str) -> Any:
    found = [d for d in diags if d.code == code]
    assert len(found) == 1, diags
    return found[0]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: [1, 2\nb: 3\n", 2),
        ("a: 1\n  b: 2\n", 2),
        ("a: 1\nb: 'unterminated\n", 3),
        ("a: 1\n\tb: 2\n", 2),
        ("key: value\nother: {x: 1\n", 3),
    ],
)
def test_syntax_error_is_y001_with_location(text: str, line: int) -> None:
    doc, diags = parse(text)
    assert doc is None
    d = only_diag(diags, "Y001")
    assert d.line == line
    assert d.col >= 1
    assert d.message


# --- tags ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object/apply:os.system ['echo pwned']\n",
        "a: !!python/object/apply:os.system\n  args: ['echo pwned']\n",
        "a: !!python/name:os.system ''\n",
        "a: !foo bar\n",
        "a: !foo {x: 1}\n",
        "a: !!binary aGVsbG8=\n",
        "!!python/object:builtins.dict {}\n",
    ],
)
def test_unsafe_and_custom_tags_are_refused_y003(text: str) -> None:
    doc, diags = parse(text)
    assert doc is None
    assert codes_of(diags) == ["Y003"]
    assert diags[0].line == 1


def codes_of(diags: list[Any]) -> list[str]:
    return [d.code for d in diags]


def test_standard_tags_are_accepted() -> None:
    doc, diags = parse("a: !!str 0123\nb: !!int '5'\nc: !!map {x: 1}\n")
    assert diags == []
    assert doc.data == {"a": "0123", "b": 5, "c": {"x": 1}}


# --- limits --------------------------------------------------------------------------------


def billion_laughs(levels: int = 10, width: int = 10) -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    lines.append(f"boom: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly_y004() -> None:
    start = time.perf_counter()
    doc, diags = parse(billion_laughs())
    elapsed = time.perf_counter() - start
    assert doc is None
    assert codes_of(diags) == ["Y004"]
    assert diags[0].line >= 1
    assert elapsed < 1.0


def test_alias_bomb_through_merge_keys_is_refused() -> None:
    lines = ["b0: &b0 {k: v}"]
    for i in range(1, 12):
        lines.append(f"b{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * 10) + "]")
    doc, diags = parse("\n".join(lines) + "\n")
    assert doc is None
    assert codes_of(diags) == ["Y004"]


def test_alias_bomb_in_repository_returns_quickly(make_repo: Any) -> None:
    root = make_repo({"bomb.yaml": API + "kind: Mapping\n" + billion_laughs(12)})
    start = time.perf_counter()
    result = load(root)
    assert time.perf_counter() - start < 2.0
    d = only(result, "Y004")
    assert d.path == "bomb.yaml"


def test_small_legitimate_aliases_are_fine() -> None:
    doc, diags = parse("a: &x [1, 2]\nb: *x\nc: *x\n")
    assert diags == []
    assert doc.data == {"a": [1, 2], "b": [1, 2], "c": [1, 2]}


@pytest.mark.parametrize("style", ["flow", "block"])
def test_deep_nesting_is_refused_y004(style: str) -> None:
    if style == "flow":
        text = "a: " + "[" * 80 + "]" * 80 + "\n"
    else:
        text = "".join("  " * i + f"k{i}:\n" for i in range(80)) + "  " * 80 + "leaf\n"
    doc, diags = parse(text)
    assert doc is None
    assert codes_of(diags) == ["Y004"]
    assert "64" in diags[0].message


def test_nesting_within_limit_is_fine() -> None:
    _doc, diags = parse("a: " + "[" * 40 + "1" + "]" * 40 + "\n")
    assert diags == []


def test_file_over_one_mib_is_refused_y004(make_repo: Any) -> None:
    big = API + "kind: Mapping\nnotes: |\n" + ("  " + "x" * 98 + "\n") * 11_000
    assert len(big.encode()) > 1 << 20
    root = make_repo({"big.yaml": big})
    start = time.perf_counter()
    result = load(root)
    assert time.perf_counter() - start < 2.0
    d = only(result, "Y004")
    assert d.path == "big.yaml"
    assert "KiB" in d.message or "MiB" in d.message


def test_file_just_under_limit_is_read(tmp_path: Path) -> None:
    text = "notes: |\n" + ("  " + "y" * 98 + "\n") * 10_000
    assert len(text.encode()) < 1 << 20
    (tmp_path / "ok.yaml").write_text(text)
    doc, diags = loader.load_file(str(tmp_path), "ok.yaml")
    assert diags == []
    assert doc is not None


# --- documents, encodings ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["a: 1\n---\nb: 2\n", "---\na: 1\n---\n", "a: 1\n...\n---\nb: 2\n"])
def test_more_than_one_document_is_y008(text: str) -> None:
    doc, diags = parse(text)
    assert doc is None
    assert codes_of(diags) == ["Y008"]
    assert diags[0].line >= 2


def test_single_explicit_document_is_fine() -> None:
    doc, diags = parse("---\na: 1\n...\n")
    assert diags == []
    assert doc.data == {"a": 1}


def test_multi_document_in_repository_is_reported(make_repo: Any) -> None:
    root = make_repo({"two.yaml": API + "kind: Project\n---\n" + API + "kind: Project\n"})
    d = only(load(root), "Y008")
    assert d.path == "two.yaml"
    assert d.line == 3


@pytest.mark.parametrize("data", [b"a: \xff\xfe\n", b"a: caf\xe9\n", b"name: \xc3\x28\n"])
def test_invalid_utf8_is_y007(data: bytes, make_repo: Any) -> None:
    doc, diags = parse(data)
    assert doc is None
    assert codes_of(diags) == ["Y007"]
    root = make_repo()
    (root / "bad.yaml").write_bytes(data)
    d = only(load(root), "Y007")
    assert d.path == "bad.yaml"


def test_empty_and_comment_only_files_are_ignored(make_repo: Any) -> None:
    root = make_repo({"empty.yaml": "", "comment.yaml": "# nothing here\n"})
    assert load(root).diagnostics == []


# --- timestamps ----------------------------------------------------------------------------


def test_timestamps_stay_strings_everywhere() -> None:
    doc, _diags = parse(
        dedent(
            """
            a: 2024-01-01
            b: 2001-12-14t21:59:43.10-05:00
            c: {nested: [2024-02-29, {deep: 2024-01-01 10:00:00}]}
            2024-03-01: keyed
            """
        )
    )
    assert not any(isinstance(v, dt.date | dt.datetime) for v in walk(doc.data))
    assert doc.data["a"] == "2024-01-01"
    assert doc.data["b"] == "2001-12-14t21:59:43.10-05:00"
    assert doc.data["c"]["nested"][1]["deep"] == "2024-01-01 10:00:00"


def test_timestamps_in_json_values_stay_strings(make_repo: Any) -> None:
    root = make_repo(
        {
            "integrations/HaloPSA/mappings/contoso.yaml": API
            + dedent(
                """
                kind: Mapping
                integration: HaloPSA
                organization: contoso
                entity_id: "12"
                config:
                  extra:
                    since: 2024-01-01
                    windows: [2024-01-01 10:00:00, {until: 2025-12-31}]
                """
            )
        }
    )
    result = load(root)
    assert result.diagnostics == []
    mapping = next(iter(result.catalog.mappings.values())).model
    extra = mapping.config["extra"]
    assert not any(isinstance(v, dt.date | dt.datetime) for v in walk(extra))
    assert extra["since"] == "2024-01-01"
    assert extra["windows"][1]["until"] == "2025-12-31"


# --- merge keys ----------------------------------------------------------------------------


def test_merge_keys_work_and_local_keys_win() -> None:
    doc, diags = parse(
        dedent(
            """
            base: &base {url: https://a, page_size: 10}
            more: &more {beta: true}
            one:
              <<: *base
              page_size: 20
            two:
              <<: [*base, *more]
            """
        )
    )
    assert diags == []
    assert doc.data["one"] == {"url": "https://a", "page_size": 20}
    assert doc.data["two"] == {"url": "https://a", "page_size": 10, "beta": True}
    assert "<<" not in doc.data["one"]


def test_merge_keys_in_a_real_mapping_validate(make_repo: Any) -> None:
    root = make_repo(
        {
            "integrations/HaloPSA/mappings/contoso.yaml": API
            + dedent(
                """
                kind: Mapping
                integration: HaloPSA
                organization: contoso
                entity_id: "12"
                x-common: &common {page_size: 5, region: uk}
                config:
                  <<: *common
                  region: eu
                """
            )
        }
    )
    # x-common is an unknown field (S001) — but the merged config itself is fine.
    result = load(root)
    assert codes(result) == ["S001"]
    assert "x-common" in result.diagnostics[0].message


# --- symlinks ------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_to_file_outside_repo_is_refused_y006(make_repo: Any, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(API + "kind: Organizations\norganizations: [{name: evil}]\n")
    root = make_repo()
    (root / "stolen.yaml").symlink_to(outside)
    result = load(root)
    d = only(result, "Y006")
    assert d.path == "stolen.yaml"
    assert "evil" not in result.catalog.orgs


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_to_folder_outside_repo_is_refused_y006(make_repo: Any, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "o.yaml").write_text(API + "kind: Organizations\norganizations: [{name: evil}]\n")
    root = make_repo()
    (root / "linked").symlink_to(outside, target_is_directory=True)
    result = load(root)
    assert only(result, "Y006").path == "linked"
    assert "evil" not in result.catalog.orgs


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_inside_repo_is_fine(make_repo: Any) -> None:
    root = make_repo({"organizations.yaml": None})
    shared = root / ".shared"
    shared.mkdir()
    (shared / "orgs.yaml").write_text(
        API + "kind: Organizations\norganizations: [{name: contoso}, {name: fabrikam}]\n"
    )
    (root / "organizations.yaml").symlink_to(Path(".shared") / "orgs.yaml")
    result = load(root)
    assert result.diagnostics == []
    assert set(result.catalog.orgs) == {"contoso", "fabrikam"}


def test_every_loader_code_is_documented() -> None:
    for code in ("Y001", "Y002", "Y003", "Y004", "Y005", "Y006", "Y007", "Y008"):
        assert CODES[code]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_dangling_symlink_is_y007_not_a_crash(make_repo: Any) -> None:
    root = make_repo()
    (root / "gone.yaml").symlink_to(root / "does-not-exist.yaml")
    d = only(load(root), "Y007")
    assert d.path == "gone.yaml"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipe_does_not_hang_validate(make_repo: Any) -> None:
    import subprocess
    import sys

    root = make_repo()
    os.mkfifo(root / "pipe.yaml")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bifrost_gitops", "validate", str(root)],
            capture_output=True,
            text=True,
            timeout=3,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("validate hung on a named pipe")
    assert proc.returncode == 1
    assert "pipe.yaml" in proc.stdout and "Y007" in proc.stdout
