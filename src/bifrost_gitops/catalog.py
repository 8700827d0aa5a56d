"""The checked repository: every valid document with its source, indexed by what it declares.

`checks.check()` builds a Catalog; resolution, explain, diff, compile and the secret commands
read it. `Parsed[M]` keeps the document model's type (Parsed[Integration], Parsed[Mapping],
...), so readers of `catalog.integrations[name].model` get an Integration, not Any.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeGuard, TypeVar

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
from .sopsmeta import age_recipients

M = TypeVar("M", bound=AnyDocument, covariant=True)
K = TypeVar("K", bound=AnyDocument)


class Facts(NamedTuple):
    """What the cross-document checks and K006 read of a document besides its path, kept
    beside its cached result: a warm run checks an unchanged document without loading it."""

    kind: str  # the model's class name, a key of model.KINDS
    #: a Mapping's organization and integration, as text (None for other kinds)
    organization: str | None
    integration: str | None
    #: the sops age recipients per key group (None: not encrypted)
    age: tuple[tuple[str, ...], ...] | None
    #: whether its text holds a suppression comment's marker (suppress.py reads only those)
    marked: bool


def facts_of(doc: Document, model: AnyDocument) -> Facts:
    """A valid document's Facts (the names as its text says them; a mended quoting trap's from
    the model)."""
    data = doc.data
    org = integration = None
    if isinstance(model, Mapping):
        org, integration = _text(data, model, "organization"), _text(data, model, "integration")
    meta = data.get("sops")
    if not isinstance(meta, dict):
        return Facts(type(model).__name__, org, integration, None, doc.marked)
    age = tuple(tuple(group) for group in age_recipients(meta))
    return Facts(type(model).__name__, org, integration, age, doc.marked)


def _text(data: dict[str, object], model: Mapping, field: str) -> str:
    value = data.get(field)
    return value if type(value) is str else str(getattr(model, field))


class Parsed(Generic[M]):
    """A structurally valid document with its source. On a warm run both may come on first use:
    the document (LOAD, read from the cache) and its model (MAKE, with its class KIND known
    beforehand), so checks answered from the cache never load or validate the documents that
    did not change (see repo.py and perfile.rebuild)."""

    __slots__ = ("_doc", "_facts", "_load", "_make", "_model", "digest", "kind", "path")

    def __init__(
        self,
        doc: Document | None,
        model: M | None = None,
        make: Callable[[Document], M] | None = None,
        kind: type | None = None,
        *,
        load: Callable[[], Document] | None = None,
        path: str | None = None,
        facts: Facts | None = None,
        digest: bytes | None = None,
    ):
        if model is None and (make is None or kind is None):
            raise TypeError("Parsed needs a model, or a way to make it and its kind")
        if doc is None and (load is None or path is None or facts is None):
            raise TypeError("Parsed needs a document, or a way to load it, its path and its facts")
        self._doc = doc
        self._load = load
        self.path: str = doc.path if doc is not None else path  # type: ignore[assignment]
        self._facts = facts
        self._model = model
        self._make = make
        self.kind: type = type(model) if model is not None else kind  # type: ignore[assignment]
        #: sha256 of its file's path and bytes, when it was loaded from a file (repo.py): the
        #: same digest, the same document, so a later stage compares or hashes it unloaded
        self.digest = digest

    @property
    def doc(self) -> Document:
        if self._doc is None:
            assert self._load is not None
            self._doc = self._load()
            self._load = None
        return self._doc

    @property
    def model(self) -> M:
        if self._model is None:
            assert self._make is not None
            self._model = self._make(self.doc)
            self._make = None
        return self._model

    @property
    def facts(self) -> Facts:
        if self._facts is None:
            self._facts = facts_of(self.doc, self.model)
        return self._facts

    @property
    def made(self) -> bool:
        """Whether the model exists yet (a lazy one not asked for has not been made)."""
        return self._model is not None

    @property
    def loaded(self) -> bool:
        """Whether the document is in memory (a lazy one not asked for has not been loaded)."""
        return self._doc is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Parsed) and (self.doc, self.model) == (other.doc, other.model)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Parsed({self.path!r}, {self.kind.__name__})"


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
            seen.setdefault(p.path, p)
        return list(seen.values())


def oauth_of(cat: Catalog, integ: Integration) -> OAuthSettings | None:
    """The OAuth settings an integration uses: its own, or its provider's (None if undeclared)."""
    link = integ.oauth
    if isinstance(link, ProviderRef):
        p = cat.providers.get(link.provider)
        return p.model if p else None
    return link
