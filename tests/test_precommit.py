"""The hook as other repositories use it: the real pre-commit framework, installed as the git
pre-commit hook of a repository in a tmp folder, run by real `git commit`s.

The hook comes from this checkout as committed into a local git repository once per module, so
pre-commit builds its environment once (PRE_COMMIT_HOME is kept for the module) and both the
config `init` writes and the README's snippet point at that one (repository, rev).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from bifrost_gitops import scaffold
from support import GIT_ENV, git

PROJECT = Path(__file__).resolve().parents[1]
PRE_COMMIT = Path(sys.executable).with_name("pre-commit")
MAPPING = "integrations/Example/mappings/contoso.yaml"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (PROJECT / ".git").exists() or shutil.which("git") is None or not PRE_COMMIT.exists(),
        reason="needs a git checkout of this project, git and pre-commit",
    ),
]


class Hook(NamedTuple):
    url: str  # a local git repository holding this checkout
    rev: str  # its one commit
    home: Path  # PRE_COMMIT_HOME, shared by the module


@pytest.fixture(scope="module")
def hook(tmp_path_factory: pytest.TempPathFactory) -> Hook:
    """This checkout (committed and uncommitted files, not ignored ones) as one commit."""
    base = tmp_path_factory.mktemp("precommit")
    source = base / "bifrost-gitops"
    listed = git(PROJECT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for rel in filter(None, listed.split("\0")):
        path = PROJECT / rel
        if path.is_file() and not path.is_symlink():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / rel)
    git(source, "init", "-q")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "snapshot")
    return Hook(str(source), git(source, "rev-parse", "HEAD").strip(), base / "home")


def _env(hook: Hook) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the hook has its own install
    return {**env, **GIT_ENV, "PRE_COMMIT_HOME": str(hook.home), "NO_COLOR": "1"}


def _commit(repo: Path, hook: Hook) -> subprocess.CompletedProcess[str]:
    """`git commit` through the installed pre-commit hook (its report is in stdout)."""
    return subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", "change"],
        cwd=repo,
        env=_env(hook),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
    )


def _repository(root: Path, hook: Hook, config: str | None = None) -> Path:
    """A scaffolded repository in git with the pre-commit hook installed; CONFIG replaces the
    .pre-commit-config.yaml that init wrote."""
    scaffold.scaffold(str(root))
    if config is not None:
        (root / ".pre-commit-config.yaml").write_text(config)
    git(root, "init", "-q")
    subprocess.run([str(PRE_COMMIT), "install"], cwd=root, env=_env(hook), check=True, capture_output=True)
    git(root, "add", "-A")
    return root


def _readme_snippet(hook: Hook) -> str:
    """The README's .pre-commit-config.yaml, pointed at the local copy of this repository."""
    readme = (PROJECT / "README.md").read_text()
    section = readme[readme.index("## pre-commit\n") :]
    snippet = re.search(r"```yaml\n(# \.pre-commit-config\.yaml\n.*?)```", section, re.S)
    assert snippet is not None
    text = snippet.group(1)
    assert "rev: COMMIT-SHA" in text and "https://github.com/bifrost-gitops/bifrost-gitops" in text
    return text.replace("rev: COMMIT-SHA", f"rev: {hook.rev}").replace(
        "https://github.com/bifrost-gitops/bifrost-gitops", hook.url
    )


def _break(text: str) -> str:
    return text.replace("organization: contoso", "organization: nobody")


def test_inits_config_checks_the_commit_deletions_included(
    tmp_path: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scaffold, "installed_from", lambda: (hook.url, hook.rev))
    repo = _repository(tmp_path / "repo", hook)
    assert f"rev: {hook.rev}" in (repo / ".pre-commit-config.yaml").read_text()
    clean = _commit(repo, hook)
    assert clean.returncode == 0, clean.stdout
    assert re.search(r"bifrost-gitops validate\.+Passed", clean.stdout), clean.stdout

    mappings = repo / MAPPING
    # an unfinished untracked mapping and an ignored decrypted copy (a second contoso mapping)
    (mappings.parent / "wip.yaml").write_text(_break(mappings.read_text()))
    (mappings.parent / "contoso.dec.yaml").write_text(mappings.read_text())
    orgs = repo / "organizations.yaml"
    orgs.write_text(orgs.read_text().replace("Contoso Ltd", "Contoso Limited"))
    git(repo, "add", "organizations.yaml")
    unrelated = _commit(repo, hook)
    assert unrelated.returncode == 0, unrelated.stdout

    git(repo, "rm", "-q", "organizations.yaml")  # a commit that only deletes a file
    deletion = _commit(repo, hook)
    assert deletion.returncode == 1, deletion.stdout
    assert "Failed" in deletion.stdout and f"{MAPPING}:7:15: R002 organization 'contoso'" in deletion.stdout
    assert "wip.yaml" not in deletion.stdout and "dec.yaml" not in deletion.stdout
    assert git(repo, "log", "--format=%s").count("change") == 2  # the deletion was not committed


def test_readme_snippet_checks_the_staged_version(tmp_path: Path, hook: Hook) -> None:
    repo = _repository(tmp_path / "repo", hook, _readme_snippet(hook))
    assert _commit(repo, hook).returncode == 0
    mapping = repo / MAPPING
    good = mapping.read_text()

    mapping.write_text(good.replace("page_size: 50", "page_size: 40"))
    git(repo, "add", MAPPING)
    mapping.write_text(_break(good))  # broken in the work tree only: the commit is good
    passed = _commit(repo, hook)
    assert passed.returncode == 0, passed.stdout
    assert mapping.read_text() == _break(good)  # pre-commit put the unstaged change back

    git(repo, "add", MAPPING)
    mapping.write_text(good)  # the reverse: fixed in the work tree only, the commit is broken
    blocked = _commit(repo, hook)
    assert blocked.returncode == 1, blocked.stdout
    assert f"{MAPPING}:7:15: R002 organization 'nobody'" in blocked.stdout
