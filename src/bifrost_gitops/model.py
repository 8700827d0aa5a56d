"""The v1 document kinds as pydantic models: the one source of truth for their structure.

`schemas/*.schema.json` are generated from these (``bifrost-gitops schema``); validation
runs the models themselves (pydantic-core, compiled), which accept exactly what the
generated schemas accept: strict types, no unknown fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    RootModel,
    Tag,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from .escape import UNSAFE_PATTERN, has_unsafe

API_VERSION = "bifrost-gitops/v1"

ConfigType = Literal["string", "int", "bool", "json", "secret"]
FlowType = Literal["authorization_code", "client_credentials", "refresh_token"]
#: whose OAuth account a mapping's organization uses: the integration's shared connection, or
#: its own (Bifrost's per-mapping connection, linked by an admin's Connect flow)
ConnectionKind = Literal["shared", "own"]


class _PlainText:
    """Metadata for a name or label that reaches terminals, CI logs and PR comments: no
    control, bidi or invisible character (escape.UNSAFE_CHARS), so what a reviewer reads is
    what it is. Put it after any Field constraints (they stay in the JSON Schema that way)."""

    def __get_pydantic_core_schema__(self, source: object, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_plain, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(schema), "not": {"pattern": UNSAFE_PATTERN}}


def _plain(value: str) -> str:
    if has_unsafe(value):
        # structure.py turns this into S004, naming the field and showing the character
        raise PydanticCustomError("unsafe_text", "holds a control or invisible character")
    return value


PLAIN = _PlainText()
Plain = Annotated[str, PLAIN]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=63)]
Uuid = Annotated[
    str,
    Field(pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
]
Name = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^/]+$"), PLAIN]
ProviderName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^/]+$"), PLAIN]
ConfigKey = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_]+$")]
#: https, or http to this machine's loopback only (a local token server in tests and development)
HttpsUrl = Annotated[
    str,
    Field(pattern=r"^(https://|http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?(/|$))", max_length=500),
    PLAIN,
]
Text255 = Annotated[str, Field(max_length=255), PLAIN]


def _none_is_empty(value: object) -> object:
    return {} if value is None else value


#: `config:` left empty (every line commented out) means no values, not an error
ValueMap = Annotated[
    dict[str, Any],
    BeforeValidator(_none_is_empty),
    WithJsonSchema({"anyOf": [{"type": "object", "additionalProperties": True}, {"type": "null"}]}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SopsMetadata(BaseModel):
    """The block sops appends; its fields belong to sops, so any are accepted."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


class _Document(_Strict):
    apiVersion: Literal["bifrost-gitops/v1"] = Field(description="Format version of this document.")
    sops: SopsMetadata | None = Field(None, description="Written by sops when the file is encrypted.")


# --- Project -------------------------------------------------------------------------------


class BundleSettings(_Strict):
    recipients: list[Annotated[str, Field(pattern=r"^age1"), PLAIN]] = Field(
        default_factory=list, description="Age recipients of the runtime, for sealed bundles."
    )


FindingCode = Annotated[
    str, Field(pattern=r"^[A-Z][0-9]{3}$", description="A finding code (docs/error-codes.md).")
]


class IgnoreRule(_Strict):
    """One code suppressed in some files only."""

    code: FindingCode
    paths: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1,
        description="Paths or glob patterns (relative to the root) where the code is suppressed.",
    )


class Project(_Document):
    """bifrost-gitops.yaml: marks the repository root."""

    kind: Literal["Project"]
    bundle: BundleSettings | None = None
    exclude: list[str] = Field(
        default_factory=list,
        description="Paths or glob patterns (relative to the root) of YAML files that are not ours.",
    )
    ignore: list[FindingCode | IgnoreRule] = Field(
        default_factory=list,
        description="Finding codes validate suppresses: a code everywhere, or {code, paths} in some "
        "files. Reported as suppressed; an entry that suppresses nothing is a warning (S005).",
    )


# --- Organizations -------------------------------------------------------------------------


class Organization(_Strict):
    name: Slug = Field(description="Slug that mappings refer to.")
    id: Uuid | None = Field(None, description="The Bifrost organization UUID.")
    display_name: Text255 | None = None


class Organizations(_Document):
    kind: Literal["Organizations"]
    organizations: list[Organization]


# --- OAuth ---------------------------------------------------------------------------------


class OAuthSecrets(_Strict):
    """SOPS-encrypted OAuth material (values are ENC[...] strings in the file)."""

    client_secret: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: str | None = None


class OAuthSettings(_Strict):
    """Fields shared by an OAuthProvider document and an inline provider block."""

    display_name: Text255 | None = None
    description: Plain | None = None
    flow: FlowType = "authorization_code"
    authorization_url: HttpsUrl | None = None
    token_url: HttpsUrl
    scopes: list[Plain] = Field(default_factory=list)
    audience: Annotated[str, Field(max_length=500), PLAIN] | None = None
    client_id: Annotated[str, Field(min_length=1, max_length=255), PLAIN]
    secrets: OAuthSecrets | None = None


class OAuthProvider(_Document, OAuthSettings):
    kind: Literal["OAuthProvider"]
    name: ProviderName


class ProviderRef(_Strict):
    provider: ProviderName = Field(description="Name of an OAuthProvider document.")


def _oauth_tag(v: object) -> str:
    return "ref" if isinstance(v, dict) and "provider" in v else "inline"


OAuthLink = Annotated[
    Annotated[ProviderRef, Tag("ref")] | Annotated[OAuthSettings, Tag("inline")],
    Discriminator(_oauth_tag),
]


# --- Integration and Mapping ---------------------------------------------------------------


class SchemaItem(_Strict):
    key: ConfigKey
    type: ConfigType
    required: bool = False
    description: Annotated[str, Field(max_length=500), PLAIN] | None = None
    options: list[Plain] | None = Field(None, description="Allowed values of a string key.")


class Values(_Strict):
    config: ValueMap = Field(default_factory=dict, description="Plain values.")
    secrets: ValueMap = Field(
        default_factory=dict, description="Secret-typed values, SOPS ciphertext in the file."
    )


class Integration(_Document):
    kind: Literal["Integration"]
    name: Name
    id: Uuid | None = Field(None, description="The Bifrost integration UUID, once known.")
    description: Plain | None = None
    entity_id_name: Text255 | None = None
    entity_id: Annotated[str, Field(min_length=1, max_length=255), PLAIN] | None = Field(
        None, description="Global entity value, the last resort for {entity_id}."
    )
    default_entity_id: Text255 | None = Field(
        None, description="Entity id for orgs without a mapping or with an empty one."
    )
    list_entities_data_provider_id: Uuid | None = None
    oauth: OAuthLink | None = None
    config_schema: list[SchemaItem] = Field(default_factory=list)
    defaults: Values | None = None


class Mapping(_Document):
    kind: Literal["Mapping"]
    integration: Name
    organization: Slug
    entity_id: Text255 = Field(description="External entity id; may be empty.")
    entity_name: Text255 | None = None
    config: ValueMap = Field(default_factory=dict, description="Org overrides of defaults.")
    secrets: ValueMap = Field(default_factory=dict, description="Secret overrides (ciphertext).")
    oauth: ConnectionKind = Field(
        "shared",
        description="'own': this organization connects its own OAuth account (Bifrost's per-mapping "
        "connection); 'shared' (default): it uses the integration's connection.",
    )


AnyDocument = Project | Organizations | OAuthProvider | Integration | Mapping

KINDS: dict[str, type[AnyDocument]] = {
    "Project": Project,
    "Organizations": Organizations,
    "OAuthProvider": OAuthProvider,
    "Integration": Integration,
    "Mapping": Mapping,
}

#: OAuth token material a mapping may carry under secrets: besides secret-typed keys.
TOKEN_KEYS = ("access_token", "refresh_token", "expires_at")


def json_schema(kind: str) -> dict[str, object]:
    """The JSON Schema of one kind, as checked in under schemas/."""
    model = KINDS[kind]
    schema = model.model_json_schema(mode="validation")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://bifrost-gitops.dev/schemas/{kind.lower()}.schema.json",
        **schema,
    }
    return schema


# --- the compiled bundle (clear-text form) -------------------------------------------------
#
# What `compile` writes (bundle.py), before sealing: a sealed org file is this same document
# encrypted by sops. Kept strict so that a field bundle.py adds or renames fails the schema test.

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class OAuthCredentials(_Strict):
    """Bifrost's OAuthCredentials (docs/bifrost-api.md#sdk-models): integrations.get()'s oauth."""

    connection_name: str = Field(description="The OAuth connection (provider_name) in Bifrost.")
    client_id: str | None
    client_secret: str | None = Field(description="Clear, or a marker in a redacted bundle.")
    authorization_url: str | None
    token_url: str | None = Field(
        description="With {entity_id} filled in, or the raw template when no entity id resolves."
    )
    scopes: list[str]
    access_token: str | None
    refresh_token: str | None
    expires_at: str | None


class IntegrationData(_Strict):
    """Bifrost's IntegrationData (docs/bifrost-api.md#sdk-models) for one organization and integration."""

    integration_id: Uuid | None = Field(description="The Bifrost integration UUID, when declared.")
    entity_id: str | None
    entity_name: str | None
    config: dict[str, Any] = Field(description="Defaults overlaid by the org's overrides; secrets included.")
    config_secret_keys: list[str] = Field(description="Every secret-typed key of the config schema.")
    oauth: OAuthCredentials | None


class ClientCredentials(_Strict):
    """How the runtime mints a client-credentials token, as Bifrost's ``integrations.get`` does."""

    token_url: str = Field(description="The provider's token URL template ({entity_id} unfilled).")
    audience: str | None = Field(description="Sent as `audience` when set.")


class BundleOrganization(_Strict):
    name: Slug
    id: Uuid | None
    display_name: Text255 | None


class OrgFile(_Strict):
    """orgs/<org>.json: what that organization's workflows get, by integration name."""

    organization: BundleOrganization
    integrations: dict[str, IntegrationData]
    mapped: list[str] = Field(description="Integrations with a mapping for this organization.")
    client_credentials: dict[str, ClientCredentials] = Field(
        default_factory=dict, description="Client-credentials integrations, by name (runtime token fetch)."
    )
    own_connection: list[str] = Field(
        default_factory=list,
        description="Integrations whose token this organization takes from its own connection "
        "(oauth: own), never from the integration's.",
    )


class GlobalFile(_Strict):
    """global.json: the defaults-only view (scope "global")."""

    scope: Literal["global"]
    integrations: dict[str, IntegrationData]
    client_credentials: dict[str, ClientCredentials] = Field(
        default_factory=dict, description="Client-credentials integrations, by name (runtime token fetch)."
    )


class IndexEntry(_Strict):
    file: str = Field(description="Path of the file, relative to the bundle folder.")
    sha256: Sha256 = Field(description="Of the file's bytes as written (sealed or not).")
    fingerprint: Sha256 | None = Field(
        None, description="Sealed bundles: keyed hash of the clear content (unchanged content, kept file)."
    )
    inputs: Sha256 | None = Field(
        None,
        description="Keyed hash of what the file is made from and of its sha256: an unchanged "
        "file is kept by the next compile without being rendered again (deploy.json: sealed only).",
    )


class IndexOrgEntry(IndexEntry):
    id: Uuid | None = Field(description="The Bifrost organization UUID, when declared.")


class DeployPart(_Strict):
    """Where one integration's entry sits in a clear deploy.json, and what it was made from."""

    start: int = Field(ge=0, description="Byte offset of the entry's first byte in deploy.json.")
    end: int = Field(ge=0, description="Byte offset just past the entry's last byte.")
    inputs: Sha256 = Field(description="Keyed hash of what the entry is made from and of its bytes.")


class IndexDeployEntry(IndexEntry):
    integrations: dict[str, DeployPart] | None = Field(
        None,
        description="Clear deploy.json only: each integration's entry in the file; the next compile "
        "takes an unchanged integration's entry over without building it again.",
    )


class BundleSource(_Strict):
    commit: str | None = Field(
        description="The git commit compiled, when the repository is a git repository."
    )
    dirty: bool = Field(description="The work tree compiled differed from that commit.")


class IndexFile(_Strict):
    """index.json: the bundle's table of contents."""

    format: Literal[1]
    kind: Literal["bifrost-gitops/bundle"]
    secrets: Literal["seal", "plain", "redact"]
    source: BundleSource
    recipients: list[str] = Field(description="Age recipients the org files are sealed to (seal only).")
    global_: IndexEntry = Field(alias="global", description="global.json, the defaults-only view.")
    deploy: IndexDeployEntry = Field(description="deploy.json, the manifest plan and apply read.")
    orgs: dict[str, IndexOrgEntry]


class BundleFile(RootModel[IndexFile | OrgFile | GlobalFile]):
    """Any file of a bundle in clear-text form: index.json, global.json or orgs/<org>.json."""


#: Bundle schemas (generated into schemas/ beside the document kinds; not validated documents).
BUNDLE_KINDS: dict[str, type[BaseModel]] = {"Bundle": BundleFile}
