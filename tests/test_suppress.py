"""Suppressing findings on purpose: --ignore, bifrost-gitops.yaml's ignore:, and inline comments.

Every test runs the real CLI on a real repository folder and asserts what a user reads: which
findings are printed, the summary's suppressed count, the exit code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from support import API, ENC, FAKE_SOPS, Run, dedent

Repo = Callable[..., Path]
Cli = Callable[..., Run]

INTEGRATION = "integrations/HaloPSA/integration.yaml"
MAPPING = "integrations/HaloPSA/mappings/contoso.yaml"
PROJECT = "bifrost-gitops.yaml"

#: `tenant` is required with no default: one C007 warning at its key line (line 7).
REQUIRED = API + dedent(
    """
    kind: Integration
    name: HaloPSA
    config_schema:
      - {key: url, type: string}
      - {key: api_key, type: secret}
      - {key: tenant, type: string, required: true}
    defaults:
      config:
        url: https://halo.example.com
    """
)

#: an unknown config key (C001, an error) at line 7, under a `config:` key on line 6
UNKNOWN_KEY = API + dedent(
    """
    kind: Mapping
    integration: HaloPSA
    organization: contoso
    entity_id: "12"
    config:
      colour: blue
      tenant: t1
    """
)


#: C001 at the mapping's 7:3 and C007 (a warning) at the integration's 7:11
FILES = {INTEGRATION: REQUIRED, MAPPING: UNKNOWN_KEY}
CLEAN_MAPPING = UNKNOWN_KEY.replace("  colour: blue\n", "")


def project(extra: str) -> str:
    return API + "kind: Project\n" + dedent(extra)


def test_without_suppression_the_findings_fail(make_repo: Repo, cli: Cli) -> None:
    root = make_repo(FILES)
    run = cli("validate", str(root))
    assert run.code == 1
    assert "C001" in run.stdout and "C007" in run.stdout
    assert "suppressed" not in run.stdout


def test_ignore_on_the_command_line_suppresses_a_code(make_repo: Repo, any_cli: Cli) -> None:
    root = make_repo(FILES)
    run = any_cli("validate", str(root), "--ignore", "C001")
    assert run.code == 0, run.output  # only the C007 warning remains
    assert "C001" not in run.stdout
    assert "C007" in run.stdout
    assert run.stdout.splitlines()[-1].endswith("0 errors, 1 warning, 1 suppressed")


def test_ignore_is_repeatable_and_takes_comma_lists(make_repo: Repo, cli: Cli) -> None:
    root = make_repo(FILES)
    for args in (["--ignore", "C001,c007"], ["--ignore", "C001", "--ignore", "C007"]):
        run = cli("validate", str(root), "--strict", *args)
        assert run.code == 0, run.output
        assert run.stdout.splitlines()[-1] == "4 files checked, no problems, 2 suppressed"


def test_strict_counts_only_unsuppressed_warnings(make_repo: Repo, cli: Cli) -> None:
    root = make_repo({INTEGRATION: REQUIRED, MAPPING: CLEAN_MAPPING})
    assert cli("validate", str(root), "--strict").code == 1
    assert cli("validate", str(root), "--strict", "--ignore", "C007").code == 0


def test_unknown_code_on_the_command_line_is_a_usage_error(make_repo: Repo, cli: Cli) -> None:
    root = make_repo()
    run = cli("validate", str(root), "--ignore", "C099")
    assert run.code == 2
    assert "unknown code 'C099'" in run.stderr
    assert "C001" in run.stderr and "C009" in run.stderr  # the valid codes are named
    assert run.stdout == ""


def test_unsuppressible_codes_are_refused_and_say_why(make_repo: Repo, cli: Cli) -> None:
    root = make_repo()
    for code, why in (("K004", "environment"), ("Y001", "could not be parsed"), ("K001", "clear text")):
        run = cli("validate", str(root), "--ignore", code)
        assert run.code == 2, code
        assert f"{code} cannot be suppressed" in run.stderr and why in run.stderr


def test_a_syntax_error_is_never_suppressed(make_repo: Repo, cli: Cli) -> None:
    broken = "apiVersion: bifrost-gitops/v1\nkind: [unclosed  # bifrost-gitops: ignore-file Y001\n"
    root = make_repo({"broken.yaml": broken, PROJECT: project("ignore: [C007]\n")})
    run = cli("validate", str(root))
    assert run.code == 1
    assert "broken.yaml:" in run.stdout and "Y001" in run.stdout


def test_project_file_ignores_a_code_everywhere(make_repo: Repo, cli: Cli) -> None:
    root = make_repo({INTEGRATION: REQUIRED, MAPPING: CLEAN_MAPPING, PROJECT: project("ignore: [C007]\n")})
    run = cli("validate", str(root), "--strict")
    assert run.code == 0, run.output
    assert run.stdout.strip().endswith("no problems, 1 suppressed")


def test_project_file_ignores_a_code_in_some_paths_only(make_repo: Repo, cli: Cli) -> None:
    rule = "ignore:\n  - code: C001\n    paths: ['integrations/*/mappings/*']\n"
    elsewhere = "ignore:\n  - code: C001\n    paths: [vendor]\n"
    root = make_repo({**FILES, PROJECT: project(rule)})
    assert cli("validate", str(root)).code == 0
    other = make_repo({**FILES, PROJECT: project(elsewhere)})
    run = cli("validate", str(other))
    assert run.code == 1
    assert f"{MAPPING}:7:3: C001" in run.stdout
    # the entry that matched nothing is reported where it stands
    assert f"{PROJECT}:4:11: S005 ignore: C001 suppresses nothing (no C001 finding in vendor)" in run.stdout


def test_project_file_unknown_code_is_a_usage_error_with_its_line(make_repo: Repo, cli: Cli) -> None:
    root = make_repo({PROJECT: project("ignore:\n  - C007\n  - K004\n")})
    run = cli("validate", str(root))
    assert run.code == 2
    assert f"{PROJECT}:5:5: ignore: K004 cannot be suppressed" in run.stderr


def test_project_file_ignore_must_be_codes(make_repo: Repo, cli: Cli) -> None:
    root = make_repo({PROJECT: project("ignore: [colour]\n")})
    run = cli("validate", str(root))
    assert run.code == 1
    assert f"{PROJECT}:3:10: S001" in run.stdout


def test_unused_project_entry_is_a_warning(make_repo: Repo, cli: Cli) -> None:
    root = make_repo({PROJECT: project("ignore: [C009]\n")})
    run = cli("validate", str(root))
    assert run.code == 0  # a warning
    assert f"{PROJECT}:3:10: S005 ignore: C009 suppresses nothing (no C009 finding) (warning)" in run.stdout
    assert cli("validate", str(root), "--strict").code == 1
    # --ignore S005 quiets it (e.g. a shared config across repositories)
    assert cli("validate", str(root), "--strict", "--ignore", "S005").code == 0


def test_inline_comment_on_the_findings_line(make_repo: Repo, cli: Cli) -> None:
    text = UNKNOWN_KEY.replace("colour: blue", "colour: blue  # bifrost-gitops: ignore C001 -- old field")
    root = make_repo({INTEGRATION: REQUIRED, MAPPING: text})
    run = cli("validate", str(root))
    assert run.code == 0, run.output
    assert "C001" not in run.stdout
    assert run.stdout.splitlines()[-1] == "4 files checked: 0 errors, 1 warning, 1 suppressed"


def test_inline_comment_on_the_keys_line_covers_its_block_value(make_repo: Repo, cli: Cli) -> None:
    # a string key given a mapping: C002 points at the value, which starts on the next line
    block = CLEAN_MAPPING.replace("tenant: t1", "tenant:\n    nested: 1")
    root = make_repo({INTEGRATION: REQUIRED, MAPPING: block})
    assert f"{MAPPING}:8:5: C002" in cli("validate", str(root)).stdout
    commented = block.replace("tenant:", "tenant:  # bifrost-gitops: ignore C002")
    root = make_repo({INTEGRATION: REQUIRED, MAPPING: commented})
    run = cli("validate", str(root))
    assert run.code == 0, run.output
    assert run.stdout.splitlines()[-1].endswith("0 errors, 1 warning, 1 suppressed")


def test_key_comment_does_not_cover_a_sibling_on_the_next_line(make_repo: Repo, cli: Cli) -> None:
    text = UNKNOWN_KEY.replace(
        "  colour: blue", "  colour: blue  # bifrost-gitops: ignore C001\n  shade: dark"
    )
    root = make_repo({INTEGRATION: REQUIRED, MAPPING: text})
    run = cli("validate", str(root))
    assert run.code == 1
    assert f"{MAPPING}:8:3: C001 'shade'" in run.stdout
    assert "colour" not in run.stdout


def test_standalone_comment_covers_the_next_line(make_repo: Repo, cli: Cli) -> None:
    text = UNKNOWN_KEY.replace(
        "  colour: blue", "  # legacy key, removed in Q3\n  # bifrost-gitops: ignore C001\n\n  colour: blue"
    )
    root = make_repo({INTEGRATION: REQUIRED, MAPPING: text})
    assert cli("validate", str(root)).code == 0


def test_comment_on_another_line_does_not_suppress(make_repo: Repo, cli: Cli) -> None:
    text = UNKNOWN_KEY.replace("tenant: t1", "tenant: t1  # bifrost-gitops: ignore C001")
    root = make_repo({INTEGRATION: REQUIRED, MAPPING: text})
    run = cli("validate", str(root))
    assert run.code == 1
    assert f"{MAPPING}:7:3: C001" in run.stdout
    assert f"{MAPPING}:8:15: S005 suppression of C001 matches no finding on this line" in run.stdout


def test_ignore_file_comment(make_repo: Repo, cli: Cli) -> None:
    text = "# bifrost-gitops: ignore-file C001, C002\n" + UNKNOWN_KEY
    root = make_repo({INTEGRATION: REQUIRED, MAPPING: text})
    run = cli("validate", str(root))
    assert run.code == 0, run.output
    assert f"{MAPPING}:1:1: S005 suppression of C002 matches no finding in this file" in run.stdout
    assert run.stdout.splitlines()[-1].endswith("0 errors, 2 warnings, 1 suppressed")


def test_unused_comment_in_a_clean_file_is_reported(make_repo: Repo, cli: Cli) -> None:
    clean = API + "kind: Organizations\norganizations:\n  - name: contoso  # bifrost-gitops: ignore R001\n"
    root = make_repo({"organizations.yaml": clean + "  - name: fabrikam\n"})
    run = cli("validate", str(root))
    assert run.stdout.splitlines() == [
        "organizations.yaml:4:20: S005 suppression of R001 matches no finding on this line (warning)",
        "  hint: remove R001 from the comment",
        "4 files checked: 0 errors, 1 warning",
    ]


def test_bad_comments_are_reported_not_obeyed(make_repo: Repo, cli: Cli) -> None:
    text = (
        UNKNOWN_KEY.replace("colour: blue", "colour: blue  # bifrost-gitops: ignore C099")
        .replace("tenant: t1", "tenant: t1  # bifrost-gitops: ignore please")
        .replace('entity_id: "12"', 'entity_id: "12"  # bifrost-gitops: ignore K004')
    )
    root = make_repo({INTEGRATION: REQUIRED, MAPPING: text})
    run = cli("validate", str(root))
    assert run.code == 1
    assert f"{MAPPING}:7:3: C001" in run.stdout
    assert "S005 suppression comment: unknown code 'C099'" in run.stdout
    assert "S005 suppression comment names no code" in run.stdout
    assert "please" not in run.stdout  # the comment's free text is never echoed
    assert "S005 suppression comment: K004 cannot be suppressed" in run.stdout


def test_cli_and_inline_suppressions_of_one_finding_are_both_used(make_repo: Repo, cli: Cli) -> None:
    text = UNKNOWN_KEY.replace("colour: blue", "colour: blue  # bifrost-gitops: ignore C001")
    root = make_repo({INTEGRATION: REQUIRED, MAPPING: text, PROJECT: project("ignore: [C001]\n")})
    run = cli("validate", str(root), "--ignore", "C001", "--format", "json")
    doc = json.loads(run.stdout)
    assert run.code == 0
    # no S005: every suppression matched the finding
    assert [d["code"] for d in doc["diagnostics"]] == ["C007"]
    assert doc["suppressed"] == 1
    assert doc["suppressed_diagnostics"][0]["suppressed_by"] == f"{MAPPING}:7"


def test_json_and_github_summaries(make_repo: Repo, cli: Cli) -> None:
    root = make_repo(FILES)
    run = cli("validate", str(root), "--format", "json", "--ignore", "C001,C007")
    doc = json.loads(run.stdout)
    assert (doc["errors"], doc["warnings"], doc["suppressed"]) == (0, 0, 2)
    got = {(d["code"], d["path"], d["line"], d["suppressed_by"]) for d in doc["suppressed_diagnostics"]}
    assert got == {("C001", MAPPING, 7, "--ignore"), ("C007", INTEGRATION, 7, "--ignore")}
    run = cli("validate", str(root), "--format", "github", "--ignore", "C001")
    assert run.stdout.splitlines()[-1] == "4 files checked: 0 errors, 1 warning, 1 suppressed"
    assert run.stdout.startswith("::warning ")


def test_json_without_suppressions_has_an_empty_list(make_repo: Repo, cli: Cli) -> None:
    doc = json.loads(cli("validate", str(make_repo()), "--format", "json").stdout)
    assert doc["suppressed"] == 0 and doc["suppressed_diagnostics"] == []


def test_suppressed_secret_findings_never_print_the_value(make_repo: Repo, cli: Cli) -> None:
    # a string key under secrets: (C005) carries an ENC value: suppressed, reported without it
    text = CLEAN_MAPPING.replace("config:\n  tenant: t1\n", "") + dedent(
        f"""
        secrets:
          tenant: {ENC}  # bifrost-gitops: ignore C005
          api_key: {ENC}
        """
    )
    root = make_repo({INTEGRATION: REQUIRED, MAPPING: text + FAKE_SOPS})
    doc = json.loads(cli("validate", str(root), "--format", "json").stdout)
    assert [d["code"] for d in doc["suppressed_diagnostics"]] == ["C005"]
    assert "c2VjcmV0" not in json.dumps(doc)


def test_clear_text_secret_cannot_be_suppressed_nor_printed(make_repo: Repo, cli: Cli) -> None:
    secret = "hunter2-very-secret"
    text = CLEAN_MAPPING + f"secrets:\n  api_key: {secret}  # bifrost-gitops: ignore K001\n"
    root = make_repo({INTEGRATION: REQUIRED, MAPPING: text})
    for fmt in ("text", "json", "github"):
        run = cli("validate", str(root), "--format", fmt, "--ignore", "C007")
        assert run.code == 1
        assert secret not in run.output
        assert "K001" in run.stdout and "S005" in run.stdout
    run = cli("validate", str(root))
    assert f"{MAPPING}:9:33: S005 suppression comment: K001 cannot be suppressed" in run.stdout


def test_suppression_in_a_git_revision_reads_that_revision(make_repo: Repo, tmp_path: Path) -> None:
    """The text is read from the tree the findings came from, not from the work tree."""
    import subprocess

    from bifrost_gitops import gitrev, repo, suppress

    text = UNKNOWN_KEY.replace("colour: blue", "colour: blue  # bifrost-gitops: ignore C001")
    root = make_repo({INTEGRATION: REQUIRED, MAPPING: text})
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    (root / MAPPING).write_text(UNKNOWN_KEY)  # the work tree lost the comment
    result = repo.load_tree(gitrev.GitTree(str(root), "HEAD"))
    outcome = suppress.apply(result, result.diagnostics, [])
    assert [s.diagnostic.code for s in outcome.suppressed] == ["C001"]
    assert [d.code for d in outcome.kept] == ["C007"]


def test_unsuppressible_codes_are_documented() -> None:
    from bifrost_gitops.suppress import UNSUPPRESSIBLE
    from support import ROOT

    doc = (ROOT / "docs" / "error-codes.md").read_text()
    table = doc[doc.index("## Suppressing a finding") :]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    listed = set(re.findall(r"`([A-Z][0-9]{3})`", "\n".join(rows)))
    assert listed == set(UNSUPPRESSIBLE)
