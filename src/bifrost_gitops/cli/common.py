"""What every command shares: the one-line failure, the findings report, the --format option.

Heavy imports happen inside the functions so that start-up stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ..errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, BifrostGitopsError
from ..escape import term

if TYPE_CHECKING:
    from ..diagnostics import Diagnostic, Suppressed
    from ..repo import Result

F = TypeVar("F", bound=Callable[..., Any])


#: ctx.meta key: the command line asked for ``--format json``, so errors come as JSON too.
JSON_ERRORS = "bifrost_gitops.json_errors"


def asks_json(args: list[str]) -> bool:
    """Whether ARGS ask for ``--format json`` (read before parsing, so that an error in the
    parsing itself can answer in JSON too)."""
    return "--format=json" in args or any(
        a == "--format" and args[i + 1 : i + 2] == ["json"] for i, a in enumerate(args)
    )


def json_error(message: str, code: int) -> None:
    """The error as a script reads it when it asked for JSON: one object on stdout."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(JSON_ERRORS):
        from ..escape import to_json

        click.echo(to_json({"error": {"message": message, "exit_code": code}}))


def ci_status(changed: bool, wrong: bool) -> int:
    """The exit status under ``--exit-code``, one rule for every command that has the flag
    (README, "Exit status"): 2 when anything is wrong (findings in what is checked included),
    else 1 when something changes, else 0, so a CI can branch on it."""
    return EXIT_USAGE if wrong else EXIT_FINDINGS if changed else EXIT_OK


class WrongUnderExitCode(BifrostGitopsError):
    """An error that exits 1 without --exit-code (findings in a repository a command reads),
    raised again under it: exit 2, as ci_status says for anything wrong."""

    @classmethod
    def of(cls, error: BifrostGitopsError) -> WrongUnderExitCode:
        again = cls(str(error))
        again.hint = error.hint
        return again


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """A usage or environment error: one line on stderr, exit 2 (or CODE; no line when MESSAGE
    is empty), and a JSON error object on stdout when JSON was asked for. Messages quote paths,
    names and exception texts from the repository or a server: escaped, so they stay one line."""
    if message:
        json_error(message, code)
        click.echo(f"bifrost-gitops: {term(message)}", err=True)
    sys.exit(code)


def report(
    diags: list[Diagnostic], files: int, fmt: str, root: str, suppressed: Sequence[Suppressed] = ()
) -> None:
    """Findings in the format asked for: paths relative to the repository root in text and
    json wherever the command runs; in github, sarif and gitlab relative to the git work tree's
    root, which those platforms resolve from (see github_prefix).
    Suppressed findings are counted in the summary (json also lists them)."""
    from .. import diagnostics as d

    out, totals = sys.stdout, d.Summary(files, suppressed)
    prefix = github_prefix(root)
    if fmt == "json":
        d.report_json(diags, totals, out)
    elif fmt in ("sarif", "gitlab"):
        from .. import scanreports

        (scanreports.report_sarif if fmt == "sarif" else scanreports.report_gitlab)(
            diags, totals, out, prefix
        )
    elif fmt == "github":
        d.report_github(diags, totals, out, prefix)
    else:
        d.report_text(diags, totals, out, use_colour(out))


def use_colour(stream: IO[str]) -> bool:
    """Whether STREAM gets colour: the top-level --color, then the environment (colour.wanted)."""
    from ..colour import wanted

    ctx = click.get_current_context(silent=True)
    choice = ctx.find_root().params.get("color") if ctx is not None else None
    return wanted(stream, choice or "auto")


def github_prefix(root: str) -> str:
    """What turns a repository-relative path into one GitHub resolves: GitHub reads annotation
    paths from the root of the git repository, which may hold the Bifrost repository in a
    subfolder, whatever folder the command ran in. Outside git: relative to that folder."""
    import os

    root = os.path.realpath(root)
    top = root
    while not os.path.exists(os.path.join(top, ".git")):  # a folder, or a file in a worktree
        parent = os.path.dirname(top)
        if parent == top:
            top = os.path.realpath(os.getcwd())
            break
        top = parent
    rel = os.path.relpath(root, top)
    return "" if rel == "." else rel.replace(os.sep, "/") + "/"


def load(
    repo: str,
    jobs: int | None = None,
    no_cache: bool = False,
    *,
    staged: bool = False,
    rev: str | None = None,
) -> Result:
    """The checked repository at REPO (pydantic and the checks load only now): its work tree,
    or as staged, or at revision REV; JOBS and NO_CACHE as given by `load_options`."""
    from .. import repo as repository
    from .process import loaded

    options = repository.LoadOptions(jobs, not no_cache)
    if staged or rev is not None:
        result = repository.load_git(repo, rev, options)
    else:
        result = repository.load(repo, options)
    loaded(result)
    return result


def load_options(f: F) -> F:
    """``--jobs`` (into ``jobs``) and ``--no-cache`` (into ``no_cache``): how the files are parsed."""
    f = click.option(
        "--no-cache",
        "no_cache",
        is_flag=True,
        help="Parse every file again, without reading or writing the cache (also: "
        "BIFROST_GITOPS_NO_CACHE=1).",
    )(f)
    return click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help="Parse files in N processes (default: BIFROST_GITOPS_JOBS, else the usable cores).",
    )(f)


def open_all(result: Result, jobs: int | None = None) -> list[Diagnostic]:
    """Decrypt every encrypted file (MAC verified), in JOBS processes (default: as --jobs);
    files no key opens come back as K004."""
    from .. import secretops
    from ..parallel import default_jobs

    return secretops.check_files(result, jobs=jobs or default_jobs())


def exit_for(diags: list[Diagnostic], failing: list[Diagnostic]) -> NoReturn:
    """2 when a file could not be opened (missing key: the environment), else 1 on findings."""
    if any(d.code == "K004" for d in diags):
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_FINDINGS if failing else EXIT_OK)


def format_option(*choices: str, help: str | None = None) -> Callable[[F], F]:
    """``--format`` (into ``fmt``), text by default."""
    return click.option(
        "--format", "fmt", type=click.Choice(["text", *choices]), default="text", show_default=True, help=help
    )


FORMAT = format_option("json", "github", help="Output format; github prints Actions annotations.")
#: The findings formats of the checking commands: also SARIF (code scanning) and GitLab Code Quality.
SCAN_FORMAT = format_option(
    "json",
    "github",
    "sarif",
    "gitlab",
    help="Output format; github prints Actions annotations, sarif a SARIF 2.1.0 log for code "
    "scanning, gitlab a GitLab Code Quality report.",
)
