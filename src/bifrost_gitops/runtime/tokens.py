"""Client-credentials tokens minted at runtime, when Bifrost's ``integrations.get`` would mint them.

Bifrost's ``get`` (its SDK endpoint, ``_build_oauth_data``) fetches a fresh token for a
``client_credentials`` provider with a token URL when an ``oauth_scope`` override is given, or
when the token URL holds ``{entity_id}`` and an entity id resolves; otherwise it returns the
token it stores, which its scheduler obtained with the same grant. A bundle holds no stored
token, so the runtime mints one in that case as well (unless the repository declared one).
The request is Bifrost's: a form POST of ``grant_type=client_credentials``, ``client_id``,
``client_secret``, ``scope`` (the override, else the provider's scopes space-separated) and
``audience`` when set, to the token URL with ``{entity_id}`` filled.

Tokens are cached per (organization, integration, scope) until ``MARGIN`` seconds before they
expire (one hour when the reply has no ``expires_in``, as Bifrost assumes), under a lock.
httpx is imported only when a token is fetched. Token URLs must be https; plain http is
accepted for loopback hosts only (a local token server). No token or secret ever appears in an
exception, a repr or a log line.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

from ..errors import BifrostGitopsError
from ..escape import term

#: seconds before expiry at which a cached token is fetched again
MARGIN: Final = 60.0
#: seconds for one token request, connect to last byte
TIMEOUT: Final = 15.0
#: bytes of a token reply at most
MAX_REPLY: Final = 256 * 1024
#: the lifetime Bifrost assumes when the reply has no expires_in
DEFAULT_LIFETIME: Final = 3600.0
#: a stated lifetime beyond this (ten years) is taken as unstated
MAX_LIFETIME: Final = 10 * 365 * 86400.0
LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})


class TokenError(BifrostGitopsError):
    """The token endpoint refused or failed: names the provider and URL, never a secret."""


@dataclass(frozen=True)
class TokenRequest:
    """One client-credentials grant; the secret is kept out of repr."""

    provider: str
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str
    audience: str | None


@dataclass(frozen=True)
class Token:
    """A minted token and when it expires (epoch seconds); repr shows no token."""

    access_token: str = field(repr=False)
    expires_at: float

    #: expires_at as ISO-8601 text, as Bifrost gives it (computed once: every cached get hands it out)
    expires_iso: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "expires_iso", datetime.fromtimestamp(self.expires_at, UTC).isoformat())


Fetcher = Callable[[TokenRequest, Callable[[], float]], Token]


def _check_url(req: TokenRequest) -> None:
    parts = urlsplit(req.token_url)
    if parts.scheme == "https" or (parts.scheme == "http" and (parts.hostname or "") in LOOPBACK):
        return
    raise TokenError(
        f"OAuth provider {term(req.provider)}: token URL {term(req.token_url)} is not https "
        "(plain http is accepted only on loopback): no token requested"
    )


def _fail(req: TokenRequest, why: str) -> TokenError:
    return TokenError(
        f"OAuth provider {term(req.provider)}: client-credentials token request to "
        f"{term(req.token_url)} failed: {why}"
    )


def _reason(body: bytes) -> str:
    """The provider's own error code/description, escaped and short (never the request)."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    text = " ".join(str(data[k]) for k in ("error", "error_description") if isinstance(data.get(k), str))
    return f" ({term(text[:200])})" if text else ""


def fetch(req: TokenRequest, clock: Callable[[], float] = time.time) -> Token:
    """POST the grant (Bifrost's form) and read the reply within TIMEOUT and MAX_REPLY."""
    _check_url(req)
    import httpx  # lazily: only workflows that need a token pay for it

    form = {
        "grant_type": "client_credentials",
        "client_id": req.client_id,
        "client_secret": req.client_secret,
    }
    if req.scope:
        form["scope"] = req.scope.replace(",", " ")
    if req.audience:
        form["audience"] = req.audience
    end = time.monotonic() + TIMEOUT
    body = bytearray()
    try:
        with (
            httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False) as client,
            client.stream("POST", req.token_url, data=form, headers={"Accept": "application/json"}) as r,
        ):
            for chunk in r.iter_bytes():
                body += chunk
                if len(body) > MAX_REPLY:
                    raise _fail(req, f"the reply is larger than {MAX_REPLY // 1024} KiB")
                if time.monotonic() > end:
                    raise _fail(req, f"no complete reply within {TIMEOUT:g} s")
            status = r.status_code
    except httpx.TimeoutException:
        raise _fail(req, f"no reply within {TIMEOUT:g} s") from None
    except httpx.HTTPError as e:
        raise _fail(req, f"cannot reach it ({type(e).__name__})") from None
    if not 200 <= status < 300:
        raise _fail(req, f"HTTP {status}{_reason(bytes(body))}")
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise _fail(req, "the reply holds no access_token")
    assert isinstance(data, dict)
    try:
        seconds = float(data.get("expires_in") or DEFAULT_LIFETIME)
    except (TypeError, ValueError):
        seconds = DEFAULT_LIFETIME
    if not 0 < seconds < MAX_LIFETIME:  # NaN, infinity, 1e400: a server's number, not a date
        seconds = DEFAULT_LIFETIME
    return Token(token, clock() + seconds)


class TokenCache:
    """Minted tokens by (organization, integration, scope), reused until MARGIN before expiry."""

    def __init__(self, clock: Callable[[], float] = time.time, fetcher: Fetcher | None = None) -> None:
        self.clock = clock
        self.fetcher = fetcher
        self._lock = threading.Lock()  # guards the two dicts, never held over a fetch
        self._tokens: dict[tuple[str, str, str], Token] = {}
        self._fetching: dict[tuple[str, str, str], threading.Lock] = {}

    def __repr__(self) -> str:
        return f"TokenCache({len(self._tokens)} tokens)"

    def get(self, key: tuple[str, str, str], req: TokenRequest) -> Token:
        """The cached token for KEY while it is fresh, else a new one: one fetch at a time per
        KEY, so a slow token endpoint holds up only the callers that wait for its token."""
        with self._lock:
            t = self._tokens.get(key)
            if t is not None and self.clock() < t.expires_at - MARGIN:
                return t
            fetching = self._fetching.setdefault(key, threading.Lock())
        with fetching:
            with self._lock:  # another caller may have fetched it while this one waited
                t = self._tokens.get(key)
            if t is None or self.clock() >= t.expires_at - MARGIN:
                t = (self.fetcher or fetch)(req, self.clock)
                with self._lock:
                    self._tokens[key] = t
            return t

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()
