"""The shapes of Bifrost's replies that plan and import read, checked once where they are read.

A Bifrost server (and anyone with its UI) is untrusted input: a reply of an unexpected shape
(``config_schema: "oops"``, ``mappings: 5``, a null name, a missing id) must stop the command
with one message naming the request and what was wrong, never half-way with an internal
error. These models follow the API's response models (IntegrationListResponse,
IntegrationDetailResponse, OAuthConnectionDetail, OrganizationPublic), hold only the fields
this tool uses (others are ignored), and are strict: text is text, a list is a list. Ids go
into request paths, so they must be UUIDs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from . import DeployError
from .client import Client

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
Id = Annotated[str, Field(pattern=UUID_PATTERN)]
T = TypeVar("T")


class BadReply(DeployError):
    """Bifrost answered with something this tool cannot use (exit 2). Names the request and the
    place in the reply, never a value from it (a reply may hold secrets)."""


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class Org(_Reply):
    """OrganizationPublic (``GET /api/organizations`` lists the active ones)."""

    id: Id
    name: str


class SchemaItem(_Reply):
    key: Annotated[str, Field(min_length=1)]
    type: Literal["string", "int", "bool", "json", "secret"]
    required: bool = False
    description: str | None = None
    options: list[str] | None = None


class Integration(_Reply):
    """IntegrationResponse: an entry of ``GET /api/integrations``."""

    id: Id
    name: Annotated[str, Field(min_length=1)]
    config_schema: list[SchemaItem] | None = None
    entity_id: str | None = None
    entity_id_name: str | None = None
    default_entity_id: str | None = None
    list_entities_data_provider_id: str | None = None


class IntegrationList(_Reply):
    items: list[Integration]


class Mapping(_Reply):
    """IntegrationMappingResponse, with the organization's overrides in ``config``."""

    id: Id
    organization_id: Id | None = None
    entity_id: str
    entity_name: str | None = None
    config: dict[str, Any] | None = None
    #: the mapping's own OAuth token (Bifrost's per-mapping connection), hydrated from its row
    oauth_token_id: Id | None = None
    connection_status: str | None = None
    connection_message: str | None = None
    connection_expires_at: str | None = None


class OAuthSummary(_Reply):
    """OAuthConfigSummary: the provider as the integration's detail shows it."""

    oauth_flow_type: str
    client_id: str
    authorization_url: str | None = None
    token_url: str
    scopes: list[str] = Field(default_factory=list)
    status: str = "not_connected"


class Detail(Integration):
    """IntegrationDetailResponse: ``GET /api/integrations/{id}``."""

    config_defaults: dict[str, Any] | None = None
    mappings: list[Mapping] = Field(default_factory=list)
    oauth_config: OAuthSummary | None = None


class Connection(_Reply):
    """OAuthConnectionDetail (``GET /api/oauth/connections/{id}``): scopes space-joined."""

    scopes: str | None = None
    audience: str | None = None


ORGS: TypeAdapter[list[Org]] = TypeAdapter(list[Org])
INTEGRATIONS: TypeAdapter[IntegrationList] = TypeAdapter(IntegrationList)
DETAIL: TypeAdapter[Detail] = TypeAdapter(Detail)
CONNECTION: TypeAdapter[Connection] = TypeAdapter(Connection)


class AuthorizeUrl(_Reply):
    """MappingAuthorizeResponse (``POST .../mappings/{id}/oauth/authorize``)."""

    authorization_url: Annotated[str, Field(min_length=1)]


AUTHORIZE: TypeAdapter[AuthorizeUrl] = TypeAdapter(AuthorizeUrl)


def get(client: Client, path: str, shape: TypeAdapter[T]) -> T:
    """``GET PATH``, its reply checked against SHAPE (raises BadReply, or the client's ApiError)."""
    return parse(shape, client.get(path), "GET", path)


def parse(shape: TypeAdapter[T], data: object, method: str, path: str) -> T:
    try:
        return shape.validate_python(data)
    except ValidationError as e:
        raise BadReply(f"{method} {path}: {describe(e)}") from None


def describe(e: ValidationError) -> str:
    """The first problem as ``where: what`` (``item 3: config_schema: expected a list, got text``)."""
    errors = e.errors(include_url=False, include_input=True)
    first = errors[0]
    loc = list(first["loc"])
    if len(loc) > 1 and loc[0] == "items" and isinstance(loc[1], int):
        loc = loc[1:]  # a list reply {"items": [...]}: the item is the place
    where = ": ".join(f"item {p}" if isinstance(p, int) else str(p) for p in loc)
    what = _what(first)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{where + ': ' if where else ''}{what}{more}"


_EXPECTED = {
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "string_type": "text",
    "bool_type": "true or false",
    "int_type": "a whole number",
    "float_type": "a number",
}


def _kind(value: object) -> str:
    """What a JSON value is, in words (never the value: it may be a secret)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _what(err: ErrorDetails) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "missing"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_kind(err.get('input'))}"
    if kind == "string_pattern_mismatch":
        return (
            "expected a UUID"
            if ctx.get("pattern") == UUID_PATTERN
            else f"does not match {ctx.get('pattern')}"
        )
    if kind == "string_too_short":
        return "empty"
    if kind == "string_too_long":
        return f"longer than {ctx.get('max_length')} characters"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')}"
    return str(err.get("msg", kind))
