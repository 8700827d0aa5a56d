"""The command line: parse arguments, call the library, print; errors become exit codes in one
place (the group's ``invoke``).

Heavy imports (pydantic, the checks) happen inside the commands so that start-up stays fast.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..colour import CHOICES
from ..errors import EXIT_FINDINGS, EXIT_OK, BifrostGitopsError, Findings
from ..escape import term
from . import deploy
from .common import (
    FORMAT,
    JSON_ERRORS,
    SCAN_FORMAT,
    asks_json,
    ci_status,
    exit_for,
    fail,
    format_option,
    json_error,
    load,
    open_all,
    report,
    use_colour,
)


class _Group(click.Group):
    """The one place errors become exit codes. A library error (BifrostGitopsError) is its one
    line and its exit code; an unexpected exception is one line and exit 2: no traceback, and no
    exception text either, since it could carry a value read from a secret file. When the
    command line asked for ``--format json``, every such error is also a JSON object on stdout."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The console command (the `bifrost-gitops` script, `python -m bifrost_gitops`); CliRunner
        and library callers use ``main.main`` and keep an ordinary exit (see process.py)."""
        from . import process

        process.console(lambda: self.main(*args, **kwargs))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[JSON_ERRORS] = asks_json(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        import os

        try:
            return super().invoke(ctx)
        except click.exceptions.ClickException as e:  # a usage error: click prints it on stderr
            json_error(e.format_message(), e.exit_code)
            raise
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BifrostGitopsError as e:
            fail(e.line(), e.exit_code)
        except BrokenPipeError:  # `... | head` closed the pipe: nothing left to say to anyone
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_FINDINGS)
        except OSError as e:  # disk full, permissions, a vanished file: an environment problem
            fail(
                f"{e.filename + ': ' if isinstance(e.filename, str) else ''}{e.strerror or type(e).__name__}"
            )
        except Exception as e:
            if os.environ.get("BIFROST_GITOPS_DEBUG"):
                raise
            fail(
                f"internal error ({type(e).__name__}); please report it. "
                "BIFROST_GITOPS_DEBUG=1 shows the traceback (it may contain values from your files)"
            )


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bifrost-gitops")
@click.option(
    "--color",
    "--colour",
    "color",
    type=click.Choice(CHOICES),
    default="auto",
    show_default=True,
    help="Colour text output: auto is on at a terminal (NO_COLOR turns it off; FORCE_COLOR or "
    "CLICOLOR_FORCE on). JSON, markdown and github output never get colour.",
)
def main(color: str) -> None:
    """Bifrost integrations as code: validate, compile and review a GitOps repository."""


for _command in deploy.COMMANDS:
    main.add_command(_command)


@main.command(short_help="Check a repository and report every finding at once.")
@click.argument("repo", default=".", type=click.Path(file_okay=True, dir_okay=True))
@SCAN_FORMAT
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
@click.option(
    "--decrypt", is_flag=True, help="Also open every encrypted file and verify its MAC (needs keys)."
)
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="CODE[,CODE]",
    help="Suppress findings with these codes (repeatable); counted as suppressed in the summary.",
)
@click.option(
    "--staged", is_flag=True, help="Check what the next commit will contain (the git index), not the files."
)
@click.option("--rev", metavar="REV", help="Check the repository as it is in git revision REV.")
def validate(
    repo: str, fmt: str, strict: bool, decrypt: bool, ignore: tuple[str, ...], staged: bool, rev: str | None
) -> None:
    """Check the repository at REPO (default: here) and report every finding at once.

    Exit 0 when clean (warnings allowed unless --strict), 1 on findings, 2 on usage errors.
    No decryption key is needed unless --decrypt is given. Findings suppressed by --ignore,
    bifrost-gitops.yaml's ignore: or a `# bifrost-gitops: ignore CODE` comment do not count.
    In a git work tree, files git ignores are skipped; --staged and --rev read git objects
    instead of the files.
    """
    from .. import suppress
    from ..diagnostics import sort_key
    from ..secretops import drift

    if staged and rev is not None:
        fail("--staged and --rev: give one")
    if decrypt and (staged or rev is not None):
        fail("--decrypt opens the files on disk; it cannot be combined with --staged or --rev")
    codes = suppress.parse_codes(ignore)
    if staged or rev is not None:
        from ..repo import load_git
        from .process import loaded

        result = load_git(repo, rev)
        loaded()
    else:
        result = load(repo)
    diags = sorted([*result.diagnostics, *drift(result)], key=sort_key)
    if decrypt:
        diags = sorted(diags + open_all(result), key=sort_key)
    outcome = suppress.apply(result, diags, codes)
    diags = outcome.kept
    report(diags, result.files, fmt, result.root, outcome.suppressed)
    exit_for(diags, diags if strict else [x for x in diags if x.severity == "error"])


@main.command(short_help="Print the JSON Schema of a document kind (for editors).")
@click.argument("kind", required=False)
@click.option(
    "--output-dir",
    "-o",
    type=click.Path(file_okay=False),
    help="Write every kind's <kind>.schema.json into this folder instead.",
)
def schema(kind: str | None, output_dir: str | None) -> None:
    """Print the JSON Schema of KIND (Project, Organizations, OAuthProvider, Integration, Mapping, Bundle)."""
    from ..schemas import ALL_KINDS as KINDS
    from ..schemas import dump, write_all

    match = {k.lower(): k for k in KINDS}.get(kind.lower()) if kind else None
    if kind and match is None:
        fail(f"unknown kind {kind!r}; one of: {', '.join(KINDS)}")
    if output_dir:
        for path in write_all(output_dir, [match] if match else None):
            click.echo(term(path))
        return
    if match is None:
        fail(f"name a kind: {', '.join(KINDS)} (or use -o DIR for all)")
    click.echo(dump(match), nl=False)


@main.command(short_help="Scaffold a new repository that validates out of the box.")
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
    from ..scaffold import scaffold

    for path in scaffold(directory, force=force, age_recipient=age_recipient):
        click.echo(f"created {term(path)}")
    click.echo(f"next: cd {term(directory)} && bifrost-gitops validate")


@main.command("compile", short_help="Write one resolved bundle per organization.")
@click.argument("repo", default=".", type=click.Path())
@click.option(
    "-o",
    "--output",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="The bundle folder (replaced atomically; if it is a symlink, the folder it points to is).",
)
@click.option(
    "--secrets",
    "mode",
    type=click.Choice(["seal", "plain", "redact"]),
    default="seal",
    show_default=True,
    help="seal: SOPS-encrypt each org file to the runtime's recipients; plain: clear values "
    "(mode 0600); redact: secret values replaced, no keys needed.",
)
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    help="Runtime age recipient for sealing (repeatable; default: bundle.recipients).",
)
@FORMAT
def compile_cmd(repo: str, out_dir: str, mode: str, recipients: tuple[str, ...], fmt: str) -> None:
    """Validate REPO, then write one resolved bundle per organization into OUTPUT.

    Nothing is written when the repository has errors (exit 1) or a secret cannot be opened
    (missing key: exit 2; altered file: exit 1).
    """
    from ..build import compile_repo

    result = load(repo)
    try:
        written = compile_repo(result, out_dir, mode, list(recipients))
    except Findings as e:
        report(e.diagnostics, result.files, fmt, result.root)
        raise
    # changed names files found in the output folder too (a stale orgs/ file): escaped
    what = ", ".join(written.changed) if len(written.changed) <= 5 else f"{len(written.changed)} files"
    click.echo(
        f"{term(written.out_dir)}: {written.files} files ({mode}); "
        f"{'changed: ' + term(what) if written.changed else 'unchanged'}",
        err=True,
    )


@main.command(short_help="Show what an organization gets for an integration, and why.")
@click.argument("args", nargs=-1, required=True)
@format_option("json")
def explain(args: tuple[str, ...], fmt: str) -> None:
    """Show what ORG gets for INTEGRATION, value by value, and where each value comes from.

    Usage: explain [REPO] ORG INTEGRATION [KEY]. ORG is a name, a Bifrost UUID, or "global"
    (the defaults-only view).
    No key is needed: secrets are shown as <secret>.
    """
    from .. import explain as ex

    repo = "."
    if len(args) >= 3 and (len(args) == 4 or _is_repo(args[0])):
        repo, args = args[0], args[1:]
    if len(args) not in (2, 3):
        fail("usage: explain [REPO] ORG INTEGRATION [KEY]")
    found = ex.explain(load(repo).catalog, *args)
    sys.stdout.write(
        ex.render_json(found) if fmt == "json" else ex.render_text(found, use_colour(sys.stdout))
    )


def _is_repo(path: str) -> bool:
    import os

    return os.path.isdir(path)


@main.command(short_help="Show what changes between two revisions, per organization.")
@click.argument("repo", default=".", type=click.Path())
@click.option(
    "--base",
    required=True,
    help="The revision to compare against (e.g. origin/main); A...B compares the merge base of A "
    "and B with B, A..B compares A with B.",
)
@click.option("--head", default=None, help="The revision under review (default: the work tree).")
@click.option(
    "--merge-base",
    is_flag=True,
    help="Compare with the merge base of --base and --head (or HEAD): only what the branch changed.",
)
@format_option("markdown", "json", help="markdown is made to be posted as a pull-request comment.")
@click.option(
    "--exit-code", is_flag=True, help="Exit 0 no changes, 1 changes, 2 errors (README: Exit status)."
)
@click.option(
    "--max-bytes",
    type=click.IntRange(min=0),
    default=60_000,
    show_default=True,
    help="markdown: leave whole sections out past this size, and say which (0: no limit).",
)
@click.option("--by-org", is_flag=True, help="One section per organization instead of grouped changes.")
def diff(
    repo: str,
    base: str,
    head: str | None,
    merge_base: bool,
    fmt: str,
    exit_code: bool,
    max_bytes: int,
    by_org: bool,
) -> None:
    """Show what changes between two revisions for each organization's workflows.

    Both revisions are read straight from git objects; nothing in the work tree changes.
    Identical changes are shown once with the organizations they touch (--by-org: per
    organization). Secrets are never shown: with keys, "changed"; without, "ciphertext changed".
    Security-relevant changes (an organization's id or display name, bundle recipients,
    .sops.yaml rules) are listed first and count as changes for --exit-code. Errors in the
    head revision: exit 1, or 2 with --exit-code.
    """
    from .. import diffreport, diffrun

    result = diffrun.run(repo, base, head, merge_base)
    if fmt == "text":
        sys.stdout.write(diffreport.render_text(result, use_colour(sys.stdout), by_org))
    elif fmt == "markdown":
        sys.stdout.write(diffreport.render_markdown(result, max_bytes, by_org))
    else:
        sys.stdout.write(diffreport.render_json(result, by_org))
    wrong = any(f.severity == "error" for f in result.head_findings)
    if exit_code:
        sys.exit(ci_status(result.changed, wrong))
    sys.exit(EXIT_FINDINGS if wrong else EXIT_OK)


@main.command("report", short_help="Write one HTML page: the organization x integration matrix.")
@click.argument("repo", default=".", type=click.Path())
@click.option(
    "-o",
    "--output",
    default="bifrost-report.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The HTML file to write.",
)
@click.option("--base", default=None, help="Highlight what changed since this revision (e.g. origin/main).")
@click.option("--head", default=None, help="The revision to show (default: the work tree).")
def report_cmd(repo: str, output: str, base: str | None, head: str | None) -> None:
    """Write one self-contained HTML file (no external assets: it works offline and as a CI
    artifact) with every organization x integration: mapped or defaults only, entity id and
    number of overrides. With --base, changed cells are highlighted; hover or click one for its
    change. Secrets never appear in the page. Exit 1 when the shown revision has errors.
    """
    from .. import htmlreport

    m = htmlreport.write(repo, output, base, head)
    changed = f", {m.changed_cells} changed cells" if m.changes is not None else ""
    click.echo(f"{term(output)}: {len(m.orgs)} organizations x {len(m.integrations)} integrations{changed}")
    if m.errors:  # the page is written, but what the findings broke is missing from it
        s = "s" if m.errors != 1 else ""
        click.echo(f"{m.errors} error{s} in the shown revision (hint: run validate)", err=True)
        sys.exit(EXIT_FINDINGS)


@main.group(short_help="SOPS secrets: set, keygen, check, recipients.")
def secrets() -> None:
    """Set, check and audit the SOPS-encrypted secrets of a repository."""


@secrets.command("set", short_help="Encrypt a value into a secret key (read from stdin or a prompt).")
@click.argument("integration")
@click.argument("key")
@click.option(
    "--org", help="The organization whose mapping gets the value (default: the integration default)."
)
@click.option("--repo", "repo", default=".", show_default=True, type=click.Path(), help="The repository.")
def secrets_set(integration: str, key: str, org: str | None, repo: str) -> None:
    """Encrypt a value into INTEGRATION's secret KEY, read from stdin or a hidden prompt.

    The value never goes on the command line: pipe it in (`pass show x | bifrost-gitops secrets
    set HaloPSA api_key --org contoso`) or type it at the prompt.
    """
    from .. import secretops

    result = load(repo)
    if sys.stdin.isatty():
        value = click.prompt(f"{key}", hide_input=True, confirmation_prompt=True, err=True)
    else:
        value = sys.stdin.read()
        value = value[:-1] if value.endswith("\n") else value
    if not value:
        fail("empty value; nothing written")
    written = secretops.set_secret(result, integration, key, value, org)
    whom = f" for {org}" if org else " (integration default)"
    click.echo(term(f"{written}: {key} set{whom}"), err=True)


@secrets.command("keygen", short_help="Make an age key for sops and print its recipient.")
@click.option(
    "-o",
    "--output",
    "path",
    type=click.Path(dir_okay=False),
    help="Keys file to create (default: where sops looks, ~/.config/sops/age/keys.txt).",
)
def secrets_keygen(path: str | None) -> None:
    """Make an age key for sops (like age-keygen) and print its public recipient.

    The secret key goes only into the file (mode 0600); put the printed recipient in
    .sops.yaml (and bundle.recipients for a runtime key).
    """
    from .. import secretops

    where, recipient = secretops.keygen(path)
    click.echo(f"created {term(where)}", err=True)
    click.echo(recipient)


@secrets.command("check", short_help="Open every encrypted file and verify its MAC.")
@click.argument("repo", default=".", type=click.Path())
@SCAN_FORMAT
def secrets_check(repo: str, fmt: str) -> None:
    """Open every encrypted file with the available keys and verify its MAC.

    Exit 0 when all open and verify, 1 when one was altered, 2 when a key is missing.
    """
    from .. import secretops

    result = load(repo)
    diags = open_all(result)
    report(diags, len(secretops.encrypted_files(result)), fmt, result.root)
    exit_for(diags, diags)


@secrets.command("recipients", short_help="List each file's recipients; flag drift from .sops.yaml.")
@click.argument("repo", default=".", type=click.Path())
@format_option("json")
def secrets_recipients(repo: str, fmt: str) -> None:
    """List which files are encrypted to which recipients; flag drift from .sops.yaml (exit 1)."""
    from .. import diagnostics as d
    from .. import secretops
    from ..escape import to_json

    result = load(repo)
    rows = secretops.list_recipients(result)
    findings = secretops.recipient_findings(rows, {p.doc.path: p.doc for p in result.catalog.documents()})
    if fmt == "json":
        doc = {"files": [r.__dict__ for r in rows], "drift": [f._asdict() for f in findings]}
        sys.stdout.write(to_json(doc) + "\n")
    else:  # paths and recipients come from the repository's files: escaped
        for r in rows:
            click.echo(term(f"{r.path}: {', '.join(r.recipients) or '(none)'}"))
        d.report_text(findings, d.Summary(len(rows)), sys.stdout, use_colour(sys.stdout))
    sys.exit(EXIT_FINDINGS if findings else EXIT_OK)
