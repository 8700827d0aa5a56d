"""The deploy contract's types: the manifest deploy/ reads, the ledger, and the plan's kinds.

The manifest (a bundle's ``deploy.json``, or a repository compiled in memory) is plain JSON,
so its shapes are TypedDicts: what the builder writes is what plan, apply and import read.
The live state has its own checked models in :mod:`.replies`.

The kinds that were free strings are StrEnums: they compare, hash, format and serialise as
their text, so reports stay byte-identical, and each carries what its renderings need (an
operation's sign and HTTP method, a change's sign, a result's mark), so no caller keeps a
table of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Literal, NotRequired, Protocol, TypedDict

from ..nodes import Json as Json


class SchemaItemSpec(TypedDict):
    """One ``config_schema`` item, in declared order (Bifrost keeps it as positions)."""

    key: str
    type: str  # string | int | bool | json | secret
    required: bool
    description: str | None
    options: list[str] | None


class SchemaItemLike(Protocol):
    """A schema item as the repository's model or Bifrost's reply holds it."""

    @property
    def key(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def required(self) -> bool: ...
    @property
    def description(self) -> str | None: ...
    @property
    def options(self) -> Sequence[str] | None: ...


def schema_item(i: SchemaItemLike) -> SchemaItemSpec:
    """I in the manifest's form: the repository's and the live schema compare item by item."""
    return SchemaItemSpec(
        key=i.key,
        type=i.type,
        required=i.required,
        description=i.description,
        options=list(i.options) if i.options is not None else None,
    )


class MappingSpec(TypedDict):
    """One organization's mapping: entity fields and its overrides (declared whole)."""

    organization_id: str | None
    entity_id: str | None
    entity_name: str | None
    config: dict[str, Json]  # secrets revealed; null = remove the live value
    #: "own": the organization connects its own OAuth account (absent: the integration's)
    oauth: NotRequired[Literal["own"]]


class OAuthSpec(TypedDict):
    """The OAuth provider of an integration (inline, or the provider it names)."""

    flow: str  # authorization_code | client_credentials | ...
    client_id: str
    #: revealed, None when not declared, or ``KEEP_LIVE_SECRET`` (the import placeholder)
    client_secret: Json
    authorization_url: str | None
    token_url: str
    scopes: list[str]
    audience: str | None


class IntegrationSpec(TypedDict):
    """One integration as Bifrost stores it (not the resolved per-organization view)."""

    name: str
    id: str | None
    entity_id: str | None
    entity_id_name: str | None
    default_entity_id: str | None
    list_entities_data_provider_id: str | None
    config_schema: list[SchemaItemSpec]
    defaults: dict[str, Json]  # secrets revealed; null = remove the live value
    oauth: OAuthSpec | None
    mappings: dict[str, MappingSpec]  # organization name -> mapping


class OrganizationSpec(TypedDict):
    name: str
    id: str | None  # the Bifrost UUID (plan refuses a manifest without one)


class Manifest(TypedDict):
    """``deploy.json``: ``{"format": 1, "kind": "bifrost-gitops/deploy", ...}``, sorted."""

    format: int
    kind: str
    secrets: Literal["revealed", "redacted"]
    organizations: list[OrganizationSpec]
    integrations: list[IntegrationSpec]


class Ledger(TypedDict):
    """The ownership ledger's ``managed`` default: which integrations this repository owns,
    and the salted hash of each OAuth client secret it sent."""

    integrations: dict[str, str]  # integration id -> name
    oauth_client_secret_sha256: NotRequired[dict[str, str]]  # integration id -> hash


class Action(StrEnum):
    """What an operation does: its sign in the reports and its HTTP method go with it."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    REFRESH = "refresh"  # an OAuth token refresh
    DISCONNECT = "disconnect"  # an organization's own OAuth token deleted
    RECORD = "record"  # the ledger

    @property
    def sign(self) -> str:
        return _ACTION_SIGN[self]

    @property
    def method(self) -> str:
        return _ACTION_METHOD[self]


_ACTION_SIGN = {"create": "+", "update": "~", "delete": "-", "refresh": ">", "disconnect": "-", "record": "~"}
_ACTION_METHOD = {
    "create": "POST",
    "update": "PUT",
    "delete": "DELETE",
    "refresh": "POST",
    "disconnect": "POST",
    "record": "PUT",
}


class Resource(StrEnum):
    INTEGRATION = "integration"
    SCHEMA = "schema"
    DEFAULTS = "defaults"
    MAPPING = "mapping"
    OAUTH = "oauth"
    LEDGER = "ledger"


class Edit(StrEnum):
    """What happens to one field (a Change): its sign, and its word for a secret."""

    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"
    SET = "set"  # a secret sent for the first time
    ROTATE = "rotate"  # a secret sent again
    KEEP = "keep"
    CLEAR = "clear"  # a note: what apply will clear that plan cannot see

    @property
    def sign(self) -> str:
        return _EDIT_SIGN[self]

    @property
    def secret_word(self) -> str:
        return {"add": "set", "change": "changed", "remove": "removed"}.get(self, str(self))


_EDIT_SIGN = {"add": "+", "change": "~", "remove": "-", "set": "+", "rotate": "~", "keep": "=", "clear": "-"}


class TokenState(StrEnum):
    """An organization's own OAuth token (Bifrost's per-mapping connection), as plan sees it."""

    CONNECTED = "connected"
    EXPIRED = "expired"  # apply refreshes it
    FAILED = "failed"  # its last refresh failed: an admin connects it again
    MISSING = "missing"  # none linked yet: an admin connects it


#: why an operation was not sent (apply and its batches say it alike)
DEPENDENCY_FAILED = "an earlier step of it failed"
NO_INTEGRATION = "the integration does not exist (its creation failed)"


class Status(StrEnum):
    """How an operation ended; its mark in the text report goes with it."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def mark(self) -> str:
        return {"ok": "ok     ", "failed": "FAILED ", "skipped": "skipped"}[self]
