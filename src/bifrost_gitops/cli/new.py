"""`bifrost-gitops new org|integration|mapping`: add one document in the repository's layout."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from ..escape import term
from .common import F, load

if TYPE_CHECKING:
    from ..newdoc import Written


def _repo(f: F) -> F:
    return click.option(
        "-C",
        "--repo",
        "repo",
        default=".",
        show_default=True,
        type=click.Path(),
        help="The repository (or any folder in it).",
    )(f)


@click.group(short_help="Add an org, integration or mapping: files that validate.")
def new() -> None:
    """Add an organization, an integration or a mapping where the repository keeps them, with
    the right `$schema` comment; every file written validates."""


@new.command("org", short_help="Declare an organization in the organizations file.")
@click.argument("name")
@click.option("--id", "org_id", metavar="UUID", help="The organization's UUID in Bifrost.")
@click.option("--display-name", metavar="TEXT", help="The name people read.")
@_repo
def new_org(name: str, org_id: str | None, display_name: str | None, repo: str) -> None:
    """Declare organization NAME (a lower-case slug): appended to the end of the organizations
    list, every other line of that file unchanged."""
    from ..newdoc import new_org as add

    _done(add(load(repo), name, org_id, display_name))


@new.command("integration", short_help="Declare an integration in a folder of its own.")
@click.argument("name")
@click.option("--oauth", "provider", metavar="PROVIDER", help="Use this shared OAuth provider.")
@_repo
def new_integration(name: str, provider: str | None, repo: str) -> None:
    """Declare integration NAME in its own folder beside the others, with an empty config
    schema and an empty mappings/ folder."""
    from ..newdoc import new_integration as add

    _done(add(load(repo), name, provider))


@new.command("mapping", short_help="Map an organization into an integration.")
@click.argument("integration")
@click.argument("org")
@click.option("--entity-id", metavar="ID", help="The organization's id in the external system.")
@click.option("--entity-name", metavar="TEXT", help="Its name there.")
@click.option(
    "--set",
    "values",
    multiple=True,
    metavar="KEY=VALUE",
    help="A config value for this organization, typed by the config schema (repeatable; not secrets).",
)
@_repo
def new_mapping(
    integration: str,
    org: str,
    entity_id: str | None,
    entity_name: str | None,
    values: tuple[str, ...],
    repo: str,
) -> None:
    """Write INTEGRATION's mapping for ORG beside the integration's other mappings, checked by
    validate's rules first: a required key without a default needs --set KEY=VALUE (a required
    secret is set afterwards with `secrets set`, as the printed next step says)."""
    from ..newdoc import new_mapping as add

    _done(add(load(repo), integration, org, entity_id, entity_name, values))


def _done(written: Written) -> None:
    """What was written, then the next step (paths and names are user text: escaped)."""
    for path in written.created:
        click.echo(f"created {term(_shown(path))}")
    for path in written.changed:
        click.echo(f"changed {term(_shown(path))}")
    click.echo(f"next: {term(written.next_step)}")


def _shown(path: str) -> str:
    """PATH relative to the current folder when it is below it, else as it is."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


COMMANDS = [new]
