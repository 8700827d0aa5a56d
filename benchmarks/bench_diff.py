"""How long does `bifrost-gitops diff` take on a big repository, compared with one compile of it?

    python benchmarks/bench_diff.py                 # 500 orgs x 20 integrations
    python benchmarks/bench_diff.py --quick         # 50 x 5
    python benchmarks/bench_diff.py --profile       # also write benchmarks/.work/profile-diff.txt

Target: diff of two revisions <= 2.5x one compile.

The repository (benchmarks/generate.py) is committed into a git repository under
benchmarks/.work/diff-<orgs>x<integrations>-s<seed>/ as `base`, then one integration default
and some mappings change and are committed as `head` (both tagged; reused on later runs).

Timed, in process, best of 3, each after gc.collect():
  diff     both revisions read from git objects (gitrev.GitTree), loaded and checked
           (repo.load_tree), then diff.diff with the ciphertext comparer (no keys)
  compile  the head as `compile --secrets redact` does it: load_tree(head) then bundle.write
Phases of the diff (load base, load head, compare) are printed too.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))

from bifrost_gitops import bundle, gitrev, repo  # noqa: E402
from bifrost_gitops import diff as df  # noqa: E402
from generate import generate  # noqa: E402
from installed import keep_bytecode  # noqa: E402

TARGET = 2.5
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(cwd: str, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def build(orgs: int, integrations: int, seed: int) -> str:
    """The git repository with tags base and head (cached)."""
    top = os.path.join(HERE, ".work", f"diff-{orgs}x{integrations}-s{seed}")
    try:
        git(top, "rev-parse", "--verify", "-q", "head^{commit}")
        git(top, "diff", "--quiet", "head")
        return top
    except (subprocess.CalledProcessError, FileNotFoundError, NotADirectoryError):
        shutil.rmtree(top, ignore_errors=True)
    os.makedirs(top)
    generate(os.path.join(top, "repo"), orgs, integrations, seed, 0.5)
    git(top, "init", "-q", "-b", "main")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "base")
    git(top, "tag", "base")
    # one default (every org that does not override it) ...
    integ_dir = os.path.join(top, "repo", "integrations")
    first = sorted(os.listdir(integ_dir))[0]
    path = os.path.join(integ_dir, first, "integration.yaml")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text, n = re.subn(r"(\n\s+base_url: )(\S+)", r"\1\2/v3", text, count=1)
    assert n == 1, path
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    # ... and an int override in every tenth mapping of the second integration that sets it
    second = sorted(os.listdir(integ_dir))[1 % len(os.listdir(integ_dir))]
    mdir = os.path.join(integ_dir, second, "mappings")
    for i, name in enumerate(sorted(os.listdir(mdir))):
        if i % 10 == 0:
            p = os.path.join(mdir, name)
            with open(p, encoding="utf-8") as f:
                t = f.read()
            t = re.sub(r"(\n\s+\w+: )\d+\n", r"\g<1>7\n", t, count=1)  # an int override
            with open(p, "w", encoding="utf-8") as f:
                f.write(t)
    git(top, "commit", "-q", "-am", "head")
    git(top, "tag", "head")
    return top


def best_of(fn: Callable[[], Any], runs: int = 3) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def run_diff(root: str, phases: dict[str, float] | None = None) -> df.Diff:
    t0 = time.perf_counter()
    base_tree = gitrev.GitTree(root, "base")
    base = repo.load_tree(base_tree)
    t1 = time.perf_counter()
    head_tree = gitrev.GitTree(root, "head")
    head = repo.load_tree(head_tree)
    t2 = time.perf_counter()
    compare = df.secret_comparer(base, head, base_tree.read, head_tree.read, None)
    d = df.diff(base, head, "base", "head", compare)
    t3 = time.perf_counter()
    if phases is not None:
        for k, v in (("load base", t1 - t0), ("load head", t2 - t1), ("compare", t3 - t2)):
            phases[k] = min(phases.get(k, float("inf")), v)
    return d


def run_compile(root: str, out: str) -> Any:
    head = repo.load_tree(gitrev.GitTree(root, "head"))
    assert not head.errors, head.errors[:3]
    return bundle.write(head.catalog, head.root, out, "redact")


def main(argv: list[str] | None = None) -> int:
    keep_bytecode()
    ap = argparse.ArgumentParser()
    ap.add_argument("--orgs", type=int, default=500)
    ap.add_argument("--integrations", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="50 orgs x 5 integrations")
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args(argv)
    os.environ.setdefault("BIFROST_GITOPS_NO_CACHE", "1")  # cold runs; bench_cache.py measures the cache
    if a.quick:
        a.orgs, a.integrations = 50, 5
    t0 = time.perf_counter()
    top = build(a.orgs, a.integrations, a.seed)
    root = os.path.join(top, "repo")
    print(
        f"repository: {root} ({a.orgs} orgs x {a.integrations} integrations), ready in {time.perf_counter() - t0:.1f} s"
    )

    phases: dict[str, float] = {}
    t_diff, d = best_of(lambda: run_diff(root, phases))
    with tempfile.TemporaryDirectory(dir=os.path.join(HERE, ".work")) as tmp:
        out = os.path.join(tmp, "bundle")
        t_compile, written = best_of(lambda: run_compile(root, out))
    print(
        f"diff: {len(d.changes)} of {d.orgs_total} orgs affected; {sum(map(len, d.changes.values()))} changes; "
        f"per integration {d.affected}"
    )
    print(f"compile: {written.files} files")
    print()
    print(f"| diff (load base + load head + compare) | {t_diff:.3f} s |")
    for k, v in phases.items():
        print(f"|   {k} | {v:.3f} s |")
    print(f"| compile --secrets redact (load head + write) | {t_compile:.3f} s |")
    ratio = t_diff / t_compile
    print()
    print(
        f"{'PASS' if ratio <= TARGET else 'MISS'}  diff / compile = {ratio:.2f}x (target <= {TARGET}x): "
        f"{t_diff:.3f} s vs {t_compile:.3f} s"
    )

    if a.profile:
        prof = cProfile.Profile()
        prof.enable()
        run_diff(root)
        prof.disable()
        buf = io.StringIO()
        st = pstats.Stats(prof, stream=buf)
        st.sort_stats("cumulative").print_stats(25)
        st.sort_stats("tottime").print_stats(15)
        path = os.path.join(HERE, ".work", "profile-diff.txt")
        with open(path, "w") as f:
            f.write(buf.getvalue())
        print(f"profile: {path}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
