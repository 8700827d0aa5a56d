"""The hook as other repositories use it: through the real pre-commit framework."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
PRE_COMMIT = Path(sys.executable).with_name("pre-commit")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (PROJECT / ".git").exists() or shutil.which("git") is None or not PRE_COMMIT.exists(),
        reason="needs a git checkout of this project, git and pre-commit",
    ),
]


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _try_repo(repo: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PRE_COMMIT_HOME=str(home), NO_COLOR="1")
    return subprocess.run(
        [
            str(PRE_COMMIT),
            "try-repo",
            str(PROJECT),
            "bifrost-gitops-validate",
            "--all-files",
            "--color",
            "never",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_hook_passes_a_clean_repository_and_blocks_a_broken_one(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(PROJECT / "examples" / "integrations", repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")

    ok = _try_repo(repo, tmp_path / "pre-commit-home")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "bifrost-gitops validate" in ok.stdout and "Passed" in ok.stdout

    mapping = next((repo / "integrations").glob("*/mappings/*.yaml"))
    text = mapping.read_text()
    mapping.write_text(text.replace("organization: ", "organization: no-such-", 1))
    _git(repo, "add", "-A")
    bad = _try_repo(repo, tmp_path / "pre-commit-home")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout
    rel = mapping.relative_to(repo).as_posix()
    assert f"{rel}:" in bad.stdout and "R002" in bad.stdout
