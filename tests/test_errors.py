"""One error base, mapped to exit codes in one place.

Every error the library raises for a person derives from BifrostGitopsError; the CLI's group turns
any of them into one escaped line on stderr and the family's exit code, and anything else into
"internal error" (exit 2) without its text.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import shutil
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import bifrost_gitops
from bifrost_gitops import (
    bundle,
    bundleformat,
    explain,
    gitrev,
    publish,
    repo,
    runtime,
    scaffold,
    secretops,
    sopsrules,
)
from bifrost_gitops.cli import _Group
from bifrost_gitops.deploy import DeployError
from bifrost_gitops.deploy.client import ApiError
from bifrost_gitops.deploy.replies import BadReply
from bifrost_gitops.deploy.source import RepositoryErrors
from bifrost_gitops.diagnostics import error
from bifrost_gitops.errors import BifrostGitopsError, Findings
from bifrost_gitops.sops import IntegrityError, NoKeyError, SopsError
from support import ROOT, run_cli

#: exceptions that never leave the module that raises them (turned into a SopsError there)
INTERNAL = {"bifrost_gitops.sops.values.ValueFormatError", "bifrost_gitops.sops.values.ValueAuthError"}


def public_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class a module of the package defines under a public name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(bifrost_gitops.__path__, "bifrost_gitops."):
        if info.name.endswith(".__main__"):  # importing it runs the CLI
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == info.name
                and not name.startswith("_")
            ):
                found[f"{info.name}.{name}"] = obj
    return found


def test_every_public_error_derives_from_the_base() -> None:
    found = public_exceptions()
    assert len(found) >= 20  # the walk really found the package's errors
    outside = sorted(name for name, cls in found.items() if not issubclass(cls, BifrostGitopsError))
    assert outside == sorted(INTERNAL)


def test_existing_bases_and_import_paths_stay() -> None:
    """Workflow code catches the runtime's errors by their old bases and paths."""
    assert issubclass(runtime.UnknownOrganizationError, LookupError)
    assert issubclass(runtime.UnknownOrganizationError, runtime.BundleReadError)
    assert issubclass(BadReply, DeployError) and issubclass(RepositoryErrors, DeployError)
    assert issubclass(IntegrityError, SopsError) and issubclass(NoKeyError, SopsError)


# --- the handler ----------------------------------------------------------------------------


def invoke(raise_: Callable[[], None], env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    """Run a one-command CLI on the real group class whose command calls RAISE_."""

    @click.group(cls=_Group)
    def group() -> None:
        pass

    @group.command()
    def go() -> None:
        raise_()

    r = CliRunner().invoke(group, ["go"], env={"BIFROST_GITOPS_DEBUG": None, **(env or {})})
    return r.exit_code, r.stdout, r.stderr


def api_error() -> ApiError:
    return ApiError(404, "no such integration", "GET", "/api/integrations/x?token=t")


def diag() -> Findings:
    return Findings([error("K001", "a.yaml", (0, 0), "bad")], "not compiled: fix the errors above")


FAMILIES: list[tuple[Callable[[], BaseException], int, str]] = [
    (lambda: repo.RepoError("nowhere: no such file or directory"), 2, "nowhere: no such file or directory"),
    (lambda: gitrev.GitError("unknown revision 'nope'"), 2, "unknown revision 'nope'"),
    (lambda: DeployError("BIFROST_API_URL is not set"), 2, "BIFROST_API_URL is not set"),
    (lambda: BadReply("GET /api/organizations: not a list"), 2, "GET /api/organizations: not a list"),
    (api_error, 2, "GET /api/integrations/x: 404: no such integration"),
    (lambda: bundle.BundleError("out: not a bundle"), 2, "out: not a bundle"),
    (lambda: publish.PublishError("b: not a bundle"), 2, "b: not a bundle"),
    (lambda: explain.ExplainError("unknown key 'x'"), 2, "unknown key 'x'"),
    (lambda: secretops.SecretsError("empty"), 2, "empty"),
    (lambda: scaffold.InitError("d: not empty"), 2, "d: not empty"),
    (lambda: sopsrules.RulesError("no .sops.yaml"), 2, "no .sops.yaml"),
    (lambda: SopsError("not a sops file", file="a.yaml"), 2, "a.yaml: not a sops file"),
    (lambda: IntegrityError("MAC mismatch", file="a.yaml"), 2, "a.yaml: MAC mismatch"),
    (
        lambda: NoKeyError("no key opens it", file="a.yaml"),
        2,
        "a.yaml: no key opens it (hint: set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)",
    ),
    (
        lambda: bundleformat.BadIndex("b/index.json", "b", bundleformat.Problem.NOT_JSON),
        2,
        "b/index.json: not valid JSON",
    ),
    (lambda: runtime.BundleReadError("no bundle at /b"), 2, "no bundle at /b"),
    (lambda: runtime.UnknownOrganizationError("no organization 'x'", "x"), 2, "no organization 'x'"),
    (diag, 1, "not compiled: fix the errors above"),
    (
        lambda: RepositoryErrors(None),  # type: ignore[arg-type]  # the message needs no result
        1,
        "the repository has errors (listed above): fix them and plan again",
    ),
]


@pytest.mark.parametrize(("make", "code", "line"), FAMILIES, ids=lambda v: getattr(v, "__name__", None))
def test_the_handler_maps_each_family_to_one_line_and_its_exit_code(
    make: Callable[[], BaseException], code: int, line: str
) -> None:
    def raise_() -> None:
        raise make()

    assert invoke(raise_) == (code, "", f"bifrost-gitops: {line}\n")


def test_findings_with_nothing_to_add_print_no_line() -> None:
    """The report said it all (compile's K005): exit 1, and no line after it."""

    def raise_() -> None:
        raise Findings([error("K005", "a.yaml", (0, 0), "MAC mismatch")])

    assert invoke(raise_) == (1, "", "")


def test_a_message_from_a_file_or_server_stays_one_escaped_line() -> None:
    def raise_() -> None:
        raise DeployError("name\x1b[2J\n ::error::x")

    code, out, err = invoke(raise_)
    assert (code, out) == (2, "")
    assert err == "bifrost-gitops: name\\x1b[2J\\x0a :\\x3aerror::x\n"


def test_an_unexpected_exception_is_one_line_without_its_text() -> None:
    def raise_() -> None:
        raise ValueError("SECRET-VALUE")

    code, out, err = invoke(raise_)
    assert code == 2 and out == "" and "SECRET-VALUE" not in err
    assert err == (
        "bifrost-gitops: internal error (ValueError); please report it. "
        "BIFROST_GITOPS_DEBUG=1 shows the traceback (it may contain values from your files)\n"
    )


def test_debug_lets_the_traceback_through() -> None:
    @click.group(cls=_Group)
    def group() -> None:
        pass

    @group.command()
    def go() -> None:
        raise ValueError("boom")

    r = CliRunner().invoke(group, ["go"], env={"BIFROST_GITOPS_DEBUG": "1"})
    assert isinstance(r.exception, ValueError)


def test_a_sharper_hint_replaces_the_default() -> None:
    """compile names its own way out (--secrets redact); the message itself is unchanged."""
    e = NoKeyError("no key opens it", file="a.yaml")
    e.hint = "set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY, or compile with --secrets redact"
    assert str(e) == "a.yaml: no key opens it"
    assert e.line().endswith(
        "(hint: set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY, or compile with --secrets redact)"
    )
    assert NoKeyError("x").line() == "x (hint: set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)"


# --- end to end: the hint a missing key gets, per command -----------------------------------


@pytest.fixture
def keyless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example repository and no age key anywhere sops looks (isolated_home is global)."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "integrations", root)
    return root


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["plan", "."], "(hint: set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)"),
        (
            ["compile", ".", "-o", "../out", "--secrets", "plain"],
            "(hint: set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY, or compile with --secrets redact)",
        ),
    ],
    ids=["plan", "compile"],
)
def test_a_missing_key_is_one_line_with_the_commands_hint(keyless: Path, args: list[str], hint: str) -> None:
    r = run_cli(*args, cwd=keyless)
    lines = r.stderr.splitlines()
    assert r.code == 2 and r.stdout == "" and len(lines) == 1, r
    assert lines[0].startswith("bifrost-gitops: ")
    assert lines[0].endswith(hint)
    assert not (keyless.parent / "out").exists()
