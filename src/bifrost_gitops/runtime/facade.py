"""The SDK object: Bifrost's ``integrations`` over a bundle (explicit, or ``BIFROST_GITOPS_BUNDLE``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Final

from ..bundleformat import GLOBAL_SCOPE as GLOBAL
from .models import IntegrationData, IntegrationMappingResponse
from .reader import Bundle, BundleReadError, NoScopeError

ENV_BUNDLE: Final = "BIFROST_GITOPS_BUNDLE"
ENV_ORG: Final = "BIFROST_GITOPS_ORG"


def _env_scope() -> str:
    scope = os.environ.get(ENV_ORG)
    if not scope:
        raise NoScopeError(
            f"no scope given and {ENV_ORG} is not set: set it to the organization's name or UUID, "
            "or pass scope= (an organization, or 'global')"
        )
    return scope


class Integrations:
    """Bifrost's ``integrations`` SDK object over a bundle (explicit, or ``BIFROST_GITOPS_BUNDLE``)."""

    def __init__(self, bundle: Bundle | str | os.PathLike[str] | None = None) -> None:
        self._fixed = bundle if isinstance(bundle, Bundle) or bundle is None else Bundle(bundle)
        self._env_path: str | None = None
        self._env_bundle: Bundle | None = None

    @property
    def bundle(self) -> Bundle:
        """The bundle read: the explicit one, else the one ``BIFROST_GITOPS_BUNDLE`` names."""
        if self._fixed is not None:
            return self._fixed
        path = os.environ.get(ENV_BUNDLE)
        if path != self._env_path or self._env_bundle is None:
            if not path:
                raise BundleReadError(
                    f"{ENV_BUNDLE} is not set: point it at a folder written by `bifrost-gitops compile`, "
                    "or use Integrations(Bundle(path))"
                )
            self._env_bundle, self._env_path = Bundle(path), path
        return self._env_bundle

    def clear_cache(self) -> None:
        """Forget what was read (the next call reads the bundle again)."""
        if self._fixed is not None:
            self._fixed.clear_cache()
        self._env_bundle = self._env_path = None

    def get_sync(
        self, name: str, scope: str | None = None, oauth_scope: str | None = None
    ) -> IntegrationData | None:
        """:meth:`get` without ``await`` (a token fetch, when one is due, blocks the caller)."""
        return self.bundle.get(name, scope or _env_scope(), oauth_scope)

    async def get(
        self, name: str, scope: str | None = None, oauth_scope: str | None = None
    ) -> IntegrationData | None:
        """What Bifrost's ``integrations.get(name, scope, oauth_scope)`` returns, from the bundle.

        None for an integration the bundle does not have. For a client-credentials provider
        ``oauth.access_token`` is minted as Bifrost's ``get`` mints it (``oauth_scope`` overrides
        the provider's scopes; its token is cached apart, per scope); the request runs in a
        worker thread, so the event loop is not blocked. A failing token endpoint raises
        :class:`TokenError` naming the provider.
        """
        b, key = self.bundle, scope or _env_scope()
        if b.mints(name, key):
            return await asyncio.to_thread(b.get, name, key, oauth_scope)
        return b.get(name, key)

    def list_mappings_sync(
        self, name: str, scope: str | None = None
    ) -> list[IntegrationMappingResponse] | None:
        """:meth:`list_mappings` without ``await``."""
        b = self.bundle
        key = b.org_name(scope or _env_scope())
        if name not in b.view(GLOBAL).records:  # global.json has every integration
            return None
        orgs = b.organizations() if key == GLOBAL else [key]
        return [m for m in (b.mapping(o, name) for o in orgs) if m is not None]

    async def list_mappings(
        self, name: str, scope: str | None = None
    ) -> list[IntegrationMappingResponse] | None:
        """The mappings of integration NAME: the scope's organization's (0 or 1), or every
        organization's with ``scope="global"`` (reads every org file). None for an unknown integration.
        """
        return self.list_mappings_sync(name, scope)

    def get_mapping_sync(
        self, name: str, scope: str | None = None, entity_id: str | None = None
    ) -> IntegrationMappingResponse | None:
        """:meth:`get_mapping` without ``await``."""
        b = self.bundle
        key = b.org_name(scope or _env_scope())
        if key != GLOBAL:  # by organization (the entity id cannot find another org's mapping)
            return b.mapping(key, name)
        if entity_id is None:
            return None
        for org in b.organizations():
            rec = b.view(org).records.get(name)
            if isinstance(rec, Mapping) and rec.get("entity_id") == entity_id and b.mapped(org, name):
                return b.mapping(org, name)
        return None

    async def get_mapping(
        self, name: str, scope: str | None = None, entity_id: str | None = None
    ) -> IntegrationMappingResponse | None:
        """One mapping: the scope organization's first, then (``scope="global"``) the one whose
        entity id is ENTITY_ID. None when there is none.
        """
        return self.get_mapping_sync(name, scope, entity_id)


#: The module-level SDK object, bound to ``BIFROST_GITOPS_BUNDLE`` when first used.
integrations: Final = Integrations()
