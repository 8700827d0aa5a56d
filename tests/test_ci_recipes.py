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
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.fakebifrost import FakeBifrost
from support import GIT_ENV, ROOT, QuietHandler, git

CI = ROOT / "docs" / "ci"
EXAMPLE = ROOT / "examples" / "integrations"
KEY = (EXAMPLE / "TEST-ONLY-age-key.txt").read_text()
AGE_SECRET = next(line for line in KEY.splitlines() if line.startswith("AGE-SECRET-KEY-"))
BIN = Path(sys.executable).parent


MAIN_ONLY = "https://us.ninjarmm.example"
GITHUB_RECIPES = [
    "github-pull-request.yml",
    "github-deploy.yml",
    "github-keepalive.yml",
]  # the upstream main's own change, after the fork


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
    "github.event.pull_request.head.repo.full_name == github.repository": "true",
    "secrets.SOPS_AGE_KEY": AGE_SECRET,
    "runner.temp": "/nonexistent/runner-temp",
    # the deploy recipes' Bifrost: a closed port unless a test gives its fake's (live_context)
    "vars.BIFROST_API_URL": "http://127.0.0.1:9",
    "secrets.BIFROST_ACCESS_TOKEN": "no-token",
    "secrets.BIFROST_REFRESH_TOKEN": "no-token",
    "secrets.BIFROST_SECRETS_TOKEN": "no-token",  # writes the rotated refresh token back
}


def github_expr(text: str, context: dict[str, str] | None = None) -> str:
    values = {**GITHUB_CONTEXT, **(context or {})}

    def one(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        assert expr in values, f"no test value for ${{{{ {expr} }}}}"
        return values[expr]

    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def commands(script: str) -> list[str]:
    """The lines of a run:/script: body that invoke bifrost-gitops or git (pip installs skipped;
    the token write-back, `token="$(bifrost-gitops login --export ...)"`, is run whole by
    tests/test_ci_keepalive.py)."""
    out = []
    for raw in script.splitlines():
        line = raw.strip()
        if line.startswith(("bifrost-gitops ", "git ")):
            out.append(line)
        else:
            assert "bifrost-gitops " not in line or line.startswith(("pip install", "#", 'token="$(')), line
    return out


def flat(items: list[Any]) -> list[str]:
    """A GitLab script list with its anchored lists (`- *bifrost-write-back`) flattened, as GitLab does."""
    return [line for item in items for line in (flat(item) if isinstance(item, list) else [item])]


def run_step(line: str, cwd: Path, env: dict[str, str]) -> sp.CompletedProcess[str]:
    proc = sp.run(
        ["bash", "-euo", "pipefail", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    return proc


def expected_code(line: str) -> int:
    return 1 if "--exit-code" in line else 0


def github_jobs(
    name: str, context: dict[str, str] | None = None
) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """(job, [(command, step env)]) of a workflow file, with expressions substituted."""
    doc = yaml.safe_load((CI / name).read_text())
    jobs = []
    for job_name, job in doc["jobs"].items():
        job_env = {k: github_expr(str(v), context) for k, v in (job.get("env") or {}).items()}
        steps = []
        for step in job["steps"]:
            if "run" not in step:
                continue
            step_env = {
                **job_env,
                **{k: github_expr(str(v), context) for k, v in (step.get("env") or {}).items()},
            }
            for line in commands(step["run"]):
                steps.append((github_expr(line, context), step_env))
        jobs.append((job_name, steps))
    return jobs


def github_job(
    name: str, job: str, context: dict[str, str] | None = None
) -> list[tuple[str, dict[str, str]]]:
    return dict(github_jobs(name, context))[job]


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
    assert '**HaloPSA** config.region: `"uk"` → `"au"` — 1 organization: `northwind`' in md
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
    review = yaml.safe_dump(doc["jobs"]["review"])
    assert "secrets." not in review and "SOPS_AGE_KEY" not in review  # no key on untrusted PRs
    assert "pull_request_target" not in text.replace("switch it to pull_request_target", "")
    steps = doc["jobs"]["review"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@") and steps[0]["with"]["fetch-depth"] == 0
    assert steps[1]["with"]["python-version"] == "3.11"
    assert any("diff.md" in str(s.get("with", {}).get("script", "")) for s in steps)

    lines = ran(github_job("github-pull-request.yml", "review"), checkout, clean_env(tmp_path))
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
    lines = ran(github_job("github-deploy.yml", "bundle"), checkout, clean_env(tmp_path))
    assert any("compile" in line and "--secrets seal -o bundle" in line for line in lines)
    check_sealed_bundle(checkout)


def test_github_deploy_recipe_without_the_key_fails_cleanly(checkout: Path, tmp_path: Path) -> None:
    cmds = github_job("github-deploy.yml", "bundle")
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
    script = "\n".join(flat(job["script"]))
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
    tip = run_step(
        "bifrost-gitops diff . --base origin/main --format markdown", checkout, clean_env(tmp_path)
    )
    assert "ninjarmm" in tip.stdout  # what the target branch's tip would have wrongly shown
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
        "github-keepalive.yml",
        "github-pull-request.yml",
        "gitlab-ci.yml",
    ]
    for name in GITHUB_RECIPES:
        assert all(cmds for _, cmds in github_jobs(name))


# --- what the recipes promise: hardened, merge base, diff despite findings, one note -------------


PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+[\w.-]+/[\w.-]+(?:/[\w./-]+)?@[0-9a-f]{40} # v\d+(?:\.\d+)*$")


@pytest.mark.parametrize("name", GITHUB_RECIPES)
def test_github_recipes_are_hardened(name: str) -> None:
    text = (CI / name).read_text()
    uses = [line for line in text.splitlines() if re.match(r"\s*(?:-\s+)?uses:", line)]
    unpinned = [line for line in uses if not PINNED.match(line)]
    assert uses and not unpinned, "every action at a full commit SHA with its version in a comment"
    doc = yaml.safe_load(text)
    for job in doc["jobs"].values():
        for step in job["steps"]:
            code = str(step.get("run", "")) + str((step.get("with") or {}).get("script", ""))
            assert "${{" not in code, f"an expression in a script (pass it through env:): {step}"
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
    if name == "github-pull-request.yml":
        (diff,) = [s for s in doc["jobs"]["review"]["steps"] if "bifrost-gitops diff" in str(s.get("run"))]
        assert diff["env"] == {"BASE_REF": "${{ github.base_ref }}"}
        assert '--base "origin/${BASE_REF}...HEAD"' in diff["run"]


def test_gitlab_recipe_compares_with_the_diff_base_and_validates_last() -> None:
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    script = doc["bifrost:review"]["script"]
    (diff,) = [line for line in script if line.startswith("bifrost-gitops diff")]
    assert '--base "$CI_MERGE_REQUEST_DIFF_BASE_SHA"' in diff
    assert script[-1] == 'bifrost-gitops validate "$REPO"'  # fails the job after the diff and the note
    assert script.index(diff) < script.index(next(s for s in script if "BIFROST_NOTE_TOKEN" in s))


def with_finding(checkout: Path) -> None:
    """The pull request also adds a mapping for an organization that does not exist (R002)."""
    mappings = checkout / "integrations/HaloPSA/mappings"
    text = (mappings / "northwind.yaml").read_text().replace("organization: northwind", "organization: ghost")
    (mappings / "ghost.yaml").write_text(text)
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "a mapping for nobody")


def test_github_diff_is_written_when_validate_fails(checkout: Path, tmp_path: Path) -> None:
    with_finding(checkout)
    job = yaml.safe_load((CI / "github-pull-request.yml").read_text())["jobs"]["review"]
    env, failed, codes = clean_env(tmp_path), False, {}
    for step in job["steps"]:
        if "run" not in step or (failed and "!cancelled()" not in str(step.get("if"))):
            continue  # as GitHub: after a failure only steps marked to run anyway
        step_env = {k: github_expr(str(v)) for k, v in {**job["env"], **(step.get("env") or {})}.items()}
        procs = [run_step(github_expr(line), checkout, {**env, **step_env}) for line in commands(step["run"])]
        codes[step["name"]] = max((p.returncode for p in procs), default=0)
        failed = failed or codes[step["name"]] != 0
    assert codes["Validate"] == 1
    assert {k: v for k, v in codes.items() if k != "Validate"} == {
        "Install bifrost-gitops": 0,  # skipped here (pip)
        "Findings for code scanning": 0,
        "Diff against the merge base": 0,
        "Diff to the job log and summary": 0,
    }
    md = (checkout / "diff.md").read_text()
    assert "ghost" in md and "4 of 5 organizations affected" in md and "ninjarmm" not in md


def test_gitlab_diff_is_written_when_validate_fails(checkout: Path, tmp_path: Path) -> None:
    with_finding(checkout)
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    lines, variables = gitlab_job(doc, "bifrost:review")
    env = {**gitlab_env(checkout, tmp_path), **variables}
    codes = []
    for line in lines:  # as GitLab: the script stops at the first failing line
        codes.append(run_step(line, checkout, env).returncode)
        if codes[-1]:
            break
    assert codes == [0] * (len(lines) - 1) + [1], list(zip(lines, codes, strict=False))
    assert "ghost" in (checkout / "diff.md").read_text()
    assert json.loads((checkout / "gl-code-quality.json").read_text())  # the finding, for the widget


class FakeGitLab(ThreadingHTTPServer):
    """The notes API of one merge request: 120 notes by someone else (one of them forging the
    marker), the bot's own user id 7; requests are recorded as (method, path)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), NotesHandler)
        self.notes: list[dict[str, Any]] = [
            {"id": i, "author": {"id": 8}, "body": f"review {i}"} for i in range(1, 121)
        ]
        self.notes[3]["body"] = "<!-- bifrost-gitops-diff -->\nforged by the MR's author"
        self.requests: list[tuple[str, str]] = []


class NotesHandler(QuietHandler):
    server: FakeGitLab
    NOTES = "/api/v4/projects/1/merge_requests/1/notes"

    def _handle(self) -> None:
        self.server.requests.append((self.command, self.path))
        if self.headers["PRIVATE-TOKEN"] != "note-token":
            return self.send_json(401, {})
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        sent = json.loads(self.rfile.read(length)) if length else {}
        notes = self.server.notes
        if (self.command, path) == ("GET", "/api/v4/user"):
            return self.send_json(200, {"id": 7})
        if (self.command, path) == ("GET", self.NOTES):
            args = dict(p.split("=") for p in query.split("&"))
            start = (int(args["page"]) - 1) * int(args["per_page"])
            return self.send_json(200, notes[start : start + int(args["per_page"])])
        if (self.command, path) == ("POST", self.NOTES):
            notes.append({"id": len(notes) + 1, "author": {"id": 7}, "body": sent["body"]})
            return self.send_json(201, notes[-1])
        if self.command == "PUT" and path.startswith(self.NOTES + "/"):
            note = next(n for n in notes if n["id"] == int(path.rsplit("/", 1)[1]))
            if note["author"]["id"] != 7:
                return self.send_json(403, {})
            note["body"] = sent["body"]
            return self.send_json(200, note)
        return self.send_json(404, {})

    do_GET = do_POST = do_PUT = _handle


def test_gitlab_note_is_updated_in_place(tmp_path: Path) -> None:
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    (block,) = [s for s in doc["bifrost:review"]["script"] if "BIFROST_NOTE_TOKEN" in s]
    server = FakeGitLab()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = {
        **clean_env(tmp_path),
        **GITLAB_VARS,
        "CI_API_V4_URL": f"http://127.0.0.1:{server.server_address[1]}/api/v4",
        "BIFROST_NOTE_TOKEN": "note-token",
    }
    try:
        assert run_step(block, tmp_path, {**env, "BIFROST_NOTE_TOKEN": ""}).returncode == 0
        assert server.requests == []  # no token: no note, only the artifact
        for push in ("first push", "second push", "third push"):
            (tmp_path / "diff.md").write_text(f"### bifrost-gitops diff: {push}\n")
            proc = run_step(block, tmp_path, env)
            assert proc.returncode == 0, proc.stderr
    finally:
        server.shutdown()
        thread.join()
    methods = [m for m, _ in server.requests if m != "GET"]
    assert methods == ["POST", "PUT", "PUT"]
    mine = [n for n in server.notes if n["author"]["id"] == 7]
    assert [n["body"] for n in mine] == [
        "<!-- bifrost-gitops-diff -->\n### bifrost-gitops diff: third push\n"
    ]
    assert server.notes[3]["body"].endswith("forged by the MR's author")  # never touched


# --- the deploy jobs: plan against the live Bifrost, apply the reviewed plan behind an approval ---


@pytest.fixture
def bifrost() -> Iterator[FakeBifrost]:
    """A fake Bifrost holding the example's five organizations (by their UUIDs), nothing else."""
    orgs = yaml.safe_load((EXAMPLE / "organizations.yaml").read_text())["organizations"]
    with FakeBifrost() as fake:
        for org in orgs:
            fake.add_org(org["display_name"], id=org["id"])
        yield fake


def live_context(bf: FakeBifrost, tmp_path: Path) -> dict[str, str]:
    return {
        "vars.BIFROST_API_URL": bf.url,
        "secrets.BIFROST_ACCESS_TOKEN": bf.tokens.access_token,
        "secrets.BIFROST_REFRESH_TOKEN": bf.tokens.refresh_token,
        "runner.temp": str(tmp_path),
    }


def no_tokens(text: str) -> None:
    assert "fake-at-" not in text and "fake-rt-" not in text and AGE_SECRET not in text
    assert "halo-fabrikam-example-key" not in text  # a secret value of the example


def run_block(script: str, cwd: Path, env: dict[str, str]) -> sp.CompletedProcess[str]:
    """A whole run:/script: block, as the runner's bash runs it."""
    return sp.run(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


# a secret under its own name; gh reads its token from GH_TOKEN
SECRET_IN_ENV = re.compile(
    r"^\s+(?:([A-Z_]+): \$\{\{ secrets\.\1 \}\}|GH_TOKEN: \$\{\{ secrets\.BIFROST_SECRETS_TOKEN \}\})$"
)


@pytest.mark.parametrize("name", GITHUB_RECIPES)
def test_github_secrets_only_through_step_env(name: str) -> None:
    text = (CI / name).read_text()
    lines = [line for line in text.splitlines() if "secrets." in line and not line.lstrip().startswith("#")]
    assert all(SECRET_IN_ENV.match(line) for line in lines), lines
    doc = yaml.safe_load(text)
    for job in doc["jobs"].values():
        for step in job["steps"]:
            assert "secrets." not in str(step.get("run", "")) + str(step.get("with", ""))
            assert not re.search(r"echo .*\$(SOPS_AGE_KEY|BIFROST_\w*TOKEN)", str(step.get("run", "")))


def test_github_apply_waits_for_the_environment_and_applies_the_plan_artifact(
    checkout: Path, tmp_path: Path, bifrost: FakeBifrost
) -> None:
    jobs = yaml.safe_load((CI / "github-deploy.yml").read_text())["jobs"]
    assert jobs["apply"]["needs"] == "plan" and jobs["apply"]["environment"] == "production"
    (up,) = [s for s in jobs["plan"]["steps"] if str(s.get("uses")).startswith("actions/upload-artifact@")]
    (down,) = [
        s for s in jobs["apply"]["steps"] if str(s.get("uses")).startswith("actions/download-artifact@")
    ]
    assert up["with"]["path"] == "plan.json" and down["with"]["name"] == up["with"]["name"]
    assert not any(
        "compile" in str(s.get("run")) or "plan " in str(s.get("run")) for s in jobs["apply"]["steps"]
    )

    git(checkout, "checkout", "-q", "main")
    ctx = live_context(bifrost, tmp_path)
    env = {**clean_env(tmp_path), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    (plan_step,) = [s for s in jobs["plan"]["steps"] if "bifrost-gitops plan" in str(s.get("run"))]
    step_env = {k: github_expr(str(v), ctx) for k, v in {**jobs["plan"]["env"], **plan_step["env"]}.items()}
    proc = run_block(plan_step["run"], checkout, {**env, **step_env})
    assert proc.returncode == 0, proc.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert "create integration HaloPSA" in proc.stdout and "    + create integration HaloPSA" in summary
    no_tokens(proc.stdout + proc.stderr + summary + (checkout / "plan.json").read_text())
    assert bifrost.state.integration_by_name("HaloPSA") is None  # the plan job changes nothing

    # the artifact: the apply job runs in a fresh checkout of the same commit
    runner2 = tmp_path / "apply-runner"
    git(tmp_path, "clone", "-q", "--branch", "main", str(checkout), str(runner2))
    shutil.copy(checkout / "plan.json", runner2 / "plan.json")
    bifrost.expire_access_tokens()  # 30 minutes later: the job's first request refreshes
    ((line, apply_env),) = github_job("github-deploy.yml", "apply", ctx)
    assert ran([(line, apply_env)], runner2, env) == ["bifrost-gitops apply plan.json --yes"]
    assert bifrost.state.integration_by_name("HaloPSA") is not None
    # later commands of the job use the rotated pair from BIFROST_CREDENTIALS_FILE
    again = run_step("bifrost-gitops plan . --exit-code", runner2, {**env, **apply_env})
    assert again.returncode == 0, again.stdout + again.stderr  # what was reviewed is live
    # applied once: the same plan again is refused, nothing sent
    proc = run_step(line, runner2, {**env, **apply_env})
    assert proc.returncode == 2 and "changed since this plan was made" in proc.stderr


def test_github_pull_request_plan_comment(checkout: Path, tmp_path: Path, bifrost: FakeBifrost) -> None:
    job = yaml.safe_load((CI / "github-pull-request.yml").read_text())["jobs"]["plan"]
    same_repo = "${{ env.SAME_REPO == 'true' }}"
    assert (
        job["steps"][0]["if"] == "${{ env.SAME_REPO != 'true' }}" and "::notice::" in job["steps"][0]["run"]
    )
    assert all(
        same_repo
        in str(s.get("if")).replace(" && hashFiles('plan.md') != ''", "").replace("always() && ", "")
        or s is job["steps"][0]
        for s in job["steps"]
    )
    (comment,) = [s for s in job["steps"] if "github-script" in str(s.get("uses"))]
    assert (
        "<!-- bifrost-gitops-plan -->" in comment["with"]["script"] and "plan.md" in comment["with"]["script"]
    )

    ctx = live_context(bifrost, tmp_path)
    (plan_step,) = [s for s in job["steps"] if "bifrost-gitops plan" in str(s.get("run"))]
    env = {**clean_env(tmp_path), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    step_env = {k: github_expr(str(v), ctx) for k, v in {**job["env"], **plan_step["env"]}.items()}
    proc = run_block(plan_step["run"], checkout, {**env, **step_env})
    assert proc.returncode == 0, proc.stderr
    md = (checkout / "plan.md").read_text()
    assert (
        md.startswith("### Plan against the live Bifrost\n\n    + ")
        and "    + create integration HaloPSA" in md
    )
    assert md == (tmp_path / "summary.md").read_text()
    no_tokens(proc.stdout + proc.stderr + md)
    assert [r.method for r in bifrost.requests if r.method != "GET"] in ([], ["POST"])  # at most a refresh

    # a plan over the comment limit is cut, and says so
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "bifrost-gitops").write_text("#!/bin/sh\nyes '``` create mapping <b>x</b>' | head -n 5000\n")
    (fake_bin / "bifrost-gitops").chmod(0o755)
    big = run_block(plan_step["run"], checkout, {**env, **step_env, "PATH": f"{fake_bin}:{env['PATH']}"})
    assert big.returncode == 0, big.stderr
    md = (checkout / "plan.md").read_text()
    assert len(md) < 65536 - 100 and md.endswith("(cut at 60000 bytes: the whole plan is in the job log)\n")
    assert all(line.startswith("    ") for line in md.splitlines()[2:-2])  # code block: nothing renders


GITLAB_DEPLOY = ["bifrost:plan-main", "bifrost:apply"]


def test_gitlab_plan_then_manual_apply(checkout: Path, tmp_path: Path, bifrost: FakeBifrost) -> None:
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    apply = doc["bifrost:apply"]
    assert apply["environment"]["name"] == "production"
    assert apply["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "schedule"', "when": "never"},  # the keepalive's pipelines
        {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", "when": "manual"},
    ]
    assert apply["needs"] == ["bifrost:plan-main"] and doc["bifrost:plan-main"]["artifacts"]["paths"] == [
        "plan.json"
    ]
    git(checkout, "checkout", "-q", "main")
    env = {
        **clean_env(tmp_path),
        **GITLAB_VARS,
        **bifrost.env(),
        "SOPS_AGE_KEY": AGE_SECRET,
        "BIFROST_CREDENTIALS_FILE": str(tmp_path / "creds.json"),
    }
    out = ""
    for name in GITLAB_DEPLOY:
        lines, variables = gitlab_job(doc, name)
        for line in lines:
            proc = run_step(line, checkout, {**env, **variables})
            assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
            out += proc.stdout + proc.stderr
        if name == "bifrost:plan-main":
            assert bifrost.state.integration_by_name("HaloPSA") is None
            bifrost.expire_access_tokens()  # the approval came later: the apply job refreshes
    no_tokens(out)
    assert bifrost.state.integration_by_name("HaloPSA") is not None
    assert run_step("bifrost-gitops plan . --exit-code", checkout, env).returncode == 0


def test_gitlab_merge_request_plan(checkout: Path, tmp_path: Path, bifrost: FakeBifrost) -> None:
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    job = doc["bifrost:plan"]
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert job["artifacts"]["paths"] == ["plan.txt"]
    script = "\n".join(flat(job["script"]))
    _lines, variables = gitlab_job(doc, "bifrost:plan")
    env = {
        **gitlab_env(checkout, tmp_path),
        **variables,
        "BIFROST_CREDENTIALS_FILE": str(tmp_path / "creds.json"),
    }
    skipped = run_block(script, checkout, env)  # an MR from a fork: no variables
    assert skipped.returncode == 0 and "No plan against the live Bifrost" in skipped.stdout
    assert not (checkout / "plan.txt").exists() and bifrost.requests == []
    proc = run_block(script, checkout, {**env, **bifrost.env(), "SOPS_AGE_KEY": AGE_SECRET})
    assert proc.returncode == 0, proc.stderr
    assert "create integration HaloPSA" in (checkout / "plan.txt").read_text()
    no_tokens(proc.stdout + proc.stderr)


# GitHub's context availability: a job's env: sees github, needs, strategy, matrix, vars, secrets
# and inputs; `runner` only from a step's env:.
JOB_ENV_CONTEXTS = ("github.", "needs.", "vars.", "secrets.", "inputs.", "matrix.", "strategy.")


@pytest.mark.parametrize("name", GITHUB_RECIPES)
def test_github_job_env_uses_only_contexts_available_there(name: str) -> None:
    for job in yaml.safe_load((CI / name).read_text())["jobs"].values():
        for value in (job.get("env") or {}).values():
            for expr in re.findall(r"\$\{\{(.*?)\}\}", str(value)):
                words = re.findall(r"(?<![\w.])[a-z_]+\.", expr)  # the contexts named
                assert words and all(w.startswith(JOB_ENV_CONTEXTS) for w in words), value
