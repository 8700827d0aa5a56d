"""Every "why" in the code can be checked from this repository alone.

The code and docs once cited a reference file kept outside the repository, which no user has.
The Bifrost API facts now live in docs/bifrost-api.md; code cites its sections by anchor.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API_DOC = ROOT / "docs" / "bifrost-api.md"
SCANNED = ("src", "docs", "tests", "benchmarks", "schemas", "examples", "README.md")

# Written so that this file does not match itself.
OUTSIDE = re.compile(
    r"\.\./shared|shared[/]reference|/work[/]shared|bifrost[-]contract|sops[-]format\.md"
    r"|\bcontract\s+\d+\.\d+|\bgo[t]chas?\b",
    re.IGNORECASE,
)
CITED = re.compile(r"bifrost-api\.md#([A-Za-z0-9_-]+)")


def _text_files() -> Iterator[Path]:
    for name in SCANNED:
        top = ROOT / name
        for path in [top] if top.is_file() else sorted(top.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                yield path


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return []  # binary test data


def _anchor(heading: str) -> str:
    """GitHub's anchor for a markdown heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_nothing_cites_a_file_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _text_files()
        for n, line in enumerate(_lines(path), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "cite docs/bifrost-api.md (or write the fact down) instead:\n" + "\n".join(found)


def test_every_cited_api_doc_section_exists() -> None:
    anchors = {
        _anchor(line.lstrip("#"))
        for line in API_DOC.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    cited = {
        (f"{path.relative_to(ROOT)}:{n}", anchor)
        for path in _text_files()
        for n, line in enumerate(_lines(path), 1)
        for anchor in CITED.findall(line)
    }
    assert any(where.startswith("src") for where, _ in cited), "src/ cites no section any more"
    missing = sorted(f"{where}: #{anchor}" for where, anchor in cited if anchor not in anchors)
    assert not missing, "no such heading in docs/bifrost-api.md:\n" + "\n".join(missing)


def test_anchor_matches_github() -> None:
    assert _anchor(" OAuth fields not settable") == "oauth-fields-not-settable"
    assert _anchor("Values (and why), v1.2") == "values-and-why-v12"


def _markdown_anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def test_every_markdown_link_to_a_section_lands_on_one() -> None:
    """A renamed heading must not leave a README or docs link pointing nowhere."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), ROOT / "benchmarks" / "README.md"]
    anchors = {page: _markdown_anchors(page) for page in pages}
    broken = []
    for page in pages:
        for target, anchor in re.findall(r"\]\(([^)\s#]*)#([^)\s]+)\)", page.read_text(encoding="utf-8")):
            linked = (page.parent / target).resolve() if target else page
            if linked in anchors and anchor not in anchors[linked]:
                broken.append(f"{page.relative_to(ROOT)}: {target}#{anchor}")
    assert broken == []
