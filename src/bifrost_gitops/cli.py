"""The command line: parse arguments, call the library, print, choose the exit code.

Heavy imports (pydantic, the checks) happen inside the commands so that start-up stays fast.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def fail(message: str) -> NoReturn:
    """A usage or environment error: one line on stderr, exit 2."""
    click.echo(f"bifrost-gitops: {message}", err=True)
    sys.exit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bifrost-gitops")
def main() -> None:
    """Bifrost integrations as code: validate, compile and review a GitOps repository."""


@main.command()
@click.argument("repo", default=".", type=click.Path(file_okay=True, dir_okay=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="Output format; github prints Actions annotations.",
)
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
def validate(repo: str, fmt: str, strict: bool) -> None:
    """Check the repository at REPO (default: here) and report every finding at once.

    Exit 0 when clean (warnings allowed unless --strict), 1 on findings, 2 on usage errors.
    """
    import os

    from . import diagnostics as d
    from .repo import RepoError, load

    try:
        result = load(repo)
    except RepoError as e:
        fail(str(e))
    out = sys.stdout
    if fmt == "json":
        d.report_json(result.diagnostics, result.files, out)
    elif fmt == "github":
        prefix = os.path.relpath(result.root)
        prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
        d.report_github(result.diagnostics, result.files, out, prefix)
    else:
        d.report_text(result.diagnostics, result.files, out, d.use_colour(out))
    failing = result.diagnostics if strict else result.errors
    sys.exit(EXIT_FINDINGS if failing else EXIT_OK)


@main.command()
@click.argument("kind", required=False)
@click.option(
    "--output-dir",
    "-o",
    type=click.Path(file_okay=False),
    help="Write every kind's <kind>.schema.json into this folder instead.",
)
def schema(kind: str | None, output_dir: str | None) -> None:
    """Print the JSON Schema of KIND (Project, Organizations, OAuthProvider, Integration, Mapping)."""
    from .model import KINDS
    from .schemas import dump, write_all

    if output_dir:
        for path in write_all(output_dir):
            click.echo(path)
        return
    if kind is None:
        fail(f"name a kind: {', '.join(KINDS)} (or use -o DIR for all)")
    match = {k.lower(): k for k in KINDS}.get(kind.lower())
    if match is None:
        fail(f"unknown kind {kind!r}; one of: {', '.join(KINDS)}")
    click.echo(dump(match), nl=False)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--force", is_flag=True, help="Write into a folder that is not empty (existing files are kept)."
)
@click.option(
    "--age",
    "age_recipient",
    metavar="RECIPIENT",
    help="Age recipient for .sops.yaml (default: your own key, found where sops looks).",
)
def init(directory: str, force: bool, age_recipient: str | None) -> None:
    """Scaffold a new repository in DIRECTORY that validates out of the box."""
    from .scaffold import InitError, scaffold

    try:
        written = scaffold(directory, force=force, age_recipient=age_recipient)
    except InitError as e:
        fail(str(e))
    for path in written:
        click.echo(f"created {path}")
    click.echo(f"next: cd {directory} && bifrost-gitops validate")


if __name__ == "__main__":  # pragma: no cover
    main()
