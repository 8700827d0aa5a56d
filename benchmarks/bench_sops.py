"""Benchmark: native sops decrypt+verify vs the cryptographic floor vs the sops binary.

    .venv/bin/python benchmarks/bench_sops.py [--files 5000] [--sample 50] [--dir DIR]
    .venv/bin/python benchmarks/bench_sops.py --repo [--orgs 500 --integrations 20] [--sample 50]

Creates N bifrost-style mapping files, each with two secrets encrypted natively to one age
recipient (encrypted_regex ^secrets$, mac_only_encrypted), then times in the same run:
- native: ``decrypt_document`` (age unwrap, AES-GCM, MAC verify) of every parsed file, and
  the same including ``load_file`` (YAML parsing);
- floor: per file only ``pyrage.decrypt`` of the ``enc`` plus AES-GCM decryption of its
  values (inputs pre-extracted, nothing else); the native unwrap (sops/agex25519.py) now comes in
  under it, so also:
- X25519 floor: what no implementation can skip, one X25519 exchange per file (each file's data
  key is wrapped to its own ephemeral share) plus the same AES-GCM decryptions;
- sops: ``sops --decrypt`` as a subprocess on a sample, scaled to N.
Targets: native >= 100x faster than sops, native <= 2x the floor.

--repo: the command a user runs. bench_compile.py's repository (generate.py's, every sops file
re-encrypted natively with real secrets: 5,000 of 10,023 files at 500 x 20) is checked by
``python -m bifrost_gitops secrets check`` as a fresh process (best of 3, wall and CPU time; cold with
the parse cache off, and warm on a filled cache);
``sops --decrypt`` runs on a sample of its encrypted files, and its time per file is scaled to
all of them. Target: the command >= 100x faster per file than ``sops --decrypt``.
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyrage
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from bifrost_gitops import sops
from bifrost_gitops.sops import datakey, values
from bifrost_gitops.sops.binary import find_sops
from installed import keep_bytecode


def make_files(root: Path, n: int, recipient: str) -> list[Path]:
    paths = []
    for i in range(n):
        doc = {
            "apiVersion": "bifrost-gitops/v1",
            "kind": "Mapping",
            "integration": f"Integration{i % 20}",
            "organization": f"org-{i:05d}",
            "entity_id": str(10_000 + i),
            "config": {"page_size": 50 + i % 50, "region": "eu", "sync_enabled": True},
            "secrets": {
                "api_key": f"ak_{i:08d}_{os.urandom(8).hex()}",
                "webhook_secret": f"whsec_{os.urandom(12).hex()}",
            },
        }
        enc = sops.encrypt_document(
            doc, recipients=[recipient], encrypted_regex="^secrets$", mac_only_encrypted=True
        )
        p = root / f"mapping-{i:05d}.yaml"
        p.write_text(sops.dump_yaml(enc), encoding="utf-8")
        paths.append(p)
    return paths


def floor_inputs(doc: dict[str, Any]) -> tuple[bytes, list[tuple[bytes, bytes, bytes]]]:
    enc = doc["sops"]["age"][0]["enc"].encode()
    vals = []
    for k, v in doc["secrets"].items():
        ev = values.parse(v)
        vals.append((ev.iv, ev.data + ev.tag, f"secrets:{k}:".encode()))
    return enc, vals


def x25519_share(enc: bytes) -> X25519PublicKey:
    """The ephemeral X25519 share in the age header of ENC (armored)."""
    header = base64.b64decode(b"".join(enc.strip().splitlines()[1:-1])).split(b"\n")
    stanza = next(line for line in header if line.startswith(b"-> X25519 "))
    return X25519PublicKey.from_public_bytes(base64.b64decode(stanza.split(b" ")[2] + b"="))


def x25519_floor(
    docs: list[dict[str, Any]],
    inputs: list[tuple[bytes, list[tuple[bytes, bytes, bytes]]]],
    ring: sops.Keyring,
    recipient: str,
) -> Callable[[], float]:
    """A timed run of the X25519 floor over DOCS: per file one exchange with its share, then
    AES-GCM of its values under its data key (unwrapped beforehand)."""
    keyed = [
        (x25519_share(enc), datakey.unwrap(d["sops"], ring), vals)
        for d, (enc, vals) in zip(docs, inputs, strict=True)
    ]
    ready = ring.x25519(recipient)
    assert ready is not None
    private = ready.private

    def run() -> float:
        t = time.perf_counter()
        for share, key, vals in keyed:
            private.exchange(share)
            aes = AESGCM(key)
            for iv, ct, aad in vals:
                aes.decrypt(iv, ct, aad)
        return time.perf_counter() - t

    return run


def _child_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _best_of_3(cmd: list[str], env: dict[str, str], runs: int = 3) -> tuple[float, float]:
    """(wall, CPU) seconds, each the best of RUNS runs of CMD; exits when CMD fails."""
    wall = cpu = float("inf")
    for _ in range(runs):
        c0, t0 = _child_cpu(), time.perf_counter()
        run = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, _child_cpu() - c0)
        if run.returncode != 0:
            sys.exit(f"secrets check failed ({run.returncode}): {run.stdout[-500:]}{run.stderr[-500:]}")
    return wall, cpu


def repo_check(args: argparse.Namespace) -> None:
    """`secrets check` as a process on a repository of real sops files vs `sops --decrypt`."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_compile import KEY_FILE, setup
    from bench_validate import yaml_files

    root, _ident = setup(args.orgs, args.integrations, 0, 0.5)
    encrypted = [p for p in yaml_files(root) if "\nsops:" in Path(p).read_text(encoding="utf-8")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    env["SOPS_AGE_KEY_FILE"] = os.path.join(root, KEY_FILE)
    src = args.src or str(Path(__file__).resolve().parent.parent / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    n = len(encrypted)
    cmd = [sys.executable, "-m", "bifrost_gitops", "secrets", "check", root]
    cache_dir = tempfile.mkdtemp(prefix="bench-sops-cache-")
    # cold: the parse cache off (bifrost-gitops's default is on); warm: a second run on a filled cache
    timings = {"cold": _best_of_3(cmd, {**env, "BIFROST_GITOPS_NO_CACHE": "1"})}
    _best_of_3(cmd, {**env, "BIFROST_GITOPS_CACHE_DIR": cache_dir}, runs=1)  # fills the cache
    timings["warm"] = _best_of_3(cmd, {**env, "BIFROST_GITOPS_CACHE_DIR": cache_dir})
    shutil.rmtree(cache_dir, ignore_errors=True)
    print(f"repository: {root}: {n} sops-encrypted files of {len(yaml_files(root))}")
    for label, (wall, cpu) in timings.items():
        print(f"secrets check, {label}, a process (best of 3): {wall:7.3f} s wall, {cpu:.3f} s CPU  "
              f"({wall / n * 1000:.3f} ms/file)")  # fmt: skip
    exe = find_sops()
    if not exe:
        print("sops binary not found: no ratio")
        return
    sample = encrypted[: args.sample]
    c0, t0 = _child_cpu(), time.perf_counter()
    for p in sample:
        subprocess.run([exe, "--decrypt", p], env=env, capture_output=True, check=True, cwd=root)
    per_file, per_file_cpu = (time.perf_counter() - t0) / len(sample), (_child_cpu() - c0) / len(sample)
    print(
        f"sops --decrypt: {per_file * 1000:.1f} ms/file wall, {per_file_cpu * 1000:.1f} ms CPU "
        f"(a sample of {len(sample)}, run one by one), scaled to {n} files: {per_file * n:.1f} s"
    )
    for label, (wall, cpu) in timings.items():
        ratio, ratio_cpu = per_file / (wall / n), per_file_cpu / (cpu / n)
        verdict = "PASS" if ratio >= 100 else "MISS"
        print(f"sops / secrets check {label}, per file: {ratio:.0f}x wall, {ratio_cpu:.0f}x CPU   "
              f"(target >= 100x: {verdict})")  # fmt: skip


def main() -> None:
    keep_bytecode()
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--sample", type=int, default=50)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--repo", action="store_true", help="time `secrets check` on a generated repository")
    ap.add_argument("--orgs", type=int, default=500)
    ap.add_argument("--integrations", type=int, default=20)
    ap.add_argument(
        "--src", help="--repo: run the bifrost_gitops found in this folder (default: this checkout's src)"
    )
    args = ap.parse_args()
    if args.repo:
        repo_check(args)
        return

    ident = pyrage.x25519.Identity.generate()
    recipient = str(ident.to_public())
    ring = sops.make_keyring([ident])
    with tempfile.TemporaryDirectory(prefix="bench-sops-") as tmp:
        root = args.dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        keyfile = root / "keys.txt"
        keyfile.write_text(f"{ident}\n")
        t0 = time.perf_counter()
        paths = make_files(root, args.files, recipient)
        t_make = time.perf_counter() - t0
        print(f"created {len(paths)} files in {t_make:.2f} s (native encryption)")

        docs = [sops.load_file(p) for p in paths]
        inputs = [floor_inputs(d) for d in docs]
        run_x25519 = x25519_floor(docs, inputs, ring, recipient)

        def run_floor() -> float:
            t = time.perf_counter()
            for enc, vals in inputs:
                key = pyrage.decrypt(enc, [ident])
                aes = AESGCM(key)
                for iv, ct, aad in vals:
                    aes.decrypt(iv, ct, aad)
            return time.perf_counter() - t

        def run_native() -> float:
            t = time.perf_counter()
            for d in docs:
                sops.decrypt_document(d, identities=ring, use_binary=False)
            return time.perf_counter() - t

        def run_native_load() -> float:
            t = time.perf_counter()
            for p in paths:
                sops.decrypt_document(sops.load_file(p), identities=ring, use_binary=False)
            return time.perf_counter() - t

        # interleave and keep the best of 3, so both sides see the same machine state
        floor = x_floor = native = native_load = float("inf")
        for _ in range(3):
            floor = min(floor, run_floor())
            x_floor = min(x_floor, run_x25519())
            native = min(native, run_native())
            native_load = min(native_load, run_native_load())

        exe = find_sops()
        sops_total = None
        if exe:
            env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
            env["SOPS_AGE_KEY_FILE"] = str(keyfile)
            sample = paths[: args.sample]
            t = time.perf_counter()
            for p in sample:
                subprocess.run([exe, "--decrypt", str(p)], env=env, capture_output=True, check=True, cwd=root)
            sops_total = (time.perf_counter() - t) / len(sample) * len(paths)

    n = len(paths)
    ms = 1000 / n
    print(f"floor (age unwrap + AES-GCM):      {floor:7.3f} s  ({floor * ms:.3f} ms/file)")
    print(f"X25519 floor (exchange + AES-GCM): {x_floor:7.3f} s  ({x_floor * ms:.3f} ms/file)")
    print(f"native decrypt+verify (parsed):    {native:7.3f} s  ({native * ms:.3f} ms/file)")
    print(f"native load+decrypt+verify:        {native_load:7.3f} s  ({native_load * ms:.3f} ms/file)")
    if sops_total is not None:
        print(
            f"sops --decrypt (sample {args.sample}, scaled): {sops_total:7.3f} s  ({sops_total * ms:.3f} ms/file)"
        )
    print(f"native / floor:                    {native / floor:7.2f}x   (target <= 2x)")
    print(f"native / X25519 floor:             {native / x_floor:7.2f}x")
    print(f"native incl. YAML load / floor:    {native_load / floor:7.2f}x")
    if sops_total is not None:
        print(f"sops / native:                     {sops_total / native:7.1f}x   (target >= 100x)")
        print(f"sops / native incl. YAML load:     {sops_total / native_load:7.1f}x")


if __name__ == "__main__":
    main()
