"""Benchmark: a first apply of an override-free repository against the real Bifrost, mapping
creates one request each (``BIFROST_BATCH_SIZE=1``, as before bulk onboarding) and then through
the batch endpoint (the default, 500 a request).

    .venv/bin/python benchmarks/bench_batch.py --credentials FILE [--orgs 100] [--integrations 10]

FILE holds ``{api_url, access_token, refresh_token}``: what ``plan``/``apply --credentials`` read
(use a copy you can spare: the CLI writes the rotated refresh token back into it). No login happens here: Bifrost allows 10 a minute. The organizations are created
once (Bifrost assigns their UUIDs) and shared by both runs; each run has integrations of its own
names, applied with ``bifrost-gitops apply --format json`` in a fresh process (the time a user
waits: loading the repository included), then planned again (it must be clean), then deleted
(soft: Bifrost keeps a deleted integration's name, so names carry a random suffix).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(HERE.parent / "tests"))

from real.onboarding import clean_up, create_orgs, write_repository  # noqa: E402


class Measured(NamedTuple):
    label: str
    operations: int
    planned: int
    requests: int
    seconds: float
    failed: int
    clean: bool
    replan_requests: int
    replan_seconds: float


def cli(creds: Path, batch: str, *args: str) -> tuple[int, str, float]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "BIFROST_BATCH_SIZE": batch}
    for name in ("BIFROST_API_URL", "BIFROST_ACCESS_TOKEN", "BIFROST_REFRESH_TOKEN"):
        env.pop(name, None)
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bifrost_gitops", *args, "--credentials", str(creds)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    took = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        sys.exit(f"bifrost-gitops {args[0]} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc.returncode, proc.stdout, took


def token(creds: Path) -> str:
    return str(json.loads(creds.read_text(encoding="utf-8"))["access_token"])


def run(label: str, batch: str, creds: Path, url: str, work: Path, orgs: dict[str, str], n: int) -> Measured:
    suffix = secrets.token_hex(3)
    names = [f"Bench{k:02d}_{label}_{suffix}" for k in range(n)]
    root = write_repository(work / label, orgs, names)
    try:
        _, out, _ = cli(creds, batch, "plan", str(root), "--format", "json")
        planned = json.loads(out)["summary"]
        _, out, took = cli(creds, batch, "apply", str(root), "-y", "--format", "json")
        summary = json.loads(out)["summary"]
        code, out, replan_took = cli(creds, batch, "plan", str(root), "--exit-code", "--format", "json")
        replanned = json.loads(out)["summary"]
        return Measured(
            label,
            planned["changes"],
            planned["apply_requests"],
            summary["requests"],
            took,
            summary["failed"] + summary["skipped"],
            code == 0 and replanned["changes"] == 0,
            replanned["read_requests"],
            replan_took,
        )
    finally:
        clean_up(url, token(creds), names, [])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--credentials", type=Path, required=True)
    ap.add_argument("--orgs", type=int, default=100)
    ap.add_argument("--integrations", type=int, default=10)
    args = ap.parse_args()
    url = str(json.loads(args.credentials.read_text(encoding="utf-8"))["api_url"])
    suffix = secrets.token_hex(3)
    t = time.perf_counter()
    orgs = create_orgs(url, token(args.credentials), [f"bench-{k:03d}-{suffix}" for k in range(args.orgs)])
    print(f"{args.orgs} organizations created in {time.perf_counter() - t:.1f} s (not counted)")
    rows: list[Measured] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-batch-") as work:
            for label, batch in (("singles", "1"), ("batched", "500")):
                rows.append(run(label, batch, args.credentials, url, Path(work), orgs, args.integrations))
    finally:
        clean_up(url, token(args.credentials), [], list(orgs.values()))
    print(f"first apply of {args.orgs} orgs x {args.integrations} integrations, override-free:")
    print(
        f"{'':8} {'operations':>10} {'planned':>8} {'requests':>9} {'seconds':>8} {'failed':>7}  replan (no changes)"
    )
    for r in rows:
        print(
            f"{r.label:8} {r.operations:>10} {r.planned:>8} {r.requests:>9} {r.seconds:>8.1f} {r.failed:>7}  "
            f"{'clean' if r.clean else 'NOT CLEAN'}: {r.replan_requests} requests, {r.replan_seconds:.1f} s"
        )
    before, after = rows
    print(
        f"batched: {after.requests / before.requests:.1%} of the requests, "
        f"{after.seconds / before.seconds:.1%} of the time"
    )
    return 0 if all(r.clean and not r.failed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
