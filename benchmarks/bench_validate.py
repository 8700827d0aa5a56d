"""How fast is `validate`? One run measures it against a floor and against check-jsonschema.

    .venv/bin/python benchmarks/bench_validate.py [--orgs 500 --integrations 20] [--quick] [--profile]

(a) floor: walk the tree, read every YAML file, yaml.load(CSafeLoader) -- in process, best of 3
(b) ours: bifrost_gitops.repo.load(root) -- in process, best of 3; ratio to the floor
    (also the `python -m bifrost_gitops validate` subprocess once, for a like-for-like (c))
(c) check-jsonschema --schemafile schemas/mapping.schema.json over every mapping file, as
    subprocesses of at most 2000 files each, run once, wall times summed -- structure only
(d) `python -m bifrost_gitops validate examples/integrations` as a fresh subprocess, median of 5
(e) --profile: cProfile of (b), top 15 by cumulative and by own time -> benchmarks/.work/profile.txt

The synthetic repository is generated once by benchmarks/generate.py and cached under
benchmarks/.work/ (git-ignored). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)
WORK = os.path.join(HERE, ".work")
sys.path.insert(0, HERE)

from generate import generate  # noqa: E402
from installed import keep_bytecode  # noqa: E402

BATCH = 2000  # files per check-jsonschema call, so argv stays well under ARG_MAX
TARGET_FLOOR_RATIO = 2.0
TARGET_PROCESS_RATIO = 1.3  # the command itself: start-up, load, report and exit
TARGET_SPEEDUP = 5.0
TARGET_EXAMPLES_S = 0.5


def yaml_files(root: str) -> list[str]:
    """Every *.yaml / *.yml below root, dot files and folders skipped (what validate reads)."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(
            os.path.join(dirpath, f)
            for f in sorted(filenames)
            if not f.startswith(".") and f.endswith((".yaml", ".yml"))
        )
    return out


def floor(root: str) -> int:
    """The least any validator must do: find, read and parse every file."""
    n = 0
    for path in yaml_files(root):
        with open(path, "rb") as f:
            data = f.read()
        yaml.load(data, Loader=yaml.CSafeLoader)
        n += 1
    return n


def best_of(fn: Callable[[], Any], runs: int = 3) -> tuple[float, Any]:
    """Best wall time of ``runs`` calls; each starts from a collected heap with no earlier result
    alive (a retained result would make the cyclic GC of the next run slower)."""
    best, result = float("inf"), None
    for _ in range(runs):
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def wall(cmd: list[str], cwd: str = PROJECT) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, check=False)
    return time.perf_counter() - t0, proc


def tool(name: str) -> str | None:
    """An executable from this interpreter's environment, else from PATH."""
    local = os.path.join(os.path.dirname(sys.executable), name)
    return local if os.access(local, os.X_OK) else shutil.which(name)


def check_jsonschema(files: list[str]) -> tuple[float, int, str]:
    """Total wall time, calls made, and the first failure's output ('' when all passed)."""
    exe = tool("check-jsonschema")
    if exe is None:
        raise FileNotFoundError("check-jsonschema is not installed (pip install check-jsonschema)")
    schema = os.path.join(PROJECT, "schemas", "mapping.schema.json")
    total, calls, failure = 0.0, 0, ""
    for i in range(0, len(files), BATCH):
        seconds, proc = wall([exe, "--schemafile", schema, *files[i : i + BATCH]])
        total += seconds
        calls += 1
        if proc.returncode != 0 and not failure:
            failure = (proc.stdout + proc.stderr).decode(errors="replace")[-2000:]
    return total, calls, failure


def profile(root: str, out_path: str) -> str:
    from bifrost_gitops.repo import load

    prof = cProfile.Profile()
    prof.enable()
    load(root)
    prof.disable()
    buf = io.StringIO()
    for order in ("cumulative", "tottime"):
        buf.write(f"=== top 15 by {order} ===\n")
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(order).print_stats(15)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(buf.getvalue())
    return out_path


def main(argv: list[str] | None = None) -> int:
    keep_bytecode()
    ap = argparse.ArgumentParser(description="Benchmark bifrost-gitops validate.")
    ap.add_argument("--orgs", type=int, default=500)
    ap.add_argument("--integrations", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--secret-fraction", type=float, default=0.5)
    ap.add_argument("--quick", action="store_true", help="50 orgs x 5 integrations")
    ap.add_argument("--profile", action="store_true", help=f"write a cProfile to {WORK}/profile.txt")
    ap.add_argument("--skip-check-jsonschema", action="store_true", help="leave out (c) (slow)")
    args = ap.parse_args(argv)
    os.environ.setdefault("BIFROST_GITOPS_NO_CACHE", "1")  # cold runs; bench_cache.py measures the cache
    if args.quick:
        args.orgs, args.integrations = 50, 5

    from bifrost_gitops.repo import load  # imported up front: (b) measures work, not imports

    name = f"repo-{args.orgs}x{args.integrations}-s{args.seed}-f{args.secret_fraction:g}"
    root = os.path.join(WORK, name)
    t0 = time.perf_counter()
    if generate(root, args.orgs, args.integrations, args.seed, args.secret_fraction):
        print(f"generated {root} in {time.perf_counter() - t0:.2f} s")
    files = yaml_files(root)
    mappings = [f for f in files if os.sep + "mappings" + os.sep in f]
    print(f"repository: {root}")
    print(
        f"  {len(files)} YAML files, {len(mappings)} mappings; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print()

    rows: list[tuple[str, str, str]] = []
    targets: list[tuple[bool, str]] = []

    # (a) floor
    t_floor, n = best_of(lambda: floor(root))
    rows.append(("(a) floor: walk + read + CSafeLoader", f"{t_floor:8.3f} s", f"{n} files, best of 3"))

    # (b) ours, in process
    t_ours, result = best_of(lambda: load(root))
    if result.errors:
        for d in result.errors[:10]:
            print(f"  unexpected: {d}")
        print(f"error: validate found {len(result.errors)} errors in the generated repository")
        return 1
    ratio = t_ours / t_floor
    rows.append(
        (
            "(b) repo.load(root), in process",
            f"{t_ours:8.3f} s",
            f"{ratio:.2f}x the floor, {len(result.diagnostics)} findings, best of 3",
        )
    )
    targets.append(
        (
            ratio <= TARGET_FLOOR_RATIO,
            f"validate / floor = {ratio:.2f}x (target <= {TARGET_FLOOR_RATIO:g}x): "
            f"{t_ours:.3f} s vs {t_floor:.3f} s",
        )
    )

    # (b') ours as a command, best of 3: what a hook or CI job waits for; like for like with (c)
    t_cli, proc = min(
        (wall([sys.executable, "-m", "bifrost_gitops", "validate", root]) for _ in range(3)),
        key=lambda r: r[0],
    )
    rows.append(
        (
            "(b') python -m bifrost_gitops validate",
            f"{t_cli:8.3f} s",
            f"{t_cli / t_floor:.2f}x the floor, subprocess, best of 3, exit {proc.returncode}",
        )
    )
    targets.append(
        (
            t_cli / t_floor <= TARGET_PROCESS_RATIO,
            f"validate as a process / floor = {t_cli / t_floor:.2f}x (target <= {TARGET_PROCESS_RATIO:g}x)",
        )
    )

    # (c) check-jsonschema over the mappings
    if args.skip_check_jsonschema:
        rows.append(("(c) check-jsonschema (mappings only)", "skipped", ""))
    else:
        t_cj, calls, failure = check_jsonschema(mappings)
        if failure:
            print("check-jsonschema reported failures (first batch shown):\n" + failure)
        speedup, speedup_inproc = t_cj / t_cli, t_cj / t_ours
        rows.append(
            (
                "(c) check-jsonschema (mappings only)",
                f"{t_cj:8.3f} s",
                f"{calls} calls of <= {BATCH} files, once; ours is {speedup:.1f}x faster "
                f"({speedup_inproc:.1f}x in process)",
            )
        )
        targets.append(
            (
                speedup >= TARGET_SPEEDUP,
                f"speedup vs check-jsonschema = {speedup:.1f}x as subprocesses, "
                f"{speedup_inproc:.1f}x in process (target >= {TARGET_SPEEDUP:g}x): "
                f"{t_cj:.3f} s vs {t_cli:.3f} s / {t_ours:.3f} s",
            )
        )

    # (d) the examples, a fresh process each time
    examples = os.path.join(PROJECT, "examples", "integrations")
    t_py = statistics.median(wall([sys.executable, "-c", "pass"])[0] for _ in range(5))
    rows.append(("    python -c pass (interpreter start)", f"{t_py:8.3f} s", "median of 5, for scale"))
    if os.path.isdir(examples):
        cmd = [sys.executable, "-m", "bifrost_gitops", "validate", "examples/integrations"]
        runs = [wall(cmd) for _ in range(5)]
        t_ex = statistics.median(t for t, _ in runs)
        codes = sorted({p.returncode for _, p in runs})
        rows.append(
            (
                "(d) validate examples/integrations",
                f"{t_ex:8.3f} s",
                f"subprocess, median of 5, exit {','.join(map(str, codes))}",
            )
        )
        targets.append(
            (
                t_ex < TARGET_EXAMPLES_S,
                f"validate examples/integrations = {t_ex:.3f} s (target < {TARGET_EXAMPLES_S:g} s)",
            )
        )
    else:
        rows.append(("(d) validate examples/integrations", "skipped", "examples/integrations not found"))

    # (e) profile
    if args.profile:
        path = profile(root, os.path.join(WORK, "profile.txt"))
        rows.append(("(e) cProfile of (b)", "written", os.path.relpath(path, PROJECT)))

    width = max(len(r[0]) for r in rows)
    for label, value, note in rows:
        print(f"{label:<{width}}  {value:>10}  {note}".rstrip())
    print()
    for ok, line in targets:
        print(f"{'PASS' if ok else 'MISS'}  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
