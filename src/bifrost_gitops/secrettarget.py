"""Where `secrets set` writes a value: the file, the block in it, and how to name it to a person.

A config_schema secret lives in the integration (its default) or in an organization's mapping;
an OAuth provider's secrets (``oauth.client_secret``) live in the shared provider document
(oauth/<name>.yaml) or in the integration's inline ``oauth:`` block. Errors name what was
probably meant (difflib), including the OAuth secret when a bare ``client_secret`` was typed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import NamedTuple

from .catalog import Catalog
from .errors import BifrostGitopsError
from .model import OAuthSecrets, ProviderRef
from .structure import suggest

#: the keys of an OAuth provider's secrets: block, settable as oauth.<key>
OAUTH_KEYS = tuple(OAuthSecrets.model_fields)
OAUTH_PREFIX = "oauth."


class SecretsError(BifrostGitopsError):
    """A user error of a secrets command (unknown integration, key not secret-typed, ...): exit 2."""


class Target(NamedTuple):
    """One secret's place: KEY under BLOCK of the repository-relative file PATH."""

    path: str
    block: tuple[str, ...]
    key: str
    done: str  # the confirmation, e.g. "client_secret of OAuth provider microsoft set (used by ...)"


def find(catalog: Catalog, integration: str, key: str, org: str | None) -> Target:
    """The place of INTEGRATION's KEY (``oauth.<key>`` for its OAuth provider), for ORG or the default."""
    ip = catalog.integrations.get(integration)
    if ip is None:
        raise SecretsError(
            f"integration {integration!r} is not declared" + _hint(integration, catalog.integrations)
        )
    if key.startswith(OAUTH_PREFIX):
        if org is not None:
            raise SecretsError(
                f"{key!r} belongs to the OAuth provider, not to an organization: drop --org "
                "(every organization shares the provider's client)"
            )
        return _oauth(catalog, integration, key.removeprefix(OAUTH_PREFIX))
    schema = {item.key: item for item in ip.model.config_schema}
    item = schema.get(key)
    if item is None:
        raise SecretsError(
            f"{key!r} is not in the config_schema of {integration!r}"
            + _schema_hint(catalog, integration, key)
        )
    if item.type != "secret":
        raise SecretsError(f"{key!r} is a {item.type} key, not a secret: set it under config: in the YAML")
    if org is None:
        return Target(ip.doc.path, ("defaults", "secrets"), key, f"{key} set (integration default)")
    if org.lower() not in catalog.orgs:
        raise SecretsError(
            f"organization {org!r} is not declared"
            + _hint(org, [o.name for o, _, _ in catalog.orgs.values()])
        )
    mp = catalog.mappings.get((integration, org.lower()))
    if mp is None:
        raise SecretsError(
            f"organization {org!r} has no mapping of {integration!r}: add a kind: Mapping document "
            f"for it first (e.g. integrations/{integration}/mappings/{org}.yaml)"
        )
    return Target(mp.doc.path, ("secrets",), key, f"{key} set for {org}")


def find_provider(catalog: Catalog, provider: str, key: str) -> Target:
    """The place of a shared OAuth provider's KEY (``client_secret`` or ``oauth.client_secret``)."""
    pp = catalog.providers.get(provider)
    if pp is None:
        raise SecretsError(
            f"OAuth provider {provider!r} is not declared" + _hint(provider, catalog.providers)
        )
    bare = key.removeprefix(OAUTH_PREFIX)
    _check_oauth_key(bare)
    users = sorted(n for n, ip in catalog.integrations.items() if _provider_of(ip.model.oauth) == provider)
    used = f" (used by {', '.join(users)})" if users else ""
    return Target(pp.doc.path, ("secrets",), bare, f"{bare} of OAuth provider {provider} set{used}")


def _oauth(catalog: Catalog, integration: str, key: str) -> Target:
    link = catalog.integrations[integration].model.oauth
    if link is None:
        raise SecretsError(
            f"{integration!r} has no oauth: block: declare its OAuth provider (inline, or "
            "`oauth: {provider: NAME}` with an oauth/NAME.yaml) first"
        )
    provider = _provider_of(link)
    if provider is not None:
        return find_provider(catalog, provider, key)
    _check_oauth_key(key)
    path = catalog.integrations[integration].doc.path
    return Target(path, ("oauth", "secrets"), key, f"{key} of {integration}'s inline OAuth client set")


def _provider_of(link: object) -> str | None:
    return link.provider if isinstance(link, ProviderRef) else None


def _check_oauth_key(key: str) -> None:
    if key not in OAUTH_KEYS:
        hint = suggest(key, OAUTH_KEYS)
        raise SecretsError(
            f"{key!r} is not an OAuth secret (one of {', '.join(OAUTH_KEYS)})"
            + (f" ({hint})" if hint else "")
        )


def _schema_hint(catalog: Catalog, integration: str, key: str) -> str:
    """Did-you-mean over the integration's secret keys and, when it has OAuth, its oauth.* keys."""
    ip = catalog.integrations[integration]
    names = [item.key for item in ip.model.config_schema]
    oauth = ip.model.oauth
    if oauth is not None:
        bare = key.removeprefix(OAUTH_PREFIX)
        close = difflib.get_close_matches(bare.lower(), OAUTH_KEYS, n=1, cutoff=0.75)
        if close:
            provider = _provider_of(oauth)
            where = (
                f"the {close[0]} of its OAuth provider {provider!r}, in {catalog.providers[provider].doc.path}"
                if provider in catalog.providers
                else f"the {close[0]} of its inline oauth: block"
            )
            return f" (did you mean {OAUTH_PREFIX + close[0]!r}: {where}?)"
    return _hint(key, names)


def _hint(word: str, choices: Iterable[str]) -> str:
    hint = suggest(word, choices)
    return f" ({hint})" if hint else ""
