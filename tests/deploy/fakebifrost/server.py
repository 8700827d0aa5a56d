"""A contract-faithful Bifrost API server on loopback, for tests (standard library only).

    with FakeBifrost() as bf:
        org = bf.add_org("Contoso")
        r = httpx.get(bf.url + "/api/organizations", headers=bf.auth_headers())

See ``tests/test_fakebifrost.py`` for each behaviour ``docs/bifrost-api.md`` describes.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import validation as V
from .state import (
    ApiError,
    Integration,
    Mapping,
    OAuthProvider,
    State,
    User,
    detail,
    iso,
    validation_error,
)

Match = Callable[[str, str], bool]


@dataclass
class RequestRecord:
    method: str
    path: str  # decoded path, no query string
    status: int | str  # an HTTP status, or "drop" when the connection was closed without a response
    route: str | None  # the matched route template, e.g. "/api/integrations/{integration_id}/config"
    fault: str | None = None  # the injected fault kind, if any


@dataclass
class Fault:
    kind: str  # "status" | "drop" | "drop_after" | "slow"
    remaining: int
    status: int = 500
    match: Match | None = None
    retry_after: str | None = None
    delay: float = 0.0


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str


@dataclass
class _Ctx:
    user: User
    query: dict[str, list[str]] = field(default_factory=dict)


# --------------------------------------------------------------------------- response builders


def integration_json(state: State, i: Integration) -> dict[str, Any]:
    """IntegrationResponse (list, by-name, POST and PUT): ``config_schema`` is ``[]`` when empty."""
    return {
        "id": i.id,
        "name": i.name,
        "list_entities_data_provider_id": i.list_entities_data_provider_id,
        "config_schema": [s.to_json() for s in i.config_schema],
        "entity_id": i.entity_id,
        "entity_id_name": i.entity_id_name,
        "default_entity_id": i.default_entity_id,
        "has_oauth_config": state.has_oauth_config(i.id),
        "is_deleted": i.is_deleted,
        "created_at": iso(i.created_at),
        "updated_at": iso(i.updated_at),
    }


def mapping_json(state: State, m: Mapping, config: dict[str, Any] | None) -> dict[str, Any]:
    token = state.oauth_tokens.get(m.oauth_token_id or "")
    return {
        "id": m.id,
        "integration_id": m.integration_id,
        "organization_id": m.organization_id,
        "entity_id": m.entity_id,
        "entity_name": m.entity_name,
        "oauth_token_id": m.oauth_token_id,
        "config": config,
        "connection_status": token.status if token else None,
        "connection_message": token.status_message if token else None,
        "last_refresh_at": iso(token.last_refresh_at) if token else None,
        "connection_expires_at": iso(token.expires_at) if token else None,
        "created_at": iso(m.created_at),
        "updated_at": iso(m.updated_at),
    }


def mapping_with_overrides(state: State, m: Mapping) -> dict[str, Any]:
    overrides = state.config_dict(m.integration_id, m.organization_id)
    return mapping_json(state, m, overrides or None)


def integration_detail_json(state: State, i: Integration) -> dict[str, Any]:
    p = state.provider_for(i.id)
    oauth_config = None
    if p is not None:
        tokens = state.tokens_of(p.id)
        token = tokens[0] if tokens else None
        oauth_config = {
            "provider_name": p.provider_name,
            "oauth_flow_type": p.oauth_flow_type,
            "client_id": p.client_id,
            "authorization_url": p.authorization_url,
            "token_url": p.token_url or "",
            "scopes": list(p.scopes),
            "status": p.status or "not_connected",
            "status_message": p.status_message,
            "expires_at": iso(token.expires_at) if token else None,
            "last_refresh_at": iso(p.last_token_refresh),
            "has_refresh_token": token.refresh_token is not None if token else False,
            "entity_id_source": p.entity_id_source,
        }
    defaults = state.config_dict(i.id, None)
    base = integration_json(state, i)
    return {
        "id": base["id"],
        "name": base["name"],
        "list_entities_data_provider_id": base["list_entities_data_provider_id"],
        "config_schema": base["config_schema"] or None,
        "config_defaults": defaults or None,
        "entity_id": i.entity_id,
        "entity_id_name": i.entity_id_name,
        "default_entity_id": i.default_entity_id,
        "has_oauth_config": base["has_oauth_config"],
        "is_deleted": i.is_deleted,
        "created_at": base["created_at"],
        "updated_at": base["updated_at"],
        "mappings": [mapping_with_overrides(state, m) for m in state.mappings_of(i.id)],
        "oauth_config": oauth_config,
    }


def connection_detail_json(state: State, p: OAuthProvider) -> dict[str, Any]:
    """OAuthConnectionDetail: scopes space-joined, never the secret."""
    token = state.global_token(p.id)
    return {
        "connection_name": p.provider_name,
        "name": p.display_name,
        "provider": p.provider_name,
        "description": p.description,
        "oauth_flow_type": p.oauth_flow_type,
        "client_id": p.client_id,
        "authorization_url": p.authorization_url,
        "token_url": p.token_url or "",
        "scopes": " ".join(p.scopes) if p.scopes else "",
        "audience": p.audience,
        "status": p.status or "not_connected",
        "status_message": p.status_message,
        "integration_id": p.integration_id,
        "expires_at": iso(token.expires_at) if token else None,
        "last_refresh_at": iso(p.last_token_refresh),
        "last_test_at": None,
        "created_at": iso(p.created_at),
        "created_by": p.created_by or "",
        "updated_at": iso(p.updated_at),
    }


# --------------------------------------------------------------------------- routes


def _uuid_param(name: str, value: str) -> str:
    out = V.as_uuid(value)
    if out is None:
        raise validation_error(f"path.{name}: Input should be a valid UUID")
    return out


class Api:
    """Route handlers. Each returns ``(status, body)``; ``body`` None means no content."""

    def __init__(self, fake: FakeBifrost) -> None:
        self.fake = fake
        self.state = fake.state
        s = self
        # (method, template, handler, auth) with auth in {"none", "user", "superuser"}
        self.routes: list[tuple[str, str, Callable[..., tuple[int, Any]], str]] = [
            ("GET", "/api/version", s.version, "none"),
            ("POST", "/auth/refresh", s.auth_refresh, "none"),
            ("GET", "/api/organizations", s.list_orgs, "superuser"),
            ("POST", "/api/integrations", s.create_integration, "superuser"),
            ("GET", "/api/integrations", s.list_integrations, "superuser"),
            ("GET", "/api/integrations/by-name/{name}", s.get_by_name, "superuser"),
            ("GET", "/api/integrations/{integration_id}", s.get_integration, "superuser"),
            ("PUT", "/api/integrations/{integration_id}", s.update_integration, "superuser"),
            ("DELETE", "/api/integrations/{integration_id}", s.delete_integration, "superuser"),
            ("GET", "/api/integrations/{integration_id}/config", s.get_config, "superuser"),
            ("PUT", "/api/integrations/{integration_id}/config", s.put_config, "superuser"),
            ("POST", "/api/integrations/{integration_id}/mappings", s.create_mapping, "superuser"),
            ("GET", "/api/integrations/{integration_id}/mappings", s.list_mappings, "superuser"),
            ("POST", "/api/integrations/{integration_id}/mappings/batch", s.batch_mappings, "superuser"),
            (
                "GET",
                "/api/integrations/{integration_id}/mappings/by-org/{org_id}",
                s.mapping_by_org,
                "superuser",
            ),
            ("GET", "/api/integrations/{integration_id}/mappings/{mapping_id}", s.get_mapping, "superuser"),
            (
                "PUT",
                "/api/integrations/{integration_id}/mappings/{mapping_id}",
                s.update_mapping,
                "superuser",
            ),
            (
                "DELETE",
                "/api/integrations/{integration_id}/mappings/{mapping_id}",
                s.delete_mapping,
                "superuser",
            ),
            (
                "POST",
                "/api/integrations/{integration_id}/mappings/{mapping_id}/oauth/authorize",
                s.authorize_mapping,
                "superuser",
            ),
            (
                "POST",
                "/api/integrations/{integration_id}/mappings/{mapping_id}/oauth/refresh",
                s.refresh_mapping,
                "superuser",
            ),
            (
                "POST",
                "/api/integrations/{integration_id}/mappings/{mapping_id}/oauth/disconnect",
                s.disconnect_mapping,
                "superuser",
            ),
            ("GET", "/api/integrations/{integration_id}/oauth", s.integration_oauth, "superuser"),
            ("POST", "/api/oauth/connections", s.create_connection, "superuser"),
            ("GET", "/api/oauth/connections/{connection_name}", s.get_connection, "superuser"),
            ("PUT", "/api/oauth/connections/{connection_name}", s.update_connection, "superuser"),
            ("DELETE", "/api/oauth/connections/{connection_name}", s.delete_connection, "superuser"),
            ("POST", "/api/oauth/connections/{connection_name}/refresh", s.refresh_connection, "superuser"),
            ("POST", "/api/sdk/integrations/get", s.sdk_get, "user"),
        ]
        self._compiled = [
            (m, t, re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(t)) + "$"), h, a)
            for m, t, h, a in self.routes
        ]

    def resolve(
        self, method: str, path: str
    ) -> tuple[str, Callable[..., tuple[int, Any]], str, dict[str, str]]:
        path_matched = False
        for m, template, rx, handler, auth in self._compiled:
            found = rx.match(path)
            if found is None:
                continue
            path_matched = True
            if m == method:
                return template, handler, auth, found.groupdict()
        if path_matched:
            raise ApiError(405, {"detail": "Method Not Allowed"})
        raise ApiError(404, {"detail": "Not Found"})

    # -- misc
    def version(self, ctx: _Ctx | None, body: Any) -> tuple[int, Any]:
        return 200, {"version": self.fake.version, "contract_version": self.fake.contract_version}

    def auth_refresh(self, ctx: _Ctx | None, body: Any) -> tuple[int, Any]:
        token = V.refresh_request(body)
        if not token:
            raise ApiError(401, {"detail": "Refresh token required"}, {"WWW-Authenticate": "Bearer"})
        user_id = self.state.refresh_tokens.pop(token, None)  # single use
        if user_id is None:
            raise ApiError(
                401,
                {"detail": "Refresh token has been revoked or already used"},
                {"WWW-Authenticate": "Bearer"},
            )
        self.fake.refresh_count += 1
        pair = self.fake._issue(self.state.users[user_id])
        return 200, {
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "token_type": "bearer",
            "expires_in": 1800,
        }

    def list_orgs(self, ctx: _Ctx, body: Any) -> tuple[int, Any]:
        return 200, [o.to_json() for o in self.state.list_orgs()]

    # -- integrations
    def create_integration(self, ctx: _Ctx, body: Any) -> tuple[int, Any]:
        req = V.integration_create(body)
        i = self.state.create_integration(**req)
        return 201, integration_json(self.state, i)

    def list_integrations(self, ctx: _Ctx, body: Any) -> tuple[int, Any]:
        items = [integration_json(self.state, i) for i in self.state.list_integrations()]
        return 200, {"items": items, "total": len(items)}

    def get_by_name(self, ctx: _Ctx, body: Any, name: str) -> tuple[int, Any]:
        i = self.state.integration_by_name(name)
        if i is None:
            raise detail(404, "Integration not found")
        return 200, integration_json(self.state, i)

    def get_integration(self, ctx: _Ctx, body: Any, integration_id: str) -> tuple[int, Any]:
        i = self.state.require_live(_uuid_param("integration_id", integration_id))
        return 200, integration_detail_json(self.state, i)

    def update_integration(self, ctx: _Ctx, body: Any, integration_id: str) -> tuple[int, Any]:
        iid = _uuid_param("integration_id", integration_id)
        req = V.integration_update(body)
        i = self.state.update_integration(iid, req)
        return 200, integration_json(self.state, i)

    def delete_integration(self, ctx: _Ctx, body: Any, integration_id: str) -> tuple[int, Any]:
        self.state.delete_integration(_uuid_param("integration_id", integration_id))
        return 204, None

    def get_config(self, ctx: _Ctx, body: Any, integration_id: str) -> tuple[int, Any]:
        i = self.state.require_live(_uuid_param("integration_id", integration_id))
        return 200, {"integration_id": i.id, "config": self.state.config_dict(i.id, None)}

    def put_config(self, ctx: _Ctx, body: Any, integration_id: str) -> tuple[int, Any]:
        iid = _uuid_param("integration_id", integration_id)
        cfg = V.config_update(body)
        i = self.state.require_live(iid)
        self.state.save_config(i.id, None, cfg, ctx.user.email)
        return 200, {"integration_id": i.id, "config": self.state.config_dict(i.id, None)}

    # -- mappings
    def create_mapping(self, ctx: _Ctx, body: Any, integration_id: str) -> tuple[int, Any]:
        iid = _uuid_param("integration_id", integration_id)
        req = V.mapping_create(body)
        # Bifrost's create path records updated_by="system" for mapping-create config rows.
        m = self.state.create_mapping(iid, **req)
        return 201, mapping_with_overrides(self.state, m)

    def list_mappings(self, ctx: _Ctx, body: Any, integration_id: str) -> tuple[int, Any]:
        i = self.state.require_live(_uuid_param("integration_id", integration_id))
        items = [mapping_json(self.state, m, None) for m in self.state.mappings_of(i.id)]
        return 200, {"items": items, "total": len(items)}

    def batch_mappings(self, ctx: _Ctx, body: Any, integration_id: str) -> tuple[int, Any]:
        iid = _uuid_param("integration_id", integration_id)
        items = V.mapping_batch(body)
        return 200, self.state.batch_mappings(iid, items, ctx.user.email)

    def mapping_by_org(self, ctx: _Ctx, body: Any, integration_id: str, org_id: str) -> tuple[int, Any]:
        iid = _uuid_param("integration_id", integration_id)
        oid = _uuid_param("org_id", org_id)
        m = self.state.mapping_for(iid, oid)
        if m is None:
            raise detail(404, "Mapping not found for this organization")
        return 200, mapping_with_overrides(self.state, m)

    def get_mapping(self, ctx: _Ctx, body: Any, integration_id: str, mapping_id: str) -> tuple[int, Any]:
        m = self.state.get_mapping(
            _uuid_param("integration_id", integration_id), _uuid_param("mapping_id", mapping_id)
        )
        return 200, mapping_with_overrides(self.state, m)

    def update_mapping(self, ctx: _Ctx, body: Any, integration_id: str, mapping_id: str) -> tuple[int, Any]:
        iid = _uuid_param("integration_id", integration_id)
        mid = _uuid_param("mapping_id", mapping_id)
        req = V.mapping_update(body)
        m = self.state.update_mapping(iid, mid, req, ctx.user.email)
        return 200, mapping_with_overrides(self.state, m)

    def delete_mapping(self, ctx: _Ctx, body: Any, integration_id: str, mapping_id: str) -> tuple[int, Any]:
        self.state.delete_mapping(
            _uuid_param("integration_id", integration_id), _uuid_param("mapping_id", mapping_id)
        )
        return 204, None

    def _mapping_ids(self, integration_id: str, mapping_id: str) -> tuple[str, str]:
        return _uuid_param("integration_id", integration_id), _uuid_param("mapping_id", mapping_id)

    def authorize_mapping(
        self, ctx: _Ctx, body: Any, integration_id: str, mapping_id: str
    ) -> tuple[int, Any]:
        redirect_uri = V.mapping_authorize(body)
        url = self.state.authorize_mapping(*self._mapping_ids(integration_id, mapping_id), redirect_uri)
        return 200, {"authorization_url": url}

    def refresh_mapping(self, ctx: _Ctx, body: Any, integration_id: str, mapping_id: str) -> tuple[int, Any]:
        m = self.state.refresh_mapping(*self._mapping_ids(integration_id, mapping_id))
        return 200, mapping_json(self.state, m, None)

    def disconnect_mapping(
        self, ctx: _Ctx, body: Any, integration_id: str, mapping_id: str
    ) -> tuple[int, Any]:
        self.state.disconnect_mapping(*self._mapping_ids(integration_id, mapping_id))
        return 204, None

    def integration_oauth(self, ctx: _Ctx, body: Any, integration_id: str) -> tuple[int, Any]:
        i = self.state.live_integration(_uuid_param("integration_id", integration_id))
        p = self.state.provider_for(i.id) if i else None
        if p is None:
            raise detail(404, "No OAuth configuration found for this integration")
        return 200, {
            "id": p.id,
            "provider_name": p.provider_name,
            "display_name": p.display_name,
            "oauth_flow_type": p.oauth_flow_type,
            "client_id": p.client_id,
            "authorization_url": p.authorization_url,
            "token_url": p.token_url,
            "scopes": list(p.scopes),
            "created_at": iso(p.created_at),
            "updated_at": iso(p.updated_at),
        }

    # -- oauth connections
    def create_connection(self, ctx: _Ctx, body: Any) -> tuple[int, Any]:
        req = V.connection_create(body)
        iid = V.as_uuid(req.pop("integration_id"))
        if iid is None:  # UUID(...) raises ValueError in the handler -> 422 with str(exc)
            raise validation_error("badly formed hexadecimal UUID string")
        p = self.state.create_provider(iid, created_by=ctx.user.email, **req)
        return 201, connection_detail_json(self.state, p)

    def get_connection(self, ctx: _Ctx, body: Any, connection_name: str) -> tuple[int, Any]:
        p = self.state.provider_by_connection_name(connection_name)
        if p is None:
            raise detail(404, f"OAuth connection '{connection_name}' not found")
        return 200, connection_detail_json(self.state, p)

    def update_connection(self, ctx: _Ctx, body: Any, connection_name: str) -> tuple[int, Any]:
        req = V.connection_update(body)
        p = self.state.update_provider(connection_name, req)
        return 200, connection_detail_json(self.state, p)

    def delete_connection(self, ctx: _Ctx, body: Any, connection_name: str) -> tuple[int, Any]:
        self.state.delete_provider(connection_name)
        return 204, None

    def refresh_connection(self, ctx: _Ctx, body: Any, connection_name: str) -> tuple[int, Any]:
        return 200, self.state.refresh_provider(connection_name)

    # -- SDK
    def sdk_get(self, ctx: _Ctx, body: Any) -> tuple[int, Any]:
        req = V.sdk_get(body)
        scope = req["scope"]
        user = ctx.user
        caller_org = user.org_id
        is_provider_org = bool(
            caller_org
            and caller_org in self.state.organizations
            and self.state.organizations[caller_org].is_provider
        )
        bypass = user.is_superuser or is_provider_org
        if scope is None or scope == "":
            org_id = caller_org
        elif scope == "global":
            if not bypass:
                raise detail(403, "Global scope requires platform admin or provider organization")
            org_id = None
        else:
            org_id = V.as_uuid(scope)
            if org_id is None:
                raise detail(422, f"scope must be 'global', a UUID, or null; got {scope!r}")
            if org_id != caller_org and not bypass:
                raise detail(403, "Cross-organization scope requires platform admin or provider organization")
        try:
            return 200, self.state.sdk_get(req["name"], org_id, req["oauth_scope"])
        except Exception:  # the real endpoint returns null on any internal exception
            return 200, None


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeBifrost


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle + delayed ACK add ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = b"" if body is None and status == 204 else json.dumps(body).encode()
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        try:
            self.end_headers()
            if payload:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. "slow")
            self.close_connection = True

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _handle(self) -> None:
        fake = self.server.fake
        raw_path, _, query = self.path.partition("?")
        path = urllib.parse.unquote(raw_path)
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        method = self.command
        record = RequestRecord(method=method, path=path, status=0, route=None)
        with contextlib.suppress(ApiError):
            record.route = fake._api.resolve(method, path)[0]
        with fake._log_lock:
            fake.requests.append(record)

        fault = fake._take_fault(method, path)
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == "drop":
                record.status = "drop"
                self._drop()
                return
            if fault.kind == "slow":
                fake._stopping.wait(fault.delay)
            elif fault.kind == "status":
                record.status = fault.status
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                if fault.status >= 500:
                    body: Any = {"error": "internal_error", "message": "An unexpected error occurred"}
                elif fault.status == 429:
                    body = {"detail": "Too many requests"}
                else:
                    body = {"detail": f"Injected fault {fault.status}"}
                self._send(fault.status, body, headers)
                return

        status, out, headers = self._dispatch(method, path, query, raw_body)
        out = fake._rewrite(method, path, status, out)
        record.status = status
        if fault is not None and fault.kind == "drop_after":
            record.status = "drop"
            self._drop()  # the request was applied but the client never sees the response
            return
        self._send(status, out, headers)

    def _dispatch(
        self, method: str, path: str, query: str, raw_body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        fake = self.server.fake
        try:
            _template, handler, auth, params = fake._api.resolve(method, path)
            ctx = None
            if auth != "none":
                ctx = _Ctx(user=self._authenticate(auth), query=urllib.parse.parse_qs(query))
            body: Any = None
            if raw_body:
                try:
                    body = json.loads(raw_body)
                except ValueError as exc:
                    pos = getattr(exc, "pos", 0)
                    raise validation_error(f"{pos}: JSON decode error") from None
            with fake.state.lock:
                status, out = handler(ctx, body, **params)
            return status, out, {}
        except ApiError as e:
            return e.status, e.body, e.headers
        except Exception:  # a bug in the fake shows up as the real server's 500 shape
            import traceback

            fake.errors.append(traceback.format_exc())
            return 500, {"error": "internal_error", "message": "An unexpected error occurred"}, {}

    def _authenticate(self, level: str) -> User:
        fake = self.server.fake
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        user_id = fake.state.access_tokens.get(token) if scheme.lower() == "bearer" and token else None
        if user_id is None:
            raise ApiError(401, {"detail": "Not authenticated"}, {"WWW-Authenticate": "Bearer"})
        user = fake.state.users[user_id]
        if level == "superuser" and not user.is_superuser:
            raise detail(403, "Superuser privileges required")
        return user


# --------------------------------------------------------------------------- the fixture object


class FakeBifrost:
    """A Bifrost API on ``127.0.0.1:<random port>``; see the module docstring."""

    def __init__(self, *, version: str = "fake-bifrost-1.0.0", contract_version: int = 1) -> None:
        self.version = version
        self.contract_version = contract_version
        self.state = State()
        self.requests: list[RequestRecord] = []
        self.errors: list[str] = []  # tracebacks of unexpected exceptions inside the fake
        self.refresh_count = 0  # successful POST /auth/refresh calls
        self._log_lock = threading.Lock()
        self._faults: list[Fault] = []
        self._rewrites: list[tuple[Match, Callable[[Any], Any]]] = []
        self._stopping = threading.Event()
        self._api = Api(self)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        admin = User(id=str(uuid.uuid4()), email="admin@example.com", is_superuser=True, org_id=None)
        self.state.users[admin.id] = admin
        self.admin = admin
        self.tokens = self._issue(admin)  # the initial pair for the default superuser

    # -- lifecycle
    def start(self) -> FakeBifrost:
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(("127.0.0.1", 0), _Handler)
            self._server.fake = self
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="fakebifrost", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeBifrost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeBifrost is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- auth
    def _issue(self, user: User) -> TokenPair:
        with self.state.lock:
            pair = TokenPair(
                access_token=f"fake-at-{secrets.token_urlsafe(24)}",
                refresh_token=f"fake-rt-{secrets.token_urlsafe(24)}",
            )
            self.state.access_tokens[pair.access_token] = user.id
            self.state.refresh_tokens[pair.refresh_token] = user.id
            return pair

    def issue_tokens(
        self, *, superuser: bool = True, email: str | None = None, org_id: str | None = None
    ) -> TokenPair:
        """A token pair for a new user (``superuser=False`` to test the 403 paths)."""
        user = User(
            id=str(uuid.uuid4()),
            email=email or f"user{len(self.state.users)}@example.com",
            is_superuser=superuser,
            org_id=org_id,
        )
        self.state.users[user.id] = user
        return self._issue(user)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far now gets 401; refresh tokens stay valid."""
        with self.state.lock:
            self.state.access_tokens.clear()

    def revoke_refresh_tokens(self) -> None:
        with self.state.lock:
            self.state.refresh_tokens.clear()

    def auth_headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.tokens.access_token}"}

    def env(self) -> dict[str, str]:
        """BIFROST_API_URL / BIFROST_ACCESS_TOKEN / BIFROST_REFRESH_TOKEN for the default admin."""
        return {
            "BIFROST_API_URL": self.url,
            "BIFROST_ACCESS_TOKEN": self.tokens.access_token,
            "BIFROST_REFRESH_TOKEN": self.tokens.refresh_token,
        }

    # -- seeding / inspection shortcuts
    def add_org(
        self, name: str, id: str | None = None, is_active: bool = True, *, is_provider: bool = False
    ) -> str:
        return self.state.add_org(name, id=id, is_active=is_active, is_provider=is_provider)

    # -- faults
    def fail_next(
        self,
        n: int = 1,
        status: int | str = 500,
        *,
        match: Match | None = None,
        retry_after: float | str | None = None,
        delay: float = 3.0,
    ) -> None:
        """The next ``n`` requests for which ``match(method, path)`` is true (all when None) fail.

        ``status``: an HTTP status (5xx bodies use the internal_error shape; ``429`` carries
        ``Retry-After: retry_after``, default ``"1"``), ``"drop"`` (connection closed without a
        response, request not applied), ``"drop_after"`` (request applied, then the connection
        is closed without a response), or ``"slow"`` (sleep ``delay`` seconds, then answer
        normally, so a client with a shorter timeout gives up while the write still lands).
        Faults are queued; each request consumes at most one.
        """
        if isinstance(status, str):
            if status not in ("drop", "drop_after", "slow"):
                raise ValueError(f"unknown fault {status!r}")
            fault = Fault(kind=status, remaining=n, match=match, delay=delay)
        else:
            ra = retry_after
            if status == 429 and ra is None:
                ra = 1
            fault = Fault(
                kind="status",
                remaining=n,
                status=status,
                match=match,
                retry_after=None if ra is None else (str(ra) if not isinstance(ra, float) else f"{ra:g}"),
            )
        with self._log_lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._log_lock:
            self._faults.clear()
            self._rewrites.clear()

    def rewrite(self, match: Match, fn: Callable[[Any], Any]) -> None:
        """Every successful reply to a request matching ``match(method, path)`` is passed through
        ``fn`` (which gets a copy of the JSON body and returns what to send): a server that
        answers in a shape the contract does not promise. Cleared by ``clear_faults``."""
        with self._log_lock:
            self._rewrites.append((match, fn))

    def _rewrite(self, method: str, path: str, status: int, body: Any) -> Any:
        with self._log_lock:
            fns = [fn for m, fn in self._rewrites if m(method, path)]
        for fn in fns if status < 400 else []:
            body = fn(json.loads(json.dumps(body)))
        return body

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._log_lock:
            for f in self._faults:
                if f.remaining > 0 and (f.match is None or f.match(method, path)):
                    f.remaining -= 1
                    if f.remaining == 0:
                        self._faults.remove(f)
                    return f
        return None

    # -- request log
    def count(self, method: str | None = None, route: str | None = None, *, path: str | None = None) -> int:
        """Requests seen, filtered by method, route template and/or exact path."""
        with self._log_lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method)
                and (route is None or r.route == route)
                and (path is None or r.path == path)
            )

    def counts(self) -> Counter[str]:
        """``Counter({"GET /api/integrations/{integration_id}": 3, ...})`` (unmatched: raw path)."""
        with self._log_lock:
            return Counter(f"{r.method} {r.route or r.path}" for r in self.requests)

    def reset_requests(self) -> None:
        with self._log_lock:
            self.requests.clear()

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Give in-flight handler threads (e.g. a "slow" fault) time to finish."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(r.status != 0 for r in list(self.requests)):
                return
            time.sleep(0.01)
