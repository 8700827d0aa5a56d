"""The recipes keep the Bifrost login across separate CI jobs and past 7 days.

Bifrost's refresh tokens are single use: a job that refreshed spent the one in the CI secret. So
every job that may refresh writes the new one back (also after a failure), all of them queue on
one concurrency group (GitHub) / resource group (GitLab), and a schedule refreshes a quiet
repository's login. Here the recipes' steps run against the fake Bifrost in sequence, each job on
a fresh "runner" (its own checkout and temp folder, nothing kept), with the CI secret store played
by a fake `gh` (a folder of files) or a fake GitLab variables API.
"""

from __future__ import annotations

import json
import shutil
import subprocess as sp
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

import test_ci_recipes as recipes
from deploy.fakebifrost import FakeBifrost
from support import LoopbackServer, QuietHandler, git
from test_ci_recipes import AGE_SECRET, CI, clean_env, flat, github_expr, no_tokens, run_block

checkout = recipes.checkout  # the fixtures, by name
bifrost = recipes.bifrost

GROUP = "bifrost-credentials"
WRITE_BACK = 'token="$(bifrost-gitops login --export refresh-token)"'
GITHUB_REFRESHING = {
    "github-pull-request.yml": ["plan"],
    "github-deploy.yml": ["plan", "apply"],
    "github-keepalive.yml": ["keepalive"],
}
GITLAB_REFRESHING = ["bifrost:plan", "bifrost:plan-main", "bifrost:apply", "bifrost:keepalive"]


# --- every job that may refresh: write-back last, also after a failure; one queue ---------------


def _uses_tokens(job: dict[str, Any]) -> bool:
    return "secrets.BIFROST_REFRESH_TOKEN" in yaml.safe_dump(job)


@pytest.mark.parametrize("name", sorted(GITHUB_REFRESHING))
def test_github_jobs_that_refresh_write_back_and_share_one_group(name: str) -> None:
    jobs = yaml.safe_load((CI / name).read_text())["jobs"]
    assert sorted(j for j, job in jobs.items() if _uses_tokens(job)) == sorted(GITHUB_REFRESHING[name])
    for job_name in GITHUB_REFRESHING[name]:
        job = jobs[job_name]
        assert job["concurrency"] == {"group": GROUP, "cancel-in-progress": False}, job_name
        last = job["steps"][-1]
        assert WRITE_BACK in last["run"] and "gh secret set BIFROST_REFRESH_TOKEN" in last["run"]
        assert str(last["if"]).startswith("${{ always()")  # also when a step before it failed
        assert last["env"]["GH_TOKEN"] == "${{ secrets.BIFROST_SECRETS_TOKEN }}"
        refreshing = [s for s in job["steps"] if "BIFROST_REFRESH_TOKEN" in (s.get("env") or {})]
        for step in refreshing:  # the same credentials file: the write-back reads the rotated pair
            assert step["env"]["BIFROST_CREDENTIALS_FILE"] == last["env"]["BIFROST_CREDENTIALS_FILE"]


def _gitlab_job(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """NAME with its `extends:` templates merged in, as GitLab does (variables merged by key)."""
    job = dict(doc[name])
    parents = job.pop("extends", [])
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        base = _gitlab_job(doc, parent)
        merged = {**merged, **base, "variables": {**merged.get("variables", {}), **base.get("variables", {})}}
    return {**merged, **job, "variables": {**merged.get("variables", {}), **job.get("variables", {})}}


def test_gitlab_jobs_that_refresh_write_back_and_share_one_resource_group() -> None:
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    jobs = {n: _gitlab_job(doc, n) for n in doc if not n.startswith(".") and isinstance(doc[n], dict)}
    refreshing = [
        n
        for n, job in jobs.items()
        if any(c in "\n".join(flat(job.get("script", []))) for c in ("plan ", "apply ", "login --refresh"))
    ]
    assert sorted(refreshing) == sorted(GITLAB_REFRESHING)
    for name in refreshing:
        job = jobs[name]
        assert job["resource_group"] == GROUP, name
        assert WRITE_BACK in flat(job["script"])[-1], name  # last: a failed write-back fails the job
        after = "\n".join(flat(job["after_script"]))
        assert WRITE_BACK in after and '"$CI_JOB_STATUS" = success' in after  # the script stopped early
        assert job["variables"]["BIFROST_CREDENTIALS_FILE"] == "$CI_PROJECT_DIR/.bifrost-credentials.json"
    for name in ("bifrost:deploy", "bifrost:plan-main", "bifrost:apply"):  # not in the keepalive's pipelines
        assert jobs[name]["rules"][0] == {"if": '$CI_PIPELINE_SOURCE == "schedule"', "when": "never"}
    assert jobs["bifrost:keepalive"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]


def test_github_keepalive_runs_more_often_than_tokens_expire() -> None:
    doc = yaml.safe_load((CI / "github-keepalive.yml").read_text())
    (cron,) = [c["cron"] for c in doc[True]["schedule"]]
    days = [int(d) for d in cron.split()[4].split(",")]
    gaps = [(b - a) % 7 or 7 for a, b in zip(days, days[1:] + days[:1], strict=True)]
    assert max(gaps) * 2 < 7  # one late or skipped run still leaves time before the 7 days end
    assert "workflow_dispatch" in doc[True]


# --- the secret stores ------------------------------------------------------------------------


FAKE_GH = """#!/bin/sh
# gh secret set NAME --repo OWNER/REPO, the value on stdin: what the write-back step runs
[ "$1 $2 $4" = "secret set --repo" ] || { echo "fake gh: unexpected: $*" >&2; exit 64; }
[ "$GH_TOKEN" = "secrets-write-token" ] || { echo "fake gh: no secrets:write token" >&2; exit 4; }
echo "$*" >> "$FAKE_SECRETS/.calls"
cat > "$FAKE_SECRETS/$3"
"""


class Secrets:
    """The repository's secrets, as files a fake `gh secret set` writes."""

    def __init__(self, tmp_path: Path, bf: FakeBifrost) -> None:
        self.dir = tmp_path / "secrets"
        self.dir.mkdir()
        self.bin = tmp_path / "gh-bin"
        self.bin.mkdir()
        (self.bin / "gh").write_text(FAKE_GH)
        (self.bin / "gh").chmod(0o755)
        (self.dir / "BIFROST_ACCESS_TOKEN").write_text(bf.tokens.access_token)
        (self.dir / "BIFROST_REFRESH_TOKEN").write_text(bf.tokens.refresh_token)

    def __getitem__(self, name: str) -> str:
        return (self.dir / name).read_text()

    def writes(self) -> int:
        calls = self.dir / ".calls"
        return len(calls.read_text().splitlines()) if calls.exists() else 0


class Runner:
    """A fresh GitHub-hosted runner for one job: its own checkout and temp folder."""

    def __init__(self, tmp_path: Path, name: str, checkout: Path, bf: FakeBifrost, secrets: Secrets) -> None:
        self.temp = tmp_path / f"{name}-temp"
        self.temp.mkdir()
        self.work = tmp_path / f"{name}-work"
        git(tmp_path, "clone", "-q", "--branch", "main", str(checkout), str(self.work))
        self.context = {
            "vars.BIFROST_API_URL": bf.url,
            "secrets.BIFROST_ACCESS_TOKEN": secrets["BIFROST_ACCESS_TOKEN"],  # as the job starts
            "secrets.BIFROST_REFRESH_TOKEN": secrets["BIFROST_REFRESH_TOKEN"],
            "secrets.BIFROST_SECRETS_TOKEN": "secrets-write-token",
            "runner.temp": str(self.temp),
        }
        self.env = {
            **clean_env(tmp_path),
            "GITHUB_STEP_SUMMARY": str(self.temp / "summary.md"),
            "GITHUB_REPOSITORY": "acme/integrations",
            "FAKE_SECRETS": str(secrets.dir),
        }
        self.env["PATH"] = f"{secrets.bin}:{self.env['PATH']}"
        self.output = ""

    def step(self, job: dict[str, Any], step: dict[str, Any]) -> int:
        """One `run:` step as the runner's bash runs it (`bash -e`), with the job's and step's env."""
        env = {k: github_expr(str(v), self.context) for k, v in {**job.get("env", {}), **step["env"]}.items()}
        proc = sp.run(  # GitHub's default shell: `bash -e {0}`, no pipefail
            ["bash", "--noprofile", "--norc", "-e", "-c", step["run"]],
            cwd=self.work,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.output += proc.stdout + proc.stderr
        return proc.returncode


def _step(job: dict[str, Any], text: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [s for s in job["steps"] if text in str(s.get("run"))]
    (step,) = steps
    return step


def _jobs(name: str) -> dict[str, Any]:
    jobs: dict[str, Any] = yaml.safe_load((CI / name).read_text())["jobs"]
    return jobs


def _on_main(checkout: Path, tmp_path: Path, bf: FakeBifrost) -> tuple[dict[str, Any], Secrets]:
    """The deploy workflow's jobs after a push to main, and the repository's secrets."""
    git(checkout, "checkout", "-q", "main")
    return _jobs("github-deploy.yml"), Secrets(tmp_path, bf)


def _job(runner: Runner, job: dict[str, Any], text: str) -> int:
    """The step running TEXT, then the write-back (`if: always()`): the step's exit code."""
    code = runner.step(job, _step(job, text))
    assert runner.step(job, job["steps"][-1]) == 0, runner.output
    return code


# --- GitHub: plan job, write-back, apply job on another runner ------------------------------------


def test_github_apply_job_reads_the_token_the_plan_job_wrote_back(
    checkout: Path, tmp_path: Path, bifrost: FakeBifrost
) -> None:
    jobs, secrets = _on_main(checkout, tmp_path, bifrost)
    first = secrets["BIFROST_REFRESH_TOKEN"]
    bifrost.expire_access_tokens()  # the secret's access token is days old: the plan job refreshes

    plan = Runner(tmp_path, "plan", checkout, bifrost, secrets)
    assert _job(plan, jobs["plan"], "bifrost-gitops plan") == 0, plan.output
    assert bifrost.refresh_count == 1 and secrets.writes() == 1
    rotated = secrets["BIFROST_REFRESH_TOKEN"]
    assert rotated != first and rotated in bifrost.state.refresh_tokens  # alive; the first is spent
    assert first not in bifrost.state.refresh_tokens

    # the gap this closes: an apply job reading the secret as it was before the plan job
    stale = Runner(tmp_path, "stale", checkout, bifrost, secrets)
    stale.context["secrets.BIFROST_REFRESH_TOKEN"] = first
    shutil.copy(plan.work / "plan.json", stale.work / "plan.json")
    apply_step = _step(jobs["apply"], "bifrost-gitops apply")
    assert stale.step(jobs["apply"], apply_step) == 2
    assert "token refresh refused" in stale.output and "log in again" in stale.output
    assert bifrost.state.integration_by_name("HaloPSA") is None

    # the apply job (approved later: its access token has expired too) on a fresh runner
    bifrost.expire_access_tokens()
    apply = Runner(tmp_path, "apply", checkout, bifrost, secrets)
    shutil.copy(plan.work / "plan.json", apply.work / "plan.json")  # the artifact
    assert _job(apply, jobs["apply"], "bifrost-gitops apply") == 0, apply.output
    assert bifrost.state.integration_by_name("HaloPSA") is not None
    assert secrets.writes() == 2 and secrets["BIFROST_REFRESH_TOKEN"] in bifrost.state.refresh_tokens

    for r in (plan, stale, apply):
        no_tokens(r.output)


def test_github_write_back_after_a_failed_step_and_none_without_a_refresh(
    checkout: Path, tmp_path: Path, bifrost: FakeBifrost
) -> None:
    jobs, secrets = _on_main(checkout, tmp_path, bifrost)
    # access token still valid: no refresh, so nothing to write back (the secret is left alone)
    fresh = Runner(tmp_path, "fresh", checkout, bifrost, secrets)
    assert _job(fresh, jobs["plan"], "bifrost-gitops plan") == 0, fresh.output
    assert bifrost.refresh_count == 0 and secrets.writes() == 0

    # the plan fails after its refresh (Bifrost errors while reading the live state)
    bifrost.expire_access_tokens()
    bifrost.fail_next(50, 500, match=lambda method, path: path == "/api/integrations")
    failed = Runner(tmp_path, "failed", checkout, bifrost, secrets)
    failed.env["BIFROST_MAX_ATTEMPTS"] = "1"
    assert _job(failed, jobs["plan"], "bifrost-gitops plan") == 2  # the write-back ran regardless
    assert bifrost.refresh_count == 1
    assert secrets.writes() == 1 and secrets["BIFROST_REFRESH_TOKEN"] in bifrost.state.refresh_tokens
    no_tokens(fresh.output + failed.output)


def test_github_write_back_never_stores_an_empty_token(
    checkout: Path, tmp_path: Path, bifrost: FakeBifrost
) -> None:
    """No bifrost-gitops (its install failed), or a broken credentials file: the step fails and
    the secret keeps its value."""
    jobs, secrets = _on_main(checkout, tmp_path, bifrost)
    before = secrets["BIFROST_REFRESH_TOKEN"]
    r = Runner(tmp_path, "broken", checkout, bifrost, secrets)
    (r.temp / "bifrost-credentials.json").write_text("{not json")
    assert r.step(jobs["plan"], jobs["plan"]["steps"][-1]) == 2
    assert secrets.writes() == 0 and secrets["BIFROST_REFRESH_TOKEN"] == before


def test_github_keepalive_chain_outlives_each_token(
    checkout: Path, tmp_path: Path, bifrost: FakeBifrost
) -> None:
    job = _jobs("github-keepalive.yml")["keepalive"]
    git(checkout, "checkout", "-q", "main")
    secrets = Secrets(tmp_path, bifrost)
    seen = [secrets["BIFROST_REFRESH_TOKEN"]]
    for week in range(2):
        runner = Runner(tmp_path, f"keepalive{week}", checkout, bifrost, secrets)
        assert _job(runner, job, "login --refresh") == 0, runner.output
        no_tokens(runner.output)
        seen.append(secrets["BIFROST_REFRESH_TOKEN"])
    assert len(set(seen)) == 3 and bifrost.refresh_count == 2
    assert [t in bifrost.state.refresh_tokens for t in seen] == [False, False, True]


# --- GitLab: the same, with the project variables API ---------------------------------------------


class VariablesAPI(QuietHandler):
    """GitLab's `PUT /projects/1/variables/NAME` (form-encoded value), for a Maintainer's token."""

    store: ClassVar[dict[str, str]] = {}
    calls: ClassVar[list[str]] = []

    def do_PUT(self) -> None:
        from urllib.parse import parse_qs

        prefix = "/api/v4/projects/1/variables/"
        if self.headers["PRIVATE-TOKEN"] != "variables-token":
            return self.send_json(401, {"message": "401 Unauthorized"})
        if not self.path.startswith(prefix):
            return self.send_json(404, {})
        name = self.path[len(prefix) :]
        length = int(self.headers.get("Content-Length") or 0)
        value = parse_qs(self.rfile.read(length).decode())["value"][0]
        self.calls.append(name)
        self.store[name] = value
        return self.send_json(200, {"key": name, "masked": True})


@pytest.fixture
def gitlab(bifrost: FakeBifrost) -> Any:
    VariablesAPI.store = {
        "BIFROST_ACCESS_TOKEN": bifrost.tokens.access_token,
        "BIFROST_REFRESH_TOKEN": bifrost.tokens.refresh_token,
    }
    VariablesAPI.calls = []
    server = LoopbackServer(VariablesAPI)
    server.start()
    try:
        yield server
    finally:
        server.close()


def _gitlab_run(
    doc: dict[str, Any], name: str, work: Path, env: dict[str, str], *, part: str = "script"
) -> tuple[int, str]:
    """One job's script (or after_script) as the runner runs it: one bash, `-eo pipefail`, in a
    fresh project folder, with the variables as they are when the job starts."""
    job = _gitlab_job(doc, name)
    variables = {
        k: str(v).replace("$CI_PROJECT_DIR", str(work))
        for k, v in {**doc["variables"], **job["variables"]}.items()
    }
    proc = run_block("\n".join(flat(job[part])), work, {**env, **variables, "CI_PROJECT_DIR": str(work)})
    return proc.returncode, proc.stdout + proc.stderr


def _gitlab_env(tmp_path: Path, bf: FakeBifrost, api: LoopbackServer) -> dict[str, str]:
    return {
        **clean_env(tmp_path),
        **recipes.GITLAB_VARS,
        "CI_PIPELINE_SOURCE": "push",
        "CI_API_V4_URL": f"{api.url}/api/v4",
        "BIFROST_API_URL": bf.url,
        "BIFROST_ACCESS_TOKEN": VariablesAPI.store["BIFROST_ACCESS_TOKEN"],
        "BIFROST_REFRESH_TOKEN": VariablesAPI.store["BIFROST_REFRESH_TOKEN"],
        "BIFROST_VARIABLES_TOKEN": "variables-token",
        "SOPS_AGE_KEY": AGE_SECRET,
    }


def test_gitlab_apply_job_reads_the_variable_the_plan_job_wrote_back(
    checkout: Path, tmp_path: Path, bifrost: FakeBifrost, gitlab: LoopbackServer
) -> None:
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    git(checkout, "checkout", "-q", "main")
    first = VariablesAPI.store["BIFROST_REFRESH_TOKEN"]
    bifrost.expire_access_tokens()
    code, out = _gitlab_run(doc, "bifrost:plan-main", checkout, _gitlab_env(tmp_path, bifrost, gitlab))
    assert code == 0, out
    assert VariablesAPI.calls == ["BIFROST_REFRESH_TOKEN"] and "now holds the rotated" in out
    rotated = VariablesAPI.store["BIFROST_REFRESH_TOKEN"]
    assert rotated != first and rotated in bifrost.state.refresh_tokens
    after, _ = _gitlab_run(
        doc,
        "bifrost:plan-main",
        checkout,
        {**_gitlab_env(tmp_path, bifrost, gitlab), "CI_JOB_STATUS": "success"},
        part="after_script",
    )
    assert after == 0 and VariablesAPI.calls == ["BIFROST_REFRESH_TOKEN"]  # written once

    def apply_in_a_fresh_project(name: str, refresh_token: str) -> tuple[int, str]:
        work = tmp_path / name
        git(tmp_path, "clone", "-q", "--branch", "main", str(checkout), str(work))
        shutil.copy(checkout / "plan.json", work / "plan.json")  # the artifact
        env = {**_gitlab_env(tmp_path, bifrost, gitlab), "BIFROST_REFRESH_TOKEN": refresh_token}
        return _gitlab_run(doc, "bifrost:apply", work, env)

    bifrost.expire_access_tokens()
    code, stale = apply_in_a_fresh_project("stale", first)  # without the write-back
    assert code == 2 and "log in again" in stale
    assert bifrost.state.integration_by_name("HaloPSA") is None
    code, applied = apply_in_a_fresh_project("apply", rotated)
    assert code == 0, applied
    assert bifrost.state.integration_by_name("HaloPSA") is not None
    assert VariablesAPI.calls == ["BIFROST_REFRESH_TOKEN"] * 2
    assert VariablesAPI.store["BIFROST_REFRESH_TOKEN"] in bifrost.state.refresh_tokens
    no_tokens(out + stale + applied)


def test_gitlab_after_script_writes_back_when_the_script_failed(
    checkout: Path, tmp_path: Path, bifrost: FakeBifrost, gitlab: LoopbackServer
) -> None:
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    git(checkout, "checkout", "-q", "main")
    bifrost.expire_access_tokens()
    bifrost.fail_next(50, 500, match=lambda method, path: path == "/api/integrations")
    env = {**_gitlab_env(tmp_path, bifrost, gitlab), "BIFROST_MAX_ATTEMPTS": "1"}
    code, out = _gitlab_run(doc, "bifrost:plan-main", checkout, env)
    assert code == 2 and bifrost.refresh_count == 1 and VariablesAPI.calls == []  # stopped early
    code, after = _gitlab_run(
        doc, "bifrost:plan-main", checkout, {**env, "CI_JOB_STATUS": "failed"}, part="after_script"
    )
    assert code == 0, after
    assert VariablesAPI.calls == ["BIFROST_REFRESH_TOKEN"]
    assert VariablesAPI.store["BIFROST_REFRESH_TOKEN"] in bifrost.state.refresh_tokens
    no_tokens(out + after)


def test_gitlab_keepalive_job(
    checkout: Path, tmp_path: Path, bifrost: FakeBifrost, gitlab: LoopbackServer
) -> None:
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    first = VariablesAPI.store["BIFROST_REFRESH_TOKEN"]
    work = tmp_path / "keepalive"
    work.mkdir()  # no checkout needed
    env = {**_gitlab_env(tmp_path, bifrost, gitlab), "CI_PIPELINE_SOURCE": "schedule"}
    code, out = _gitlab_run(doc, "bifrost:keepalive", work, env)
    assert code == 0, out
    no_tokens(out)
    new = VariablesAPI.store["BIFROST_REFRESH_TOKEN"]
    assert new in bifrost.state.refresh_tokens and first not in bifrost.state.refresh_tokens


def test_gitlab_write_back_fails_the_job_without_a_variables_token(
    checkout: Path, tmp_path: Path, bifrost: FakeBifrost, gitlab: LoopbackServer
) -> None:
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    work = tmp_path / "keepalive"
    work.mkdir()
    env = {**_gitlab_env(tmp_path, bifrost, gitlab), "BIFROST_VARIABLES_TOKEN": "reporter-token"}
    code, out = _gitlab_run(doc, "bifrost:keepalive", work, env)
    assert code != 0 and "BIFROST_REFRESH_TOKEN not updated (HTTP Error 401" in out  # seen, not lost silently
    assert "Traceback" not in out
    assert VariablesAPI.calls == []
    no_tokens(out)
    assert json.loads((work / ".bifrost-credentials.json").read_text())["refresh_token"]  # kept in the job
