"""``connect``: print one organization's per-mapping OAuth authorization URL, for an admin."""

from __future__ import annotations

import click

from ..escape import term
from .common import fail
from .deploy import connection_options


@click.command(short_help="Print the URL that connects an organization's own OAuth account.")
@click.argument("integration")
@click.argument("organization")
@click.option(
    "--redirect-uri",
    help="Bifrost UI's OAuth callback page (default: <Bifrost origin>/oauth/callback/<integration>).",
)
@connection_options
def connect(
    integration: str,
    organization: str,
    redirect_uri: str | None,
    url: str | None,
    credentials: str | None,
    concurrency: int,
) -> None:
    """Begin ORGANIZATION's own OAuth connection for INTEGRATION (a mapping with oauth: own).

    ORGANIZATION is its Bifrost UUID or name. Prints the authorization URL Bifrost made for that
    organization's mapping: open it in a browser signed in to Bifrost, log in with the
    organization's account, and Bifrost links the token. Whoever opens the URL attaches their
    account to the organization, so it is printed only here, never in a CI job (refused there).
    """
    from ..deploy.connect import authorize, in_ci
    from ..deploy.run import connect as open_client

    ci = in_ci()
    if ci is not None:
        fail(
            f"connect refuses to run in CI ({ci} is set): the URL it prints lets whoever opens it "
            "attach their account to the organization; run it on an admin's machine"
        )
    with open_client(url, credentials, concurrency) as client:
        got = authorize(client, integration, organization, redirect_uri)
    who = f"{term(got.organization)}'s own OAuth account for {term(got.integration)}"
    if got.current is not None:
        click.echo(
            f"note: {term(got.organization)} has a token of its own already ({term(got.current)}); "
            "completing this flow replaces it",
            err=True,
        )
    click.echo(
        f"Open this URL in a browser signed in to Bifrost as an admin, and log in with {who}.\n"
        f"It is single-use and lets whoever opens it connect their account: do not share it.\n"
        f"(Bifrost's callback page: {term(got.redirect_uri)})",
        err=True,
    )
    click.echo(term(got.url))
