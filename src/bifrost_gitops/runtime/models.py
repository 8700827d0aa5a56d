"""What the runtime SDK returns: Bifrost's SDK models, secrets masked in repr, cheap to copy."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, NamedTuple

from ..bundleformat import MASK
from ..nodes import Json


def _copy_json(v: Json) -> Json:
    """A deep copy of a JSON value (dicts and lists rebuilt, scalars shared)."""
    if isinstance(v, dict):
        return {k: _copy_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy_json(x) for x in v]
    return v


class _Config(dict[str, Any]):
    """``IntegrationData.config``: a plain dict whose repr masks the secret keys' values."""

    __slots__ = ("_secret_keys",)
    _secret_keys: frozenset[str]

    def __repr__(self) -> str:
        keys: frozenset[str] = getattr(self, "_secret_keys", frozenset())
        return repr({k: (MASK if k in keys and v is not None else v) for k, v in self.items()})

    __str__ = __repr__

    def __reduce__(
        self,
    ) -> tuple[type[dict[str, object]], tuple[dict[str, object]]]:  # pickles / deep-copies as a plain dict
        return (dict, (dict(self),))


def _masked(v: object) -> str:
    return "None" if v is None else repr(MASK)


class OAuthCredentials:
    """Bifrost's OAuthCredentials; secrets masked in repr, clear in attributes.

    ``access_token`` is what Bifrost's ``get`` would give: for a ``client_credentials``
    provider, a token minted from the provider at ``get`` time (cached until shortly before
    it expires; ``expires_at`` set to match), see :mod:`.tokens`. For an
    ``authorization_code`` provider it is the token the repository declares (sealed), else
    **None**: the tokens a user's consent produced live only in Bifrost, and a bundle cannot
    hold them. docs/bifrost-api.md#sdk-models

    ``token_source`` (not one of Bifrost's fields) says whose token this is: ``"own"`` when the
    organization connects its own account (its mapping says ``oauth: own``: the tokens are the
    ones its mapping declares, else None, never the integration's), ``"integration"`` for the
    integration's shared connection; None when not known (the live source: Bifrost's reply
    does not say)."""

    __slots__ = (
        "access_token",
        "authorization_url",
        "client_id",
        "client_secret",
        "connection_name",
        "expires_at",
        "refresh_token",
        "scopes",
        "token_source",
        "token_url",
    )
    connection_name: str
    client_id: str | None
    client_secret: str | None
    authorization_url: str | None
    token_url: str | None
    scopes: list[str]
    access_token: str | None
    refresh_token: str | None
    expires_at: str | None
    token_source: str | None

    FIELDS: Final = (
        "connection_name",
        "client_id",
        "client_secret",
        "authorization_url",
        "token_url",
        "scopes",
        "access_token",
        "refresh_token",
        "expires_at",
    )
    SECRET_FIELDS: Final = frozenset({"client_secret", "access_token", "refresh_token"})

    def __init__(self, **fields: object) -> None:
        for name in self.FIELDS:
            setattr(self, name, fields.get(name))
        if self.scopes is None:
            self.scopes = []
        source = fields.get("token_source")
        self.token_source = source if isinstance(source, str) else None

    @classmethod
    def from_record(cls, rec: Mapping[str, object]) -> OAuthCredentials:
        o = cls(**{k: rec.get(k) for k in cls.FIELDS})
        o.scopes = list(o.scopes or [])
        return o

    def _clone(self) -> OAuthCredentials:
        new = object.__new__(OAuthCredentials)
        new.connection_name = self.connection_name
        new.client_id = self.client_id
        new.client_secret = self.client_secret
        new.authorization_url = self.authorization_url
        new.token_url = self.token_url
        new.scopes = list(self.scopes)
        new.access_token = self.access_token
        new.refresh_token = self.refresh_token
        new.expires_at = self.expires_at
        new.token_source = self.token_source
        return new

    def model_dump(self) -> dict[str, Any]:
        """The fields as a dict, secrets in clear (like pydantic's ``model_dump``)."""
        out = {name: getattr(self, name) for name in self.FIELDS}
        out["scopes"] = list(self.scopes)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OAuthCredentials) and self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = [
            f"{name}={_masked(getattr(self, name)) if name in self.SECRET_FIELDS else repr(getattr(self, name))}"
            for name in self.FIELDS
        ]
        return f"OAuthCredentials({', '.join(parts)})"

    __str__ = __repr__


class IntegrationData:
    """Bifrost's IntegrationData (docs/bifrost-api.md#sdk-models); what :meth:`Integrations.get` returns."""

    __slots__ = ("config", "config_secret_keys", "entity_id", "entity_name", "integration_id", "oauth")
    integration_id: str | None
    entity_id: str | None
    entity_name: str | None
    config: dict[str, Any]
    config_secret_keys: list[str]
    oauth: OAuthCredentials | None

    FIELDS: Final = ("integration_id", "entity_id", "entity_name", "config", "oauth", "config_secret_keys")

    def __init__(
        self,
        *,
        integration_id: str | None = None,
        entity_id: str | None = None,
        entity_name: str | None = None,
        config: Mapping[str, object] | None = None,
        oauth: OAuthCredentials | None = None,
        config_secret_keys: list[str] | None = None,
    ) -> None:
        self.integration_id = integration_id
        self.entity_id = entity_id
        self.entity_name = entity_name
        self.config_secret_keys = list(config_secret_keys or [])
        cfg = _Config(config or {})
        cfg._secret_keys = frozenset(self.config_secret_keys)
        self.config = cfg
        self.oauth = oauth

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> IntegrationData:
        oauth = rec.get("oauth")
        config = rec.get("config")
        return cls(
            integration_id=rec.get("integration_id"),
            entity_id=rec.get("entity_id"),
            entity_name=rec.get("entity_name"),
            config=config if isinstance(config, Mapping) else {},
            oauth=OAuthCredentials.from_record(oauth) if isinstance(oauth, Mapping) else None,
            config_secret_keys=list(rec.get("config_secret_keys") or []),
        )

    def model_dump(self) -> dict[str, Any]:
        """The fields as a dict, secrets in clear (like pydantic's ``model_dump``)."""
        return {
            "integration_id": self.integration_id,
            "entity_id": self.entity_id,
            "entity_name": self.entity_name,
            "config": _copy_json(dict(self.config)),
            "oauth": self.oauth.model_dump() if self.oauth is not None else None,
            "config_secret_keys": list(self.config_secret_keys),
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IntegrationData) and self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"IntegrationData(integration_id={self.integration_id!r}, entity_id={self.entity_id!r}, "
            f"entity_name={self.entity_name!r}, config={_masked_config(self.config, self.config_secret_keys)}, "
            f"oauth={self.oauth!r}, config_secret_keys={self.config_secret_keys!r})"
        )

    __str__ = __repr__


def _masked_config(config: Mapping[str, object], secret_keys: list[str]) -> str:
    keys = set(secret_keys)
    return repr({k: (MASK if k in keys and v is not None else v) for k, v in config.items()})


class Mint(NamedTuple):
    """A client-credentials integration of one bundle file: what minting its token needs."""

    org: str  # the bundle file's key: an organization's name, or "global"
    integration: str
    token_url_template: str
    audience: str | None


class _Template:
    """A cached IntegrationData, handed out as fresh copies (cheap: see benchmarks/bench_runtime.py)."""

    __slots__ = ("config", "keys", "mint", "mutable", "oauth", "secret_keys", "value")

    def __init__(self, value: IntegrationData, mint: Mint | None = None) -> None:
        self.value = value
        self.mint = mint  # set for a client-credentials integration: its token is minted at get
        self.config = dict(value.config)
        self.mutable = tuple(k for k, v in self.config.items() if isinstance(v, dict | list))
        self.keys = tuple(value.config_secret_keys)
        self.secret_keys = frozenset(self.keys)
        self.oauth = value.oauth

    def copy(self) -> IntegrationData:
        v = self.value
        new = object.__new__(IntegrationData)
        new.integration_id = v.integration_id
        new.entity_id = v.entity_id
        new.entity_name = v.entity_name
        cfg = _Config(self.config)
        for k in self.mutable:
            cfg[k] = _copy_json(cfg[k])
        cfg._secret_keys = self.secret_keys
        new.config = cfg
        new.config_secret_keys = list(self.keys)
        new.oauth = None if self.oauth is None else self.oauth._clone()
        return new


class IntegrationMappingResponse:
    """Bifrost's IntegrationMappingResponse (docs/bifrost-api.md#sdk-models), from the bundle.

    ``config`` is the merged config (defaults plus the org's overrides, secrets clear), as
    Bifrost returns it. ``organization`` (the org's name) is an addition: Bifrost has only the
    UUID, which a repository may not declare. ``id``, ``oauth_token_id``, ``created_at`` and
    ``updated_at`` are None: the bundle does not know them.
    """

    __slots__ = (
        "config",
        "created_at",
        "entity_id",
        "entity_name",
        "id",
        "integration_id",
        "oauth_token_id",
        "organization",
        "organization_id",
        "secret_keys",
        "updated_at",
    )
    FIELDS: Final = (
        "id",
        "integration_id",
        "organization_id",
        "entity_id",
        "entity_name",
        "oauth_token_id",
        "config",
        "created_at",
        "updated_at",
    )

    def __init__(self, organization: str, organization_id: str | None, data: IntegrationData) -> None:
        self.id: str | None = None
        self.integration_id = data.integration_id
        self.organization = organization
        self.organization_id = organization_id
        self.entity_id = data.entity_id or ""
        self.entity_name = data.entity_name
        self.oauth_token_id: str | None = None
        self.config = data.config
        self.secret_keys = list(data.config_secret_keys)
        self.created_at: datetime | None = None
        self.updated_at: datetime | None = None

    def model_dump(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.FIELDS}
        out["config"] = _copy_json(dict(self.config))
        return out

    def __repr__(self) -> str:
        return (
            f"IntegrationMappingResponse(organization={self.organization!r}, "
            f"organization_id={self.organization_id!r}, integration_id={self.integration_id!r}, "
            f"entity_id={self.entity_id!r}, entity_name={self.entity_name!r}, "
            f"config={_masked_config(self.config, self.secret_keys)})"
        )

    __str__ = __repr__
