"""Begin an organization's own OAuth connection: the per-mapping authorization URL.

Bifrost links a token to one organization's mapping only at the end of a Connect flow: an
admin opens the URL ``POST /api/integrations/{id}/mappings/{mid}/oauth/authorize`` returns,
signs in with the organization's account, and Bifrost's UI (its callback page) stores the
token and links it. The URL carries a signed single-use state: whoever opens it attaches
their account to the organization, so it goes to the admin who asked for it and nowhere else
(never into plan or apply output, nor a CI log).
"""

from __future__ import annotations

import os
import urllib.parse
from typing import NamedTuple

from . import DeployError
from .client import ApiError, Client
from .live import read_detail
from .replies import AUTHORIZE, INTEGRATIONS, ORGS, Detail, Mapping, Org, get, parse

#: variables a CI runner sets: connect refuses to print a URL into its log
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILD_ID", "TF_BUILD")


class Authorization(NamedTuple):
    integration: str
    organization: str  # Bifrost's name for it
    url: str  # the authorization URL: for the admin's eyes only
    redirect_uri: str
    #: the mapping's own token before this flow (None: none linked), e.g. "completed", "failed"
    current: str | None


def in_ci() -> str | None:
    """The CI variable set in this process's environment, if any."""
    return next((v for v in CI_VARIABLES if os.environ.get(v, "").lower() not in ("", "0", "false")), None)


def _org(orgs: list[Org], wanted: str) -> Org:
    """WANTED as a UUID or Bifrost's name for the organization (case-insensitive)."""
    low = wanted.lower()
    for o in orgs:
        if o.id.lower() == low or o.name.lower() == low:
            return o
    raise DeployError(
        f"organization {wanted!r} is not an active organization in Bifrost (give its UUID or name)"
    )


def _integration(client: Client, name: str) -> Detail:
    listed = get(client, "/api/integrations", INTEGRATIONS).items
    found = next((i for i in listed if i.name == name), None) or next(
        (i for i in listed if i.name.lower() == name.lower()), None
    )
    if found is None:
        raise DeployError(f"integration {name!r} is not in Bifrost: apply the repository first")
    return read_detail(client, found.id)


def _mapping(detail: Detail, org: Org) -> Mapping:
    m = next((m for m in detail.mappings if (m.organization_id or "").lower() == org.id.lower()), None)
    if m is None:
        raise DeployError(
            f"integration {detail.name!r} has no mapping for organization {org.name!r}: "
            "declare one (with oauth: own) and apply it first"
        )
    return m


def default_redirect(api_url: str, connection_name: str) -> str:
    """Bifrost UI's callback page for CONNECTION_NAME, on the API's origin (the UI and the API
    share one origin in Bifrost's own deployment; --redirect-uri says otherwise)."""
    parts = urllib.parse.urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}/oauth/callback/{urllib.parse.quote(connection_name, safe='')}"


def authorize(client: Client, integration: str, organization: str, redirect_uri: str | None) -> Authorization:
    """The per-mapping authorization URL for ORGANIZATION's mapping of INTEGRATION."""
    detail = _integration(client, integration)
    if detail.oauth_config is None:
        raise DeployError(f"integration {detail.name!r} has no OAuth provider in Bifrost: nothing to connect")
    org = _org(get(client, "/api/organizations", ORGS), organization)
    mapping = _mapping(detail, org)
    # Bifrost names a REST-created provider after its integration (docs/bifrost-api.md#oauth-connections)
    redirect = redirect_uri or default_redirect(client.creds.api_url, detail.name)
    path = f"/api/integrations/{detail.id}/mappings/{mapping.id}/oauth/authorize"
    try:
        reply = client.post(path, {"redirect_uri": redirect})
    except ApiError as e:
        if e.status == 400:
            raise DeployError(
                f"Bifrost cannot connect an account for {org.name!r} on {detail.name!r}: {e.message} "
                "(a provider without an authorization step has no per-organization Connect flow)"
            ) from None
        raise
    url = parse(AUTHORIZE, reply, "POST", path).authorization_url
    current = mapping.connection_status if mapping.oauth_token_id else None
    return Authorization(detail.name, org.name, url, redirect, current)
