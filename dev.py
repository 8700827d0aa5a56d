#!/usr/bin/env python3
"""Set up the development environment and run the project's jobs; needs only Python 3.11+.

    python3 dev.py example   # set up, then validate the bundled example repository
    python3 dev.py test      # set up, then run the whole test suite with its coverage floor
    python3 dev.py test -m "not slow"   # pytest arguments pass through (no coverage then)
    python3 dev.py setup     # only set up .venv (pip install -e '.[dev]')
    python3 dev.py bench     # set up, then run the benchmarks

Set-up is skipped when .venv already matches pyproject.toml.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv

ROOT = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(ROOT, ".venv")
BIN = os.path.join(VENV, "Scripts" if os.name == "nt" else "bin")
PY = os.path.join(BIN, "python")
STAMP = os.path.join(VENV, ".bifrost-gitops-setup")


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script is what tells users on 3.10
        sys.exit(f"dev.py: Python 3.11+ is needed, this is {sys.version.split()[0]}")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    if os.path.exists(STAMP):
        with open(STAMP) as f:
            if f.read() == want:
                return
    if not os.path.exists(PY):
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("dev.py: installing bifrost-gitops[dev] into .venv", flush=True)
    pip = [PY, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-U", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    with open(STAMP, "w") as f:
        f.write(want)
    tool = os.path.relpath(os.path.join(BIN, "bifrost-gitops"))
    print(f"dev.py: ready; run {tool} (or activate the venv: . .venv/bin/activate)", flush=True)


def run(*args: str) -> int:
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run(args, cwd=ROOT, env=env).returncode


def test(extra: list[str]) -> int:
    """A partial run (pytest arguments given) only tests. The whole suite measures coverage,
    child processes included, and fails under the floor in pyproject.toml: first everything but
    the real-server tier, spread over the cores (pytest-xdist); then that tier on its own, in one
    process, since Bifrost's refresh tokens are single use and its ownership record is one per
    server; the coverage of both runs is reported together."""
    if extra:
        return run(PY, "-m", "pytest", *extra)
    cov = ["--cov=bifrost_gitops"]
    spread = run(
        PY,
        "-m",
        "pytest",
        *cov,
        "--cov-report=",
        "--cov-fail-under=0",
        "-n",
        "auto",
        "-m",
        "not real_bifrost",
    )
    real = run(PY, "-m", "pytest", *cov, "--cov-append", "-m", "real_bifrost")
    return spread or real


def main() -> int:
    job = sys.argv[1] if len(sys.argv) > 1 else "help"
    extra = sys.argv[2:]
    if job not in ("setup", "example", "test", "bench"):
        print(__doc__)
        return 0 if job == "help" else 2
    setup()
    if job == "example":
        return run(PY, "-m", "bifrost_gitops", "validate", "examples/integrations", *extra)
    if job == "test":
        return test(extra)
    if job == "bench":
        return run(PY, "benchmarks/bench_validate.py", *extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
