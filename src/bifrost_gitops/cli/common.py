"""What every command shares: the one-line failure, the findings report, the --format option.

Heavy imports happen inside the functions so that start-up stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ..errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from ..escape import term

if TYPE_CHECKING:
    from ..diagnostics import Diagnostic
    from ..repo import Result

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """A usage or environment error: one line on stderr, exit 2 (or CODE; no line when MESSAGE
    is empty). Messages quote paths, names and exception texts from the repository or a
    server: escaped, so they stay one line."""
    if message:
        click.echo(f"bifrost-gitops: {term(message)}", err=True)
    sys.exit(code)


def report(diags: list[Diagnostic], files: int, fmt: str, root: str) -> None:
    """Findings in the format asked for; github paths are relative to where the command runs,
    sarif and gitlab paths to the repository's root."""
    import os

    from .. import diagnostics as d
    from .. import scanreports

    out, totals = sys.stdout, d.Summary(files)
    if fmt == "json":
        d.report_json(diags, totals, out)
    elif fmt == "sarif":
        scanreports.report_sarif(diags, totals, out)
    elif fmt == "gitlab":
        scanreports.report_gitlab(diags, totals, out)
    elif fmt == "github":
        prefix = os.path.relpath(root)
        prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
        d.report_github(diags, totals, out, prefix)
    else:
        d.report_text(diags, totals, out, d.use_colour(out))


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
#: The findings formats of the checking commands: also SARIF (code scanning) and GitLab Code Quality.
SCAN_FORMAT = format_option(
    "json",
    "github",
    "sarif",
    "gitlab",
    help="Output format; github prints Actions annotations, sarif a SARIF 2.1.0 log for code "
    "scanning, gitlab a GitLab Code Quality report.",
)
