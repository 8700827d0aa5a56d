"""Is the hook's `validate --staged` as fast as plain `validate`? Target: within 1.2x.

    .venv/bin/python benchmarks/bench_staged.py [--orgs 500 --integrations 20] [--quick]

The synthetic repository (benchmarks/generate.py) is copied into a git repository and committed
once, cached under benchmarks/.work/ (git-ignored). Then, in process:
(a) plain: repo.load(root) -- the work tree, minus what git ignores (one `git ls-files` call)
(b) staged: repo.load_git(root, None) -- the index: `git ls-files -s` + `git cat-file --batch`
(c) rev: repo.load_git(root, "HEAD") -- the commit: `git ls-tree` + `git cat-file --batch`
and the same three as `python -m bifrost_gitops validate` subprocesses; the three alternate
round by round (5 rounds, best of each), so a busy machine slows them alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, ".work")
sys.path.insert(0, HERE)

from bench_diff import git  # noqa: E402
from bench_validate import best_of, wall  # noqa: E402
from generate import generate  # noqa: E402
from installed import keep_bytecode  # noqa: E402

TARGET_RATIO = 1.2
ROUNDS = 5


def committed(source: str, root: str) -> None:
    """SOURCE copied to ROOT and committed there, unless a previous run did it already."""
    if os.path.isdir(os.path.join(root, ".git")):
        return
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(source, root)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        git(root, *args)


def main(argv: list[str] | None = None) -> int:
    keep_bytecode()
    ap = argparse.ArgumentParser(description="Benchmark validate --staged against plain validate.")
    ap.add_argument("--orgs", type=int, default=500)
    ap.add_argument("--integrations", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="50 orgs x 5 integrations")
    args = ap.parse_args(argv)
    os.environ.setdefault("BIFROST_GITOPS_NO_CACHE", "1")  # cold runs; bench_cache.py measures the cache
    if args.quick:
        args.orgs, args.integrations = 50, 5

    from bifrost_gitops.repo import load, load_git  # imported up front: the runs measure work

    name = f"repo-{args.orgs}x{args.integrations}-s0-f0.5"
    source = os.path.join(WORK, name)
    generate(source, args.orgs, args.integrations, 0, 0.5)
    root = os.path.join(WORK, f"git-{name}")
    committed(source, root)

    # interleaved rounds, best of each: a busy machine slows all three alike
    runs = {
        "(a)": lambda: load(root),
        "(b)": lambda: load_git(root, None),
        "(c)": lambda: load_git(root, "HEAD"),
    }
    best: dict[str, float] = {}
    results: dict[str, Any] = {}
    for _ in range(ROUNDS):
        for label, run in runs.items():
            seconds, results[label] = best_of(run, 1)
            best[label] = min(best.get(label, seconds), seconds)
    plain, staged, rev = results["(a)"], results["(b)"], results["(c)"]
    if not (plain.files == staged.files == rev.files) or plain.diagnostics != staged.diagnostics:
        print(f"error: the three disagree: {plain.files}, {staged.files}, {rev.files} files")
        return 1
    print(f"repository: {root} ({plain.files} YAML files, committed)")
    names = {"(a)": "validate (work tree)", "(b)": "validate --staged", "(c)": "validate --rev HEAD"}
    for label, seconds in best.items():
        print(
            f"{label} {names[label]:<30} {seconds:7.3f} s  in process, best of {ROUNDS}, "
            f"{seconds / best['(a)']:.2f}x (a)"
        )

    cli = [sys.executable, "-m", "bifrost_gitops", "validate", root]
    extras = {"(a)": [], "(b)": ["--staged"], "(c)": ["--rev", "HEAD"]}
    subs: dict[str, float] = {}
    for _ in range(ROUNDS):
        for label, extra in extras.items():
            seconds = wall(cli + extra)[0]
            subs[label] = min(subs.get(label, seconds), seconds)
    for label, seconds in subs.items():
        print(
            f"{label} {names[label] + ' (command)':<30} {seconds:7.3f} s  subprocess, best of {ROUNDS}, "
            f"{seconds / subs['(a)']:.2f}x (a)"
        )

    ratio = max(best["(b)"] / best["(a)"], subs["(b)"] / subs["(a)"])
    verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
    print(f"\n{verdict}  validate --staged / validate = {ratio:.2f}x at worst (target <= {TARGET_RATIO:g}x)")
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - start:.0f} s in all)")
    sys.exit(code)
