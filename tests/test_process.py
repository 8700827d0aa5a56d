"""The command as a real process: its fast exit (os._exit after flushing) keeps every line of
output and the exit code, and is never taken by a library caller or under a profiler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support import API, ROOT, dedent

SCRIPT = Path(sys.executable).parent / "bifrost-gitops"
#: prints a marker at interpreter exit: absent when the process left through os._exit
ATEXIT = "import atexit, sys; atexit.register(lambda: sys.stderr.write('ATEXIT-RAN'))\n"


def bad_mapping(org: str) -> str:
    return API + dedent(
        f"""
        kind: Mapping
        integration: HaloPSA
        organization: {org}
        entity_id: "12"
        config:
          pagesize: 10
          region: fr
        """
    )


def many_findings(make_repo: Any, n: int) -> Path:
    """A repository with 2*N findings (more output than a pipe buffer holds)."""
    orgs = "".join(f"  - name: org{i:03d}\n    id: {i:08d}-0000-4000-8000-000000000000\n" for i in range(n))
    files: dict[str, str | None] = {
        "organizations.yaml": API + "kind: Organizations\norganizations:\n" + orgs,
        "integrations/HaloPSA/mappings/contoso.yaml": None,
    }
    for i in range(n):
        files[f"integrations/HaloPSA/mappings/org{i:03d}.yaml"] = bad_mapping(f"org{i:03d}")
    return Path(make_repo(files))


def env(**extra: str) -> dict[str, str]:
    """The child runs this checkout's source, without coverage (which would keep the ordinary exit)."""
    out = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "SOPS_"))}
    out["PYTHONPATH"] = str(ROOT / "src")
    out.update(extra)
    return out


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, env=env(), cwd=cwd, stdin=subprocess.DEVNULL, timeout=60
    )


@pytest.fixture
def script() -> Path:
    if not SCRIPT.is_file():
        pytest.skip("the bifrost-gitops console script is not installed next to this Python")
    return SCRIPT


def test_console_script_findings_exit_1_with_every_line(script: Path, make_repo: Any) -> None:
    n = 250
    root = many_findings(make_repo, n)
    proc = run([str(script), "validate", str(root)])
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert len([x for x in lines if ": C001 " in x]) == n
    assert len([x for x in lines if ": C003 " in x]) == n
    assert len(proc.stdout) > 65536  # more than a pipe holds: written out before the exit
    assert lines[-1].startswith(f"{n + 3} files checked") and f"{2 * n} errors" in lines[-1]
    assert proc.stderr == ""


def test_console_script_json_is_complete(script: Path, make_repo: Any) -> None:
    root = many_findings(make_repo, 100)
    proc = run([str(script), "validate", "--format", "json", str(root)])
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert len(doc["diagnostics"]) == 200


def test_console_script_usage_error_exits_2_with_its_line(script: Path, tmp_path: Path) -> None:
    proc = run([str(script), "validate", str(tmp_path / "missing")])
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("bifrost-gitops: ")


def test_console_leaves_without_teardown(make_repo: Any) -> None:
    code = ATEXIT + "from bifrost_gitops.cli import main\nmain(['validate', sys.argv[1]])\n"
    proc = run([sys.executable, "-c", code, str(make_repo())])
    assert proc.returncode == 0
    assert "no problems" in proc.stdout
    assert "ATEXIT-RAN" not in proc.stderr  # os._exit: no teardown of the loaded objects


#: writes FREED to stderr when the loaded repository is freed (never at interpreter exit)
NOTE_FREED = (
    "import sys, weakref\nfrom bifrost_gitops import repo\nreal = repo.load_tree\n"
    "def noted(*a, **k):\n"
    "    r = real(*a, **k)\n    weakref.finalize(r, sys.stderr.write, 'FREED').atexit = False\n    return r\n"
    "repo.load_tree = noted\n"
)


@pytest.mark.parametrize(
    ("call", "freed"),
    [
        ("main(['validate', sys.argv[1]])", False),
        ("main.main(['validate', sys.argv[1]], standalone_mode=False)", True),
    ],
)
def test_the_console_never_frees_the_loaded_repository(make_repo: Any, call: str, freed: bool) -> None:
    """Freeing 10,000 files' objects as the command returns costs 0.05 s; the console leaves
    without it, a library caller (or a test runner) gets its memory back."""
    code = NOTE_FREED + "from bifrost_gitops.cli import main\n" + call + "\n"
    proc = run([sys.executable, "-c", code, str(make_repo())])
    assert proc.returncode == 0, proc.stderr
    assert "no problems" in proc.stdout
    assert ("FREED" in proc.stderr) is freed


@pytest.mark.parametrize(
    "call",
    [
        "sys.setprofile(lambda *a: None)\nmain(['validate', sys.argv[1]])",  # a profiler writes at exit
        "main.main(['validate', sys.argv[1]])",  # a library caller (as CliRunner does)
    ],
)
def test_ordinary_exit_for_profilers_and_library_callers(make_repo: Any, call: str) -> None:
    code = ATEXIT + "from bifrost_gitops.cli import main\n" + call + "\n"
    proc = run([sys.executable, "-c", code, str(make_repo())])
    assert proc.returncode == 0
    assert "no problems" in proc.stdout
    assert proc.stderr.endswith("ATEXIT-RAN")
