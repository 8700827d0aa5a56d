"""What every command shares: the one-line failure, the findings report, the --format option.

Heavy imports happen inside the functions so that start-up stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ..errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from ..escape import term

if TYPE_CHECKING:
    from ..diagnostics import Diagnostic, Suppressed
    from ..repo import Result

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """A usage or environment error: one line on stderr, exit 2 (or CODE; no line when MESSAGE
    is empty). Messages quote paths, names and exception texts from the repository or a
    server: escaped, so they stay one line."""
    if message:
        click.echo(f"bifrost-gitops: {term(message)}", err=True)
    sys.exit(code)


def report(
    diags: list[Diagnostic], files: int, fmt: str, root: str, suppressed: Sequence[Suppressed] = ()
) -> None:
    """Findings in the format asked for: paths relative to the repository root in text and
    json wherever the command runs; github's relative to the git work tree (see github_prefix).
    Suppressed findings are counted in the summary (json also lists them)."""
    from .. import diagnostics as d

    out = sys.stdout
    if fmt == "json":
        d.report_json(diags, files, out, suppressed)
    elif fmt == "github":
        d.report_github(diags, files, out, github_prefix(root), len(suppressed))
    else:
        d.report_text(diags, files, out, use_colour(out), len(suppressed))


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


def load(repo: str) -> Result:
    """The checked repository at REPO (pydantic and the checks load only now)."""
    from ..repo import load

    return load(repo)


def open_all(result: Result) -> list[Diagnostic]:
    """Decrypt every encrypted file (MAC verified); files no key opens come back as K004."""
    from .. import secretops

    return secretops.check_files(result)


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
