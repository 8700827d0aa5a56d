"""What a user sees of the findings: YAML 1.1 boolean words, paths from anywhere, colour only
where a terminal reads it, and a --help that names every command."""

from __future__ import annotations

import json
import re
import subprocess as sp
from collections.abc import Callable
from pathlib import Path

import click
import pytest

from bifrost_gitops.cli import main
from support import API, BASE_FILES, Run, dedent, line_of

MAPPING = "integrations/HaloPSA/mappings/contoso.yaml"
#: the escape sequences colour.py writes; any other ESC in an output is a forged one
OUR_SGR = re.compile(r"\x1b\[(?:0|1|2|31|32|33|1;31)m")


def mapping(beta: str) -> dict[str, str]:
    """The base repository's contoso mapping with ``beta: BETA`` added to its config."""
    return {MAPPING: BASE_FILES[MAPPING] + f"  beta: {beta}\n"}


def findings(r: Run) -> list[dict[str, object]]:
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict)
    found = doc["diagnostics"]
    assert isinstance(found, list)
    return found


# --- YAML 1.1 boolean words -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "fix"), [("yes", "true"), ("Off", "false"), ("ON", "true"), ("no", "false")]
)
def test_a_yaml11_boolean_word_is_a_warning_with_the_fix(
    make_repo: Callable[..., Path], cli: Callable[..., Run], word: str, fix: str
) -> None:
    root = make_repo(mapping(word))
    r = cli("validate", str(root))
    assert r.code == 0, r  # a warning: the value is a boolean here
    line = line_of((root / MAPPING).read_text(), "beta:")
    assert r.stdout.splitlines()[:2] == [
        f"{MAPPING}:{line}:9: Y009 {word!r} is a YAML 1.1 boolean word: read here as {fix}, "
        "but as text by YAML 1.2 tools (warning)",
        f"  hint: write beta: {fix}",
    ]
    assert cli("validate", "--strict", str(root)).code == 1
    [found] = findings(cli("validate", "--format", "json", str(root)))
    assert (found["code"], found["severity"], found["line"], found["col"]) == ("Y009", "warning", line, 9)


def test_true_and_false_are_fine(make_repo: Callable[..., Path], cli: Callable[..., Run]) -> None:
    for word in ("true", "False"):
        r = cli("validate", str(make_repo(mapping(word))))
        assert r.code == 0 and r.stdout.endswith("no problems\n"), r


@pytest.mark.parametrize(
    ("word", "fix"), [("y", "true"), ("N", "false"), ("yEs", "true"), ('"off"', "false")]
)
def test_a_boolean_word_read_as_text_gets_the_fix_in_its_c002(
    make_repo: Callable[..., Path], cli: Callable[..., Run], word: str, fix: str
) -> None:
    r = cli("validate", "--format", "json", str(make_repo(mapping(word))))
    assert r.code == 1
    [found] = findings(r)
    assert (found["code"], found["severity"], found["hint"]) == ("C002", "error", f"write beta: {fix}")


# --- paths from a subfolder, a relative REPO, a repository inside a git repository ------------


def git(cwd: Path, *args: str) -> None:
    sp.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_paths_are_the_same_from_anywhere(
    tmp_path: Path, make_repo: Callable[..., Path], cli: Callable[..., Run]
) -> None:
    """text/json: relative to the repository root; github: to the git work tree's root, where
    GitHub resolves annotations, also when the repository is a subfolder of the git one."""
    top = tmp_path / "top"
    root = make_repo(mapping('"maybe"'))
    (top / "infra").mkdir(parents=True)
    root.rename(top / "infra" / "bifrost")
    git(top, "init", "-q")
    line = line_of((top / "infra/bifrost" / MAPPING).read_text(), "beta:")
    want = f"{MAPPING}:{line}:9: C002"
    runs = [
        (top, "infra/bifrost"),
        (top / "infra", "bifrost"),
        (top / "infra/bifrost/integrations/HaloPSA", "."),
        (top / "infra/bifrost/integrations/HaloPSA", "../.."),
    ]
    for cwd, repo in runs:
        text = cli("validate", repo, cwd=cwd)
        assert text.stdout.startswith(want), (cwd, repo, text)
        [found] = findings(cli("validate", repo, "--format", "json", cwd=cwd))
        assert found["path"] == MAPPING
        gh = cli("validate", repo, "--format", "github", cwd=cwd)
        assert gh.stdout.startswith(f"::error file=infra/bifrost/{MAPPING},line={line},col=9,title=C002::"), (
            gh
        )


def test_github_paths_outside_git_are_relative_to_where_it_runs(
    tmp_path: Path, make_repo: Callable[..., Path], cli: Callable[..., Run]
) -> None:
    root = make_repo(mapping('"maybe"'))
    gh = cli("validate", root.name, "--format", "github", cwd=root.parent)
    assert gh.stdout.startswith(f"::error file={root.name}/{MAPPING},"), gh


# --- colour ------------------------------------------------------------------------------------


def hostile_repo(make_repo: Callable[..., Path]) -> Path:
    """A mapping file whose name tries to close our colour and open its own."""
    text = API + 'kind: Mapping\nintegration: HaloPSA\norganization: nobody\nentity_id: "1"\n'
    return make_repo({"integrations/HaloPSA/mappings/\x1b[0m\x1b[32mforged.yaml": text, **mapping("yes")})


@pytest.mark.parametrize(
    ("env", "args", "coloured"),
    [
        ({"FORCE_COLOR": "1"}, [], True),
        ({"CLICOLOR_FORCE": "1"}, [], True),
        ({"FORCE_COLOR": "0"}, [], False),
        ({}, [], False),  # not a terminal
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, [], False),
        ({"FORCE_COLOR": "1"}, ["--color", "never"], False),
        ({"NO_COLOR": "1"}, ["--color", "always"], True),
    ],
)
def test_validate_colour_follows_the_environment_and_the_option(
    make_repo: Callable[..., Path],
    any_cli: Callable[..., Run],
    env: dict[str, str],
    args: list[str],
    coloured: bool,
) -> None:
    root = hostile_repo(make_repo)
    r = any_cli(*args, "validate", str(root), env=env)
    assert r.code == 1
    assert ("\x1b[" in r.stdout) is coloured, r.stdout
    assert "\\x1b[0m\\x1b[32mforged" in r.stdout  # the name's escapes are shown, not obeyed
    assert OUR_SGR.sub("", r.stdout).count("\x1b") == 0


@pytest.mark.parametrize("fmt", ["json", "github"])
def test_machine_formats_never_get_colour(
    make_repo: Callable[..., Path], cli: Callable[..., Run], fmt: str
) -> None:
    root = hostile_repo(make_repo)
    r = cli("--color", "always", "validate", str(root), "--format", fmt, env={"FORCE_COLOR": "1"})
    assert r.code == 1 and "\x1b" not in r.stdout, r.stdout


def test_explain_is_coloured_only_when_asked(make_repo: Callable[..., Path], cli: Callable[..., Run]) -> None:
    root = make_repo()
    plain = cli("explain", str(root), "contoso", "HaloPSA")
    assert plain.code == 0 and "\x1b" not in plain.stdout
    coloured = cli("explain", str(root), "contoso", "HaloPSA", env={"FORCE_COLOR": "1"})
    assert coloured.stdout.startswith("\x1b[1mcontoso / HaloPSA\x1b[0m\n")
    assert OUR_SGR.sub("", coloured.stdout) == plain.stdout
    assert (
        "\x1b"
        not in cli(
            "explain", str(root), "contoso", "HaloPSA", "--format", "json", env={"FORCE_COLOR": "1"}
        ).stdout
    )


def test_diff_is_coloured_only_in_text(make_repo: Callable[..., Path], cli: Callable[..., Run]) -> None:
    root = make_repo()
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    (root / MAPPING).write_text((root / MAPPING).read_text().replace("page_size: 50", "page_size: 60"))
    plain = cli("diff", str(root), "--base", "HEAD")
    assert plain.code == 0 and "page_size: 50 -> 60" in plain.stdout and "\x1b" not in plain.stdout
    coloured = cli("diff", str(root), "--base", "HEAD", env={"CLICOLOR_FORCE": "1"})
    assert "\x1b[33m  config.page_size: 50 -> 60" in coloured.stdout
    assert OUR_SGR.sub("", coloured.stdout) == plain.stdout
    for fmt in ("markdown", "json"):
        assert (
            "\x1b"
            not in cli("diff", str(root), "--base", "HEAD", "--format", fmt, env={"FORCE_COLOR": "1"}).stdout
        )


# --- --help ------------------------------------------------------------------------------------


def test_help_names_every_command_with_a_whole_line() -> None:
    from support import run_cli

    r = run_cli("--help")
    assert r.code == 0
    listed = r.stdout.split("Commands:\n", 1)[1]
    for name, cmd in main.commands.items():
        line = next((x for x in listed.splitlines() if x.split()[:1] == [name]), None)
        assert line is not None, f"{name} missing from --help"
        assert "..." not in line and cmd.short_help, line  # said in full, not cut off
        if isinstance(cmd, click.Group):  # its subcommands are named on its line
            assert all(sub in line for sub in cmd.commands), line
    assert {"validate", "compile", "diff", "explain", "plan", "apply", "import", "publish", "secrets"} <= set(
        main.commands
    )


# --- where an altered secret is -----------------------------------------------------------------


def test_an_altered_value_is_found_by_its_sops_key_path(tmp_path: Path) -> None:
    from bifrost_gitops import loader
    from bifrost_gitops.secretops import integrity_pos
    from bifrost_gitops.sops import IntegrityError

    (tmp_path / "f.yaml").write_text(
        dedent(
            """
            secrets:
              a: x
              "a:b":
                c: x
              l:
                - x
            sops:
              mac: x
            """
        )
    )
    doc, _ = loader.load_file(str(tmp_path), "f.yaml")
    assert doc is not None

    def at(**where: str) -> tuple[int, int]:
        return integrity_pos(doc, IntegrityError("altered", file="f.yaml", **where))

    assert at(value_at="secrets:a:") == (2, 6)
    assert at(value_at="secrets:a:b:c:") == (4, 8)  # a key holding ":" is still found
    assert at(value_at="secrets:l:") == (6, 5)  # sops names list items by their list
    assert at(meta_key="mac") == (8, 3)
    assert at() == (0, 0)  # unknown (the sops binary said so): the file's start
