"""The checked repository: every valid document with its source, indexed by what it declares.

`checks.check()` builds a Catalog; resolution, explain, diff, compile and the secret commands
read it. `Parsed[M]` keeps the document model's type (Parsed[Integration], Parsed[Mapping],
...), so readers of `catalog.integrations[name].model` get an Integration, not Any.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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


class Parsed(Generic[M]):
    """A structurally valid document with its source. The model may be made on first use
    (MAKE, with its class KIND known beforehand): a warm run whose checks come from the cache
    never needs the models of the documents that did not change (see perfile.rebuild)."""

    __slots__ = ("_make", "_model", "doc", "kind")

    def __init__(
        self,
        doc: Document,
        model: M | None = None,
        make: Callable[[], M] | None = None,
        kind: type | None = None,
    ):
        if model is None and (make is None or kind is None):
            raise TypeError("Parsed needs a model, or a way to make it and its kind")
        self.doc = doc
        self._model = model
        self._make = make
        self.kind: type = type(model) if model is not None else kind  # type: ignore[assignment]

    @property
    def model(self) -> M:
        if self._model is None:
            assert self._make is not None
            self._model = self._make()
            self._make = None
        return self._model

    @property
    def made(self) -> bool:
        """Whether the model exists yet (a lazy one not asked for has not been made)."""
        return self._model is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Parsed) and (self.doc, self.model) == (other.doc, other.model)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Parsed({self.doc.path!r}, {self.kind.__name__})"


def of_kind(parsed: Iterable[Parsed[AnyDocument]], kind: type[K]) -> list[Parsed[K]]:
    """The documents of one kind, in their order, typed as that kind (no lazy model is made)."""
    return [p for p in parsed if _is(p, kind)]


def _is(p: Parsed[AnyDocument], kind: type[K]) -> TypeGuard[Parsed[K]]:
    return issubclass(p.kind, kind)


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
