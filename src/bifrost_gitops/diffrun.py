"""The `diff` command's steps: read both revisions from git, list the security-relevant changes,
and compare secrets with whatever keys there are.

Both revisions come straight from git objects (the head may be the work tree); nothing in the
work tree changes. Raises RepoError or GitError (exit 2) when either side cannot be read.
"""

from __future__ import annotations

import os

from . import gitrev, sops
from . import security as sec
from .diff import Diff, diff, secret_comparer
from .repo import PROJECT_FILE, Result, WorkTree, find_root, load_tree


def run(repo: str, base: str, head: str | None) -> Diff:
    """What changes from revision BASE to HEAD (None: the work tree) of the repository at REPO."""
    root = find_root(repo)
    base_tree = gitrev.GitTree(root, base)
    head_tree = gitrev.GitTree(root, head) if head else None
    base_sops = base_tree.nearest(sec.SOPS_FILE)
    head_sops = head_tree.nearest(sec.SOPS_FILE) if head_tree else gitrev.work_nearest(root, sec.SOPS_FILE)
    base_result = load_tree(base_tree if base_tree.exists else gitrev.EmptyTree(root))
    head_side = head_tree or WorkTree(root)
    head_result = load_tree(head_side)
    alerts = security(base_tree, head_side, base_result, head_result)
    alerts += sec.sops_rules(
        sec.ConfigFile(*base_sops) if base_sops else None,
        sec.ConfigFile(*head_sops) if head_sops else None,
    )

    def work_raw(rel: str) -> bytes:
        with open(os.path.join(root, rel), "rb") as f:
            return f.read()

    compare = secret_comparer(
        base_result,
        head_result,
        base_tree.read,
        head_tree.read if head_tree else work_raw,
        sops.default_keyring(),
    )
    return diff(
        base_result,
        head_result,
        f"{base} ({base_tree.commit[:12]})",
        f"{head} ({head_tree.commit[:12]})" if head_tree else "work tree",
        compare,
        alerts,
    )


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
