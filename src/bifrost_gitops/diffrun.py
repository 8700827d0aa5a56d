"""The `diff` command's steps: read both revisions from git, list the security-relevant changes,
and compare secrets with whatever keys there are.

Both revisions come straight from git objects (the head may be the work tree); nothing in the
work tree changes. Raises RepoError or GitError (exit 2) when either side cannot be read.
"""

from __future__ import annotations

from typing import NamedTuple

from . import gitrev, sops
from . import security as sec
from .diff import Diff, diff, secret_comparer
from .repo import DEFAULT, PROJECT_FILE, LoadOptions, Result, WorkTree, find_root, load_tree


class Sides(NamedTuple):
    """The two sides a diff compares: the base commit with how to name it, and the head
    revision (None: the work tree)."""

    base: str
    base_label: str
    head: str | None


def sides(root: str, base: str, head: str | None, merge_base: bool = False) -> Sides:
    """What `--base BASE [--head HEAD] [--merge-base]` compare, as git reads the same words:
    `A...B` is the merge base of A and B against B, `A..B` is A against B (an empty side is
    HEAD), and --merge-base takes the merge base of BASE and HEAD (or git's HEAD) as the base.
    Every revision is resolved by `gitrev.resolve_rev`, so none can pass for a git option."""
    for dots in ("...", ".."):
        if dots not in base:
            continue
        if head is not None or merge_base:
            raise gitrev.GitError(f"--base {base!r} names both sides: drop --head and --merge-base")
        left, _, right = base.partition(dots)
        left, right = left or "HEAD", right or "HEAD"
        if dots == "..":
            commit = gitrev.resolve_rev(root, left)
            return Sides(commit, f"{left} ({commit[:12]})", right)
        commit = gitrev.merge_base(root, left, right)
        return Sides(commit, f"merge base of {left} and {right} ({commit[:12]})", right)
    if merge_base:
        commit = gitrev.merge_base(root, base, head or "HEAD")
        return Sides(commit, f"merge base of {base} and {head or 'HEAD'} ({commit[:12]})", head)
    commit = gitrev.resolve_rev(root, base)
    return Sides(commit, f"{base} ({commit[:12]})", head)


def run(
    repo: str, base: str, head: str | None, merge_base: bool = False, options: LoadOptions = DEFAULT
) -> Diff:
    """What changes from revision BASE to HEAD (None: the work tree) of the repository at REPO;
    BASE may be a range and MERGE_BASE ask for the merge base (see `sides`)."""
    return compare(repo, base, head, merge_base, options)[0]


def compare(
    repo: str, base: str, head: str | None, merge_base: bool = False, options: LoadOptions = DEFAULT
) -> tuple[Diff, Result]:
    """`run`, and the loaded head revision (for a caller that shows it too: one load, not two)."""
    root = find_root(repo)
    base, base_label, head = sides(root, base, head, merge_base)
    base_tree = gitrev.GitTree(root, base)
    head_tree = gitrev.GitTree(root, head) if head else None
    base_sops = base_tree.nearest(sec.SOPS_FILE)
    head_sops = head_tree.nearest(sec.SOPS_FILE) if head_tree else gitrev.work_nearest(root, sec.SOPS_FILE)
    base_result = load_tree(base_tree if base_tree.exists else gitrev.EmptyTree(root), options)
    head_side = head_tree or WorkTree(root)
    head_result = load_tree(head_side, options)
    alerts = security(base_tree, head_side, base_result, head_result)
    alerts += sec.sops_rules(
        sec.ConfigFile(*base_sops) if base_sops else None,
        sec.ConfigFile(*head_sops) if head_sops else None,
    )
    secrets = secret_comparer(
        base_result, head_result, base_tree.read, head_side.read, sops.default_keyring()
    )
    d = diff(
        base_result,
        head_result,
        base_label,
        f"{head} ({head_tree.commit[:12]})" if head_tree else "work tree",
        secrets,
        alerts,
    )
    return d, head_result


def security(
    base_tree: gitrev.GitTree, head_tree: gitrev.GitTree | WorkTree, base: Result, head: Result
) -> list[sec.Alert]:
    """The identity and recipient changes a reviewer must see first (.sops.yaml's come after)."""
    return [
        *sec.organization_identity(base.catalog, head.catalog),
        *sec.integration_identity(base.catalog, head.catalog),
        *sec.bundle_recipients(
            base_tree.load(PROJECT_FILE)[0] if base_tree.exists else None, head_tree.load(PROJECT_FILE)[0]
        ),
    ]
