"""diff at scale: 3,000 organizations, two changed defaults and a removed schema key.

The repository comes from benchmarks/generate.py (3,000 organizations x 2 integrations, no
secrets, so the files stay small), committed twice in a git repository in a tmp dir. What a
reviewer must be able to rely on: the markdown comment stays within its budget and says what it
left out, and the grouping is exact (each organization's change is in exactly one group).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bifrost_gitops import diffreport, diffrun
from bifrost_gitops.diff import Diff
from test_diff import Git

ORGS = 3000
GENERATE = Path(__file__).resolve().parent.parent / "benchmarks" / "generate.py"


def _generate(out: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_generate", GENERATE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    module.generate(str(out), orgs=ORGS, integrations=2, seed=12, secret_fraction=0.0)


@pytest.fixture(scope="module")
def big(big_repo: Git) -> Diff:
    """The diff, computed once (as `diff --base HEAD~1 --head HEAD` does): each test renders it."""
    return diffrun.run(str(big_repo.root), "HEAD~1", "HEAD")


@pytest.fixture(scope="module")
def big_repo(tmp_path_factory: pytest.TempPathFactory) -> Git:
    """base: as generated; head: two defaults changed in the first integration, and schema key
    ``region`` removed from the second (with its default and every mapping's value)."""
    top = tmp_path_factory.mktemp("scale") / "r"
    _generate(top)
    g = Git(top)
    (g.root / ".bench-params.json").unlink()
    g.commit("base")
    first, second = sorted(p.parent for p in g.root.glob("integrations/*/integration.yaml"))
    text = (first / "integration.yaml").read_text(encoding="utf-8")
    text = text.replace("timeout_seconds: 30\n", "timeout_seconds: 45\n")
    text = re.sub(r"base_url: (\S+)/v2\n", r"base_url: \1/v3\n", text)
    (first / "integration.yaml").write_text(text, encoding="utf-8")
    text = (second / "integration.yaml").read_text(encoding="utf-8")
    text = re.sub(r"\n *- \{key: region,[^\n]*", "", text)
    text = re.sub(r"\n *region: \w+", "", text)
    assert "region" not in text
    (second / "integration.yaml").write_text(text, encoding="utf-8")
    for m in (second / "mappings").glob("*.yaml"):
        body = m.read_text(encoding="utf-8")
        if "  region:" in body:
            m.write_text(re.sub(r"\n  region: \w+", "", body), encoding="utf-8")
    g.commit("two defaults changed, region removed")
    return g


def _json(d: Diff) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(diffreport.render_json(d, by_org=True))
    return doc


def _same(c: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(c[k] for k in ("integration", "what", "key", "old", "new", "old_value", "new_value"))


def test_grouping_accounts_for_every_organization_once(big: Diff) -> None:
    doc = _json(big)
    assert doc["findings"]["head"] == [] and doc["organizations"] == ORGS
    per_org = Counter((org, _same(c)) for org, changes in doc["changes"].items() for c in changes)
    grouped = Counter((org, _same(g)) for g in doc["groups"] for org in g["organizations"])
    assert grouped == per_org and max(grouped.values()) == 1  # exact, each once
    assert all(g["count"] == len(g["organizations"]) for g in doc["groups"])
    keys = [_same(g) for g in doc["groups"]]
    assert len(keys) == len(set(keys))  # a change is one group, not several
    # the base_url default reaches every organization of the first integration (none overrides it)
    (url,) = [g for g in doc["groups"] if g["key"] == "base_url"]
    assert url["count"] == ORGS and url["old"].endswith('/v2"') and url["new"].endswith('/v3"')
    # timeout_seconds: every organization but those that override it
    (timeout,) = [g for g in doc["groups"] if g["key"] == "timeout_seconds"]
    assert (timeout["old_value"], timeout["new_value"]) == (30, 45)
    assert 0 < timeout["count"] < ORGS
    # the removed key: every organization loses its value, grouped by the value it had
    region = [g for g in doc["groups"] if g["key"] == "region"]
    assert 1 < len(region) <= 5 and all(g["new"] is None for g in region)
    assert sum(g["count"] for g in region) == ORGS


def test_markdown_stays_within_budget_and_says_what_it_left_out(big: Diff) -> None:
    groups = _json(big)["groups"]
    md = diffreport.render_markdown(big)
    assert len(md.encode()) <= diffreport.MAX_BYTES
    assert md.startswith(f"### bifrost-gitops diff: {ORGS} of {ORGS} organizations affected\n")
    # every change is there, each in one line; only long lists of names make way, and it says so
    assert md.count("\n- **") == len(groups)
    lists = md.count("<details>")
    long = [g for g in groups if 3 < g["count"] < ORGS and not g["all_but"]]
    assert 0 < lists < len(long)
    assert (
        f"**Left out to stay within 60,000 bytes:** the full organization lists of {len(long) - lists} of the"
        " changes shown (each names its first few). Full report: run `bifrost-gitops diff --format markdown"
        " --max-bytes 0`, or open the CI artifact.\n"
    ) in md
    assert md.count("<details>") == md.count("</details>")  # no section cut in half
    # the widest change reads once, in one line: all organizations, no names
    assert re.search(r"config\.base\\_url: `\"[^`]*/v2\"` → `\"[^`]*/v3\"` — all 3,000 organizations", md)
    (timeout,) = [line for line in md.splitlines() if "timeout\\_seconds" in line]
    assert re.search(
        r"`30` → `45` — [\d,]+ organizations: `[^`]+`, `[^`]+`, `[^`]+` and [\d,]+ more", timeout
    )

    full = diffreport.render_markdown(big, max_bytes=0)
    assert "Left out" not in full and full.count("\n- **") == len(groups)
    assert len(full.encode()) > diffreport.MAX_BYTES
    small = diffreport.render_markdown(big, max_bytes=2000)
    assert re.search(r"Left out to stay within 2,000 bytes:\*\* \d of 6 changes", small)
    assert "| integration |" in small and small.count("\n- **") < 6
    assert len(small.encode()) <= 2000
    by_org = diffreport.render_markdown(big, by_org=True)  # 3,000 sections: most are left out
    assert len(by_org.encode()) <= diffreport.MAX_BYTES
    assert re.search(r"Left out to stay within 60,000 bytes:\*\* [\d,]+ of 3,000 organizations", by_org)
