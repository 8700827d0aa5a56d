"""``validate --fix``: the findings' mechanical fixes written back, every other byte kept.

Each test writes a real repository, runs the real CLI, and compares the fixed file with the
exact bytes expected: the fixed scalars changed, comments, quoting, indentation and line endings
of everything else untouched. Encrypted files: tests/sops/test_fix_sops.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from support import API, ENC, FAKE_SOPS, Run, dedent, git

MAPPING = "integrations/HaloPSA/mappings/contoso.yaml"

#: string keys for every YAML 1.1 trap, plus a bool, an int and a json key
INTEGRATION = API + dedent(
    """
    kind: Integration
    name: HaloPSA
    config_schema:
      - {key: region, type: string}
      - {key: version, type: string}
      - {key: window, type: string}
      - {key: since, type: string}
      - {key: mode, type: string}
      - {key: beta, type: bool}
      - {key: verbose, type: bool}
      - {key: page_size, type: int}
      - {key: extra, type: json}
      - {key: api_key, type: secret}
    """
)

#: comments, 4-space indentation, a flow mapping, an indented sequence and every trap
TRAPS = (
    "# Contoso: a comment the fix keeps\n"
    + API
    + dedent(
        """
        kind: Mapping   # trailing comment
        integration: HaloPSA
        organization: contoso
        entity_id: 01234
        config:
            region: no          # Norway, not false
            version: 1.10
            window: 1:30
            since: 2024-01-01
            mode: on
            beta: yes
            verbose: 'off'
            page_size: '50'
            extra:
                -   {1: a, keep: 'single', other: "double"}
                - plain
        """
    )
)

FIXED = (
    TRAPS.replace("entity_id: 01234", 'entity_id: "01234"')
    .replace("region: no ", 'region: "no" ')
    .replace("version: 1.10", 'version: "1.10"')
    .replace("window: 1:30", 'window: "1:30"')
    .replace("since: 2024-01-01", 'since: "2024-01-01"')
    .replace("mode: on", 'mode: "on"')
    .replace("beta: yes", "beta: true")
    .replace("verbose: 'off'", "verbose: false")
    .replace("page_size: '50'", "page_size: 50")
    .replace("{1: a,", '{"1": a,')
)

Cli = Callable[..., Run]
Repo = Callable[..., Path]


def _mapping(body: str) -> str:
    """contoso's HaloPSA mapping: the document's head, then BODY."""
    return API + "kind: Mapping\nintegration: HaloPSA\norganization: contoso\n" + body


def test_fix_applies_every_trap_and_keeps_every_other_byte(make_repo: Repo, cli: Cli) -> None:
    repo = make_repo({"integrations/HaloPSA/integration.yaml": INTEGRATION, MAPPING: TRAPS})
    before = cli("validate", str(repo))
    assert before.code == 1 and before.stdout.count(f"{MAPPING}:") == 10, before.stdout

    run = cli("validate", "--fix", str(repo))

    assert (repo / MAPPING).read_bytes() == FIXED.encode()
    assert run.code == 0, run.output
    assert run.stdout.count(": FIXED ") == 10
    assert (
        f"{MAPPING}:6:12: FIXED Y005 '01234' is read by YAML as integer, not text (quoted it)" in run.stdout
    )
    assert f"{MAPPING}:13:11: FIXED Y009" in run.stdout and "(wrote true)" in run.stdout
    assert "fixed 10 in 1 file\n" in run.stdout
    assert run.stdout.endswith("no problems\n")


def test_a_second_fix_changes_nothing(make_repo: Repo, cli: Cli) -> None:
    repo = make_repo({"integrations/HaloPSA/integration.yaml": INTEGRATION, MAPPING: TRAPS})
    assert cli("validate", "--fix", str(repo)).code == 0
    stat = (repo / MAPPING).stat()

    again = cli("validate", "--fix", str(repo))

    assert again.code == 0 and "FIXED" not in again.stdout and "fixed" not in again.stdout
    assert (repo / MAPPING).read_bytes() == FIXED.encode()
    assert (repo / MAPPING).stat().st_ino == stat.st_ino  # not even rewritten


def test_crlf_bom_and_flow_style_stay_as_they_were(make_repo: Repo, cli: Cli) -> None:
    text = (
        "\ufeff# windows editor\r\n"
        + API.replace("\n", "\r\n")
        + "kind: Mapping\r\nintegration: HaloPSA\r\norganization: contoso\r\n"
        + "entity_id: 007\r\nconfig: {region: no,   beta: on}\r\n"
    )
    repo = make_repo({"integrations/HaloPSA/integration.yaml": INTEGRATION, MAPPING: text})

    run = cli("validate", "--fix", str(repo))

    want = text.replace("007", '"007"').replace("region: no,", 'region: "no",').replace("on}", "true}")
    assert (repo / MAPPING).read_bytes() == want.encode()
    assert run.code == 0, run.output


def test_findings_without_a_mechanical_fix_stay_and_fail(make_repo: Repo, cli: Cli) -> None:
    text = _mapping('entity_id: "12"\nconfig:\n  region: no\n  page_size: many\n  nope: 1\n')
    repo = make_repo({"integrations/HaloPSA/integration.yaml": INTEGRATION, MAPPING: text})

    run = cli("validate", "--fix", str(repo))

    assert (repo / MAPPING).read_text() == text.replace("region: no", 'region: "no"')
    assert run.code == 1
    assert "FIXED Y005" in run.stdout
    assert f"{MAPPING}:8:14: C002 'page_size' is an int key, got text" in run.stdout
    assert f"{MAPPING}:9:3: C001" in run.stdout


def test_diff_shows_the_fixes_and_writes_nothing(make_repo: Repo, cli: Cli) -> None:
    repo = make_repo({"integrations/HaloPSA/integration.yaml": INTEGRATION, MAPPING: TRAPS})

    run = cli("validate", "--fix", "--diff", str(repo))

    assert run.code == 1
    assert (repo / MAPPING).read_text() == TRAPS
    assert f"--- a/{MAPPING}\n+++ b/{MAPPING}\n" in run.stdout
    assert '-entity_id: 01234\n+entity_id: "01234"\n' in run.stdout
    assert '+    region: "no"          # Norway, not false\n' in run.stdout
    assert "FIXED" not in run.stdout
    assert cli("validate", "--fix", "--diff", str(make_repo())).code == 0  # nothing to change


def test_a_diff_never_shows_a_secret(make_repo: Repo, cli: Cli) -> None:
    """A clear secret (a K002 finding of its own), or a secret-typed key under config: (C004),
    next to a fixed line is diff context: masked, as diff and explain mask it."""
    text = _mapping(
        'entity_id: "12"\nconfig:\n  region: no\n  api_key: misplaced-555\nsecrets:\n  api_key: hunter2-0987654\n'
    )
    repo = make_repo({"integrations/HaloPSA/integration.yaml": INTEGRATION, MAPPING: text})

    shown = cli("validate", "--fix", "--diff", str(repo))
    suppressed = cli("validate", "--fix", "--diff", "--ignore", "C004", str(repo))  # still a secret
    run = cli("validate", "--fix", str(repo))

    masked = " <a line under secrets:, not shown>\n"
    assert masked + " secrets:\n" + masked in shown.stdout
    assert '+  region: "no"\n' in shown.stdout and '+  region: "no"\n' in suppressed.stdout
    for out in (shown.output, suppressed.output, run.output):
        assert "0987654" not in out and "misplaced-555" not in out
    assert (repo / MAPPING).read_text() == text.replace("region: no", 'region: "no"')
    assert run.code == 1 and "K002" in run.stdout and "C004" in run.stdout  # for a person


def test_fix_is_for_the_work_tree_only(make_repo: Repo, cli: Cli) -> None:
    repo = make_repo()
    for args in (["--fix", "--staged"], ["--fix", "--rev", "HEAD"], ["--diff"], ["--diff", "--staged"]):
        run = cli("validate", *args, str(repo))
        assert run.code == 2, args
        assert run.stderr.startswith("bifrost-gitops: ") and run.stderr.count("\n") == 1


def test_suppressed_findings_are_not_fixed(make_repo: Repo, cli: Cli) -> None:
    repo = make_repo({"integrations/HaloPSA/integration.yaml": INTEGRATION, MAPPING: TRAPS})

    run = cli("validate", "--fix", "--ignore", "Y005,Y009,C002", str(repo))

    assert (repo / MAPPING).read_text() == TRAPS
    assert run.code == 0 and "FIXED" not in run.stdout


def test_mode_symlink_and_json_output(make_repo: Repo, cli: Cli) -> None:
    """The file keeps its mode; a symlinked file is fixed where it really is (the link stays);
    with --format json the fix lines go to stderr and stdout stays one JSON document."""
    import json

    repo = make_repo({"integrations/HaloPSA/integration.yaml": INTEGRATION})
    (repo / "common").mkdir()
    (repo / "common/contoso.yaml").write_text(TRAPS)
    os.chmod(repo / "common/contoso.yaml", 0o640)
    (repo / MAPPING).unlink()
    os.symlink("../../../common/contoso.yaml", repo / MAPPING)
    (repo / "bifrost-gitops.yaml").write_text(API + "kind: Project\nexclude: [common/]\n")

    run = cli("validate", "--fix", "--format", "json", str(repo))

    assert json.loads(run.stdout)["errors"] == 0
    assert f"{MAPPING}:6:12: FIXED Y005" in run.stderr
    assert (repo / MAPPING).is_symlink()
    assert (repo / "common/contoso.yaml").read_text() == FIXED
    assert (repo / "common/contoso.yaml").stat().st_mode & 0o777 == 0o640


def test_hostile_file_names_are_escaped_in_the_report(make_repo: Repo, cli: Cli) -> None:
    name = "integrations/HaloPSA/mappings/evil\x1b[2J\u202e.yaml"
    text = TRAPS.replace("organization: contoso", "organization: fabrikam")
    repo = make_repo({"integrations/HaloPSA/integration.yaml": INTEGRATION, name: text})

    shown = cli("validate", "--fix", "--diff", str(repo))
    run = cli("validate", "--fix", str(repo))

    assert "+++ b/integrations/HaloPSA/mappings/evil\\x1b[2J\\u202e.yaml\n" in shown.stdout
    for out in (shown.output, run.output):
        assert "\x1b" not in out and "\u202e" not in out
    assert "evil\\x1b[2J\\u202e.yaml:6:12: FIXED Y005" in run.stdout
    assert (repo / name).read_text() == FIXED.replace("organization: contoso", "organization: fabrikam")


# --- $schema comments ---------------------------------------------------------------------


@pytest.fixture
def init_repo(tmp_path: Path, cli: Cli) -> Path:
    """A repository made by `init` (it has .schemas/ and writes $schema comments)."""
    assert cli("init", str(tmp_path / "r"), "--age", "age1" + "q" * 58).code == 0
    return tmp_path / "r"


def test_a_copied_files_schema_path_is_repointed(init_repo: Path, cli: Cli) -> None:
    """A mapping copied one folder up keeps the comment of its old place; --fix repoints it."""
    good = (init_repo / "integrations/Example/mappings/contoso.yaml").read_text()
    moved = init_repo / "integrations/Example/contoso-copy.yaml"
    moved.write_text("# copied\n" + good.replace("organization: contoso", "organization: fabrikam"))
    late = init_repo / "integrations/Example/late.yaml"  # a comment below the document starts: not ours
    late_text = (
        good.split("\n", 1)[1]
        .replace("organization: contoso", "organization: northwind")
        .replace("kind: Mapping", "kind: Mapping\n# yaml-language-server: $schema=wrong.json")
    )
    late.write_text(late_text)
    orgs = (init_repo / "organizations.yaml").read_text()
    (init_repo / "organizations.yaml").write_text(orgs + "  - name: northwind\n")

    run = cli("validate", "--fix", str(init_repo))

    want = "# copied\n" + good.replace("../../../.schemas/", "../../.schemas/", 1)
    assert moved.read_text() == want.replace("organization: contoso", "organization: fabrikam")
    assert late.read_text() == late_text
    assert (init_repo / "integrations/Example/mappings/contoso.yaml").read_text() == good
    rel = "integrations/Example/contoso-copy.yaml"
    assert f"{rel}:2:33: FIXED $schema comment does not point to this kind's schema" in run.stdout
    assert "(now ../../.schemas/mapping.schema.json, was ../../../.schemas/mapping.schema.json)" in run.stdout
    assert run.code == 0, run.output
    target = moved.parent / "../../.schemas/mapping.schema.json"
    assert target.is_file()


def test_schema_urls_and_repos_without_schemas_are_left_alone(
    init_repo: Path, make_repo: Repo, cli: Cli
) -> None:
    org = init_repo / "organizations.yaml"
    url = "# yaml-language-server: $schema=https://example.com/organizations.schema.json\n"
    org.write_text(url + org.read_text().split("\n", 1)[1])
    plain = make_repo(
        {
            MAPPING: "# yaml-language-server: $schema=nowhere.json\n"
            + dedent(
                """
        apiVersion: bifrost-gitops/v1
        kind: Mapping
        integration: HaloPSA
        organization: contoso
        entity_id: "12"
        """
            )
        }
    )
    before = (org.read_bytes(), (plain / MAPPING).read_bytes())

    runs = [cli("validate", "--fix", str(init_repo)), cli("validate", "--fix", str(plain))]

    assert (org.read_bytes(), (plain / MAPPING).read_bytes()) == before
    assert all(r.code == 0 and "FIXED" not in r.stdout for r in runs)


# --- encrypted files (no key needed: the fix never decrypts) ------------------------------


def _encrypted(config: str, sops: str) -> str:
    """A mapping with entity_id 01234, CONFIG (lines) under config:, a ciphertext and SOPS metadata."""
    return _mapping("entity_id: 01234\nconfig:\n" + config + f"secrets:\n  api_key: {ENC}\n" + sops)


def test_in_an_encrypted_file_only_mac_neutral_fixes_are_made(make_repo: Repo, cli: Cli) -> None:
    """sops hashes clear values into the MAC: `no` is the text "no" to sops quoted or not, so it
    is fixed; `01234` is the number 668 to sops, so quoting it would break the MAC: left."""
    text = _encrypted("  region: no\n  beta: yes\n", FAKE_SOPS.replace("  mac_only_encrypted: true\n", ""))
    repo = make_repo({"integrations/HaloPSA/integration.yaml": INTEGRATION, MAPPING: text})

    run = cli("validate", "--fix", str(repo))

    assert (repo / MAPPING).read_text() == text.replace("region: no", 'region: "no"')
    assert f"{MAPPING}:5:12: LEFT Y005" in run.stdout
    assert "left for a person: the file is sops-encrypted and its MAC covers this value" in run.stdout
    assert f"hint: make the change in `sops edit {MAPPING}`" in run.stdout
    assert f"{MAPPING}:8:9: LEFT Y009" in run.stdout
    assert "fixed 1 in 1 file, 2 left for a person" in run.stdout
    assert run.code == 1 and f"{MAPPING}:5:12: Y005" in run.stdout


def test_mac_only_encrypted_files_take_every_clear_fix(make_repo: Repo, cli: Cli) -> None:
    text = _encrypted("  region: no\n  beta: yes\n", FAKE_SOPS)
    repo = make_repo({"integrations/HaloPSA/integration.yaml": INTEGRATION, MAPPING: text})

    run = cli("validate", "--fix", str(repo))

    want = text.replace("01234", '"01234"').replace("region: no", 'region: "no"')
    assert (repo / MAPPING).read_text() == want.replace("beta: yes", "beta: true")
    assert run.code == 0, run.output


def test_git_repo_fix_touches_only_the_fixed_lines(make_repo: Repo, cli: Cli) -> None:
    """What a reviewer sees: `git diff` after --fix lists only the fixed lines."""
    repo = make_repo({"integrations/HaloPSA/integration.yaml": INTEGRATION, MAPPING: TRAPS})
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "traps")

    assert cli("validate", "--fix", str(repo)).code == 0

    stat = git(repo, "diff", "--numstat")
    assert stat == f"10\t10\t{MAPPING}\n"


def test_a_finding_about_a_file_changed_since_is_not_applied(make_repo: Repo) -> None:
    """The finding's position now holds another value (the file was edited after the check):
    --fix must not quote whatever happens to stand there."""
    from bifrost_gitops import fix, repo

    root = make_repo({"integrations/HaloPSA/integration.yaml": INTEGRATION, MAPPING: TRAPS})
    result = repo.load(str(root))
    edited = TRAPS.replace("entity_id: 01234", "entity_id: 98765").replace("region: no ", "region: eu ")
    (root / MAPPING).write_text(edited)

    found = fix.plan(str(root), result.diagnostics, {})

    changed = found.changed[0].after.decode()
    assert "entity_id: 98765" in changed and "region: eu " in changed  # stale: left as they are
    assert 'version: "1.10"' in changed  # still the trap it was reported as


def test_every_trap_of_a_broken_document_is_reported_and_fixed_in_one_run(make_repo: Repo, cli: Cli) -> None:
    """An organization named by a date loads as text, so the schema does not see it: it is
    reported beside the document's schema errors, not after they are fixed."""
    orgs = API + dedent(
        """
        kind: Organizations
        organizations:
          - name: contoso
            display_name: yes   # a comment
          - {name: fabrikam, display_name: 1.10}
          - name: 2024-01-01
        """
    )
    repo = make_repo({"organizations.yaml": orgs})
    first = cli("validate", str(repo))
    assert [line.split(" Y005 ")[0] for line in first.stdout.splitlines() if " Y005 " in line] == [
        "organizations.yaml:5:19:",
        "organizations.yaml:6:36:",
        "organizations.yaml:7:11:",
    ], first.output

    run = cli("validate", "--fix", str(repo))

    want = orgs.replace("display_name: yes", 'display_name: "yes"').replace("1.10}", '"1.10"}')
    assert (repo / "organizations.yaml").read_text() == want.replace("name: 2024-01-01", 'name: "2024-01-01"')
    assert "organizations.yaml:7:11: FIXED Y005 '2024-01-01' is read by YAML as date" in run.stdout
    assert "fixed 3 in 1 file\n" in run.stdout
    assert run.code == 0, run.output


def test_a_reworded_message_does_not_change_what_fix_does(make_repo: Repo) -> None:
    """--fix reads what to change from each finding's remedy (remedy.py), never from the
    wording of its message: the same findings with other messages give the same bytes."""
    from bifrost_gitops import fix, repo

    root = make_repo({"integrations/HaloPSA/integration.yaml": INTEGRATION, MAPPING: TRAPS})
    found = repo.load(str(root)).diagnostics
    reworded = [d._replace(message="said another way") for d in found]

    planned = fix.plan(str(root), reworded, {})

    assert [f.after.decode() for f in planned.changed] == [FIXED]
    assert len(planned.outcomes) == 10 and all(o.fixed for o in planned.outcomes)


def test_every_hint_that_names_a_fix_reads_back_as_its_remedy() -> None:
    from bifrost_gitops.diagnostics import error
    from bifrost_gitops.remedy import UNQUOTE_HINT, Kind, Remedy, bool_hint, of, quote_hint, quote_key_hint

    def remedy(code: str, hint: str | None) -> Remedy | None:
        return of(error(code, "a.yaml", (1, 1), "any words at all", hint))

    assert remedy("Y005", quote_hint("no")) == Remedy(Kind.QUOTE, "no")
    assert remedy("Y005", quote_hint('say "hi"')) == Remedy(Kind.QUOTE, 'say "hi"')
    assert remedy("Y005", quote_hint(None)) == Remedy(Kind.QUOTE)  # under secrets: no text
    assert remedy("Y005", quote_key_hint("1")) == Remedy(Kind.QUOTE, "1")
    assert remedy("Y009", bool_hint("beta", "true")) == Remedy(Kind.BOOL, key="beta", word="true")
    assert remedy("C002", bool_hint("a: b", "false")) == Remedy(Kind.BOOL, key="a: b", word="false")
    assert remedy("C002", UNQUOTE_HINT) == Remedy(Kind.UNQUOTE)
    for code, hint in [
        ("Y005", "write an integer"),
        ("Y005", None),
        ("Y009", bool_hint("beta", "true or false")),
        ("C002", "write true or false, unquoted"),
        ("C001", quote_hint("no")),
        ("Y005", UNQUOTE_HINT),
    ]:
        assert remedy(code, hint) is None, (code, hint)


def test_a_trap_where_a_number_or_boolean_is_wanted_is_not_quoted(make_repo: Repo, cli: Cli) -> None:
    """Quoting keeps a scalar text, which mends nothing where the schema wants true or false:
    the hint says what to write instead, and --fix leaves the value for a person."""
    text = INTEGRATION.replace("{key: region, type: string}", "{key: region, type: string, required: 1}")
    repo = make_repo({"integrations/HaloPSA/integration.yaml": text})

    run = cli("validate", "--fix", str(repo))

    assert "'1' is read by YAML as integer, not true or false" in run.stdout, run.output
    assert "hint: write true or false\n" in run.stdout and "quote it" not in run.stdout
    assert "FIXED" not in run.stdout and run.code == 1
    assert (repo / "integrations/HaloPSA/integration.yaml").read_text() == text


def test_the_diff_applies_with_git_apply(make_repo: Repo, cli: Cli, tmp_path: Path) -> None:
    """--fix --diff is a patch: git apply takes it, fixing the file's last line included."""
    text = _mapping('entity_id: "12"\nconfig:\n  region: no\n')
    repo = make_repo({"integrations/HaloPSA/integration.yaml": INTEGRATION, MAPPING: text})
    shown = cli("validate", "--fix", "--diff", str(repo))
    assert shown.code == 1 and '+  region: "no"\n' in shown.stdout
    patch = tmp_path / "fix.patch"
    patch.write_text(shown.stdout)
    git(repo, "init", "-q")
    git(repo, "apply", str(patch))
    assert (repo / MAPPING).read_text() == text.replace("region: no", 'region: "no"')
