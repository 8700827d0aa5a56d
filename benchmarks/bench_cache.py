"""What the incremental cache and --jobs buy: cold, warm and one-change runs against the floor.

    .venv/bin/python benchmarks/bench_cache.py [--orgs 500 --integrations 20] [--quick] [--runs 3]
        [--commands validate,staged,compile,diff]

The generated repository (benchmarks/generate.py) is copied into a git repository under
benchmarks/.work/ (one commit), with its own cache folder, so nothing else is touched. Rows:

- floor: walk + read + yaml.load(CSafeLoader), one core, in process, best of RUNS
- repo.load in process: --no-cache with 1 and 2 jobs, then cache cold (filling it), warm
  (nothing changed) and after one changed mapping
- validate, validate --staged (the pre-commit hook), compile --secrets redact and diff --base HEAD
  as processes (what a hook or CI runs): --no-cache with 1 and 2 jobs, then warm and after one
  changed mapping (a comment appended); compile also after one changed value (an entity_name:
  its org file and deploy.json change)

Every time is also shown as a ratio to the floor measured in the same run.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)
WORK = os.path.join(HERE, ".work")
sys.path.insert(0, HERE)

from bench_validate import floor, wall, yaml_files  # noqa: E402
from generate import generate  # noqa: E402
from installed import keep_bytecode  # noqa: E402


def best_of(fn: Callable[[], Any], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def git(root: str, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}  # fmt: skip
    subprocess.run(["git", "-C", root, *args], check=True, capture_output=True, env=env)


def touch_one(root: str, n: int) -> None:
    """Change one mapping's bytes (a comment), differently each time."""
    path = sorted(f for f in yaml_files(root) if os.sep + "mappings" + os.sep in f)[7]
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"# edit {n}\n")


def change_value(root: str, n: int) -> None:
    """Change one mapping's value (its entity_name), differently each time: unlike a comment,
    this changes what its organization's bundle file and deploy.json hold."""
    path = sorted(f for f in yaml_files(root) if os.sep + "mappings" + os.sep in f)[7]
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"^entity_name: (?:v\d+ )?", f"entity_name: v{n} ", f.read(), count=1, flags=re.M)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main(argv: list[str] | None = None) -> int:
    keep_bytecode()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--orgs", type=int, default=500)
    ap.add_argument("--integrations", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="50 orgs x 5 integrations")
    ap.add_argument("--runs", type=int, default=3, help="in-process rows: best of RUNS")
    ap.add_argument(
        "--commands", default="validate,staged,compile,diff", help="the commands timed as processes"
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.orgs, args.integrations = 50, 5

    from bifrost_gitops import repo

    source = os.path.join(WORK, f"repo-{args.orgs}x{args.integrations}-s0-f0.5")
    generate(source, args.orgs, args.integrations, 0, 0.5)
    root = os.path.join(WORK, f"cache-{args.orgs}x{args.integrations}")
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(source, root)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    cache_dir = os.path.join(WORK, "cache-dir")
    shutil.rmtree(cache_dir, ignore_errors=True)
    os.environ["BIFROST_GITOPS_CACHE_DIR"] = cache_dir
    out_dir = os.path.join(WORK, "cache-bundle")
    print(f"repository: {root}: {len(yaml_files(root))} YAML files; {os.cpu_count()} CPUs, "
          f"{len(os.sched_getaffinity(0))} usable")  # fmt: skip

    t_floor = best_of(lambda: floor(root), args.runs)

    class Rows(list[tuple[str, float]]):
        """Printed as they come (a full run takes minutes), each with its ratio to the floor."""

        def append(self, row: tuple[str, float]) -> None:
            super().append(row)
            print(f"{row[0]:<52}  {row[1]:7.3f} s  {row[1] / t_floor:5.2f}x floor", flush=True)

    rows = Rows()
    rows.append(("floor: read + CSafeLoader, one core (in process)", t_floor))

    def load(jobs: int, cache: bool) -> None:
        repo.load(root, repo.LoadOptions(jobs, cache))

    rows.append(("repo.load --no-cache --jobs 1", best_of(lambda: load(1, False), args.runs)))
    rows.append(("repo.load --no-cache --jobs 2", best_of(lambda: load(2, False), args.runs)))
    rows.append(("repo.load cache cold (fills it), --jobs 2", best_of(lambda: load(2, True), 1)))
    rows.append(("repo.load warm (nothing changed)", best_of(lambda: load(2, True), args.runs)))
    edits = iter(range(1_000_000))
    one: list[float] = []
    for _ in range(args.runs):
        touch_one(root, next(edits))
        one.append(best_of(lambda: load(2, True), 1))
    rows.append(("repo.load after one changed mapping", min(one)))

    cli = [sys.executable, "-m", "bifrost_gitops"]
    commands = {
        "validate": [*cli, "validate", root],
        # what the pre-commit hook runs: the index, read through git (the change staged first)
        "staged": [*cli, "validate", root, "--staged"],
        "compile": [*cli, "compile", root, "-o", out_dir, "--secrets", "redact"],
        "diff": [*cli, "diff", root, "--base", "HEAD", "--format", "json"],
    }
    for name in args.commands.split(","):
        cmd = commands[name]
        for jobs in ("1", "2"):
            rows.append(
                (f"{name} --no-cache --jobs {jobs} (process)", wall([*cmd, "--no-cache", "-j", jobs])[0])
            )
        wall(cmd)  # fill the cache
        rows.append((f"{name} warm (process)", min(wall(cmd)[0] for _ in range(args.runs))))
        changed = []
        for _ in range(args.runs):
            touch_one(root, next(edits))
            if name == "staged":
                git(root, "add", "-A")
            changed.append(wall(cmd)[0])
        rows.append((f"{name} after one changed mapping (process)", min(changed)))
        if name == "compile":  # a changed value: one org file, deploy.json and index.json rewritten
            valued, said = [], ""
            for _ in range(args.runs):
                change_value(root, next(edits))
                t, proc = wall(cmd)
                valued.append(t)
                said = proc.stderr.decode().strip().rpartition("; ")[2]
            rows.append(("compile after one changed value (process)", min(valued)))
            print(f"  ({said})")

    t_py = min(wall([sys.executable, "-c", "pass"])[0] for _ in range(3))
    t_import = min(
        wall([sys.executable, "-c", "import bifrost_gitops.cli, bifrost_gitops.repo"])[0] for _ in range(3)
    )
    # what any process that checks even one document must import: the CLI's click, libyaml and
    # the pydantic models (about 100 of pydantic's own modules): the floor of a warm run
    t_models = min(
        wall([sys.executable, "-c", "import click, yaml, bifrost_gitops.model"])[0] for _ in range(3)
    )
    rows.append(("python -c pass (interpreter start)", t_py))
    rows.append(("python -c 'import click, yaml, bifrost_gitops.model'", t_models))
    rows.append(("python -c 'import bifrost_gitops.cli, .repo'", t_import))
    user, system = os.times()[2:4]
    print(f"(CPU time of the child processes: {user + system:.1f} s; a busy machine shows as wall >> CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
