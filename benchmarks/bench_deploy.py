"""Benchmark: plan / apply against the fake Bifrost (real HTTP on loopback).

    .venv/bin/python benchmarks/bench_deploy.py [--orgs 500] [--integrations 20] [--concurrency 8]

Generates the repository (benchmarks/generate.py, secret_fraction 0; the generator's other
secrets are random bytes that do not decrypt, so they are stood in for by a deterministic value
per file and path), seeds the fake server with the organizations' UUIDs, then measures:
1. the first apply (everything created),
2. plan with nothing to do: the live state is read with at most 4 + 2N requests for N integrations
   (version, organizations, the list, the ledger; a detail per integration and an OAuth read for
   those with a provider), never one per organization or per value,
3. a one-organization change (one mapping's entity_id): plan + apply, and the write requests sent.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from bifrost_gitops.deploy.apply import apply  # noqa: E402
from bifrost_gitops.deploy.client import Client, Credentials  # noqa: E402
from bifrost_gitops.deploy.plan import Options  # noqa: E402
from bifrost_gitops.deploy.run import plan_for  # noqa: E402
from bifrost_gitops.deploymanifest import manifest  # noqa: E402
from bifrost_gitops.repo import load  # noqa: E402
from bifrost_gitops.resolve import SecretRef  # noqa: E402
from deploy.fakebifrost import FakeBifrost  # noqa: E402
from generate import generate  # noqa: E402


def stand_in(ref: SecretRef) -> str:
    return "bench-" + hashlib.sha256(f"{ref.file}:{ref.path}".encode()).hexdigest()[:16]


def writes(bf: FakeBifrost) -> Counter[str]:
    return Counter(f"{r.method} {r.route or r.path}" for r in bf.requests if r.method != "GET")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orgs", type=int, default=500)
    ap.add_argument("--integrations", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    repo = HERE / ".work" / f"repo-{args.orgs}x{args.integrations}-s0-f0.0"
    generate(str(repo), args.orgs, args.integrations, 0, 0.0)
    t = time.perf_counter()
    result = load(str(repo))
    assert not result.errors, result.errors[:3]
    desired = manifest(result.catalog, stand_in)
    print(
        f"manifest: {len(desired['integrations'])} integrations, {len(desired['organizations'])} orgs "
        f"({time.perf_counter() - t:.1f} s to load and build)"
    )

    with FakeBifrost() as bf:
        for o in desired["organizations"]:
            bf.add_org(o["name"], id=o["id"])

        def client() -> Client:
            return Client(
                Credentials(bf.url, bf.tokens.access_token, bf.tokens.refresh_token),
                concurrency=args.concurrency,
            )

        with client() as c:
            c.check_version()
            t = time.perf_counter()
            p = plan_for(c, desired, Options())
            results = apply(c, p)
            failed = [r for r in results if r.status != "ok"]
            print(
                f"first apply: {len(p.ops)} operations, {c.requests} requests, {len(failed)} failed, "
                f"{time.perf_counter() - t:.1f} s"
            )

        bf.reset_requests()
        with client() as c:
            c.check_version()
            t = time.perf_counter()
            p = plan_for(c, desired, Options())
            took = time.perf_counter() - t
            print(
                f"plan (no changes): {len(p.changes)} changes, {p.read_requests} requests "
                f"(version + 3 + 2 x {args.integrations} at most), {took:.2f} s"
            )
            print(
                "  requests by route:",
                dict(sorted(Counter(f"{r.method} {r.route}" for r in bf.requests).items())),
            )

        changed = copy.deepcopy(desired)
        integ = changed["integrations"][0]
        org = sorted(integ["mappings"])[0]
        integ["mappings"][org]["entity_id"] = "changed-" + integ["mappings"][org]["entity_id"]
        bf.reset_requests()
        with client() as c:
            c.check_version()
            t = time.perf_counter()
            p = plan_for(c, changed, Options())
            results = apply(c, p)
            took = time.perf_counter() - t
            print(
                f"one-org change ({integ['name']}/{org}): {len(p.changes)} operation(s), "
                f"{c.requests} requests in all ({p.read_requests} to read), {took:.2f} s"
            )
            print("  writes:", dict(writes(bf)))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
