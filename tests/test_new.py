"""`bifrost-gitops new org|integration|mapping`: files that validate, in the repository's layout."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from support import ROOT, Run, dedent, run_cli

SCHEMA_RE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$", re.MULTILINE)
MakeRepo = Callable[..., Path]
UUID = "3f2b8c1e-5d4a-4e6f-9a7b-0c1d2e3f4a5b"


def new(repo: Path, *args: str) -> Run:
    return run_cli("new", args[0], "-C", str(repo), *args[1:])


def validate_strict(repo: Path) -> None:
    run = run_cli("validate", "--strict", str(repo))
    assert run.code == 0, run.output


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def schema_target(path: Path) -> Path:
    """The file a document's `$schema` comment points at (the test fails when there is none)."""
    found = SCHEMA_RE.search(path.read_text(encoding="utf-8"))
    assert found, f"{path} has no $schema comment"
    return (path.parent / found.group(1)).resolve()


@pytest.fixture
def init_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "fresh"
    assert run_cli("init", str(repo), "--age", "age1" + "q" * 58).code == 0
    return repo


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the example repository, with the project's schemas/ where its `$schema` points."""
    shutil.copytree(ROOT / "examples" / "integrations", tmp_path / "examples" / "integrations")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    return tmp_path / "examples" / "integrations"


def test_init_repo_org_integration_mapping_each_validate(init_repo: Path) -> None:
    run = new(init_repo, "org", "acme", "--id", UUID, "--display-name", "Acme, Inc.")
    assert run.code == 0, run.output
    assert "changed" in run.stdout and "organizations.yaml" in run.stdout
    assert "next: bifrost-gitops new mapping INTEGRATION acme" in run.stdout
    validate_strict(init_repo)

    run = new(init_repo, "integration", "Halo PSA")
    assert run.code == 0, run.output
    integration = init_repo / "integrations" / "Halo PSA" / "integration.yaml"
    assert (integration.parent / "mappings").is_dir()
    assert "next: bifrost-gitops new mapping 'Halo PSA' ORG" in run.stdout
    validate_strict(init_repo)

    run = new(init_repo, "mapping", "Halo PSA", "acme", "--entity-id", "01234", "--entity-name", "no")
    assert run.code == 0, run.output
    mapping = integration.parent / "mappings" / "acme.yaml"
    validate_strict(init_repo)  # "01234" and "no" were quoted: no Y005 trap
    explain = run_cli("explain", str(init_repo), "acme", "Halo PSA", "--format", "json")
    assert '"01234"' in explain.stdout

    for doc in (init_repo / "organizations.yaml", integration, mapping):
        target = schema_target(doc)
        assert target.is_file() and target.parent == (init_repo / ".schemas").resolve()


def test_org_keeps_every_byte_of_the_organizations_file(make_repo: MakeRepo) -> None:
    original = (
        "# header comment\r\n"
        "apiVersion: bifrost-gitops/v1   # trailing\r\n"
        "kind: Organizations\r\n"
        "organizations:\r\n"
        "    -   name: contoso   # four spaces, then a wide dash\r\n"
        "        display_name: 'Contoso Ltd'\r\n"
        "    # between entries\r\n"
        "    -   name: fabrikam\r\n"
        "        display_name: >-\r\n"
        "          Fabrikam,\r\n"
        "          Inc.\r\n"
        "\r\n"
        "# after the list: stays after it\r\n"
        "# - name: not-an-org"
    )
    repo = make_repo({"organizations.yaml": None})
    (repo / "orgs.yaml").write_bytes(original.encode())
    run = new(repo, "org", "woodgrove", "--display-name", "Woodgrove: Bank")
    assert run.code == 0, run.output
    after = (repo / "orgs.yaml").read_bytes().decode()
    added = '    -   name: woodgrove\r\n        display_name: "Woodgrove: Bank"\r\n'
    at = original.index("\r\n\r\n# after") + 2
    assert after == original[:at] + added + original[at:]
    validate_strict(repo)


def test_org_appended_after_a_last_line_without_newline(make_repo: MakeRepo) -> None:
    text = "apiVersion: bifrost-gitops/v1\nkind: Organizations\norganizations:\n- name: contoso"
    repo = make_repo({"organizations.yaml": text})
    assert new(repo, "org", "zeta").code == 0
    assert (repo / "organizations.yaml").read_text() == text + "\n- name: zeta\n"
    run = new(repo, "mapping", "HaloPSA", "zeta")
    assert run.code == 0, run.output
    validate_strict(repo)


def test_org_into_an_empty_flow_list(make_repo: MakeRepo) -> None:
    text = "apiVersion: bifrost-gitops/v1\nkind: Organizations\norganizations: []  # none yet\n"
    repo = make_repo({"organizations.yaml": text, "integrations/HaloPSA/mappings/contoso.yaml": None})
    assert new(repo, "org", "acme").code == 0
    after = (repo / "organizations.yaml").read_text()
    assert after == text.replace(" []", "\n  - name: acme")
    validate_strict(repo)


def test_example_copy_integration_with_provider_and_mappings(example: Path) -> None:
    before = (example / "organizations.yaml").read_bytes()
    assert new(example, "org", "woodgrove", "--id", UUID).code == 0
    added = (example / "organizations.yaml").read_bytes()
    assert added == before + f"  - name: woodgrove\n    id: {UUID}\n".encode()

    run = new(example, "integration", "Autotask", "--oauth", "microsoft")
    assert run.code == 0, run.output
    assert (
        "oauth:\n  provider: microsoft\n" in (example / "integrations/Autotask/integration.yaml").read_text()
    )
    assert new(example, "mapping", "Autotask", "woodgrove", "--entity-id", "tenant-7").code == 0
    assert new(example, "mapping", "HaloPSA", "woodgrove", "--entity-id", "77").code == 0
    assert run_cli("validate", str(example)).code == 0

    schemas = (example / ".." / ".." / "schemas").resolve()  # where the example's documents point
    for rel in ("integrations/Autotask/integration.yaml", "integrations/Autotask/mappings/woodgrove.yaml",
                "integrations/HaloPSA/mappings/woodgrove.yaml"):  # fmt: skip
        target = schema_target(example / rel)
        assert target.is_file() and target.parent == schemas
    assert not (example / ".schemas").exists()


def test_schema_file_written_when_the_repository_has_none(make_repo: MakeRepo) -> None:
    repo = make_repo()  # documents without $schema comments, no .schemas/
    assert new(repo, "mapping", "HaloPSA", "fabrikam").code == 0
    mapping = repo / "integrations/HaloPSA/mappings/fabrikam.yaml"
    assert schema_target(mapping) == (repo / ".schemas/mapping.schema.json").resolve()
    assert schema_target(mapping).is_file()
    validate_strict(repo)


def test_no_organizations_file_yet(make_repo: MakeRepo) -> None:
    repo = make_repo({"organizations.yaml": None, "integrations/HaloPSA/mappings/contoso.yaml": None})
    assert new(repo, "org", "contoso", "--display-name", "2024-01-01").code == 0
    assert (
        (repo / "organizations.yaml")
        .read_text()
        .endswith('  - name: contoso\n    display_name: "2024-01-01"\n')
    )
    validate_strict(repo)


def test_a_new_organizations_file_starts_the_way_init_writes_one(init_repo: Path) -> None:
    """`new org` without an organizations file writes init's head (the same $schema comment,
    explanation and kind), then the one organization it declares."""
    orgs = init_repo / "organizations.yaml"
    made_by_init = orgs.read_text()
    orgs.unlink()

    assert new(init_repo, "org", "acme").code == 0

    head = made_by_init[: made_by_init.index("organizations:\n") + len("organizations:\n")]
    assert "# Every client organization." in head and head.startswith("# yaml-language-server: $schema=")
    assert orgs.read_text() == head + "  - name: acme\n"


def test_mapping_needs_entity_id_when_the_token_url_does(make_repo: MakeRepo) -> None:
    login = "apiVersion: bifrost-gitops/v1\nkind: OAuthProvider\nname: login\nflow: client_credentials\n"
    login += "token_url: https://login.example.com/{entity_id}/token\nclient_id: abc\n"
    graph = "apiVersion: bifrost-gitops/v1\nkind: Integration\nname: Graph\noauth: {provider: login}\n"
    repo = make_repo({"oauth/login.yaml": login, "integrations/Graph/integration.yaml": graph})
    run = new(repo, "mapping", "Graph", "contoso")
    assert run.code == 2 and "--entity-id" in run.stderr
    assert new(repo, "mapping", "Graph", "contoso", "--entity-id", "t1").code == 0
    assert "C008" not in run_cli("validate", str(repo)).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("org", "contoso"), "organization 'contoso' is already declared"),
        (("org", "Acme"), "is not valid: a lower-case slug"),
        (("org", "../acme"), "is not valid"),
        (("org", "acme", "--id", "not-a-uuid"), "--id 'not-a-uuid' is not valid: a UUID"),
        (("org", "acme", "--display-name", "Acme\x1b[31m"), "holds"),
        (("integration", "HaloPSA"), "integration 'HaloPSA' is already declared in integrations/HaloPSA"),
        (("integration", "halopsa"), "already declared"),
        (("integration", "../evil"), "is not valid: 1 to 255 characters, no '/'"),
        (("integration", ".."), "cannot be a folder name"),
        (("integration", ".hidden"), "cannot be a folder name"),
        (("integration", "--", "-rf"), "cannot be a folder name"),
        (("integration", "a\\b"), "cannot be a folder name"),
        (("integration", " Halo"), "cannot be a folder name"),
        (("integration", "Evil\u202egpj.exe"), "holds"),
        (("integration", "Evil\nkind: Mapping"), "holds"),
        (("integration", ""), "is not valid"),
        (("integration", "X", "--oauth", "Graph"), "OAuth provider 'Graph' is not declared"),
        (("mapping", "halopsa", "contoso"), "did you mean 'HaloPSA'?"),
        (
            ("mapping", "HaloPSA", "contsoo"),
            "organization 'contsoo' is not declared (hint: did you mean 'contoso'?)",
        ),
        (("mapping", "HaloPSA", "../../x"), "is not declared"),
        (("mapping", "HaloPSA", "contoso"), "already has a mapping for 'contoso'"),
        (("mapping", "HaloPSA", "fabrikam", "--entity-id", "x\u200b"), "holds"),
    ],
)
def test_refusals_are_one_escaped_line_and_write_nothing(
    make_repo: MakeRepo, args: tuple[str, ...], message: str
) -> None:
    repo = make_repo()
    before = snapshot(repo)
    run = new(repo, *args)
    assert run.code == 2, run.output
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bifrost-gitops: "), run.stderr
    assert message in lines[0]
    assert not re.search("[\x00-\x1f\x7f\u200b\u202e]", run.stderr.rstrip("\n"))
    assert snapshot(repo) == before
    assert not (repo.parent / "evil").exists()


def test_existing_folder_is_not_overwritten(make_repo: MakeRepo) -> None:
    repo = make_repo({"integrations/Notes/readme.txt": None})
    (repo / "integrations" / "Notes").mkdir()
    run = new(repo, "integration", "Notes")
    assert run.code == 2 and "integrations/Notes: already exists" in run.stderr


def test_repo_option_and_subfolder(make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = make_repo()
    run = run_cli("new", "org", "acme", "--repo", str(repo / "integrations"), cwd=tmp_path)
    assert run.code == 0, run.output
    assert f"changed {os.path.relpath(repo / 'organizations.yaml', tmp_path)}" in run.stdout
    assert run_cli("new", "mapping", "HaloPSA", "acme", cwd=repo / "integrations").code == 0
    assert (repo / "integrations/HaloPSA/mappings/acme.yaml").is_file()
    outside = run_cli("new", "org", "x", "-C", str(tmp_path))
    assert outside.code == 2 and "no bifrost-gitops.yaml" in outside.stderr


def test_one_file_per_organization_gets_one_more_file(make_repo: MakeRepo) -> None:
    one = "apiVersion: bifrost-gitops/v1\nkind: Organizations\norganizations:\n  - name: {}\n"
    repo = make_repo(
        {
            "organizations.yaml": None,
            "orgs/contoso.yaml": one.format("contoso"),
            "orgs/fabrikam.yaml": one.format("fabrikam"),
        }
    )
    before = snapshot(repo)
    run = new(repo, "org", "acme", "--display-name", "ACME")
    assert run.code == 0, run.output
    assert "created orgs/acme.yaml" in run.stdout.replace(str(repo) + os.sep, "")
    assert {k: v for k, v in snapshot(repo).items() if k in before} == before
    assert schema_target(repo / "orgs/acme.yaml").is_file()
    assert new(repo, "mapping", "HaloPSA", "acme").code == 0
    validate_strict(repo)


def _readme_steps(text: str, heading: str) -> list[list[str]]:
    """The `bifrost-gitops ...` lines of the first sh block after HEADING, as argument lists."""
    import shlex

    block = text.split(heading, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    steps = []
    for line in block.splitlines():
        for part in line.split("#", 1)[0].split("&&"):
            words = shlex.split(part)
            if words[:1] == ["bifrost-gitops"] and words[1] != "init":
                steps.append(words[1:])
    return steps


@pytest.mark.parametrize(
    ("readme", "heading"),
    [
        (ROOT / "README.md", "## The first ten minutes"),
        (None, "## Add an organization, an integration, a mapping"),  # the README init writes
    ],
)
def test_readme_steps_run_as_written(init_repo: Path, readme: Path | None, heading: str) -> None:
    text = (readme or init_repo / "README.md").read_text(encoding="utf-8")
    steps = _readme_steps(text, heading)
    assert [s[:2] for s in steps if s[0] == "new"] == [
        ["new", "org"],
        ["new", "integration"],
        ["new", "mapping"],
    ]
    for args in steps:
        run = run_cli(*args, cwd=init_repo)
        assert run.code == 0, (args, run.output)
    validate_strict(init_repo)


def test_integrations_sharing_a_folder_get_their_own_mappings_folder(make_repo: MakeRepo) -> None:
    flat = "apiVersion: bifrost-gitops/v1\nkind: Integration\nname: {}\n"
    repo = make_repo({"flat/alpha.yaml": flat.format("Alpha"), "flat/beta.yaml": flat.format("Beta")})
    assert new(repo, "mapping", "Alpha", "contoso").code == 0
    assert new(repo, "mapping", "Beta", "contoso").code == 0
    assert (repo / "flat/mappings/alpha/contoso.yaml").is_file()
    assert (repo / "flat/mappings/beta/contoso.yaml").is_file()
    assert new(repo, "mapping", "Alpha", "fabrikam").code == 0  # beside Alpha's first mapping
    assert (repo / "flat/mappings/alpha/fabrikam.yaml").is_file()
    validate_strict(repo)


def test_hostile_name_as_a_real_process(make_repo: MakeRepo) -> None:
    repo = make_repo()
    run = run_cli("new", "integration", "x\x1b]0;pwned\x07", "-C", str(repo), subprocess=True)
    assert run.code == 2
    assert "\x1b" not in run.output
    assert "integration name 'x\\x1b]0;pwned\\x07' holds a control character (\\x1b)" in run.stderr
    assert not (repo / "integrations" / "x\x1b]0;pwned\x07").exists()


PSA = dedent(
    """
    apiVersion: bifrost-gitops/v1
    kind: Integration
    name: Psa
    config_schema:
      - {key: site, type: string, required: true}
      - {key: limit, type: int}
      - {key: beta, type: bool}
      - {key: extra, type: json}
      - {key: token, type: secret, required: true}
    """
)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ((), "the mapping would not validate: required key 'site' has no value for organization 'contoso' "
         "(hint: give --set KEY=VALUE)"),
        (("site=x", "limit=12a"), "--set limit: '12a' is not an integer"),
        (("site=x", "beta=yes"), "--set beta: 'yes' is not true or false"),
        (("site=x", "extra={bad"), "--set extra: not JSON"),
        (("site",), "--set 'site': KEY=VALUE"),
        (("sitee=x",), "'sitee' is not in the config_schema (hint: did you mean 'site'?)"),
        (("site=x", "token=hunter2"), "--set token: secret-typed; a secret never goes on the command line"),
        (("site=x\x1b[2J",), "--set site 'x\\x1b[2J' holds a control character"),
    ],
)  # fmt: skip
def test_mapping_values_are_checked_before_anything_is_written(
    make_repo: MakeRepo, sets: tuple[str, ...], message: str
) -> None:
    repo = make_repo({"integrations/Psa/integration.yaml": PSA})
    before = snapshot(repo)
    run = new(repo, "mapping", "Psa", "contoso", *(a for s in sets for a in ("--set", s)))
    assert run.code == 2, run.output
    assert message in run.stderr and "hunter2" not in run.output
    assert snapshot(repo) == before


def test_mapping_with_values_then_the_required_secret_as_the_next_step(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from bifrost_gitops.cli import main

    (example / "integrations/Psa").mkdir()
    (example / "integrations/Psa/integration.yaml").write_text(PSA)
    sets = ("site=no", "limit=007", "beta=true", 'extra={"a": [1, "b\\u00e9"], "url": "https://x/y"}')
    run = new(example, "mapping", "Psa", "contoso", *(a for s in sets for a in ("--set", s)))
    assert run.code == 0, run.output
    text = (example / "integrations/Psa/mappings/contoso.yaml").read_text()
    assert (
        'config:\n  site: "no"\n  limit: 7\n  beta: true\n  extra: {"a": [1, "b\\u00e9"], "url": "https://x/y"}\n'
        in text
    )
    step = "next: bifrost-gitops secrets set Psa token --org contoso   (required, no default)"
    assert step in run.stdout

    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(example / "TEST-ONLY-age-key.txt"))
    monkeypatch.chdir(example)  # the next step as typed, in the repository
    args = step.removeprefix("next: bifrost-gitops ").split("   ")[0].split()
    setting = CliRunner().invoke(main, args, input="s3cret\n", env={"NO_COLOR": None})
    assert setting.exit_code == 0, setting.output
    checked = run_cli("validate", str(example))  # the integration's own C007 warning is expected
    assert checked.code == 0 and "Psa/mappings/contoso.yaml" not in checked.stdout, checked.output
    assert "s3cret" not in (example / "integrations/Psa/mappings/contoso.yaml").read_text()


def test_a_path_validate_would_not_read_is_refused(make_repo: MakeRepo) -> None:
    repo = make_repo(
        {"bifrost-gitops.yaml": "apiVersion: bifrost-gitops/v1\nkind: Project\nexclude: [integrations/New]\n"}
    )
    run = new(repo, "integration", "New")
    assert run.code == 2 and "integrations/New/integration.yaml: validate does not read it" in run.stderr
    assert not (repo / "integrations/New").exists()


def test_a_symlinked_organizations_file_stays_a_symlink(make_repo: MakeRepo) -> None:
    repo = make_repo()
    (repo / "orgs").mkdir()
    (repo / "organizations.yaml").rename(repo / "orgs/all.yaml")
    (repo / "organizations.yaml").symlink_to("orgs/all.yaml")
    assert new(repo, "org", "acme").code == 0
    assert (repo / "organizations.yaml").is_symlink()
    assert (repo / "orgs/all.yaml").read_text().endswith("  - name: acme\n")
    assert new(repo, "mapping", "HaloPSA", "acme").code == 0


def test_names_that_any_yaml_reader_could_misread_are_quoted(make_repo: MakeRepo) -> None:
    import yaml

    repo = make_repo()
    for org in ("1e3", "0o17", "12", "y", "on"):
        assert new(repo, "org", org, "--display-name", org).code == 0
        run = new(repo, "mapping", "HaloPSA", org, "--entity-id", "5")  # the name a mapping names
        assert run.code == 0, run.output
    for name in ("1e3", "~", "null", "True", "a: b", "x #y", "[x]", "O'Brien & Co."):
        run = new(repo, "integration", name)
        assert run.code == 0, run.output
        line = (
            (repo / "integrations" / name / "integration.yaml")
            .read_text()
            .split("\nname: ")[1]
            .split("\n")[0]
        )
        assert line == (name if name == "O'Brien & Co." else f'"{name}"')
    orgs = (repo / "organizations.yaml").read_text()
    assert '  - name: "1e3"\n    display_name: "1e3"\n' in orgs and '  - name: "on"\n' in orgs
    assert [o["name"] for o in yaml.safe_load(orgs)["organizations"]][-5:] == ["1e3", "0o17", "12", "y", "on"]
    validate_strict(repo)
