"""validate knows git: --staged checks what the commit will contain, --rev any revision, and in a
git work tree the files git ignores are not read. Outside git, the folder is read as it is."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bifrost_gitops import loader, scaffold
from support import API, Run, git, run_cli, write_repo

MAPPING = "integrations/HaloPSA/mappings/contoso.yaml"
#: A mapping for an organization nobody declared: R002 wherever it is read.
STRAY = API + 'kind: Mapping\nintegration: HaloPSA\norganization: nobody\nentity_id: "9"\n'


def committed(root: Path, files: dict[str, str | None] | None = None, top: Path | None = None) -> Path:
    """The base repository (plus FILES) at ROOT, committed in a new git repository at TOP
    (default: ROOT itself)."""
    write_repo(root, files)
    top = top or root
    git(top, "init", "-q", "-b", "main")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "base")
    return root


def validate(root: Path, *args: str) -> Run:
    return run_cli("validate", *args, cwd=root)


def test_staged_checks_the_index_not_the_work_tree(tmp_path: Path) -> None:
    root = committed(tmp_path / "r")
    good = (root / MAPPING).read_text()
    (root / MAPPING).write_text(good.replace("organization: contoso", "organization: nobody"))
    git(root, "add", MAPPING)
    (root / MAPPING).write_text(good)  # fixed in the work tree only: the commit would still be broken
    staged = validate(root, "--staged")
    assert staged.code == 1 and f"{MAPPING}:4:15: R002" in staged.stdout, staged
    assert validate(root).code == 0

    git(root, "add", MAPPING)  # the reverse: a good file staged, broken afterwards in the work tree
    (root / MAPPING).write_text(good.replace("organization: contoso", "organization: nobody"))
    assert validate(root, "--staged").code == 0
    assert validate(root).code == 1


def test_staged_sees_a_deletion_and_ignores_untracked_files(tmp_path: Path) -> None:
    root = committed(tmp_path / "r")
    (root / "integrations/HaloPSA/mappings/wip.yaml").write_text(STRAY)  # untracked, unfinished
    assert validate(root, "--staged").code == 0
    git(root, "rm", "-q", "organizations.yaml")
    run = validate(root, "--staged")
    assert run.code == 1 and f"{MAPPING}:4:15: R002 organization 'contoso'" in run.stdout, run
    assert "wip.yaml" not in run.output
    assert "3 files checked" in run.stdout


def test_rev_checks_any_revision_with_repo_relative_paths(tmp_path: Path) -> None:
    top = tmp_path / "top"
    root = committed(top / "config", top=top)  # the repository is a subfolder of the git work tree
    git(root, "rm", "-q", "organizations.yaml")
    staged = run_cli("validate", "--staged", "config", cwd=top)
    assert staged.code == 1 and staged.stdout.startswith(f"{MAPPING}:4:15: R002"), staged
    git(root, "commit", "-q", "-m", "drop the organizations")
    assert run_cli("validate", "--rev", "HEAD~1", "config", cwd=top).code == 0
    run = run_cli("validate", "--rev", "HEAD", "config", cwd=top)
    assert run.code == 1 and run.stdout.startswith(f"{MAPPING}:4:15: R002 organization 'contoso'"), run
    github = run_cli("validate", "--rev", "main", "--format", "github", "config", cwd=top)
    assert f"::error file=config/{MAPPING},line=4,col=15,title=R002::" in github.stdout, github


@pytest.mark.parametrize("rev", ["--output=out.txt", "-h", "no-such-branch", "HEAD:bifrost-gitops.yaml"])
def test_rev_is_a_revision_never_an_option(tmp_path: Path, rev: str) -> None:
    root = committed(tmp_path / "r")
    run = validate(root, f"--rev={rev}")
    assert not (root / "out.txt").exists()
    assert run.code == 2 and f"unknown revision '{rev}'" in run.stderr, run


def test_usage_errors(tmp_path: Path) -> None:
    root = committed(tmp_path / "r")
    assert "give one" in validate(root, "--staged", "--rev", "HEAD").stderr
    both = validate(root, "--staged", "--decrypt")
    assert both.code == 2 and "cannot be combined" in both.stderr
    outside = write_repo(tmp_path / "plain")
    run = validate(outside, "--staged")
    assert run.code == 2 and "not a git repository" in run.stderr.lower(), run
    assert validate(outside).code == 0  # outside git: the folder, as always
    fresh = write_repo(tmp_path / "fresh")
    git(fresh, "init", "-q")
    unstaged = validate(fresh, "--staged")
    assert unstaged.code == 2 and "bifrost-gitops.yaml is not staged" in unstaged.stderr, unstaged
    git(fresh, "add", "organizations.yaml")
    git(fresh, "commit", "-q", "-m", "organizations first")
    norepo = validate(fresh, "--rev", "HEAD")
    assert norepo.code == 2 and "no bifrost-gitops.yaml in revision 'HEAD'" in norepo.stderr, norepo


def test_plain_validate_skips_what_git_ignores(tmp_path: Path) -> None:
    root = committed(tmp_path / "r", {".gitignore": "*.dec.yaml\n/scratch/\n"})
    # `sops decrypt x.yaml > x.dec.yaml`: a second mapping for contoso (R004) if it were read
    (root / MAPPING.replace(".yaml", ".dec.yaml")).write_text((root / MAPPING).read_text())
    (root / "scratch").mkdir()
    (root / "scratch/broken.yaml").write_text("kind: [")
    (root / "scratch/stray.yaml").write_text(STRAY)
    run = validate(root)
    assert run.code == 0 and "4 files checked, no problems" in run.stdout, run
    # a tracked file stays checked even when a pattern matches it (git keeps tracking it)
    git(root, "add", "-f", "scratch/stray.yaml")
    assert "scratch/stray.yaml:4:15: R002" in validate(root).stdout
    # outside git the same folder is read as it is: every file counts
    os.rename(root / ".git", tmp_path / "git-aside")
    outside = validate(root)
    assert outside.code == 1 and "R004" in outside.stdout and "scratch/broken.yaml" in outside.stdout


def test_blobs_meet_the_loader_limits(tmp_path: Path) -> None:
    root = committed(tmp_path / "r")
    big = API + "kind: Organizations\n# " + "x" * loader.MAX_BYTES + "\n"
    (root / "big.yaml").write_text(big)
    os.symlink("../../../../secret.yaml", root / "integrations/HaloPSA/mappings/out.yaml")
    os.symlink("contoso.yaml", root / "integrations/HaloPSA/mappings/alias.yaml")
    git(root, "add", "-A")
    run = validate(root, "--staged")
    assert "big.yaml:1:1: Y004 file is larger than 1024 KiB" in run.stdout, run
    assert "integrations/HaloPSA/mappings/out.yaml:1:1: Y006" in run.stdout
    # a link to a file that is read anyway is skipped, as on disk (not a second contoso mapping)
    assert "alias" not in run.stdout and "R004" not in run.stdout
    assert run.stdout.endswith("5 files checked: 2 errors, 0 warnings\n"), run


def test_init_ignores_decrypted_copies(tmp_path: Path) -> None:
    target = tmp_path / "new"
    assert run_cli("init", str(target)).code == 0
    git(target, "init", "-q")
    mapping = target / "integrations/Example/mappings/contoso.yaml"
    for name in ("contoso.dec.yaml", "contoso.decrypted.yaml", "contoso.plain.yaml", "contoso.dec.yml"):
        (mapping.parent / name).write_text(mapping.read_text())
    run = run_cli("validate", "--strict", str(target))
    assert run.code == 0 and "4 files checked, no problems" in run.stdout, run


def test_init_pins_the_hook_to_the_commit_it_was_installed_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setattr(scaffold, "installed_from", lambda: ("https://example.com/b g.git", sha))
    scaffold.scaffold(str(tmp_path / "pinned"))
    text = (tmp_path / "pinned/.pre-commit-config.yaml").read_text()
    import yaml

    repo = yaml.safe_load(text)["repos"][0]
    assert (repo["repo"], repo["rev"]) == ("https://example.com/b g.git", sha)
    assert repo["hooks"] == [{"id": "bifrost-gitops-validate", "args": ["--strict"]}]
    assert "pre-commit autoupdate --freeze" in text

    monkeypatch.setattr(scaffold, "installed_from", lambda: None)
    scaffold.scaffold(str(tmp_path / "local"))
    hook = yaml.safe_load((tmp_path / "local/.pre-commit-config.yaml").read_text())["repos"][0]
    assert hook["repo"] == "local" and "rev" not in hook
    assert hook["hooks"][0]["entry"] == "bifrost-gitops validate --staged"
    assert hook["hooks"][0]["args"] == ["--strict"] and hook["hooks"][0]["always_run"] is True
    assert "--strict" in (tmp_path / "local/README.md").read_text()


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        (
            {"url": "https://h/x.git", "vcs_info": {"vcs": "git", "commit_id": "a" * 40}},
            ("https://h/x.git", "a" * 40),
        ),
        ({"url": "https://h/x.git", "vcs_info": {"vcs": "git", "commit_id": "main"}}, None),
        ({"url": "https://h/x", "vcs_info": {"vcs": "hg", "commit_id": "a" * 40}}, None),
        ({"url": "file:///src", "dir_info": {"editable": True}}, None),
        ({"url": "https://h/\nx", "vcs_info": {"vcs": "git", "commit_id": "a" * 40}}, None),
        (
            {"url": "ssh://git@h/x.git", "vcs_info": {"vcs": "git", "commit_id": "a" * 40}},
            ("ssh://git@h/x.git", "a" * 40),
        ),
        ({"url": "file:///home/me/x", "vcs_info": {"vcs": "git", "commit_id": "a" * 40}}, None),
        ({"url": "https://u:tok@h/x.git", "vcs_info": {"vcs": "git", "commit_id": "a" * 40}}, None),
        ("not json", None),
        (None, None),
    ],
)
def test_installed_from_reads_pips_record(
    monkeypatch: pytest.MonkeyPatch, direct_url: object, expected: tuple[str, str] | None
) -> None:
    from importlib import metadata

    class Dist:
        def read_text(self, name: str) -> str | None:
            assert name == "direct_url.json"
            if direct_url is None or isinstance(direct_url, str):
                return direct_url
            return json.dumps(direct_url)

    monkeypatch.setattr(metadata, "distribution", lambda name: Dist())
    assert scaffold.installed_from() == expected


def test_diff_work_tree_skips_ignored_copies(tmp_path: Path) -> None:
    root = committed(tmp_path / "r", {".gitignore": "*.dec.yaml\n"})
    (root / MAPPING.replace(".yaml", ".dec.yaml")).write_text(
        (root / MAPPING).read_text().replace("page_size: 50", "page_size: 7")
    )
    run = run_cli("diff", "--base", "HEAD", cwd=root)
    assert run.code == 0 and "page_size" not in run.stdout, run


def test_a_staged_object_git_cannot_read_is_an_environment_error(tmp_path: Path) -> None:
    root = committed(tmp_path / "r")
    git(root, "update-index", "--add", "--cacheinfo", f"100644,{'1' * 40},ghost.yaml")
    run = validate(root, "--staged")
    assert run.code == 2 and f"cannot read git object {'1' * 40}" in run.stderr, run


def test_recipient_drift_is_judged_by_the_rules_the_commit_carries(tmp_path: Path) -> None:
    """K006 under --staged/--rev compares with the .sops.yaml of that tree, not the work tree's."""
    from support import ENC, FAKE_SOPS

    have = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"  # FAKE_SOPS's recipient
    other = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"

    def rules(recipient: str) -> str:
        return f"creation_rules:\n  - path_regex: .*\\.yaml$\n    encrypted_regex: ^secrets$\n    age: {recipient}\n"

    mapping = (
        API
        + 'kind: Mapping\nintegration: HaloPSA\norganization: fabrikam\nentity_id: "1"\n'
        + f"secrets:\n  api_key: {ENC}\n"
        + FAKE_SOPS
    )
    root = committed(
        tmp_path / "r",
        {".sops.yaml": rules(have), "integrations/HaloPSA/mappings/fabrikam.yaml": mapping},
    )
    assert validate(root).code == 0
    (root / ".sops.yaml").write_text(rules(other))
    git(root, "add", ".sops.yaml")  # the commit would ask for another recipient: the file drifts
    (root / ".sops.yaml").write_text(rules(have))  # ... though the work tree still matches
    staged = validate(root, "--staged")
    assert staged.code == 1 and "K006" in staged.stdout, staged.output
    assert validate(root).code == 0
    assert validate(root, "--rev", "HEAD").code == 0  # the last commit's rules still match
