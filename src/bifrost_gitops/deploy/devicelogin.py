"""``bifrost-gitops login``: Bifrost's device flow (RFC 8628), as its own ``bifrost login`` runs it.

``POST /auth/device/code`` gives a device code and a user code; the user approves the user code
at ``URL/device`` in a browser; ``POST /auth/device/token`` is polled every ``interval`` seconds
until it answers tokens (or ``expired_token`` / ``access_denied``). The tokens go into the
official CLI's store (:mod:`.bifroststore`), never to the terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .. import escape
from . import DeployError, bifroststore

#: the longest wait a Retry-After or a slow_down may impose on one poll
MAX_WAIT = 60.0


@dataclass
class DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    verify_url: str
    interval: float
    expires_in: float


def start(client: httpx.Client) -> DeviceCode:
    """Ask for a device code; the user code and URL are server text, escaped for the terminal."""
    r = client.post("/auth/device/code")
    if r.status_code != 200:
        raise DeployError(f"POST /auth/device/code: {r.status_code}: cannot start the login")
    data = _json(r, "/auth/device/code")
    code, user = data.get("device_code"), data.get("user_code")
    if not isinstance(code, str) or not isinstance(user, str):
        raise DeployError("POST /auth/device/code: the answer has no device or user code")
    path = data.get("verification_url")
    base = str(client.base_url).rstrip("/")
    return DeviceCode(
        code,
        escape.term(user),
        escape.term(base + (path if isinstance(path, str) and path.startswith("/") else "/device")),
        _number(data.get("interval"), 5.0),
        _number(data.get("expires_in"), 600.0),
    )


def poll(
    client: httpx.Client, dc: DeviceCode, sleep: Callable[[float], None]
) -> tuple[str, str, float | None]:
    """Wait for approval: (access token, refresh token, expires_in)."""
    interval, waited = dc.interval, 0.0
    while waited < dc.expires_in:
        sleep(interval)
        waited += interval
        r = client.post("/auth/device/token", json={"device_code": dc.device_code})
        if r.status_code == 429:  # Bifrost allows 20 polls a minute: wait, as asked
            retry = _number(r.headers.get("Retry-After"), interval)
            sleep(min(retry, MAX_WAIT))
            waited += min(retry, MAX_WAIT)
            continue
        if r.status_code != 200:
            raise DeployError(f"POST /auth/device/token: {r.status_code}: the login failed")
        data = _json(r, "/auth/device/token")
        access, refresh = data.get("access_token"), data.get("refresh_token")
        if isinstance(access, str) and isinstance(refresh, str):
            expires = data.get("expires_in")
            return access, refresh, float(expires) if isinstance(expires, int | float) else None
        error = data.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval = min(interval + 5, MAX_WAIT)
            continue
        if error == "access_denied":
            raise DeployError("the login was denied")
        if error == "expired_token":
            break
        raise DeployError(f"POST /auth/device/token: unexpected answer ({escape.term(str(error))})")
    raise DeployError("the login code expired before it was approved: run login again")


def login(
    api_url: str,
    show: Callable[[str], None],
    *,
    sleep: Callable[[float], None] | None = None,
    transport: httpx.BaseTransport | None = None,
    store: Path | None = None,
) -> Path:
    """Run the device flow against API_URL and store the tokens; the store's path."""
    path = store or bifroststore.store_path()
    url = bifroststore.key(api_url)
    try:
        with httpx.Client(base_url=url, timeout=30.0, transport=transport) as client:
            dc = start(client)
            show(f"Open {dc.verify_url} and enter the code {dc.user_code}")
            show("Waiting for the approval...")
            access, refresh, expires_in = poll(client, dc, sleep or time.sleep)
    except httpx.HTTPError as e:
        raise DeployError(f"cannot reach Bifrost ({type(e).__name__})") from None
    bifroststore.save_entry(path, url, access, refresh, bifroststore.expires_at(access, expires_in))
    return path


def _json(r: httpx.Response, path: str) -> dict[str, object]:
    try:
        data = r.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise DeployError(f"POST {path}: the answer is not a JSON object")
    return data


def _number(value: object, default: float) -> float:
    try:
        n = float(value) if isinstance(value, int | float | str) and not isinstance(value, bool) else default
    except ValueError:
        return default
    return n if 0 <= n < 86400 else default
