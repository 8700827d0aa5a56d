"""Does the cost per file stay flat as the repository grows? validate, compile and diff as processes.

    .venv/bin/python benchmarks/bench_scale.py                          # 500x20 and 2000x30
    .venv/bin/python benchmarks/bench_scale.py --sizes 500x20,2000x30,5000x50   # + 250,000 files
    .venv/bin/python benchmarks/bench_scale.py --sizes 50x5 --runs 1   # a quick look

For each size ORGSxINTEGRATIONS, generate.py's repository (half the mappings sops-shaped) is
committed into git under benchmarks/.work/scale-<size>/ as tag ``base``; one mapping then gets
a changed override and is committed as ``head`` (reused on later runs). Every command runs as a
fresh ``python -m bifrost_gitops`` process of this checkout (what a hook or CI job runs); its
wall time, CPU time and peak memory (ru_maxrss of that one child, from os.wait4) are printed:

  floor     walk + read + yaml.CSafeLoader of every file, in this process, one core
  validate  ``validate REPO`` (the work tree, at head)
  compile   ``compile --secrets redact -o OUT`` of base into a fresh folder
  compile1  the same after the one mapping changed: also how many bundle files were rewritten
            (new inode) and changed; then timed in process too (load + write, best of 4, each
            run one real change), without the interpreter's start-up and teardown
  diff      ``diff --base base --head head`` (both read from git objects)

When the CLI has a ``--no-cache`` option (read from ``validate --help``), the cache lives in a
folder of its own (BIFROST_GITOPS_CACHE_DIR), emptied before each cold run; validate and diff
also run a second time on the same input (warm), validate once with ``--no-cache``, and
"compile after one change" is what a commit pays: only the changed file parsed again. Commands
use their default ``--jobs`` (the usable cores). The 5,000 x 50 repository is 250,000 files
(about 1 GB with its git objects; check ``df``): opt-in.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, ".work")
sys.path.insert(0, HERE)

from bench_diff import git  # noqa: E402
from bench_validate import floor  # noqa: E402
from generate import generate  # noqa: E402
from installed import keep_bytecode  # noqa: E402

DEFAULT_SIZES = "500x20,2000x30"


@dataclass(frozen=True)
class Run:
    """One command as a process."""

    wall: float  # seconds
    cpu: float  # user + system seconds of the child
    rss_mb: float  # its peak resident memory
    code: int


def run(cmd: list[str], env: dict[str, str], cwd: str | None = None) -> Run:
    """Run CMD; its own rusage (not the sum of every child so far) via os.wait4."""
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=null, stderr=null, stdin=subprocess.DEVNULL)
        _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, proc.returncode)


def build(orgs: int, integrations: int) -> tuple[str, str, str, str]:
    """(git top, repository, the changed mapping, its text at base) with tags base and head (cached)."""
    top = os.path.join(WORK, f"scale-{orgs}x{integrations}")
    root = os.path.join(top, "repo")
    marker = os.path.join(top, ".bench-scale")
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            changed = f.read().strip()
        return top, root, changed, git(top, "show", f"base:repo/{changed}")
    shutil.rmtree(top, ignore_errors=True)
    os.makedirs(top)
    t0 = time.perf_counter()
    generate(root, orgs, integrations, 0, 0.5)
    git(top, "init", "-q", "-b", "main")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "base")
    git(top, "tag", "base")
    integ = os.path.join(root, "integrations")
    first = sorted(os.listdir(integ))[0]
    name = sorted(os.listdir(os.path.join(integ, first, "mappings")))[0]
    changed = f"integrations/{first}/mappings/{name}"
    path = os.path.join(root, changed)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(re.sub(r'(\nentity_name: "?)', r"\1Renamed ", text, count=1))
    git(top, "commit", "-q", "-am", "head: one mapping changed")
    git(top, "tag", "head")
    with open(marker, "w", encoding="utf-8") as f:
        f.write(changed + "\n")
    print(f"  built {top} in {time.perf_counter() - t0:.0f} s", flush=True)
    return top, root, changed, text


def bundle_files(out: str) -> dict[str, tuple[int, bytes]]:
    """Every bundle file: (inode, bytes)."""
    found = {}
    for dirpath, _dirs, files in os.walk(out):
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                found[os.path.relpath(p, out)] = (os.stat(p).st_ino, fh.read())
    return found


def line(label: str, r: Run, files: int, floor_s: float) -> str:
    us = r.wall / files * 1e6
    ok = "" if r.code in (0,) else f"  (exit {r.code})"
    return (
        f"  {label:<28} {r.wall:7.2f} s wall {r.cpu:7.2f} s CPU  {us:6.0f} us/file  "
        f"{r.rss_mb:6.0f} MB  {r.wall / floor_s:5.2f}x floor{ok}"
    )


#: Run in a child (this checkout's code): the changed mapping flips between its two texts
#: before each run, so every run compiles one real change; load and write timed in process.
INPROC = """
import gc, json, sys, time
from bifrost_gitops import bundle, repo
root, out, path = sys.argv[1:4]
texts = json.loads(sys.argv[4])
best = (float("inf"), 0.0, 0.0, 0)
for i in range(int(sys.argv[5])):
    with open(path, "w", encoding="utf-8") as f:
        f.write(texts[i % 2])
    gc.collect()
    t0 = time.perf_counter()
    r = repo.load(root)
    t1 = time.perf_counter()
    w = bundle.write(r.catalog, r.root, out, "redact")
    t2 = time.perf_counter()
    best = min(best, (t2 - t0, t1 - t0, t2 - t1, len(w.changed)))
with open(path, "w", encoding="utf-8") as f:
    f.write(texts[1])
print(json.dumps(best))
"""


def inproc(
    root: str, out: str, path: str, texts: tuple[str, str], env: dict[str, str], floor_s: float
) -> None:
    """compile after one change, timed inside the process (no start-up, no teardown): best of 4."""
    import json

    proc = subprocess.run(
        [sys.executable, "-c", INPROC, root, out, path, json.dumps(texts), "4"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    total, load, write, changed = json.loads(proc.stdout)
    print(f"  {'compile after one change, in process':<38} {total:5.2f} s (load {load:.2f} s + write "
          f"{write:.2f} s; {changed} files changed)  {total / floor_s:5.2f}x floor", flush=True)  # fmt: skip


def measure(orgs: int, integrations: int, env: dict[str, str], cache: bool) -> None:
    size = f"{orgs}x{integrations}"
    print(f"{size}:", flush=True)
    top, root, changed, base_text = build(orgs, integrations)
    cache_dir = os.path.join(top, ".cache")
    env = {**env, "BIFROST_GITOPS_CACHE_DIR": cache_dir}

    def cold() -> None:
        shutil.rmtree(cache_dir, ignore_errors=True)

    py = [sys.executable, "-m", "bifrost_gitops"]
    t0 = time.perf_counter()
    files = floor(root)
    floor_s = time.perf_counter() - t0
    print(f"  {files} files; floor (walk + read + CSafeLoader, one core) {floor_s:.2f} s, "
          f"{floor_s / files * 1e6:.0f} us/file", flush=True)  # fmt: skip
    rows: list[tuple[str, Run]] = []

    def do(label: str, args: list[str]) -> Run:
        r = run(py + args, env, cwd=top)
        rows.append((label, r))
        print(line(label, r, files, floor_s), flush=True)
        return r

    cold()
    do("validate", ["validate", root])
    if cache:
        do("validate warm", ["validate", root])
        do("validate --no-cache", ["validate", "--no-cache", root])
    out = os.path.join(top, "bundle")
    shutil.rmtree(out, ignore_errors=True)
    path = os.path.join(root, changed)
    with open(path, encoding="utf-8") as f:
        head_text = f.read()
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(base_text)
        cold()
        do("compile (fresh folder)", ["compile", root, "-o", out, "--secrets", "redact"])
        before = bundle_files(out)
        with open(path, "w", encoding="utf-8") as f:
            f.write(head_text)
        do("compile after one change", ["compile", root, "-o", out, "--secrets", "redact"])
        after = bundle_files(out)
        rewritten = sorted(k for k in after if before.get(k, (None,))[0] != after[k][0])
        differ = sorted(k for k in after if before.get(k, (None, None))[1] != after[k][1])
        print(f"    one mapping changed: {len(differ)} of {len(after)} bundle files changed, "
              f"{len(rewritten)} rewritten ({', '.join(rewritten[:5])})", flush=True)  # fmt: skip
        if cache:
            do("compile warm (no change)", ["compile", root, "-o", out, "--secrets", "redact"])
        inproc(root, out, path, (base_text, head_text), env, floor_s)
    finally:
        with open(path, "w", encoding="utf-8") as f:
            f.write(head_text)
    cold()
    do("diff base..head", ["diff", root, "--base", "base", "--head", "head"])
    if cache:
        do("diff warm", ["diff", root, "--base", "base", "--head", "head"])
    shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    keep_bytecode()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help=f"ORGSxINTEGRATIONS,... (default {DEFAULT_SIZES})")
    ap.add_argument(
        "--src", help="run the bifrost_gitops found in this folder (default: this checkout's src)"
    )
    a = ap.parse_args(argv)
    sizes = [tuple(int(n) for n in s.lower().split("x")) for s in a.sizes.split(",") if s]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPS_", "BIFROST_"))}  # cache on
    env["PYTHONPATH"] = a.src or os.path.join(os.path.dirname(HERE), "src")
    helptext = subprocess.run(
        [sys.executable, "-m", "bifrost_gitops", "validate", "--help"],
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    cache = "--no-cache" in helptext
    print(f"{os.cpu_count()} CPUs; cache option: {'yes (warm runs too)' if cache else 'no (cold runs only)'}")
    for orgs, integrations in sizes:
        measure(orgs, integrations, env, cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
