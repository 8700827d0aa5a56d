"""The deploy commands: plan, apply, import (against a live Bifrost) and publish (to a runtime)."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from ..errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, BifrostGitopsError
from ..escape import term
from .common import F, WrongUnderExitCode, ci_status, fail, format_option, report, use_colour

if TYPE_CHECKING:
    from ..deploy.client import Client
    from ..deploy.plan import Plan
    from ..deploy.run import Prepared


def connection_options(f: F) -> F:
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


def _plan_options(f: F) -> F:
    f = click.option(
        "--disconnect-org-tokens",
        is_flag=True,
        help="Delete the OAuth token of its own that a mapping has in Bifrost when the repository "
        "says it uses the integration's (no oauth: own).",
    )(f)
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
) -> Prepared:
    """(client, plan, desired, live); a repository with errors gets its findings reported (then exit 1)."""
    from ..deploy.run import Options, prepare
    from ..deploy.source import RepositoryErrors

    try:
        return prepare(source, url, credentials, concurrency, Options(**opts))
    except RepositoryErrors as e:
        report(e.result.diagnostics, e.result.files, "text", e.result.root)
        raise


@click.command(short_help="Show what apply would change in a live Bifrost.")
@click.argument("source", default=".", type=click.Path())
@connection_options
@_plan_options
@format_option("json")
@click.option(
    "--exit-code", is_flag=True, help="Exit 0 no changes, 1 changes pending, 2 errors (README: Exit status)."
)
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    help="Also save the plan here, for `apply FILE` (mode 0600; no secret values).",
)
def plan(
    source: str,
    url: str | None,
    credentials: str | None,
    concurrency: int,
    fmt: str,
    exit_code: bool,
    out: str | None,
    **opts: bool,
) -> None:
    """Show what apply would change in Bifrost, resource by resource.

    SOURCE is a compiled bundle (its deploy.json) or a repository (compiled in memory; needs
    its sops keys). Secrets show only as set / changed / removed. Exit 2 on errors; a repository
    with findings exits 1, or 2 with --exit-code.
    """
    from ..deploy import saved
    from ..deploy.render import render_json, render_text
    from ..deploy.run import Options

    try:
        client, p, desired, live = _deploy_plan(source, url, credentials, concurrency, **opts)
    except BifrostGitopsError as e:
        if exit_code and e.exit_code != EXIT_USAGE:  # the repository's findings: 2 under --exit-code
            raise WrongUnderExitCode.of(e) from e
        raise
    client.close()
    sys.stdout.write(render_json(p) if fmt == "json" else render_text(p, use_colour(sys.stdout)))
    if p.errors:
        sys.exit(EXIT_USAGE)
    if out:  # a plan apply would refuse (blocked) is saved too: `apply FILE` refuses it the same way
        saved.write(out, saved.record(source, Options(**opts), desired, live, p))
        click.echo(f"plan saved to {term(out)}: apply it with `bifrost-gitops apply {term(out)}`", err=True)
    if exit_code:  # a change apply would refuse (key removal without the flag) is wrong too
        sys.exit(ci_status(bool(p.changes), bool(p.blocked)))
    sys.exit(EXIT_OK)


@click.command(short_help="Make a live Bifrost match a bundle or repository, or apply a saved plan.")
@click.argument("source", default=".", type=click.Path())
@connection_options
@_plan_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@format_option("json")
def apply(
    source: str, url: str | None, credentials: str | None, concurrency: int, yes: bool, fmt: str, **opts: bool
) -> None:
    """Make Bifrost match SOURCE (bundle or repository), in the contract's safe order.

    SOURCE may be a plan saved with `plan -o FILE`: then exactly those operations are applied
    (with the plan's options), and apply refuses (exit 2) if the bundle or repository it was
    made from, or the live Bifrost, has changed since.

    Idempotent: a second apply changes nothing. On a partial failure every operation is
    reported (ok / failed / skipped) and the exit status is 1; running apply again finishes.
    """
    from ..deploy.apply import apply as run_apply
    from ..deploy.render import render_json, render_results, render_text

    interactive = sys.stdin.isatty()
    if not yes and not interactive:
        fail("apply needs confirmation: pass --yes (no terminal to ask on)")
    client, p = _apply_plan(source, url, credentials, concurrency, opts)
    with client:
        out = render_json(p) if fmt == "json" else render_text(p, use_colour(sys.stdout))
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


def _apply_plan(
    source: str, url: str | None, credentials: str | None, concurrency: int, opts: dict[str, bool]
) -> tuple[Client, Plan]:
    """The plan apply performs: SOURCE's, or a saved plan's after checking it still holds."""
    from ..deploy import saved

    if not saved.is_saved_plan(source):
        got = _deploy_plan(source, url, credentials, concurrency, **opts)
        return got.client, got.plan
    if any(opts.values()):
        fail(
            "a saved plan carries its own options: pass no --prune/--allow-key-removal/--rotate-oauth-secrets"
            "/--disconnect-org-tokens"
        )
    kept = saved.read(source)
    got = _deploy_plan(kept.source, url, credentials, concurrency, **asdict(kept.options))
    try:
        saved.check(source, kept, got.desired, got.live, got.plan)
    except BaseException:
        got.client.close()
        raise
    return got.client, got.plan


@click.command("import", short_help="Write a repository from a live Bifrost.")
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
@connection_options
def import_cmd(
    out_dir: str, age: tuple[str, ...], url: str | None, credentials: str | None, concurrency: int
) -> None:
    """Write a v1 repository from the live Bifrost (secrets encrypted with sops)."""
    from ..deploy.run import connect, import_to

    with connect(url, credentials, concurrency) as client:
        done = import_to(client, out_dir, list(age))
        requests = client.requests
    for note in done.notes:
        click.echo(f"note: {term(note)}", err=True)
    for item in done.left_out:
        click.echo(f"left out: {term(item)}", err=True)
    left = f"; {len(done.left_out)} left out (listed above)" if done.left_out else ""
    click.echo(f"{term(out_dir)}: {len(done.files)} files written{left} ({requests} requests)", err=True)
    click.echo(
        f"next: bifrost-gitops validate {term(out_dir)} && bifrost-gitops plan {term(out_dir)}", err=True
    )


@click.command(short_help="Install a bundle into a runtime folder, or roll back.")
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
@format_option("json", help="Output format of --list.")
def publish(bundle: str | None, to: str, keep: int, rollback: bool, list_: bool, fmt: str) -> None:
    """Install BUNDLE into TO/releases/ and swap TO/current to it atomically (after verifying it).

    --rollback returns to what was live before the current release (never to one rolled back
    from); --list shows the history it follows.
    """
    from .. import publish as pub

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
    from .. import publish as pub
    from .. import publishreport

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


@click.command(short_help="Log in to Bifrost (device flow), or keep an unattended login alive.")
@click.option("--url", help="Bifrost base URL (default: BIFROST_API_URL).")
@click.option(
    "--credentials",
    type=click.Path(dir_okay=False),
    help="With --refresh/--export: the JSON credentials file plan and apply would use.",
)
@click.option(
    "--refresh", is_flag=True, help="Refresh the tokens now and store the new pair where they came from."
)
@click.option(
    "--export",
    "export",
    type=click.Choice(["refresh-token"]),
    help="Write the current refresh token to stdout, for a pipe into a CI secret (never to a terminal).",
)
def login(url: str | None, credentials: str | None, refresh: bool, export: str | None) -> None:
    """Log in with Bifrost's device flow: open the printed address, enter the code, approve.

    The tokens are stored in ~/.bifrost/credentials.json under the URL, as `bifrost login` does, so
    either tool's login serves both; plan, apply and import use them when no BIFROST_ACCESS_TOKEN
    or --credentials is given, and keep them current. The device flow prints no token.

    For unattended jobs (docs/deploy.md, "Staying logged in unattended"), with the credentials
    plan and apply would use: --refresh trades the refresh token for a new pair now (Bifrost's
    refresh tokens are single use and last 7 days); --export refresh-token writes the current
    one, with no newline, to stdout unless that is a terminal, so a job can hand it back to its
    secret store: `bifrost-gitops login --export refresh-token | gh secret set BIFROST_REFRESH_TOKEN`.
    """
    from ..deploy import DeployError

    if refresh or export:
        _keepalive(url, credentials, refresh, export is not None)
        return
    if credentials:
        raise DeployError("--credentials goes with --refresh or --export (the device flow stores its own)")
    from ..deploy.devicelogin import login as device_login

    api_url = url or os.environ.get("BIFROST_API_URL")
    if not api_url:
        raise DeployError("no Bifrost URL: pass --url or set BIFROST_API_URL")
    path = device_login(api_url, lambda line: click.echo(line, err=True))
    click.echo(f"logged in; tokens stored in {term(str(path))}", err=True)


def _keepalive(url: str | None, credentials: str | None, refresh: bool, export: bool) -> None:
    """`login --refresh` / `--export`: every check before the refresh, the token last."""
    from ..deploy import DeployError, keepalive
    from ..deploy.client import Client
    from ..deploy.credentials import load_credentials

    if export:
        keepalive.check_exportable(sys.stdout)
    creds = load_credentials(url, credentials)
    if refresh:
        keepalive.check_kept(creds, export)
        # unstored but exported: the client's "BIFROST_REFRESH_TOKEN no longer works" is not news
        quiet = None if creds.store else (lambda _message: None)
        with Client(creds, warn=quiet) as client:
            client.refresh()
        where = f"stored in {term(creds.store)}" if creds.store else "not stored (exported below)"
        click.echo(f"refreshed the tokens for {creds.shown_url}; {where}", err=True)
    if not export:
        return
    token = keepalive.exported(creds)
    try:
        sys.stdout.write(token)
        sys.stdout.flush()
    except OSError as e:  # the reader went away (a failed `gh`): say so loudly, never the token
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        raise DeployError(
            f"the refresh token was not handed over: cannot write to stdout ({e.strerror or type(e).__name__})"
        ) from None


COMMANDS = (plan, apply, import_cmd, publish, login)
