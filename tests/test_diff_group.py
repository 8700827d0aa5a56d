"""Grouped changes and the markdown size budget, on small diffs a reader can check by eye."""

from __future__ import annotations

import re
from pathlib import Path

from bifrost_gitops import diffreport
from bifrost_gitops.diagnostics import Diagnostic
from bifrost_gitops.diff import Change, Diff
from bifrost_gitops.diffgroup import all_but, groups, who
from bifrost_gitops.diffreport import Block, fit
from test_diff import default_changed, diff

ORGS = [f"org{i:02d}" for i in range(12)]


def page_size(old: int, new: int, source: str = "integrations/HaloPSA/integration.yaml:9") -> Change:
    return Change("HaloPSA", "config", "page_size", str(old), str(new), source, old, new)


def a_diff(changes: dict[str, list[Change]], findings: int = 0) -> Diff:
    found = [Diagnostic("V001", "error", f"f{i}.yaml", 1, 1, "bad") for i in range(findings)]
    return Diff("main (1)", "work tree", len(ORGS), changes, head_findings=found, orgs=ORGS)


def test_identical_changes_are_one_group_and_different_values_another() -> None:
    d = a_diff(
        {
            **{o: [page_size(45, 60)] for o in ORGS[:10]},
            ORGS[10]: [page_size(45, 61)],
            ORGS[11]: [page_size(45, 60, "integrations/HaloPSA/mappings/org11.yaml:5")],
        }
    )
    (wide, other) = groups(d)
    assert wide.orgs == [*ORGS[:10], ORGS[11]]  # the source line does not split a change
    assert wide.sources == [
        "integrations/HaloPSA/integration.yaml:9",
        "integrations/HaloPSA/mappings/org11.yaml:5",
    ]
    assert other.orgs == [ORGS[10]] and other.change.new_value == 61
    assert who(wide.orgs, ORGS) == "11 of 12 organizations: all but org10"
    text = diffreport.render_text(d)
    assert text.count("config.page_size: 45 -> 60") == 1
    assert "    11 of 12 organizations: all but org10\n" in text
    assert (
        "config.page_size: 45 -> 61    (integrations/HaloPSA/integration.yaml:9)\n    1 organization: org10\n"
        in text
    )


def test_typed_values_keep_equal_looking_changes_apart() -> None:
    """ "1" and 1 display alike once cut or quoted differently: grouping compares typed values."""
    a = Change("HaloPSA", "config", "x", "1", "2", None, "1", "2")
    b = Change("HaloPSA", "config", "x", "1", "2", None, 1, 2)
    assert [g.orgs for g in groups(a_diff({"org00": [a], "org01": [b]}))] == [["org00"], ["org01"]]


def test_who_says_it_the_shorter_way() -> None:
    assert who(ORGS, ORGS) == "all 12 organizations"
    assert who(ORGS[:2], ORGS) == "2 organizations: org00, org01"
    assert who(ORGS[:6], ORGS) == "6 organizations: org00, org01, org02 and 3 more"
    assert who(ORGS[:9], ORGS) == "9 of 12 organizations: all but org09, org10, org11"
    assert all_but(ORGS[:8], ORGS) is None  # four left out: longer than naming a few
    assert who(["gone"], ORGS) == "1 organization: gone"  # a removed organization is not in head


def test_long_lists_collapse_in_markdown_and_json_lists_every_organization() -> None:
    d = a_diff({o: [page_size(45, 60)] for o in ORGS[:6]})
    md = diffreport.render_markdown(d)
    assert (
        "- **HaloPSA** config.page\\_size: `45` → `60` — 6 organizations: `org00`, `org01`, `org02` and 3 more"
        in md
    )
    assert "<details><summary>all 6</summary>" in md and "`org05`" in md
    doc = diffreport.render_json(d)
    assert '"organizations": [\n        "org00",' in doc and '"count": 6' in doc and '"changes"' not in doc
    assert '"changes"' in diffreport.render_json(d, by_org=True)


def test_fit_keeps_whole_blocks_and_the_summary_and_says_what_went() -> None:
    table = "| a | b |\n|---|---|\n" + "| x | y |\n" * 20
    blocks = [Block(table, "organization") for _ in range(10)]
    kept = "### summary\n\n"
    out = fit(kept, blocks, 2000)
    assert out.startswith(kept) and len(out.encode()) <= 2000
    body = out[len(kept) : out.index("\n**Left out")]
    assert body == table * (body.count("| a | b |"))  # whole tables, in order, none cut
    n = 10 - body.count("| a | b |")
    assert f"**Left out to stay within 2,000 bytes:** {n} of 10 organizations. Full report:" in out
    assert fit(kept, blocks, 0) == kept + table * 10  # 0: no limit, nothing said
    tiny = fit(kept, blocks, 10)  # the summary stays even past the budget
    assert tiny.startswith(kept) and "10 of 10 organizations" in tiny


def test_findings_left_out_are_counted() -> None:
    d = a_diff({o: [page_size(45, 60)] for o in ORGS}, findings=80)
    md = diffreport.render_markdown(d, max_bytes=1500)
    assert len(md.encode()) <= 1500
    shown = md.count("- `f")
    assert 0 < shown < 80
    assert re.search(rf"Left out to stay within 1,500 bytes:\*\* {80 - shown} of 80 findings\. ", md), md


def test_cli_max_bytes_and_by_org(tmp_path: Path) -> None:
    g = default_changed(tmp_path / "r", 40)
    args = ("--base", "HEAD~1", "--head", "HEAD", "--format", "markdown")
    grouped = diff(g, *args).stdout
    assert "40 of 41 organizations: all but `contoso`" in grouped and "Left out" not in grouped
    by_org = diff(g, *args, "--by-org", "--max-bytes", "2500")
    assert by_org.code == 0 and len(by_org.stdout.encode()) <= 2500
    n = by_org.stdout.count("<details>")
    assert 0 < n < 40 and f"{40 - n} of 40 organizations" in by_org.stdout
    assert "--max-bytes 0" in by_org.stdout
    assert diff(g, *args, "--max-bytes", "-1").code == 2  # a usage error, said as one
