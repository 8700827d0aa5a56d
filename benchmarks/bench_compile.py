"""How fast is `compile` on a big repository with REAL sops secrets, against the least it must do?

Setup (once, cached under benchmarks/.work/compile-<params>/): generate.py's repository, then
every file that carries a sops block is re-encrypted natively (bifrost_gitops.sops) with fresh
clear values to a fresh age key (benchmarks/.work/compile-<params>/.bench-key.txt), so every
secret really decrypts.

Timed, in process, best of N, gc.collect() before each:
  floor   walk + read + yaml.CSafeLoader of every file, plus for every encrypted file the age
          unwrap of its data key and AES-GCM of each ENC value (the least any compiler must do)
  seal    repo.load + bundle.write(mode="seal") into a fresh folder (every org file sealed)
  reseal  the same into the folder it already wrote (nothing changed: files kept)
  seal1   the same after one mapping changed (each run a new change): an unchanged organization's
          file is kept unrendered, but deploy.json lists every mapping, so every secret is opened
  redact  repo.load + bundle.write(mode="redact") into a fresh folder (no keys)
  redact1 the same after one mapping changed (loads are cold here: bench_scale.py has the cache on)
Target: seal <= 2x the floor.

Also printed, for a like-for-like reading (the PASS/MISS line stays on the floor above):
  seal crypto  what sealing itself cannot avoid: per bundle file a fresh data key wrapped for the
               runtime's age recipient, and AES-GCM (32-byte IV, the value's path as AAD) of every
               value the bundle holds (taken untimed from the plain bundle)

  .venv/bin/python benchmarks/bench_compile.py [--orgs 500 --integrations 20 --quick --profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import re
import secrets as rnd
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import pyrage
import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)
WORK = os.path.join(HERE, ".work")
sys.path.insert(0, HERE)

from bench_validate import yaml_files  # noqa: E402
from bifrost_gitops import bundle, repo, sops  # noqa: E402
from bifrost_gitops.sops import values  # noqa: E402
from generate import generate  # noqa: E402
from installed import keep_bytecode  # noqa: E402

TARGET = 2.0
SETUP_MARKER = ".bench-compile.json"
KEY_FILE = ".bench-key.txt"
ENC_RE = re.compile(r"^ENC\[AES256_GCM,")


def _fresh_clear(tree: Any) -> Any:
    """TREE with every ENC[...] value replaced by a fresh clear string."""
    if isinstance(tree, dict):
        return {k: _fresh_clear(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_fresh_clear(v) for v in tree]
    if isinstance(tree, str) and ENC_RE.match(tree):
        return "bench-" + rnd.token_urlsafe(24)
    return tree


def setup(orgs: int, integrations: int, seed: int, fraction: float) -> tuple[str, pyrage.x25519.Identity]:
    name = f"{orgs}x{integrations}-s{seed}-f{fraction}"
    base = os.path.join(WORK, f"repo-{name}")
    target = os.path.join(WORK, f"compile-{name}")
    generate(base, orgs, integrations, seed, fraction)
    marker = os.path.join(target, SETUP_MARKER)
    if os.path.isfile(marker):
        with open(os.path.join(target, KEY_FILE)) as f:
            return target, pyrage.x25519.Identity.from_str(f.read().split()[-1])
    t0 = time.perf_counter()
    tmp = target + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(base, tmp)
    ident = pyrage.x25519.Identity.generate()
    recipient = str(ident.to_public())
    n = 0
    for path in yaml_files(tmp):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if "\nsops:" not in text:
            continue
        tree = sops.loads(text, "yaml")
        meta = tree.pop("sops")
        enc = sops.encrypt_document(
            _fresh_clear(tree),
            recipients=[recipient],
            encrypted_regex=meta.get("encrypted_regex", "^secrets$"),
            mac_only_encrypted=True,
        )
        with open(path, "w", encoding="utf-8") as f:
            f.write(sops.dump_yaml(enc, indent=4))
        n += 1
    with open(os.path.join(tmp, ".sops.yaml"), "w") as f:
        f.write(
            "creation_rules:\n  - path_regex: \\.ya?ml$\n    encrypted_regex: ^secrets$\n"
            f"    mac_only_encrypted: true\n    age: {recipient}\n"
        )
    with open(os.path.join(tmp, KEY_FILE), "w") as f:
        f.write(f"# bench only\n{ident}\n")
    with open(os.path.join(tmp, SETUP_MARKER), "w") as f:
        json.dump({"encrypted_files": n}, f)
    shutil.rmtree(target, ignore_errors=True)
    os.rename(tmp, target)
    print(f"setup: re-encrypted {n} files with real secrets in {time.perf_counter() - t0:.1f} s")
    return target, ident


def floor(root: str, ident: pyrage.x25519.Identity) -> int:
    """Parse every file with libyaml; open every encrypted file's data key and values."""
    opened = 0
    for path in yaml_files(root):
        with open(path, "rb") as f:
            data = yaml.load(f.read(), Loader=yaml.CSafeLoader)
        meta = data.get("sops") if isinstance(data, dict) else None
        if not meta:
            continue
        key = bytes(pyrage.decrypt(meta["age"][0]["enc"].encode(), [ident]))
        aes = AESGCM(key)
        stack: list[tuple[Any, str]] = [(v, f"{k}:") for k, v in data.items() if k != "sops"]
        while stack:
            node, at = stack.pop()
            if isinstance(node, dict):
                stack.extend((v, f"{at}{k}:") for k, v in node.items())
            elif isinstance(node, list):
                stack.extend((v, at) for v in node)
            elif isinstance(node, str) and node.startswith("ENC["):
                values.decrypt_bytes(aes, values.parse(node), at)
                opened += 1
    return opened


def bundle_values(bundle_dir: str) -> list[list[tuple[bytes, bytes]]]:
    """Per file of a plain bundle (index.json aside), every value sealing encrypts, as (AAD, plaintext)."""
    out: list[list[tuple[bytes, bytes]]] = []
    for dirpath, _dirs, names in os.walk(bundle_dir):
        for name in sorted(names):
            if name == "index.json" or not name.endswith(".json"):
                continue
            with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                leaves: list[tuple[bytes, bytes]] = []
                _collect(json.load(f), "", leaves)
            out.append(leaves)
    return out


def _collect(node: Any, at: str, into: list[tuple[bytes, bytes]]) -> None:
    """The values sops encrypts under NODE (not None, not empty text), in document order."""
    if isinstance(node, dict):
        for k, v in node.items():
            _collect(v, f"{at}{k}:", into)
    elif isinstance(node, list):
        for v in node:
            _collect(v, at, into)
    elif node is not None and node != "":
        into.append((at.encode(), values.to_plaintext(node)[0]))


def seal_crypto(files: list[list[tuple[bytes, bytes]]], recipient: Any) -> int:
    """The crypto of sealing FILES: a data key per file wrapped with age, AES-GCM of each value."""
    sealed = 0
    for leaves in files:
        key = os.urandom(32)
        pyrage.encrypt(key, [recipient])
        aes = AESGCM(key)
        ivs = os.urandom(32 * len(leaves))
        for i, (aad, plain) in enumerate(leaves):
            aes.encrypt(ivs[32 * i : 32 * i + 32], plain, aad)
        sealed += len(leaves)
    return sealed


def best_of(fn: Callable[[], Any], runs: int, before: Callable[[], Any] | None = None) -> tuple[float, Any]:
    """Best wall time of RUNS calls of FN; BEFORE (untimed) runs ahead of each."""
    best, result = float("inf"), None
    for _ in range(runs):
        result = None
        if before is not None:
            before()
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


class OneChange:
    """Before each run, one mapping gets a new entity_name, so each run compiles one change."""

    def __init__(self, root: str) -> None:
        integ = os.path.join(root, "integrations")
        first = sorted(os.listdir(integ))[0]
        mappings = os.path.join(integ, first, "mappings")
        self.path = os.path.join(mappings, sorted(os.listdir(mappings))[0])
        with open(self.path, encoding="utf-8") as f:
            self.text = f.read()
        self.runs = 0

    def __call__(self) -> None:
        self.runs += 1
        with open(self.path, "w", encoding="utf-8") as f:  # entity_name is clear (outside the MAC)
            f.write(self.text.replace("\nentity_name: ", f"\nentity_name: Renamed{self.runs} ", 1))

    def restore(self) -> None:
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(self.text)


def compile_into(root: str, out: str, mode: str, recipients: list[str], ring: Any) -> Any:
    result = repo.load(root)
    if result.errors:
        raise SystemExit(f"the repository has errors: {result.errors[:3]}")
    return bundle.write(
        result.catalog,
        result.root,
        out,
        mode,
        recipients=recipients,
        keyring=None if mode == "redact" else ring,
    )


def main(argv: list[str] | None = None) -> int:
    keep_bytecode()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--orgs", type=int, default=500)
    ap.add_argument("--integrations", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--secret-fraction", type=float, default=0.5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="50 orgs x 5 integrations")
    ap.add_argument("--profile", action="store_true", help="write .work/profile-compile.txt")
    a = ap.parse_args(argv)
    os.environ.setdefault("BIFROST_GITOPS_NO_CACHE", "1")  # cold runs; bench_cache.py measures the cache
    if a.quick:
        a.orgs, a.integrations = 50, 5
    root, ident = setup(a.orgs, a.integrations, a.seed, a.secret_fraction)
    ring = sops.make_keyring([ident])
    runtime = str(pyrage.x25519.Identity.generate().to_public())
    files = len(yaml_files(root))
    out_parent = tempfile.mkdtemp(prefix="bench-compile-", dir=WORK)
    out = os.path.join(out_parent, "bundle")
    try:
        t_floor, opened = best_of(lambda: floor(root, ident), a.runs)

        # a fresh folder: the previous run's output is removed before the clock starts
        def fresh(path: str) -> Callable[[], None]:
            return lambda: shutil.rmtree(path, ignore_errors=True)

        t_seal, w = best_of(lambda: compile_into(root, out, "seal", [runtime], ring), a.runs, fresh(out))
        t_reseal, w2 = best_of(lambda: compile_into(root, out, "seal", [runtime], ring), a.runs)
        assert not w2.changed, w2.changed
        flip = OneChange(root)
        t_seal1, w3 = best_of(lambda: compile_into(root, out, "seal", [runtime], ring), a.runs, flip)
        plain, redact = out + "-plain", out + "-redact"
        t_plain, _ = best_of(lambda: compile_into(root, plain, "plain", [], ring), a.runs, fresh(plain))
        to_seal = bundle_values(plain)
        runtime_key = pyrage.x25519.Recipient.from_str(runtime)
        t_crypto, sealed_values = best_of(lambda: seal_crypto(to_seal, runtime_key), a.runs)
        t_redact, _ = best_of(lambda: compile_into(root, redact, "redact", [], ring), a.runs, fresh(redact))
        t_redact1, w4 = best_of(lambda: compile_into(root, redact, "redact", [], ring), a.runs, flip)
        flip.restore()
        t_load, _ = best_of(lambda: repo.load(root), a.runs)
        print(f"{a.orgs} orgs x {a.integrations} integrations: {files} files, {opened} encrypted values; "
              f"bundle: {w.files} files")  # fmt: skip
        rows = [
            ("floor: CSafeLoader + age unwrap + AES-GCM", t_floor),
            ("repo.load alone (validate)", t_load),
            ("compile seal, fresh folder", t_seal),
            ("compile seal, unchanged (files kept)", t_reseal),
            (f"compile seal, one mapping changed ({len(w3.changed)} files)", t_seal1),
            ("compile plain, fresh folder", t_plain),
            ("compile redact, fresh folder", t_redact),
            (f"compile redact, one mapping changed ({len(w4.changed)} files)", t_redact1),
        ]
        for label, t in rows:
            print(f"  {label:<44} {t:7.3f} s  {t / t_floor:5.2f}x floor")
        print(f"  {'seal crypto alone (' + str(sealed_values) + ' values)':<44} {t_crypto:7.3f} s")
        ratio = t_seal / t_floor
        print(
            f"{'PASS' if ratio <= TARGET else 'MISS'}: compile seal {ratio:.2f}x the floor (target <= {TARGET}x)"
        )
        print(f"  like for like: compile seal {t_seal / (t_floor + t_crypto):.2f}x (floor + seal crypto)")
        if a.profile or ratio > TARGET:
            prof = cProfile.Profile()
            prof.enable()
            shutil.rmtree(out, ignore_errors=True)
            compile_into(root, out, "seal", [runtime], ring)
            prof.disable()
            buf = io.StringIO()
            st = pstats.Stats(prof, stream=buf)
            st.sort_stats("cumulative").print_stats(25)
            st.sort_stats("tottime").print_stats(20)
            path = os.path.join(WORK, "profile-compile.txt")
            with open(path, "w") as f:
                f.write(buf.getvalue())
            print(f"profile: {path}")
        return 0 if ratio <= TARGET else 1
    finally:
        shutil.rmtree(out_parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
