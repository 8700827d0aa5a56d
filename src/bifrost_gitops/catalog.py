"""The checked repository: every valid document with its source, indexed by what it declares.

`checks.check()` builds a Catalog; resolution, explain, diff, compile and the secret commands
read it. `Parsed[M]` keeps the document model's type (Parsed[Integration], Parsed[Mapping],
...), so readers of `catalog.integrations[name].model` get an Integration, not Any.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeGuard, TypeVar

from .loader import Document
from .model import (
    AnyDocument,
    Integration,
    Mapping,
    OAuthProvider,
    OAuthSettings,
    Organization,
    Organizations,
    Project,
    ProviderRef,
)

M = TypeVar("M", bound=AnyDocument, covariant=True)
K = TypeVar("K", bound=AnyDocument)


@dataclass(frozen=True)
class Parsed(Generic[M]):
    """A structurally valid document with its source."""

    doc: Document
    model: M


def of_kind(parsed: Iterable[Parsed[AnyDocument]], kind: type[K]) -> list[Parsed[K]]:
    """The documents of one kind, in their order, typed as that kind."""
    return [p for p in parsed if _is(p, kind)]


def _is(p: Parsed[AnyDocument], kind: type[K]) -> TypeGuard[Parsed[K]]:
    return isinstance(p.model, kind)


@dataclass
class Catalog:
    """Every valid document, indexed; what the cross-document rules and later stages read."""

    project: Parsed[Project] | None = None
    #: lower-cased name -> (the organization, its document, its index in that document)
    orgs: dict[str, tuple[Organization, Parsed[Organizations], int]] = field(default_factory=dict)
    providers: dict[str, Parsed[OAuthProvider]] = field(default_factory=dict)
    integrations: dict[str, Parsed[Integration]] = field(default_factory=dict)
    #: (integration name, lower-cased organization name) -> mapping
    mappings: dict[tuple[str, str], Parsed[Mapping]] = field(default_factory=dict)
    #: lower-cased names declared by documents that failed their schema (already reported)
    unverified: set[str] = field(default_factory=set)

    def documents(self) -> list[Parsed[AnyDocument]]:
        """Every indexed document, once each (Organizations files appear once, not per org)."""
        every: list[Parsed[AnyDocument]] = [self.project] if self.project else []
        every += [p for _, p, _ in self.orgs.values()]
        every += [*self.providers.values(), *self.integrations.values(), *self.mappings.values()]
        seen: dict[str, Parsed[AnyDocument]] = {}
        for p in every:
            seen.setdefault(p.doc.path, p)
        return list(seen.values())


def oauth_of(cat: Catalog, integ: Integration) -> OAuthSettings | None:
    """The OAuth settings an integration uses: its own, or its provider's (None if undeclared)."""
    link = integ.oauth
    if isinstance(link, ProviderRef):
        p = cat.providers.get(link.provider)
        return p.model if p else None
    return link
