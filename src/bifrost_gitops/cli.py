"""The command line: parse arguments, call the library, print, choose the exit code.

Heavy imports (pydantic, the checks) happen inside the commands so that start-up stays fast.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from .errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, BifrostGitopsError
from .escape import term


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """A usage or environment error: one line on stderr, exit 2. Messages quote paths, names
    and exception texts from the repository or a server: escaped, so they stay one line."""
    if message:
        click.echo(f"bifrost-gitops: {term(message)}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """The one place errors become exit codes. A library error (BifrostGitopsError) is its one
    line and its exit code; an unexpected exception is one line and exit 2: no traceback, and no
    exception text either, since it could carry a value read from a secret file."""

    def invoke(self, ctx: click.Context) -> Any:
        import os

        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
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
def main() -> None:
    """Bifrost integrations as code: validate, compile and review a GitOps repository."""


def _report(diags: list[Any], files: int, fmt: str, root: str) -> None:
    import os

    from . import diagnostics as d

    out = sys.stdout
    if fmt == "json":
        d.report_json(diags, files, out)
    elif fmt == "github":
        prefix = os.path.relpath(root)
        prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
        d.report_github(diags, files, out, prefix)
    else:
        d.report_text(diags, files, out, d.use_colour(out))


def _load(repo: str) -> Any:
    from .repo import load

    return load(repo)


def _open_all(result: Any) -> list[Any]:
    """Decrypt every encrypted file (MAC verified); files no key opens come back as K004."""
    from . import secretops

    return secretops.check_files(result)


def _exit_for(diags: list[Any], failing: list[Any]) -> NoReturn:
    """2 when a file could not be opened (missing key: the environment), else 1 on findings."""
    if any(d.code == "K004" for d in diags):
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_FINDINGS if failing else EXIT_OK)


_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="Output format; github prints Actions annotations.",
)


@main.command()
@click.argument("repo", default=".", type=click.Path(file_okay=True, dir_okay=True))
@_FORMAT
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
@click.option(
    "--decrypt", is_flag=True, help="Also open every encrypted file and verify its MAC (needs keys)."
)
def validate(repo: str, fmt: str, strict: bool, decrypt: bool) -> None:
    """Check the repository at REPO (default: here) and report every finding at once.

    Exit 0 when clean (warnings allowed unless --strict), 1 on findings, 2 on usage errors.
    No decryption key is needed unless --decrypt is given.
    """
    from .diagnostics import sort_key

    result = _load(repo)
    diags = list(result.diagnostics)
    if decrypt:
        diags = sorted(diags + _open_all(result), key=sort_key)
    _report(diags, result.files, fmt, result.root)
    _exit_for(diags, diags if strict else [x for x in diags if x.severity == "error"])


@main.command()
@click.argument("kind", required=False)
@click.option(
    "--output-dir",
    "-o",
    type=click.Path(file_okay=False),
    help="Write every kind's <kind>.schema.json into this folder instead.",
)
def schema(kind: str | None, output_dir: str | None) -> None:
    """Print the JSON Schema of KIND (Project, Organizations, OAuthProvider, Integration, Mapping, Bundle)."""
    from .schemas import ALL_KINDS as KINDS
    from .schemas import dump, write_all

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
    from .scaffold import scaffold

    for path in scaffold(directory, force=force, age_recipient=age_recipient):
        click.echo(f"created {term(path)}")
    click.echo(f"next: cd {term(directory)} && bifrost-gitops validate")


@main.command("compile")
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
@_FORMAT
def compile_cmd(repo: str, out_dir: str, mode: str, recipients: tuple[str, ...], fmt: str) -> None:
    """Validate REPO, then write one resolved bundle per organization into OUTPUT.

    Nothing is written when the repository has errors (exit 1) or a secret cannot be opened
    (missing key: exit 2; altered file: exit 1).
    """
    from .build import compile_repo
    from .errors import Findings

    result = _load(repo)
    try:
        written = compile_repo(result, out_dir, mode, list(recipients))
    except Findings as e:
        _report(e.diagnostics, result.files, fmt, result.root)
        raise
    # changed names files found in the output folder too (a stale orgs/ file): escaped
    what = ", ".join(written.changed) if len(written.changed) <= 5 else f"{len(written.changed)} files"
    click.echo(
        f"{term(written.out_dir)}: {written.files} files ({mode}); "
        f"{'changed: ' + term(what) if written.changed else 'unchanged'}",
        err=True,
    )


@main.command()
@click.argument("args", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def explain(args: tuple[str, ...], fmt: str) -> None:
    """Show what ORG gets for INTEGRATION, value by value, and where each value comes from.

    Usage: explain [REPO] ORG INTEGRATION [KEY]. ORG is a name, a Bifrost UUID, or "global"
    (the defaults-only view).
    No key is needed: secrets are shown as <secret>.
    """
    from . import explain as ex

    repo = "."
    if len(args) >= 3 and (len(args) == 4 or _is_repo(args[0])):
        repo, args = args[0], args[1:]
    if len(args) not in (2, 3):
        fail("usage: explain [REPO] ORG INTEGRATION [KEY]")
    report = ex.explain(_load(repo).catalog, *args)
    click.echo(ex.render_json(report) if fmt == "json" else ex.render_text(report), nl=False)


def _is_repo(path: str) -> bool:
    import os

    return os.path.isdir(path)


@main.command()
@click.argument("repo", default=".", type=click.Path())
@click.option("--base", required=True, help="The revision to compare against (e.g. origin/main).")
@click.option("--head", default=None, help="The revision under review (default: the work tree).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="markdown is made to be posted as a pull-request comment.",
)
@click.option("--exit-code", is_flag=True, help="Exit 1 when anything differs.")
def diff(repo: str, base: str, head: str | None, fmt: str, exit_code: bool) -> None:
    """Show what changes between two revisions for each organization's workflows.

    Both revisions are read straight from git objects; nothing in the work tree changes.
    Secrets are never shown: with keys, "changed"; without, "ciphertext changed".
    Security-relevant changes (an organization's id or display name, bundle recipients,
    .sops.yaml rules) are listed first and count as changes for --exit-code.
    """
    from . import diffreport, diffrun

    result = diffrun.run(repo, base, head)
    render = {
        "text": diffreport.render_text,
        "markdown": diffreport.render_markdown,
        "json": diffreport.render_json,
    }[fmt]
    sys.stdout.write(render(result))
    head_errors = [f for f in result.head_findings if f.severity == "error"]
    sys.exit(EXIT_FINDINGS if head_errors or (exit_code and result.changed) else EXIT_OK)


# --- deploy: plan, apply, import, publish ----------------------------------------------------


def _connection(f: Any) -> Any:
    f = click.option(
        "--concurrency",
        default=8,
        show_default=True,
        type=click.IntRange(1, 64),
        help="Requests in flight at most.",
    )(f)
    f = click.option(
        "--credentials",
        type=click.Path(dir_okay=False),
        help="JSON file {api_url, access_token, refresh_token}; the rotated refresh token is written back.",
    )(f)
    return click.option("--url", help="Bifrost base URL (default: BIFROST_API_URL).")(f)


def _plan_options(f: Any) -> Any:
    f = click.option(
        "--rotate-oauth-secrets", is_flag=True, help="Send every declared OAuth client secret again."
    )(f)
    f = click.option(
        "--allow-key-removal",
        is_flag=True,
        help="Allow removing schema keys (deletes their values in Bifrost).",
    )(f)
    return click.option(
        "--prune", is_flag=True, help="Remove what this tool manages but the repository no longer declares."
    )(f)


def _deploy_plan(
    source: str, url: str | None, credentials: str | None, concurrency: int, **opts: bool
) -> Any:
    """(client, plan); a repository with errors gets its findings reported (then exit 1)."""
    from .deploy.run import Options, prepare
    from .deploy.source import RepositoryErrors

    try:
        return prepare(source, url, credentials, concurrency, Options(**opts))
    except RepositoryErrors as e:
        _report(e.result.diagnostics, e.result.files, "text", e.result.root)
        raise


@main.command()
@click.argument("source", default=".", type=click.Path())
@_connection
@_plan_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--exit-code", is_flag=True, help="Exit 1 when changes are pending.")
def plan(
    source: str,
    url: str | None,
    credentials: str | None,
    concurrency: int,
    fmt: str,
    exit_code: bool,
    **opts: bool,
) -> None:
    """Show what apply would change in Bifrost, resource by resource.

    SOURCE is a compiled bundle (its deploy.json) or a repository (compiled in memory; needs
    its sops keys). Secrets show only as set / changed / removed. Exit 2 on errors.
    """
    from .deploy.render import render_json, render_text

    client, p = _deploy_plan(source, url, credentials, concurrency, **opts)
    client.close()
    sys.stdout.write(render_json(p) if fmt == "json" else render_text(p))
    if p.errors:
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_FINDINGS if exit_code and (p.changes or p.blocked) else EXIT_OK)


@main.command()
@click.argument("source", default=".", type=click.Path())
@_connection
@_plan_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def apply(
    source: str, url: str | None, credentials: str | None, concurrency: int, yes: bool, fmt: str, **opts: bool
) -> None:
    """Make Bifrost match SOURCE (bundle or repository), in the contract's safe order.

    Idempotent: a second apply changes nothing. On a partial failure every operation is
    reported (ok / failed / skipped) and the exit status is 1; running apply again finishes.
    """
    from .deploy.apply import apply as run_apply
    from .deploy.render import render_json, render_results, render_text
    from .escape import term

    interactive = sys.stdin.isatty()
    if not yes and not interactive:
        fail("apply needs confirmation: pass --yes (no terminal to ask on)")
    client, p = _deploy_plan(source, url, credentials, concurrency, **opts)
    with client:
        out = render_json(p) if fmt == "json" else render_text(p)
        if p.errors:
            sys.stdout.write(out)
            fail("nothing applied: fix the errors above")
        if p.blocked:
            sys.stdout.write(out)
            fail("nothing applied: " + term("; ".join(p.blocked)))
        if fmt == "text":
            sys.stdout.write(out)
        if not p.ops:
            sys.exit(EXIT_OK)
        if p.changes and not yes and not click.confirm(f"Apply {len(p.changes)} changes?", err=True):
            fail("nothing applied")
        results = run_apply(client, p)
        sys.stdout.write(render_results(results, client.requests, fmt))
    sys.exit(EXIT_FINDINGS if any(r.status != "ok" for r in results) else EXIT_OK)


@main.command("import")
@click.option(
    "-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="The new repository."
)
@click.option(
    "--age",
    "age",
    multiple=True,
    metavar="RECIPIENT",
    help="Age recipient for a new .sops.yaml (repeatable; needed when OUTPUT has none).",
)
@_connection
def import_cmd(
    out_dir: str, age: tuple[str, ...], url: str | None, credentials: str | None, concurrency: int
) -> None:
    """Write a v1 repository from the live Bifrost (secrets encrypted with sops)."""
    from .deploy.run import connect, import_to

    with connect(url, credentials, concurrency) as client:
        done = import_to(client, out_dir, list(age))
        requests = client.requests
    for note in done.notes:
        click.echo(f"note: {term(note)}", err=True)
    for item in done.left_out:
        click.echo(f"left out: {term(item)}", err=True)
    left = f"; {len(done.left_out)} left out (listed above)" if done.left_out else ""
    click.echo(f"{term(out_dir)}: {len(done.files)} files written{left} ({requests} requests)", err=True)
    click.echo(f"next: bifrost-gitops validate {out_dir} && bifrost-gitops plan {out_dir}", err=True)


@main.command()
@click.argument("bundle", required=False, type=click.Path(file_okay=False))
@click.option(
    "--to", "to", required=True, type=click.Path(file_okay=False), help="The runtime's bundle folder."
)
@click.option(
    "--keep",
    default=5,
    show_default=True,
    type=click.IntRange(0),
    help="Previous releases to keep (the one a rollback returns to is always kept).",
)
@click.option("--rollback", is_flag=True, help="Point current back at what was live before it instead.")
@click.option("--list", "list_", is_flag=True, help="Show what was made current, when and how.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format of --list.",
)
def publish(bundle: str | None, to: str, keep: int, rollback: bool, list_: bool, fmt: str) -> None:
    """Install BUNDLE into TO/releases/ and swap TO/current to it atomically (after verifying it).

    --rollback returns to what was live before the current release (never to one rolled back
    from); --list shows the history it follows.
    """
    from . import publish as pub
    from .escape import term

    if list_ and (bundle or rollback):
        fail("--list takes no BUNDLE and no --rollback")
    if fmt != "text" and not list_:
        fail("--format goes with --list")
    try:
        if list_:
            _publish_list(to, fmt)
            return
        if rollback:
            if bundle:
                fail("--rollback takes no BUNDLE")
            done = pub.rollback(to)
        else:
            if not bundle:
                fail("name the BUNDLE to publish (or --rollback)")
            done = pub.publish(bundle, to, keep)
    except OSError as e:  # said as Python says it (the group's own wording differs)
        fail(str(e))
    state = "rolled back to" if rollback else ("published" if done.changed else "unchanged")
    click.echo(
        f"{term(to)}/current: {state} {term(done.release)}"
        + (f" (from {term(done.left)})" if done.left else "")
        + (f" (removed {len(done.removed)} old)" if done.removed else ""),
        err=True,
    )


def _publish_list(to: str, fmt: str) -> None:
    """`publish --list`: the history, oldest first, in text or JSON (names escaped for either)."""
    import os

    from . import publish as pub
    from . import publishreport

    if not os.path.isdir(to):
        fail(f"{term(to)}: no such folder")
    h = pub.history(to)
    rows = pub.rows(h, to)
    if fmt == "json":
        click.echo(publishreport.render_json(h, rows))
    elif not rows:
        click.echo(f"{term(to)}: nothing is published here", err=True)
    else:
        for line in publishreport.render_table(rows):
            click.echo(line)


@main.group()
def secrets() -> None:
    """Set, check and audit the SOPS-encrypted secrets of a repository."""


@secrets.command("set")
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
    from . import secretops

    result = _load(repo)
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


@secrets.command("keygen")
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
    from . import secretops

    where, recipient = secretops.keygen(path)
    click.echo(f"created {term(where)}", err=True)
    click.echo(recipient)


@secrets.command("check")
@click.argument("repo", default=".", type=click.Path())
@_FORMAT
def secrets_check(repo: str, fmt: str) -> None:
    """Open every encrypted file with the available keys and verify its MAC.

    Exit 0 when all open and verify, 1 when one was altered, 2 when a key is missing.
    """
    from . import secretops

    result = _load(repo)
    diags = _open_all(result)
    _report(diags, len(secretops.encrypted_files(result)), fmt, result.root)
    _exit_for(diags, diags)


@secrets.command("recipients")
@click.argument("repo", default=".", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def secrets_recipients(repo: str, fmt: str) -> None:
    """List which files are encrypted to which recipients; flag drift from .sops.yaml (exit 1)."""
    from . import diagnostics as d
    from . import secretops
    from .escape import to_json

    result = _load(repo)
    rows = secretops.list_recipients(result)
    findings = secretops.recipient_findings(rows)
    if fmt == "json":
        doc = {"files": [r.__dict__ for r in rows], "drift": [f._asdict() for f in findings]}
        sys.stdout.write(to_json(doc) + "\n")
    else:  # paths and recipients come from the repository's files: escaped
        for r in rows:
            click.echo(term(f"{r.path}: {', '.join(r.recipients) or '(none)'}"))
        d.report_text(findings, len(rows), sys.stdout, d.use_colour(sys.stdout))
    sys.exit(EXIT_FINDINGS if findings else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
