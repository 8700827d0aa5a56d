"""The command line: parse arguments, call the library, print; errors become exit codes in one
place (the group's ``invoke``).

Heavy imports (pydantic, the checks) happen inside the commands so that start-up stays fast.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from ..colour import CHOICES
from ..errors import EXIT_FINDINGS, EXIT_OK, BifrostGitopsError, Findings, debugging
from ..escape import term
from . import connect, deploy, new
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
    load_options,
    open_all,
    report,
    use_colour,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..diagnostics import Diagnostic
    from ..fix import Outcome as FixOutcome
    from ..fix import Plan
    from ..nodes import Node
    from ..repo import LoadOptions, Result
    from ..suppress import Outcome


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
            if debugging():
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


for _command in [*deploy.COMMANDS, *new.COMMANDS]:
    main.add_command(_command)
main.add_command(connect.connect)


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
@click.option(
    "--fix",
    is_flag=True,
    help="Apply the findings' mechanical fixes to the files (YAML 1.1 quoting traps, $schema "
    "comment paths), then check again and report what is left.",
)
@click.option(
    "--diff",
    "show_diff",
    is_flag=True,
    help="With --fix: print the changes as a unified diff; write nothing.",
)
@load_options
def validate(
    repo: str,
    fmt: str,
    strict: bool,
    decrypt: bool,
    ignore: tuple[str, ...],
    staged: bool,
    rev: str | None,
    fix: bool,
    show_diff: bool,
    jobs: int | None,
    no_cache: bool,
) -> None:
    """Check the repository at REPO (default: here) and report every finding at once.

    Exit 0 when clean (warnings allowed unless --strict), 1 on findings, 2 on usage errors.
    No decryption key is needed unless --decrypt is given. Findings suppressed by --ignore,
    bifrost-gitops.yaml's ignore: or a `# bifrost-gitops: ignore CODE` comment do not count.
    In a git work tree, files git ignores are skipped; --staged and --rev read git objects
    instead of the files. --fix rewrites files in the work tree only, changing nothing but the
    fixed values; --fix --diff shows the changes instead (exit 1 if there are any).
    """
    from .. import suppress

    if staged and rev is not None:
        fail("--staged and --rev: give one")
    if decrypt and (staged or rev is not None):
        fail("--decrypt opens the files on disk; it cannot be combined with --staged or --rev")
    if (fix or show_diff) and (staged or rev is not None):
        fail("--fix changes the files in the work tree; it cannot be combined with --staged or --rev")
    if show_diff and not fix:
        fail("--diff shows what --fix would change: give both")
    codes = suppress.parse_codes(ignore)
    from ..repo import LoadOptions

    loading = LoadOptions(jobs, not no_cache)
    result, outcome = _check(repo, staged, rev, decrypt, codes, loading)
    if fix:
        from ..fix import plan

        found = plan(result.root, outcome.kept, _documents(result), _suppressed(outcome))
        if show_diff:
            from ..fixreport import diff

            diff(found, sys.stdout)
            sys.exit(EXIT_FINDINGS if found.changed else EXIT_OK)
        result, outcome = _fix(
            found, fmt, (result, outcome), lambda: _check(repo, staged, rev, decrypt, codes, loading)
        )
    diags = outcome.kept
    report(diags, result.files, fmt, result.root, outcome.suppressed)
    exit_for(diags, diags if strict else [x for x in diags if x.severity == "error"])


def _check(
    repo: str, staged: bool, rev: str | None, decrypt: bool, codes: list[str], loading: LoadOptions
) -> tuple[Result, Outcome]:
    """Load and check the repository: (the result, the findings kept and suppressed)."""
    from .. import suppress
    from ..diagnostics import sort_key
    from ..recipients import drift

    result = load(repo, loading.jobs, not loading.cache, staged=staged, rev=rev)
    diags = sorted([*result.diagnostics, *drift(result)], key=sort_key)
    if decrypt:
        diags = sorted(diags + open_all(result, loading.jobs), key=sort_key)
    return result, suppress.apply(result, diags, codes)


#: a fix can uncover a finding that a broken document hid (an organization's date trap shows
#: once the document's other traps are fixed), so --fix goes round again, this many times at most
_FIX_ROUNDS = 3


def _suppressed(outcome: Outcome) -> list[Diagnostic]:
    return [s.diagnostic for s in outcome.suppressed]


def _documents(result: Result) -> dict[str, Node]:
    """Each of our documents' data by path, as just checked (--fix reads their $schema comments)."""
    return {p.doc.path: p.doc.data for p in result.catalog.documents()}


def _fix(
    found: Plan, fmt: str, checked: tuple[Result, Outcome], check: Callable[[], tuple[Result, Outcome]]
) -> tuple[Result, Outcome]:
    """Write the fixes, check again and repeat while fixes uncover more; then say what changed
    (on stdout before a text report, on stderr when stdout carries a machine-read format).
    Returns the last check."""
    from ..fix import plan, write
    from ..fixreport import report as fix_report

    said: dict[tuple[str, int, int, str], FixOutcome] = {}
    files: set[str] = set()
    for round_ in range(1, _FIX_ROUNDS + 1):
        write(found)
        for o in found.outcomes:
            said.setdefault((o.path, o.line, o.col, o.code), o)
        files.update(f.path for f in found.changed)
        if not found.changed:
            break
        checked = check()
        if round_ < _FIX_ROUNDS:
            found = plan(checked[0].root, checked[1].kept, _documents(checked[0]), _suppressed(checked[1]))
    stream = sys.stdout if fmt == "text" else sys.stderr
    fix_report(list(said.values()), len(files), stream, use_colour(stream))
    return checked


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
@load_options
def compile_cmd(
    repo: str,
    out_dir: str,
    mode: str,
    recipients: tuple[str, ...],
    fmt: str,
    jobs: int | None,
    no_cache: bool,
) -> None:
    """Validate REPO, then write one resolved bundle per organization into OUTPUT.

    Nothing is written when the repository has errors (exit 1) or a secret cannot be opened
    (missing key: exit 2; altered file: exit 1).
    """
    from ..build import compile_repo

    result = load(repo, jobs, no_cache)
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
@load_options
def diff(
    repo: str,
    base: str,
    head: str | None,
    merge_base: bool,
    fmt: str,
    exit_code: bool,
    max_bytes: int,
    by_org: bool,
    jobs: int | None,
    no_cache: bool,
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
    from ..repo import LoadOptions

    result = diffrun.run(repo, base, head, merge_base, LoadOptions(jobs, not no_cache))
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


@main.group(short_help="SOPS secrets: set, keygen, check, recipients, updatekeys.")
def secrets() -> None:
    """Set, check and audit the SOPS-encrypted secrets of a repository."""


@secrets.command("set", short_help="Encrypt a value into a secret key (read from stdin or a prompt).")
@click.argument("names", nargs=-1, metavar="INTEGRATION KEY")
@click.option(
    "--org", help="The organization whose mapping gets the value (default: the integration default)."
)
@click.option(
    "--provider",
    metavar="NAME",
    help="A shared OAuth provider (oauth/NAME.yaml): set its KEY (default client_secret); no INTEGRATION.",
)
@click.option("--repo", "repo", default=".", show_default=True, type=click.Path(), help="The repository.")
def secrets_set(names: tuple[str, ...], org: str | None, provider: str | None, repo: str) -> None:
    """Encrypt a value into INTEGRATION's secret KEY, read from stdin or a hidden prompt.

    The value never goes on the command line: pipe it in (`pass show x | bifrost-gitops secrets
    set HaloPSA api_key --org contoso`) or type it at the prompt. KEY `oauth.client_secret` is
    the client secret of the integration's OAuth provider (its inline oauth: block, or the shared
    provider it names); `--provider microsoft` sets a shared provider's by its name.
    """
    from .. import secrettarget

    if provider is not None:
        if org is not None or len(names) > 1:
            raise click.UsageError(
                "with --provider, give only KEY (default client_secret), no INTEGRATION or --org"
            )
        key = names[0] if names else "client_secret"
    elif len(names) != 2:
        raise click.UsageError("give INTEGRATION and KEY (or --provider NAME)")
    result = load(repo)
    if provider is not None:
        target = secrettarget.find_provider(result.catalog, provider, key)
    else:
        target = secrettarget.find(result.catalog, names[0], names[1], org)
    value = _read_secret(target.key)
    from .. import secretops

    secretops.write_secret(result, target, value)
    click.echo(term(f"{target.path}: {target.done}"), err=True)


def _read_secret(name: str) -> str:
    """The value from a hidden prompt (asked twice) on a terminal, else all of stdin (one final
    newline dropped); never echoed."""
    if sys.stdin.isatty():
        value: str = click.prompt(name, hide_input=True, confirmation_prompt=True, err=True)
    else:
        value = sys.stdin.read()
        value = value[:-1] if value.endswith("\n") else value
    if not value:
        fail("empty value; nothing written")
    return value


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
@load_options
def secrets_check(repo: str, fmt: str, jobs: int | None, no_cache: bool) -> None:
    """Open every encrypted file with the available keys and verify its MAC (in --jobs processes).

    Exit 0 when all open and verify, 1 when one was altered, 2 when a key is missing.
    """
    from .. import secretops

    result = load(repo, jobs, no_cache)
    diags = open_all(result, jobs)
    report(diags, len(secretops.encrypted_files(result)), fmt, result.root)
    exit_for(diags, diags)


@secrets.command("recipients", short_help="List each file's recipients; flag drift from .sops.yaml.")
@click.argument("repo", default=".", type=click.Path())
@format_option("json")
def secrets_recipients(repo: str, fmt: str) -> None:
    """List which files are encrypted to which recipients; flag drift from .sops.yaml (exit 1)."""
    from .. import diagnostics as d
    from ..escape import to_json
    from ..recipients import list_recipients, recipient_findings

    result = load(repo)
    rows = list_recipients(result)
    drifted = {r.path for r in rows if r.missing or r.extra}
    findings = recipient_findings(
        rows, {p.path: p.doc for p in result.catalog.documents() if p.path in drifted}
    )
    if fmt == "json":
        doc = {"files": [r.__dict__ for r in rows], "drift": [f._asdict() for f in findings]}
        sys.stdout.write(to_json(doc) + "\n")
    else:  # paths and recipients come from the repository's files: escaped
        for r in rows:
            click.echo(term(f"{r.path}: {', '.join(r.recipients) or '(none)'}"))
        d.report_text(findings, d.Summary(len(rows)), sys.stdout, use_colour(sys.stdout))
    sys.exit(EXIT_FINDINGS if findings else EXIT_OK)


@secrets.command("updatekeys", short_help="Re-key every file whose recipients drifted from .sops.yaml.")
@click.argument("repo", default=".", type=click.Path())
@click.option("--dry-run", is_flag=True, help="Say what would change; write nothing.")
def secrets_updatekeys(repo: str, dry_run: bool) -> None:
    """Re-key every encrypted file whose recipients differ from its .sops.yaml rule (what
    `secrets recipients` flags), in one run: natively for age keys, through `sops updatekeys`
    for PGP, KMS or key groups. Prints per file the recipients added (+) and removed (-).

    The data key must be opened, so a key the file is encrypted to must be available
    (SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, or the sops keys file); values never change.
    Exit 0 when every file matches afterwards, 1 when one is left for a person, 2 when no key opens one.
    """
    from .. import updatekeys as uk
    from ..secrettarget import SecretsError

    result = load(repo)
    done = uk.update_keys(result, dry_run)
    for r in done:  # paths and recipients come from the repository's files: escaped
        changes = [f"+{a}" for a in r.added] + [f"-{x}" for x in r.removed]
        how = f"would be {r.how.value}" if dry_run and r.how in (uk.How.NATIVE, uk.How.SOPS) else r.how.value
        why = f" ({r.reason})" if r.reason else ""
        click.echo(term(f"{r.path}: {' '.join(changes)}: {how}{why}"))
    locked = [r.path for r in done if r.how is uk.How.NO_KEY]
    left = [r for r in done if r.how is uk.How.LEFT]
    if not done:
        click.echo("every encrypted file matches .sops.yaml; nothing to re-key", err=True)
    elif not locked and not left:
        s = "s" if len(done) != 1 else ""
        click.echo(f"{len(done)} file{s} {'to re-key' if dry_run else 're-keyed'}", err=True)
    if locked:
        err = SecretsError(f"{len(locked)} file(s) not re-keyed: no available key opens {', '.join(locked)}")
        err.hint = "set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY to a key the file is encrypted to"
        raise err
    if left:
        sys.exit(EXIT_FINDINGS)
