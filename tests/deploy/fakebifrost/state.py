"""In-memory Bifrost state and the business rules of the integrations contract.

Every method that can fail raises :class:`ApiError`, which the HTTP layer turns into the exact
status code and body shape of the real server (``{"detail": ...}`` for handler errors,
``{"error", "message", "details"}`` for 422 validation and 409 DB conflicts). Methods take
already-validated Python values, so tests can also seed state directly (much faster than HTTP
for large fixtures). Secrets are stored in plain text (the real server encrypts them at rest,
but every admin response returns them decrypted, so nothing observable changes); ``ConfigRow.
encrypted`` records whether the real server *would* have encrypted the row.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import secrets
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

CONFIG_TYPES = ("string", "int", "bool", "json", "secret")
FLOW_TYPES = ("authorization_code", "client_credentials", "refresh_token")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(value: dt.datetime | None) -> str | None:
    """Pydantic v2 style: UTC datetimes end in ``Z``."""
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


class ApiError(Exception):
    """An HTTP error with its exact body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def detail(status: int, message: str) -> ApiError:
    return ApiError(status, {"detail": message})


def conflict(message: str = "Resource already exists") -> ApiError:
    """The 409 shape of a DB unique / FK violation (section 4.2)."""
    return ApiError(409, {"error": "conflict", "message": message, "details": None})


def validation_error(message: str) -> ApiError:
    return ApiError(422, {"error": "validation_error", "message": message, "details": None})


# --------------------------------------------------------------------------- rows


@dataclass
class Organization:
    id: str
    name: str
    domain: str | None = None
    is_active: bool = True
    is_provider: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime = field(default_factory=now)
    created_by: str = "system"
    updated_at: dt.datetime = field(default_factory=now)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "domain": self.domain,
            "is_active": self.is_active,
            "is_provider": self.is_provider,
            "settings": copy.deepcopy(self.settings),
            "created_at": iso(self.created_at),
            "created_by": self.created_by,
            "updated_at": iso(self.updated_at),
        }


@dataclass
class SchemaItem:
    id: str
    key: str
    type: str
    required: bool = False
    description: str | None = None
    options: list[str] | None = None
    position: int = 0

    def to_json(self) -> dict[str, Any]:
        # `position` is never returned by the REST API.
        return {
            "key": self.key,
            "type": self.type,
            "required": self.required,
            "description": self.description,
            "options": list(self.options) if self.options is not None else None,
        }


@dataclass
class Integration:
    id: str
    name: str
    entity_id: str | None = None
    entity_id_name: str | None = None
    default_entity_id: str | None = None
    list_entities_data_provider_id: str | None = None
    is_deleted: bool = False
    config_schema: list[SchemaItem] = field(default_factory=list)  # kept sorted by position
    created_at: dt.datetime = field(default_factory=now)
    updated_at: dt.datetime = field(default_factory=now)

    def schema_item(self, key: str) -> SchemaItem | None:
        return next((s for s in self.config_schema if s.key == key), None)


@dataclass
class ConfigRow:
    id: str
    integration_id: str
    organization_id: str | None
    key: str
    value: Any  # the unwrapped value; the DB stores {"value": value}
    config_type: str  # copied from the schema item at write time ("string" when not in the schema)
    config_schema_id: str | None  # None for keys outside the schema: never cascade-deleted
    encrypted: bool  # True when the real server would have Fernet-encrypted the stored value
    updated_by: str
    created_at: dt.datetime = field(default_factory=now)
    updated_at: dt.datetime = field(default_factory=now)


@dataclass
class Mapping:
    id: str
    integration_id: str
    organization_id: str
    entity_id: str
    entity_name: str | None = None
    oauth_token_id: str | None = None
    created_at: dt.datetime = field(default_factory=now)
    updated_at: dt.datetime = field(default_factory=now)


@dataclass
class OAuthProvider:
    id: str
    provider_name: str
    display_name: str
    integration_id: str | None
    oauth_flow_type: str
    client_id: str
    client_secret: str  # "" when none (the real column holds empty bytes)
    token_url: str
    authorization_url: str | None = None
    description: str | None = None
    audience: str | None = None
    scopes: list[str] = field(default_factory=list)
    token_url_defaults: dict[str, str] = field(default_factory=dict)
    redirect_uri: str | None = None
    entity_id_source: dict[str, Any] | None = None
    status: str = "not_connected"
    status_message: str | None = None
    last_token_refresh: dt.datetime | None = None
    organization_id: str | None = None
    created_by: str = ""
    created_at: dt.datetime = field(default_factory=now)
    updated_at: dt.datetime = field(default_factory=now)


@dataclass
class OAuthToken:
    id: str
    provider_id: str
    organization_id: str | None
    access_token: str | None
    refresh_token: str | None = None
    expires_at: dt.datetime | None = None
    scopes: list[str] = field(default_factory=list)
    user_id: str | None = None
    status: str = "completed"
    status_message: str | None = None
    last_refresh_at: dt.datetime | None = None
    created_at: dt.datetime = field(default_factory=now)


@dataclass
class User:
    id: str
    email: str
    is_superuser: bool
    org_id: str | None


# --------------------------------------------------------------------------- helpers


def validate_config_value(key: str, value: Any, schema_type: str) -> None:
    """Section 1.4: the exact 400 messages of the integrations router."""
    if value is None or value == "":
        return
    if schema_type == "int":
        if not isinstance(value, int):  # bools pass: Python bools are ints
            if isinstance(value, str):
                try:
                    int(value)
                except ValueError:
                    raise detail(400, f"Config key '{key}' expects integer, got invalid value") from None
            else:
                raise detail(400, f"Config key '{key}' expects integer, got {_pytype(value)}")
    elif schema_type == "bool":
        if not isinstance(value, bool):
            raise detail(400, f"Config key '{key}' expects boolean, got {_pytype(value)}")
    elif schema_type == "json" and isinstance(value, str):
        try:
            json.loads(value)
        except json.JSONDecodeError:
            raise detail(400, f"Config key '{key}' contains invalid JSON") from None


def _pytype(value: Any) -> str:
    """type(value).__name__ as the Python server would see the decoded JSON value."""
    return type(value).__name__


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def resolve_url_template(url: str, entity_id: str | None, defaults: dict[str, str] | None) -> str:
    """Section 2.3: {entity_id} takes the entity value, else the defaults entry; unknown stays."""
    defaults = defaults or {}

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "entity_id" and entity_id:
            return entity_id
        if name in defaults:
            return defaults[name]
        return m.group(0)

    return _PLACEHOLDER.sub(sub, url)


# --------------------------------------------------------------------------- state


class State:
    """All server data. Guard every access from other threads with ``state.lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.organizations: dict[str, Organization] = {}
        self.integrations: dict[str, Integration] = {}  # includes soft-deleted rows
        self.configs: dict[tuple[str, str | None, str], ConfigRow] = {}
        self.mappings: dict[str, Mapping] = {}
        # secondary indexes (kept in step by the methods below; mutate state through them)
        self._config_groups: dict[tuple[str, str | None], dict[str, ConfigRow]] = {}
        self._mapping_index: dict[tuple[str, str], str] = {}
        self.oauth_providers: dict[str, OAuthProvider] = {}
        self.oauth_tokens: dict[str, OAuthToken] = {}
        self.users: dict[str, User] = {}
        # auth
        self.access_tokens: dict[str, str] = {}  # token -> user id
        self.refresh_tokens: dict[str, str] = {}  # token -> user id (single use)
        # simulated OAuth token endpoint: when set, token fetches fail with this message
        self.token_endpoint_error: str | None = None
        self.token_ttl = dt.timedelta(hours=1)
        # per-mapping Connect flows begun (signed single-use state -> mapping id)
        self.mapping_states: dict[str, str] = {}

    # ---------------------------------------------------------------- organizations

    def add_org(
        self,
        name: str,
        id: str | None = None,
        is_active: bool = True,
        *,
        is_provider: bool = False,
        domain: str | None = None,
    ) -> str:
        with self.lock:
            org_id = str(uuid.UUID(id)) if id else new_id()
            self.organizations[org_id] = Organization(
                id=org_id, name=name, is_active=is_active, is_provider=is_provider, domain=domain
            )
            return org_id

    def list_orgs(self) -> list[Organization]:
        """Active orgs only; the provider org first, then by name."""
        orgs = [o for o in self.organizations.values() if o.is_active]
        return sorted(orgs, key=lambda o: (not o.is_provider, o.name))

    # ---------------------------------------------------------------- integrations

    def live_integration(self, integration_id: str) -> Integration | None:
        i = self.integrations.get(integration_id)
        return i if i is not None and not i.is_deleted else None

    def require_live(self, integration_id: str) -> Integration:
        i = self.live_integration(integration_id)
        if i is None:
            raise detail(404, "Integration not found")
        return i

    def integration_by_name(self, name: str, *, include_deleted: bool = False) -> Integration | None:
        for i in self.integrations.values():
            if i.name == name and (include_deleted or not i.is_deleted):
                return i
        return None

    def list_integrations(self) -> list[Integration]:
        # Postgres collation vs Python ordering may differ for non-ASCII names.
        return sorted((i for i in self.integrations.values() if not i.is_deleted), key=lambda i: i.name)

    def has_oauth_config(self, integration_id: str) -> bool:
        return self.provider_for(integration_id) is not None

    def create_integration(
        self,
        name: str,
        config_schema: list[dict[str, Any]] | None = None,
        entity_id: str | None = None,
        entity_id_name: str | None = None,
        default_entity_id: str | None = None,
    ) -> Integration:
        with self.lock:
            if self.integration_by_name(name) is not None:
                raise detail(409, f"Integration '{name}' already exists")
            if self.integration_by_name(name, include_deleted=True) is not None:
                raise conflict("Resource already exists")  # DB unique index, soft-deleted row
            items: list[SchemaItem] = []
            for idx, raw in enumerate(config_schema or []):
                if any(s.key == raw["key"] for s in items):
                    raise conflict("Resource already exists")  # unique (integration_id, key)
                items.append(_schema_item(raw, idx))
            integration = Integration(
                id=new_id(),
                name=name,
                entity_id=entity_id,
                entity_id_name=entity_id_name,
                default_entity_id=default_entity_id,
                config_schema=items,
            )
            self.integrations[integration.id] = integration
            return integration

    def update_integration(self, integration_id: str, fields: dict[str, Any]) -> Integration:
        """PUT /{id}: a field that is null or absent is unchanged."""
        with self.lock:
            integration = self.require_live(integration_id)
            name = fields.get("name")
            if name is not None and any(
                i.name == name for i in self.integrations.values() if i.id != integration.id
            ):
                raise conflict("Resource already exists")  # no pre-check: DB unique violation
            schema = fields.get("config_schema")
            if schema is not None:
                existing = {s.key for s in integration.config_schema}
                seen_new: set[str] = set()
                for raw in schema:
                    if raw["key"] not in existing:
                        if raw["key"] in seen_new:
                            raise conflict("Resource already exists")
                        seen_new.add(raw["key"])
            # --- validated: apply
            if name is not None:
                integration.name = name
            if fields.get("list_entities_data_provider_id") is not None:
                integration.list_entities_data_provider_id = fields["list_entities_data_provider_id"]
            if fields.get("entity_id") is not None:
                integration.entity_id = fields["entity_id"]
            if fields.get("entity_id_name") is not None:
                integration.entity_id_name = fields["entity_id_name"]
            if fields.get("default_entity_id") is not None:
                integration.default_entity_id = fields["default_entity_id"] or None
            if schema is not None:
                self._replace_schema(integration, schema)
            integration.updated_at = now()
            return integration

    def _replace_schema(self, integration: Integration, schema: list[dict[str, Any]]) -> None:
        by_key = {s.key: s for s in integration.config_schema}
        new_keys = {raw["key"] for raw in schema}
        for key, item in by_key.items():
            if key not in new_keys:
                # ON DELETE CASCADE from configs.config_schema_id: every default and override row
                # that was written while the key was in the schema goes with it.
                for ck, row in list(self.configs.items()):
                    if row.config_schema_id == item.id:
                        self._del_row(ck)
        kept: dict[str, SchemaItem] = {}
        for idx, raw in enumerate(schema):
            if raw["key"] in by_key:
                item = by_key[raw["key"]]
                item.type = raw["type"]
                item.required = raw.get("required", False)
                item.description = raw.get("description")
                item.options = raw.get("options")
                item.position = idx
            else:
                item = _schema_item(raw, idx)
            kept[item.key] = item
        integration.config_schema = sorted(kept.values(), key=lambda s: s.position)

    def delete_integration(self, integration_id: str) -> None:
        with self.lock:
            integration = self.require_live(integration_id)
            integration.is_deleted = True
            integration.updated_at = now()

    # ---------------------------------------------------------------- config values

    def config_dict(self, integration_id: str, org_id: str | None) -> dict[str, Any]:
        """The stored values of one (integration, org|None) group, in insertion order."""
        group = self._config_groups.get((integration_id, org_id), {})
        return {key: copy.deepcopy(row.value) for key, row in group.items()}

    def _del_row(self, ck: tuple[str, str | None, str]) -> None:
        if self.configs.pop(ck, None) is not None:
            group = self._config_groups.get((ck[0], ck[1]))
            if group is not None:
                group.pop(ck[2], None)
                if not group:
                    del self._config_groups[(ck[0], ck[1])]

    def defaults(self, integration_id: str) -> dict[str, Any]:
        """Integration-level default values (rows with organization_id NULL)."""
        with self.lock:
            return self.config_dict(integration_id, None)

    def overrides(self, integration_id: str, org_id: str) -> dict[str, Any]:
        """One org's override rows only (not merged)."""
        with self.lock:
            return self.config_dict(integration_id, org_id)

    def save_config(
        self, integration_id: str, org_id: str | None, config: dict[str, Any], updated_by: str
    ) -> None:
        """Section 1.4: partial merge, null/"" deletes, validation, all-or-nothing."""
        with self.lock:
            integration = self.integrations[integration_id]
            schema = {s.key: s for s in integration.config_schema}
            for key, value in config.items():  # validate everything first: the txn rolls back
                if key in schema:
                    validate_config_value(key, value, schema[key].type)
            for key, value in config.items():
                item = schema.get(key)
                ck = (integration_id, org_id, key)
                if value is None or value == "":
                    self._del_row(ck)
                    continue
                config_type = item.type if item and item.type in CONFIG_TYPES else "string"
                row = self.configs.get(ck)
                if row is None:
                    row = ConfigRow(
                        id=new_id(),
                        integration_id=integration_id,
                        organization_id=org_id,
                        key=key,
                        value=None,
                        config_type=config_type,
                        config_schema_id=None,
                        encrypted=False,
                        updated_by=updated_by,
                    )
                    self.configs[ck] = row
                    self._config_groups.setdefault((integration_id, org_id), {})[key] = row
                row.value = copy.deepcopy(value)
                row.config_type = config_type
                row.config_schema_id = item.id if item else None
                row.encrypted = config_type == "secret" and isinstance(value, str)
                row.updated_by = updated_by
                row.updated_at = now()

    # ---------------------------------------------------------------- mappings

    def mapping_for(self, integration_id: str, org_id: str) -> Mapping | None:
        m = self.mappings.get(self._mapping_index.get((integration_id, org_id), ""))
        if m is not None and m.integration_id == integration_id and m.organization_id == org_id:
            return m
        return None

    def mappings_of(self, integration_id: str) -> list[Mapping]:
        return sorted(
            (m for m in self.mappings.values() if m.integration_id == integration_id),
            key=lambda m: m.organization_id,
        )

    def create_mapping(
        self,
        integration_id: str,
        organization_id: str,
        entity_id: str = "",
        entity_name: str | None = None,
        oauth_token_id: str | None = None,
        config: dict[str, Any] | None = None,
        updated_by: str = "system",
    ) -> Mapping:
        with self.lock:
            self.require_live(integration_id)
            if self.mapping_for(integration_id, organization_id) is not None:
                raise detail(409, "Mapping already exists for this organization and integration")
            if organization_id not in self.organizations:
                raise conflict("Referenced resource not found")  # FK to organizations
            if oauth_token_id is not None and oauth_token_id not in self.oauth_tokens:
                raise conflict("Referenced resource not found")
            if config is not None:  # validate before inserting: the whole request rolls back
                self._check_config(integration_id, config)
            mapping = Mapping(
                id=new_id(),
                integration_id=integration_id,
                organization_id=organization_id,
                entity_id=entity_id,
                entity_name=entity_name,
                oauth_token_id=oauth_token_id,
            )
            self.mappings[mapping.id] = mapping
            self._mapping_index[(integration_id, organization_id)] = mapping.id
            if config is not None:
                self.save_config(integration_id, organization_id, config, updated_by)
            return mapping

    def _check_config(self, integration_id: str, config: dict[str, Any]) -> None:
        schema = {s.key: s for s in self.integrations[integration_id].config_schema}
        for key, value in config.items():
            if key in schema:
                validate_config_value(key, value, schema[key].type)

    def get_mapping(self, integration_id: str, mapping_id: str) -> Mapping:
        m = self.mappings.get(mapping_id)
        if m is None or m.integration_id != integration_id:
            raise detail(404, "Mapping not found")
        return m

    def update_mapping(
        self, integration_id: str, mapping_id: str, fields: dict[str, Any], updated_by: str
    ) -> Mapping:
        with self.lock:
            m = self.get_mapping(integration_id, mapping_id)
            token_id = fields.get("oauth_token_id")
            if token_id is not None and token_id not in self.oauth_tokens:
                raise conflict("Referenced resource not found")
            if fields.get("config") is not None:
                self._check_config(integration_id, fields["config"])
            if fields.get("entity_id") is not None:
                m.entity_id = fields["entity_id"]
            if fields.get("entity_name") is not None:
                m.entity_name = fields["entity_name"]
            if token_id is not None:
                m.oauth_token_id = token_id
            if fields.get("config") is not None:
                self.save_config(integration_id, m.organization_id, fields["config"], updated_by)
            m.updated_at = now()
            return m

    def delete_mapping(self, integration_id: str, mapping_id: str) -> None:
        """Hard delete; the org's override rows stay (section 1.6)."""
        with self.lock:
            m = self.get_mapping(integration_id, mapping_id)
            del self.mappings[m.id]
            self._mapping_index.pop((m.integration_id, m.organization_id), None)

    def batch_mappings(
        self, integration_id: str, items: list[dict[str, Any]], updated_by: str
    ) -> dict[str, Any]:
        """Upsert by org. One DB error poisons the session: the final commit fails (500)."""
        with self.lock:
            self.require_live(integration_id)
            for item in items:
                if item["organization_id"] not in self.organizations:
                    raise ApiError(
                        500, {"error": "internal_error", "message": "An unexpected error occurred"}
                    )
            created = updated = 0
            for item in items:
                existing = self.mapping_for(integration_id, item["organization_id"])
                if existing is not None:
                    existing.entity_id = item["entity_id"]
                    if item.get("entity_name") is not None:
                        existing.entity_name = item["entity_name"]
                    existing.updated_at = now()
                    updated += 1
                else:
                    self.create_mapping(
                        integration_id,
                        item["organization_id"],
                        item["entity_id"],
                        item.get("entity_name"),
                        updated_by=updated_by,
                    )
                    created += 1
            return {"created": created, "updated": updated, "errors": []}

    # ---------------------------------------------------------------- oauth

    def provider_for(self, integration_id: str) -> OAuthProvider | None:
        return next((p for p in self.oauth_providers.values() if p.integration_id == integration_id), None)

    def provider_by_connection_name(self, name: str) -> OAuthProvider | None:
        """Integration UUID first, then provider_name (REST-created providers are global)."""
        try:
            as_uuid = str(uuid.UUID(name))
        except ValueError:
            as_uuid = None
        if as_uuid is not None:
            p = self.provider_for(as_uuid)
            if p is not None:
                return p
        return next((p for p in self.oauth_providers.values() if p.provider_name == name), None)

    def tokens_of(self, provider_id: str) -> list[OAuthToken]:
        return sorted(
            (t for t in self.oauth_tokens.values() if t.provider_id == provider_id),
            key=lambda t: t.created_at,
        )

    def global_token(self, provider_id: str) -> OAuthToken | None:
        return next(
            (t for t in self.tokens_of(provider_id) if t.organization_id is None and t.user_id is None),
            None,
        )

    def org_level_token(self, provider_id: str, org_id: str | None) -> OAuthToken | None:
        """Org token (user_id NULL), then the global token; never another org's."""
        if org_id is not None:
            for t in self.tokens_of(provider_id):
                if t.organization_id == org_id and t.user_id is None:
                    return t
        return self.global_token(provider_id)

    def create_provider(
        self,
        integration_id: str,
        oauth_flow_type: str,
        client_id: str,
        token_url: str,
        client_secret: str | None = None,
        authorization_url: str | None = None,
        scopes: str = "",
        audience: str | None = None,
        description: str | None = None,
        created_by: str = "",
    ) -> OAuthProvider:
        """POST /api/oauth/connections after body validation; ``scopes`` is the raw CSV string."""
        with self.lock:
            integration = self.integrations.get(integration_id)  # not checked for soft deletion
            if integration is None:
                raise detail(404, f"Integration '{integration_id}' not found")
            if self.provider_by_connection_name(integration.name) is not None:
                raise detail(409, f"OAuth connection for integration '{integration.name}' already exists")
            if self.provider_for(integration_id) is not None:
                raise conflict("Resource already exists")  # UNIQUE oauth_providers.integration_id
            provider = OAuthProvider(
                id=new_id(),
                provider_name=integration.name,
                display_name=integration.name,
                integration_id=integration_id,
                description=description,
                oauth_flow_type=oauth_flow_type,
                client_id=client_id,
                client_secret=client_secret or "",
                authorization_url=authorization_url,
                token_url=token_url,
                scopes=scopes.split(",") if scopes else [],  # no trimming
                audience=audience,
                created_by=created_by,
            )
            self.oauth_providers[provider.id] = provider
            return provider

    def update_provider(self, name: str, fields: dict[str, Any]) -> OAuthProvider:
        with self.lock:
            p = self.provider_by_connection_name(name)
            if p is None:
                raise detail(404, f"OAuth connection '{name}' not found")
            if fields.get("name") is not None:
                p.display_name = fields["name"]
            for attr in ("oauth_flow_type", "client_id", "client_secret", "authorization_url", "token_url"):
                if fields.get(attr) is not None:
                    setattr(p, attr, fields[attr])
            if fields.get("scopes") is not None:
                p.scopes = list(fields["scopes"])
            if fields.get("audience") is not None:
                p.audience = fields["audience"]
            p.updated_at = now()
            return p

    def delete_provider(self, name: str) -> None:
        with self.lock:
            p = self.provider_by_connection_name(name)
            if p is None:
                raise detail(404, f"OAuth connection '{name}' not found")
            for t in self.tokens_of(p.id):
                del self.oauth_tokens[t.id]
                for m in self.mappings.values():  # ON DELETE SET NULL
                    if m.oauth_token_id == t.id:
                        m.oauth_token_id = None
            del self.oauth_providers[p.id]

    def add_oauth_token(
        self,
        integration_id: str,
        org_id: str | None = None,
        access_token: str | None = None,
        refresh_token: str | None = None,
        expires_at: dt.datetime | None = None,
        mapping_id: str | None = None,
    ) -> str:
        """Seed a stored token (as an OAuth callback would). ``mapping_id`` links it as that
        mapping's per-org override (``oauth_token_id``). Returns the token id."""
        with self.lock:
            p = self.provider_for(integration_id)
            if p is None:
                raise KeyError(f"integration {integration_id} has no OAuth provider")
            token = OAuthToken(
                id=new_id(),
                provider_id=p.id,
                organization_id=org_id,
                access_token=access_token or f"fake-access-{secrets.token_hex(8)}",
                refresh_token=refresh_token,
                expires_at=expires_at or now() + self.token_ttl,
                scopes=list(p.scopes),
                last_refresh_at=now(),
            )
            self.oauth_tokens[token.id] = token
            if mapping_id is not None:
                self.mappings[mapping_id].oauth_token_id = token.id
            return token.id

    # ---------------------------------------------------------------- per-mapping connections

    def authorize_mapping(self, integration_id: str, mapping_id: str, redirect_uri: str) -> str:
        """POST .../mappings/{id}/oauth/authorize: the authorization URL with a single-use state."""
        with self.lock:
            i = self.live_integration(integration_id)
            p = self.provider_for(integration_id) if i else None
            if p is None:
                raise detail(404, "Integration or its OAuth provider not found")
            if not p.authorization_url:
                raise detail(
                    400,
                    "This integration uses client_credentials flow and does not require user authorization",
                )
            self.get_mapping(integration_id, mapping_id)
            state = secrets.token_urlsafe(24)
            self.mapping_states[state] = mapping_id
            params = {
                "client_id": p.client_id,
                "response_type": "code",
                "state": state,
                "scope": " ".join(p.scopes),
                "redirect_uri": redirect_uri,
            }
            url = resolve_url_template(p.authorization_url, None, p.token_url_defaults)
            sep = "&" if "?" in url else "?"
            return url + sep + urllib.parse.urlencode(params)

    def complete_mapping_authorization(self, state: str, refresh_token: str | None = "fake-refresh") -> str:
        """What the OAuth callback does with a per-mapping state: store a token in the mapping's
        organization and link it (single use). Returns the token id."""
        with self.lock:
            mapping_id = self.mapping_states.pop(state)
            m = self.mappings[mapping_id]
            return self.add_oauth_token(
                m.integration_id, m.organization_id, refresh_token=refresh_token, mapping_id=mapping_id
            )

    def disconnect_mapping(self, integration_id: str, mapping_id: str) -> None:
        """POST .../oauth/disconnect: delete the mapping's token (204 even when it has none)."""
        with self.lock:
            m = self.get_mapping(integration_id, mapping_id)
            token_id, m.oauth_token_id = m.oauth_token_id, None
            if token_id is not None:
                self.oauth_tokens.pop(token_id, None)

    def refresh_mapping(self, integration_id: str, mapping_id: str) -> Mapping:
        """POST .../oauth/refresh: 400 without a token (or a refresh token, authorization code),
        502 when the token endpoint fails (the token is marked failed)."""
        with self.lock:
            m = self.get_mapping(integration_id, mapping_id)
            if not m.oauth_token_id:
                raise detail(400, "Mapping has no per-row OAuth connection to refresh")
            token = self.oauth_tokens.get(m.oauth_token_id)
            if token is None:
                m.oauth_token_id = None
                raise detail(404, "OAuth token row not found (mapping link cleared)")
            p = self.provider_for(integration_id)
            if p is None:
                raise detail(400, "Integration has no OAuth provider")
            if p.oauth_flow_type != "client_credentials" and not token.refresh_token:
                raise detail(400, "No refresh token available — reconnect this mapping to acquire one")
            token.last_refresh_at = now()
            if self.token_endpoint_error is not None:
                token.status, token.status_message = "failed", self.token_endpoint_error[:200]
                raise detail(502, token.status_message)
            token.access_token = f"fake-access-{secrets.token_hex(8)}"
            token.expires_at = now() + self.token_ttl
            token.status, token.status_message = "completed", None
            return m

    def _mint(self, url: str) -> str:
        return f"fake-cc-{secrets.token_hex(8)}"

    def refresh_provider(self, name: str) -> dict[str, Any]:
        """POST /api/oauth/connections/{name}/refresh (200 even when success is false)."""
        with self.lock:
            p = self.provider_by_connection_name(name)
            if p is None:
                raise detail(404, f"OAuth connection '{name}' not found")
            if not p.token_url:
                raise detail(400, "No token URL configured for this connection")
            stored = None
            if p.oauth_flow_type != "client_credentials":
                stored = self.global_token(p.id)
                if stored is None or not stored.refresh_token:
                    raise detail(400, "No refresh token available for this connection")
            if p.oauth_flow_type == "client_credentials" and not p.client_secret:
                raise detail(400, "Client secret is required for client_credentials flow")
            if self.token_endpoint_error is not None:
                p.status = "failed"
                p.status_message = self.token_endpoint_error
                return {"success": False, "message": self.token_endpoint_error, "expires_at": None}
            integration = self.integrations.get(p.integration_id or "")
            entity = None
            if integration is not None:
                entity = integration.default_entity_id or integration.entity_id
            url = resolve_url_template(p.token_url, entity, p.token_url_defaults)
            expires = now() + self.token_ttl
            ts = now()
            if p.oauth_flow_type == "client_credentials":
                token = self.global_token(p.id)
                if token is None:
                    token = OAuthToken(id=new_id(), provider_id=p.id, organization_id=None, access_token=None)
                    self.oauth_tokens[token.id] = token
                token.access_token = self._mint(url)
                token.refresh_token = None
                token.expires_at = expires
                token.scopes = list(p.scopes)
                token.status = "completed"
                token.status_message = None
                token.last_refresh_at = ts
                p.status, p.status_message = "completed", "Token acquired successfully"
                message = "Token acquired successfully"
            else:
                assert stored is not None
                stored.access_token = f"fake-access-{secrets.token_hex(8)}"
                stored.expires_at = expires
                p.status, p.status_message = "completed", None
                message = "Token refreshed successfully"
            p.last_token_refresh = ts
            p.updated_at = ts
            return {"success": True, "message": message, "expires_at": expires.isoformat()}

    # ---------------------------------------------------------------- SDK (section 3.3)

    def sdk_get(self, name: str, org_id: str | None, oauth_scope: str | None = None) -> dict[str, Any] | None:
        """What ``integrations.get(name, scope=...)`` returns; ``org_id=None`` is global scope."""
        with self.lock:
            mapping = None
            integration = None
            if org_id is not None:
                integration = self.integration_by_name(name, include_deleted=True)
                if integration is not None:
                    mapping = self.mapping_for(integration.id, org_id)
            if mapping is not None:
                assert integration is not None
                config = self.config_dict(integration.id, None)
                config.update(self.config_dict(integration.id, org_id))
                entity_id = mapping.entity_id or integration.default_entity_id
                p = self.provider_for(integration.id)
                oauth = None
                if p is not None:
                    token = self.oauth_tokens.get(mapping.oauth_token_id or "")
                    if token is None:
                        token = self.org_level_token(p.id, org_id)
                    oauth = self._oauth_data(p, token, entity_id, oauth_scope)
                return {
                    "integration_id": integration.id,
                    "entity_id": entity_id,
                    "entity_name": mapping.entity_name,
                    "config": config,
                    "oauth": oauth,
                    "config_secret_keys": [s.key for s in integration.config_schema if s.type == "secret"],
                }
            integration = self.integration_by_name(name, include_deleted=True)
            if integration is None:
                return None
            entity_id = integration.default_entity_id or integration.entity_id
            p = self.provider_for(integration.id)
            oauth = None
            if p is not None:
                oauth = self._oauth_data(p, self.org_level_token(p.id, org_id), entity_id, oauth_scope)
            return {
                "integration_id": integration.id,
                "entity_id": entity_id,
                "entity_name": None,
                "config": self.config_dict(integration.id, None),
                "oauth": oauth,
                "config_secret_keys": [s.key for s in integration.config_schema if s.type == "secret"],
            }

    def _oauth_data(
        self, p: OAuthProvider, token: OAuthToken | None, entity_id: str | None, oauth_scope: str | None
    ) -> dict[str, Any]:
        client_secret = p.client_secret or None
        token_url: str | None = p.token_url
        if p.token_url and entity_id:
            token_url = resolve_url_template(p.token_url, entity_id, p.token_url_defaults)
        access = refresh = expires = None
        auto = (
            bool(p.token_url)
            and p.oauth_flow_type == "client_credentials"
            and (bool(oauth_scope) or (bool(entity_id) and "{entity_id}" in p.token_url))
        )
        if auto:
            # A fresh token on every call, never persisted; no fallback to the stored one.
            if client_secret and token_url and self.token_endpoint_error is None:
                access = self._mint(token_url)
                expires = (now() + self.token_ttl).isoformat()
        elif token is not None:
            access = token.access_token
            refresh = token.refresh_token
            expires = token.expires_at.isoformat() if token.expires_at else None
        return {
            "connection_name": p.provider_name,
            "client_id": p.client_id,
            "client_secret": client_secret,
            "authorization_url": p.authorization_url,
            "token_url": token_url,
            "scopes": list(p.scopes),
            "access_token": access,
            "refresh_token": refresh,
            "expires_at": expires,
        }


def _schema_item(raw: dict[str, Any], position: int) -> SchemaItem:
    return SchemaItem(
        id=new_id(),
        key=raw["key"],
        type=raw["type"],
        required=raw.get("required", False),
        description=raw.get("description"),
        options=raw.get("options"),
        position=position,
    )
