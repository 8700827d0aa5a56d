"""The runtime SDK: Bifrost's ``integrations.get`` read path over a compiled bundle.

A workflow written for Bifrost runs unchanged but for its import line::

    from bifrost_gitops.runtime import integrations      # instead of: from bifrost import integrations

    integration = await integrations.get("HaloPSA")      # scope: BIFROST_GITOPS_ORG
    integration.config["base_url"], integration.entity_id, integration.oauth

What it returns has the shape of Bifrost's SDK models (docs/bifrost-api.md#sdk-models):
:class:`IntegrationData` (``integration_id``, ``entity_id``, ``entity_name``, ``config``,
``config_secret_keys``, ``oauth``) with :class:`OAuthCredentials` under ``oauth``, and
:class:`IntegrationMappingResponse` from :meth:`Integrations.list_mappings` /
:meth:`Integrations.get_mapping`.

Where the data comes from:

- The bundle folder written by ``bifrost-gitops compile``: ``BIFROST_GITOPS_BUNDLE``, read
  when the module-level ``integrations`` is first used (and again if the variable changes), or
  an explicit ``Integrations(Bundle(path, keyring=...))``.
- Scope (docs/bifrost-api.md#resolution): ``None`` (or ``""``) is the workflow's organization from
  ``BIFROST_GITOPS_ORG`` (an error when unset); an organization's name or its Bifrost UUID is
  that organization; ``"global"`` is the defaults-only view (``global.json``), always, even if
  an organization were named ``global``. An organization the bundle does not have raises
  :class:`UnknownOrganizationError` (a ``LookupError``). An integration the bundle does not
  have returns None, as Bifrost does.
- ``index.json``'s sha256 of an org file is checked when the file is read: a mismatch raises
  :class:`BundleIntegrityError` naming the file. So does an org file whose own
  ``organization`` (name and id) is not the index entry's that points to it (another
  organization's file swapped in), or a ``global.json`` without ``scope: global``. Sealed files are opened with the runtime's
  age key, found where sops looks (``SOPS_AGE_KEY``, ``SOPS_AGE_KEY_FILE``,
  ``SOPS_AGE_KEY_CMD``, the user's ``sops/age/keys.txt``, then the sops binary); no key raises
  :class:`BundleKeyError` naming the file and the key sources tried.
- Redacted bundles (``compile --secrets redact``) return the marker ``"<redacted>"`` as the
  value of every secret (config secret keys, client secret, tokens): fine for tests and
  review, useless for calling a real API.

Caching: each org file is read, checked and decrypted once per process (per :class:`Bundle`),
and the built objects are kept per (scope, integration). Every call returns a fresh copy, so
a workflow that changes ``config`` (nested JSON values included) or ``oauth.scopes`` does not
change what the next call returns. A recompiled bundle is picked up only for org files not
read yet; :meth:`Integrations.clear_cache` (or a new process) starts over.

Leak guard: ``repr()``/``str()`` of the returned objects, and of their ``config`` dict, show
``<secret>`` for the values of ``config_secret_keys``, ``client_secret``, ``access_token``
and ``refresh_token``. The attributes themselves hold the real values: workflows need them.
``model_dump()`` returns the plain dict (clear values), as pydantic's does in Bifrost.

Tokens (:mod:`.tokens`): for a ``client_credentials`` provider, ``get`` mints
``oauth.access_token`` when Bifrost's ``get`` would (an ``oauth_scope`` override, or
``{entity_id}`` in the token URL with an entity id), and also where Bifrost would hand out the
token its scheduler minted and the repository declares none; cached per (organization,
integration, scope) until a minute before expiry; https only (http on loopback). A failing
endpoint raises :class:`TokenError` naming the provider. For an ``authorization_code``
provider the workflow gets the token the repository declares, else None: tokens from a user's
consent live only in Bifrost. ``OAuthCredentials.refresh()`` does not exist; mappings have no ``id``, ``oauth_token_id`` or timestamps (None), and their
``entity_id`` is the resolved one (the mapping's, else ``default_entity_id``).

The package: :mod:`.models` (what a call returns), :mod:`.reader` (the bundle folder, read and
checked, with its caches and the fast copy path), :mod:`.facade` (the ``integrations`` object).
"""

from __future__ import annotations

from ..bundleformat import GLOBAL_SCOPE as GLOBAL
from ..bundleformat import MASK, REDACTED
from .facade import ENV_BUNDLE, ENV_ORG, Integrations, integrations
from .models import IntegrationData, IntegrationMappingResponse, OAuthCredentials
from .reader import (
    Bundle,
    BundleIntegrityError,
    BundleKeyError,
    BundleReadError,
    NoScopeError,
    UnknownOrganizationError,
)
from .tokens import TokenCache, TokenError

__all__ = [
    "ENV_BUNDLE",
    "ENV_ORG",
    "GLOBAL",
    "MASK",
    "REDACTED",
    "Bundle",
    "BundleIntegrityError",
    "BundleKeyError",
    "BundleReadError",
    "IntegrationData",
    "IntegrationMappingResponse",
    "Integrations",
    "NoScopeError",
    "OAuthCredentials",
    "TokenCache",
    "TokenError",
    "UnknownOrganizationError",
    "integrations",
]
