"""The CI recipes in docs/ci/ run: every `bifrost-gitops` (and `git`) command of each job, as the
hosted CI would run it, against a git clone of examples/integrations with a base and a change.

`${{ ... }}` expressions and CI variables are given sensible values, pip-install steps are skipped,
and `bifrost-gitops` resolves to this venv's (its bin folder first on PATH). Pull-request jobs run
with no key anywhere; deploy jobs get SOPS_AGE_KEY from the example's TEST-ONLY key.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess as sp
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import GIT_ENV, ROOT, git

CI = ROOT / "docs" / "ci"
EXAMPLE = ROOT / "examples" / "integrations"
KEY = (EXAMPLE / "TEST-ONLY-age-key.txt").read_text()
AGE_SECRET = next(line for line in KEY.splitlines() if line.startswith("AGE-SECRET-KEY-"))
BIN = Path(sys.executable).parent


MAIN_ONLY = "https://us.ninjarmm.example"  # the upstream main's own change, after the fork


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A CI checkout: a clone of an upstream whose main holds the example and whose branch
    `feature` changes a default (many orgs) and one override, after which main changed a
    NinjaOne default (MAIN_ONLY); the clone is on `feature`."""
    upstream = tmp_path / "upstream"
    shutil.copytree(EXAMPLE, upstream)
    git(upstream, "init", "-q", "-b", "main")
    git(upstream, "add", "-A")
    git(upstream, "commit", "-q", "-m", "base")
    git(upstream, "checkout", "-q", "-b", "feature")
    halo = upstream / "integrations/HaloPSA/integration.yaml"
    halo.write_text(halo.read_text().replace("page_size: 100", "page_size: 200"))
    northwind = upstream / "integrations/HaloPSA/mappings/northwind.yaml"
    northwind.write_text(northwind.read_text().replace("region: uk", "region: au"))
    git(upstream, "commit", "-q", "-am", "change")
    # main moves on after the branch forked: a change the pull request never made
    git(upstream, "checkout", "-q", "main")
    ninja = upstream / "integrations/NinjaOne/integration.yaml"
    ninja.write_text(ninja.read_text().replace("https://eu.ninjarmm.com\n", f"{MAIN_ONLY}\n"))
    git(upstream, "commit", "-q", "-am", "main moves on")
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", "--branch", "feature", str(upstream), str(work))
    return work


def clean_env(tmp_path: Path) -> dict[str, str]:
    """The runner's environment: no SOPS_*/GITHUB_*/CI_* variable, a HOME without keys, the venv first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPS_", "GITHUB_", "CI_"))}
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True, exist_ok=True)
    env.update(GIT_ENV)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), PATH=f"{BIN}{os.pathsep}{env['PATH']}")
    env["PYTHONPATH"] = str(ROOT / "src")  # the source under test, whatever the venv installed
    env.pop("NO_COLOR", None)
    return env


GITHUB_CONTEXT = {
    "github.base_ref": "main",
    "github.head_ref": "feature",
    "github.ref_name": "main",
    "secrets.SOPS_AGE_KEY": AGE_SECRET,
}


def github_expr(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        assert expr in GITHUB_CONTEXT, f"no test value for ${{{{ {expr} }}}}"
        return GITHUB_CONTEXT[expr]

    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def commands(script: str) -> list[str]:
    """The lines of a run:/script: body that invoke bifrost-gitops or git (pip installs skipped)."""
    out = []
    for raw in script.splitlines():
        line = raw.strip()
        if line.startswith(("bifrost-gitops ", "git ")):
            out.append(line)
        else:
            assert "bifrost-gitops " not in line or line.startswith(("pip install", "#")), line
    return out


def run_step(line: str, cwd: Path, env: dict[str, str]) -> sp.CompletedProcess[str]:
    proc = sp.run(
        ["bash", "-euo", "pipefail", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    return proc


def expected_code(line: str) -> int:
    return 1 if "--exit-code" in line else 0


def github_jobs(name: str) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """(job, [(command, step env)]) of a workflow file, with expressions substituted."""
    doc = yaml.safe_load((CI / name).read_text())
    jobs = []
    for job_name, job in doc["jobs"].items():
        job_env = {k: github_expr(str(v)) for k, v in (job.get("env") or {}).items()}
        steps = []
        for step in job["steps"]:
            if "run" not in step:
                continue
            step_env = {**job_env, **{k: github_expr(str(v)) for k, v in (step.get("env") or {}).items()}}
            for line in commands(step["run"]):
                steps.append((github_expr(line), step_env))
        jobs.append((job_name, steps))
    return jobs


def ran(steps: list[tuple[str, dict[str, str]]], checkout: Path, env: dict[str, str]) -> list[str]:
    done = []
    for line, step_env in steps:
        proc = run_step(line, checkout, {**env, **step_env})
        assert proc.returncode == expected_code(line), f"{line}\n{proc.stdout}\n{proc.stderr}"
        done.append(line)
    return done


def check_diff_md(checkout: Path) -> None:
    md = (checkout / "diff.md").read_text()
    assert md.startswith("### bifrost-gitops diff: 4 of 5 organizations affected")  # fabrikam overrides
    assert "| HaloPSA | 4 |" in md
    assert '`"uk"` | `"au"`' in md
    assert "<secret>" not in md  # no secret changed in this PR
    assert "ninjarmm" not in md  # compared with the merge base: main's later change is not the PR's


def check_sealed_bundle(checkout: Path) -> None:
    index = json.loads((checkout / "bundle" / "index.json").read_text())
    assert index
    orgs = sorted((checkout / "bundle" / "orgs").glob("*.json"))
    assert len(orgs) == 5
    for p in orgs:
        doc = json.loads(p.read_text())
        assert "sops" in doc, p  # sealed to the runtime's recipient
        assert "halo-fabrikam-example-key" not in p.read_text()


# --- GitHub Actions -------------------------------------------------------------------------


def test_github_pull_request_recipe(checkout: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load((CI / "github-pull-request.yml").read_text())
    text = (CI / "github-pull-request.yml").read_text()
    assert set(doc[True]) == {"pull_request"}  # yaml reads the key `on` as True
    assert "secrets." not in text and "SOPS_AGE_KEY:" not in text  # no key on untrusted PRs
    steps = doc["jobs"]["review"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@") and steps[0]["with"]["fetch-depth"] == 0
    assert steps[1]["with"]["python-version"] == "3.11"
    assert any("diff.md" in str(s.get("with", {}).get("script", "")) for s in steps)

    ((_job, cmds),) = github_jobs("github-pull-request.yml")
    lines = ran(cmds, checkout, clean_env(tmp_path))
    assert any(line.startswith('bifrost-gitops validate "$REPO" --format github') for line in lines)
    diff = 'bifrost-gitops diff "$REPO" --base "origin/${BASE_REF}...HEAD" --format markdown > diff.md || [ $? -eq 1 ]'
    assert diff in lines
    check_diff_md(checkout)
    upload = [s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif@")]
    assert upload and upload[0]["with"]["sarif_file"] == "bifrost-gitops.sarif"
    assert doc["permissions"]["security-events"] == "write"
    sarif = json.loads((checkout / "bifrost-gitops.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"] == []
    # nothing else touched
    assert git(checkout, "status", "--porcelain") == "?? bifrost-gitops.sarif\n?? diff.md\n"


def test_github_deploy_recipe(checkout: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load((CI / "github-deploy.yml").read_text())
    assert doc[True] == {"push": {"branches": ["main"]}}
    upload = [
        s
        for s in doc["jobs"]["bundle"]["steps"]
        if str(s.get("uses", "")).startswith("actions/upload-artifact@")
    ]
    assert upload and upload[0]["with"]["path"] == "bundle/"

    git(checkout, "checkout", "-q", "main")  # the push to main
    ((_job, cmds),) = github_jobs("github-deploy.yml")
    lines = ran(cmds, checkout, clean_env(tmp_path))
    assert any("compile" in line and "--secrets seal -o bundle" in line for line in lines)
    check_sealed_bundle(checkout)


def test_github_deploy_recipe_without_the_key_fails_cleanly(checkout: Path, tmp_path: Path) -> None:
    ((_job, cmds),) = github_jobs("github-deploy.yml")
    env = clean_env(tmp_path)
    for line, step_env in cmds:
        without_key = {k: v for k, v in step_env.items() if k != "SOPS_AGE_KEY"}
        proc = run_step(line, checkout, {**env, **without_key})
        if "compile" in line:
            assert proc.returncode == 2 and "SOPS_AGE_KEY" in proc.stderr
            assert not (checkout / "bundle").exists()


# --- GitLab CI ------------------------------------------------------------------------------


GITLAB_VARS = {
    "CI_PIPELINE_SOURCE": "merge_request_event",
    "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
    "CI_DEFAULT_BRANCH": "main",
    "CI_API_V4_URL": "http://gitlab.invalid/api/v4",
    "CI_PROJECT_ID": "1",
    "CI_MERGE_REQUEST_IID": "1",
}


def gitlab_env(checkout: Path, tmp_path: Path) -> dict[str, str]:
    """The runner's environment in a merge-request pipeline, with the MR's diff base (the merge
    base of the target branch and the MR's head, as GitLab records it)."""
    diff_base = git(checkout, "merge-base", "origin/main", "HEAD").strip()
    return {**clean_env(tmp_path), **GITLAB_VARS, "CI_MERGE_REQUEST_DIFF_BASE_SHA": diff_base}


def gitlab_job(doc: dict[str, Any], name: str) -> tuple[list[str], dict[str, str]]:
    job = doc[name]
    variables = {**doc.get("variables", {}), **job.get("variables", {})}
    script = "\n".join(job["script"])
    return commands(script), {k: str(v) for k, v in variables.items() if "$CI_PROJECT_DIR" not in str(v)}


def test_gitlab_review_job(checkout: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    assert "SOPS_AGE_KEY" not in yaml.safe_dump(doc["bifrost:review"])
    assert doc["bifrost:review"]["variables"]["GIT_DEPTH"] == "0"
    assert doc["bifrost:review"]["artifacts"]["paths"] == ["diff.md"]
    lines, variables = gitlab_job(doc, "bifrost:review")
    assert any(line.startswith("git fetch") for line in lines)
    ran([(line, variables) for line in lines], checkout, gitlab_env(checkout, tmp_path))
    check_diff_md(checkout)
    report = doc["bifrost:review"]["artifacts"]["reports"]["codequality"]
    assert json.loads((checkout / report).read_text()) == []  # the example has no findings


def test_gitlab_deploy_job(checkout: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    assert doc["bifrost:deploy"]["artifacts"]["paths"] == ["bundle/"]
    git(checkout, "checkout", "-q", "main")
    lines, variables = gitlab_job(doc, "bifrost:deploy")
    env = {**clean_env(tmp_path), **GITLAB_VARS, "SOPS_AGE_KEY": AGE_SECRET}
    ran([(line, variables) for line in lines], checkout, env)
    check_sealed_bundle(checkout)


def test_every_recipe_is_covered() -> None:
    assert sorted(p.name for p in CI.glob("*.yml")) == [
        "github-deploy.yml",
        "github-pull-request.yml",
        "gitlab-ci.yml",
    ]
    for name in ("github-pull-request.yml", "github-deploy.yml"):
        assert all(cmds for _, cmds in github_jobs(name))
