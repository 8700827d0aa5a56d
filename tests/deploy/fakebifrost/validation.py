"""Request-body validation that reproduces Bifrost's 422 body.

FastAPI collects pydantic errors and Bifrost's handler joins ``"<loc without 'body'>: <msg>"``
with ``"; "``. The messages below are pydantic v2's wording for the constraints the request
models use. Unknown fields are ignored (pydantic's default).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from .state import validation_error

_MISSING = object()


class Errors:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: tuple[Any, ...], msg: str) -> None:
        self.items.append((".".join(str(p) for p in path), msg))

    def raise_if_any(self) -> None:
        if self.items:
            raise validation_error("; ".join(f"{p}: {m}" for p, m in self.items))


def _chars(n: int) -> str:
    return "character" if n == 1 else "characters"


def s(
    errs: Errors,
    data: dict[str, Any],
    name: str,
    *,
    required: bool = False,
    nullable: bool = True,
    min_len: int | None = None,
    max_len: int | None = None,
    pattern: str | None = None,
    default: Any = None,
    path: tuple[Any, ...] = (),
) -> Any:
    """A ``str`` field (``str | None`` when ``nullable``)."""
    loc = (*path, name)
    v = data.get(name, _MISSING)
    if v is _MISSING:
        if required:
            errs.add(loc, "Field required")
        return default
    if v is None and nullable:
        return None
    if not isinstance(v, str):
        errs.add(loc, "Input should be a valid string")
        return default
    if min_len is not None and len(v) < min_len:
        errs.add(loc, f"String should have at least {min_len} {_chars(min_len)}")
    elif max_len is not None and len(v) > max_len:
        errs.add(loc, f"String should have at most {max_len} {_chars(max_len)}")
    elif pattern is not None and not re.search(pattern, v):
        errs.add(loc, f"String should match pattern '{pattern}'")
    return v


def as_uuid(value: Any) -> str | None:
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            return None
    return None


def u(
    errs: Errors, data: dict[str, Any], name: str, *, required: bool = False, path: tuple[Any, ...] = ()
) -> str | None:
    """A ``UUID`` field; returns the canonical lowercase form."""
    loc = (*path, name)
    v = data.get(name, _MISSING)
    if v is _MISSING:
        if required:
            errs.add(loc, "Field required")
        return None
    if v is None and not required:
        return None
    out = as_uuid(v)
    if out is None:
        errs.add(
            loc,
            "Input should be a valid UUID"
            if isinstance(v, str)
            else "UUID input should be a string, bytes or UUID object",
        )
    return out


_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}


def b(
    errs: Errors, data: dict[str, Any], name: str, *, default: bool = False, path: tuple[Any, ...] = ()
) -> bool:
    v = data.get(name, _MISSING)
    if v is _MISSING:
        return default
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.lower() in _TRUE | _FALSE:
        return v.lower() in _TRUE
    errs.add((*path, name), "Input should be a valid boolean")
    return default


def lit(
    errs: Errors,
    data: dict[str, Any],
    name: str,
    choices: tuple[str, ...],
    *,
    required: bool = False,
    path: tuple[Any, ...] = (),
) -> Any:
    loc = (*path, name)
    v = data.get(name, _MISSING)
    if v is _MISSING:
        if required:
            errs.add(loc, "Field required")
        return None
    if v is None and not required:
        return None
    if v not in choices:
        quoted = [f"'{c}'" for c in choices]
        errs.add(loc, "Input should be " + ", ".join(quoted[:-1]) + " or " + quoted[-1])
        return None
    return v


def d(
    errs: Errors, data: dict[str, Any], name: str, *, required: bool = False, path: tuple[Any, ...] = ()
) -> dict[str, Any] | None:
    loc = (*path, name)
    v = data.get(name, _MISSING)
    if v is _MISSING:
        if required:
            errs.add(loc, "Field required")
        return None
    if v is None and not required:
        return None
    if not isinstance(v, dict):
        errs.add(loc, "Input should be a valid dictionary")
        return None
    return v


def str_dict(errs: Errors, data: dict[str, Any], name: str) -> dict[str, str] | None:
    v = d(errs, data, name)
    if v is not None:
        for k, val in v.items():
            if not isinstance(val, str):
                errs.add((name, k), "Input should be a valid string")
    return v


def body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise validation_error(": Input should be a valid dictionary or object to extract fields from")
    return body


# ------------------------------------------------------------------ request models


def config_schema_item(errs: Errors, raw: Any, path: tuple[Any, ...]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        errs.add(path, "Input should be a valid dictionary or object to extract fields from")
        return {}
    out = {
        "key": s(
            errs,
            raw,
            "key",
            required=True,
            nullable=False,
            min_len=1,
            max_len=255,
            pattern=r"^[a-zA-Z0-9_]+$",
            path=path,
        ),
        "type": lit(errs, raw, "type", ("string", "int", "bool", "json", "secret"), required=True, path=path),
        "required": b(errs, raw, "required", path=path),
        "description": s(errs, raw, "description", max_len=500, path=path),
        "options": None,
    }
    opts = raw.get("options")
    if opts is not None:
        if not isinstance(opts, list):
            errs.add((*path, "options"), "Input should be a valid list")
        else:
            for i, o in enumerate(opts):
                if not isinstance(o, str):
                    errs.add((*path, "options", i), "Input should be a valid string")
            out["options"] = list(opts)
    return out


def config_schema(errs: Errors, data: dict[str, Any]) -> list[dict[str, Any]] | None:
    v = data.get("config_schema")
    if v is None:
        return None
    if not isinstance(v, list):
        errs.add(("config_schema",), "Input should be a valid list")
        return None
    return [config_schema_item(errs, raw, ("config_schema", i)) for i, raw in enumerate(v)]


def integration_create(body: Any) -> dict[str, Any]:
    data = body_object(body)
    errs = Errors()
    out = {
        "name": s(errs, data, "name", required=True, nullable=False, min_len=1, max_len=255),
        "config_schema": config_schema(errs, data),
        "entity_id": s(errs, data, "entity_id", min_len=1, max_len=255),
        "entity_id_name": s(errs, data, "entity_id_name", max_len=255),
        "default_entity_id": s(errs, data, "default_entity_id", max_len=255),
    }
    errs.raise_if_any()
    return out


def integration_update(body: Any) -> dict[str, Any]:
    data = body_object(body)
    errs = Errors()
    out = {
        "name": s(errs, data, "name", min_len=1, max_len=255),
        "list_entities_data_provider_id": u(errs, data, "list_entities_data_provider_id"),
        "config_schema": config_schema(errs, data),
        "entity_id": s(errs, data, "entity_id", min_len=1, max_len=255),
        "entity_id_name": s(errs, data, "entity_id_name", max_len=255),
        "default_entity_id": s(errs, data, "default_entity_id", max_len=255),
    }
    errs.raise_if_any()
    return out


def config_update(body: Any) -> dict[str, Any]:
    data = body_object(body)
    errs = Errors()
    cfg = d(errs, data, "config", required=True)
    errs.raise_if_any()
    assert cfg is not None
    return cfg


def mapping_create(body: Any) -> dict[str, Any]:
    data = body_object(body)
    errs = Errors()
    out = {
        "organization_id": u(errs, data, "organization_id", required=True),
        "entity_id": s(errs, data, "entity_id", required=True, nullable=False, max_len=255),
        "entity_name": s(errs, data, "entity_name", max_len=255),
        "oauth_token_id": u(errs, data, "oauth_token_id"),
        "config": d(errs, data, "config"),
    }
    errs.raise_if_any()
    return out


def mapping_update(body: Any) -> dict[str, Any]:
    data = body_object(body)
    errs = Errors()
    out = {
        "entity_id": s(errs, data, "entity_id", max_len=255),
        "entity_name": s(errs, data, "entity_name", max_len=255),
        "oauth_token_id": u(errs, data, "oauth_token_id"),
        "config": d(errs, data, "config"),
    }
    errs.raise_if_any()
    return out


def mapping_authorize(body: Any) -> str:
    """MappingAuthorizeRequest: ``{"redirect_uri": str}`` (required)."""
    data = body_object(body)
    errs = Errors()
    value = data.get("redirect_uri", _MISSING)
    if value is _MISSING:
        errs.add(("redirect_uri",), "Field required")
    elif not isinstance(value, str):
        errs.add(("redirect_uri",), "Input should be a valid string")
    errs.raise_if_any()
    assert isinstance(value, str)
    return value


def mapping_batch(body: Any) -> list[dict[str, Any]]:
    data = body_object(body)
    errs = Errors()
    items = data.get("mappings", _MISSING)
    out: list[dict[str, Any]] = []
    if items is _MISSING:
        errs.add(("mappings",), "Field required")
    elif not isinstance(items, list):
        errs.add(("mappings",), "Input should be a valid list")
    elif len(items) < 1:
        errs.add(("mappings",), f"List should have at least 1 item after validation, not {len(items)}")
    elif len(items) > 500:
        errs.add(("mappings",), f"List should have at most 500 items after validation, not {len(items)}")
    else:
        for i, raw in enumerate(items):
            path = ("mappings", i)
            if not isinstance(raw, dict):
                errs.add(path, "Input should be a valid dictionary or object to extract fields from")
                continue
            out.append(
                {
                    "organization_id": u(errs, raw, "organization_id", required=True, path=path),
                    "entity_id": s(
                        errs, raw, "entity_id", required=True, nullable=False, max_len=255, path=path
                    ),
                    "entity_name": s(errs, raw, "entity_name", max_len=255, path=path),
                }
            )
    errs.raise_if_any()
    return out


FLOWS = ("authorization_code", "client_credentials", "refresh_token")


def connection_create(body: Any) -> dict[str, Any]:
    data = dict(body_object(body))
    # model_validator(mode="before"): "" means missing for these two
    if data.get("client_secret") == "":
        data["client_secret"] = None
    if data.get("authorization_url") == "":
        data["authorization_url"] = None
    errs = Errors()
    out = {
        "integration_id": s(errs, data, "integration_id", required=True, nullable=False),
        "description": s(errs, data, "description", max_len=500),
        "oauth_flow_type": lit(errs, data, "oauth_flow_type", FLOWS, required=True),
        "client_id": s(errs, data, "client_id", required=True, nullable=False, min_len=1),
        "client_secret": s(errs, data, "client_secret"),
        "authorization_url": s(errs, data, "authorization_url", pattern=r"^https://"),
        "token_url": s(errs, data, "token_url", required=True, nullable=False, pattern=r"^https://"),
        "scopes": s(errs, data, "scopes", nullable=False, default=""),
        "audience": s(errs, data, "audience", max_len=500),
    }
    str_dict(errs, data, "token_url_defaults")  # accepted, then silently dropped
    s(errs, data, "redirect_uri")  # accepted, then silently dropped
    errs.raise_if_any()
    # model_validator(mode="after")
    if out["oauth_flow_type"] == "client_credentials" and not out["client_secret"]:
        raise validation_error(": Value error, client_secret is required for client_credentials flow")
    if out["oauth_flow_type"] == "authorization_code" and not out["authorization_url"]:
        raise validation_error(": Value error, authorization_url is required for authorization_code flow")
    return out


def connection_update(body: Any) -> dict[str, Any]:
    data = body_object(body)
    errs = Errors()
    out = {
        "name": s(errs, data, "name", max_len=255),
        "oauth_flow_type": lit(errs, data, "oauth_flow_type", FLOWS),
        "client_id": s(errs, data, "client_id", min_len=1),
        "client_secret": s(errs, data, "client_secret", min_len=1),
        "authorization_url": s(errs, data, "authorization_url", pattern=r"^https://"),
        "token_url": s(errs, data, "token_url", pattern=r"^https://"),
        "audience": s(errs, data, "audience", max_len=500),
        "scopes": None,
    }
    str_dict(errs, data, "token_url_defaults")  # accepted, ignored
    scopes = data.get("scopes")
    if isinstance(scopes, str):
        out["scopes"] = [p.strip() for p in scopes.replace(",", " ").split() if p.strip()]
    elif isinstance(scopes, list):
        for i, item in enumerate(scopes):
            if not isinstance(item, str):
                errs.add(("scopes", i), "Input should be a valid string")
        out["scopes"] = list(scopes)
    elif scopes is not None:
        errs.add(("scopes",), "Input should be a valid list")
    errs.raise_if_any()
    return out


def sdk_get(body: Any) -> dict[str, Any]:
    data = body_object(body)
    errs = Errors()
    out = {
        "name": s(errs, data, "name", required=True, nullable=False),
        "scope": s(errs, data, "scope"),
        "oauth_scope": s(errs, data, "oauth_scope"),
    }
    errs.raise_if_any()
    return out


def refresh_request(body: Any) -> str | None:
    token = body.get("refresh_token") if isinstance(body, dict) else None
    return token if isinstance(token, str) else None
