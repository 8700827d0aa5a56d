"""`diff`'s revisions and exit status: `--base A...B`, `A..B`, `--merge-base`, and the
`--exit-code` rule (0 no changes, 1 changes, 2 anything wrong) on real git histories.

The history: `main` holds the repository; the branch `feature` changes contoso's page_size
override (50 -> 51); after it forked, `main` changed the HaloPSA default (100 -> 200), a change
the branch never made. Comparing with the merge base shows only the branch's own change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support import BASE_FILES, Run, git, run_cli, write_repo

HALO = "integrations/HaloPSA/integration.yaml"
CONTOSO = "integrations/HaloPSA/mappings/contoso.yaml"


def edit(root: Path, rel: str, old: str, new: str) -> None:
    text = (root / rel).read_text()
    assert text.count(old) == 1, (rel, old)
    (root / rel).write_text(text.replace(old, new))


@pytest.fixture
def forked(tmp_path: Path) -> Path:
    """The history above, checked out on `feature` (clean work tree)."""
    root = write_repo(tmp_path / "r")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    git(root, "checkout", "-q", "-b", "feature")
    edit(root, CONTOSO, "page_size: 50", "page_size: 51")
    git(root, "commit", "-q", "-am", "contoso pages by 51")
    git(root, "checkout", "-q", "main")
    edit(root, HALO, "page_size: 100", "page_size: 200")
    git(root, "commit", "-q", "-am", "bigger pages for everyone")
    git(root, "checkout", "-q", "feature")
    return root


def diff(root: Path, *args: str) -> Run:
    return run_cli("diff", str(root), *args)


def body(run: Run) -> str:
    """The output without its first line (which names the revisions)."""
    return run.stdout.split("\n", 1)[1]


def test_three_dots_compare_with_the_merge_base(forked: Path) -> None:
    fork = git(forked, "merge-base", "main", "feature").strip()
    tip = diff(forked, "--base", "main", "--head", "feature")
    assert tip.code == 0 and "200" in body(tip)  # main's own change shows as the branch undoing it
    dots = diff(forked, "--base", "main...feature")
    assert dots.code == 0, dots
    assert "51" in body(dots) and "200" not in body(dots)  # body: a commit id may hold any digits
    assert f"merge base of main and feature ({fork[:12]})" in dots.stdout.splitlines()[0]
    pinned = diff(forked, "--base", fork, "--head", "feature")
    assert body(dots) == body(pinned)
    # an empty side is HEAD (here: feature), as in git
    assert body(diff(forked, "--base", "main...")) == body(pinned)


def test_merge_base_flag_takes_the_head_or_git_head(forked: Path) -> None:
    fork = git(forked, "merge-base", "main", "feature").strip()
    pinned = diff(forked, "--base", fork, "--head", "feature")
    with_head = diff(forked, "--base", "main", "--head", "feature", "--merge-base")
    assert with_head.code == 0 and body(with_head) == body(pinned)
    # without --head: the merge base of main and HEAD against the work tree, which may differ
    edit(forked, CONTOSO, "page_size: 51", "page_size: 52")
    work = diff(forked, "--base", "main", "--merge-base")
    assert work.stdout.splitlines()[0].endswith("-> work tree)"), work
    assert f"merge base of main and HEAD ({fork[:12]})" in work.stdout.splitlines()[0]
    assert "52" in body(work) and "200" not in body(work)


def test_two_dots_compare_the_two_revisions(forked: Path) -> None:
    assert body(diff(forked, "--base", "main..feature")) == body(
        diff(forked, "--base", "main", "--head", "feature")
    )


@pytest.mark.parametrize(
    "args",
    [
        ("--base", "--output=out.txt...HEAD"),
        ("--base", "main...--output=out.txt"),
        ("--base", "-h..HEAD"),
        ("--base", "--output=out.txt", "--merge-base"),
        ("--base", "main", "--head", "--output=out.txt", "--merge-base"),
    ],
)
def test_a_side_is_a_revision_never_an_option(forked: Path, args: tuple[str, ...]) -> None:
    run = diff(forked, *args)
    assert run.code == 2 and run.stdout == "", run
    assert "unknown revision '-" in run.stderr and len(run.stderr.splitlines()) == 1, run
    assert not (forked / "out.txt").exists()


def test_a_range_names_both_sides(forked: Path) -> None:
    for extra in (("--head", "feature"), ("--merge-base",)):
        run = diff(forked, "--base", "main...feature", *extra)
        assert run.code == 2 and "names both sides" in run.stderr, run


def test_no_merge_base_is_an_error_with_a_hint(forked: Path) -> None:
    git(forked, "checkout", "-q", "--orphan", "unrelated")
    git(forked, "commit", "-q", "-m", "a history of its own")
    for args in (("--base", "main...unrelated"), ("--base", "main", "--head", "unrelated", "--merge-base")):
        run = diff(forked, *args)
        assert run.code == 2 and run.stdout == "", run
        assert "no merge base between 'main' and 'unrelated'" in run.stderr and "shallow clone" in run.stderr


def test_exit_code_0_none_1_changes_2_anything_wrong(forked: Path) -> None:
    assert diff(forked, "--base", "HEAD", "--exit-code").code == 0
    assert diff(forked, "--base", "main...HEAD", "--exit-code").code == 1
    for fmt in ("text", "markdown", "json"):
        assert diff(forked, "--base", "HEAD~1", "--exit-code", "--format", fmt).code == 1
    # a finding in the head revision (a mapping for an undeclared organization): wrong, whatever changed
    (forked / "integrations/HaloPSA/mappings/ghost.yaml").write_text(
        BASE_FILES[CONTOSO].replace("organization: contoso", "organization: ghost")
    )
    for fmt in ("text", "markdown", "json"):
        ci = diff(forked, "--base", "HEAD", "--exit-code", "--format", fmt)
        assert ci.code == 2 and "ghost" in ci.stdout, ci  # the diff is still written
        assert diff(forked, "--base", "HEAD", "--format", fmt).code == 1  # without the flag: as before
