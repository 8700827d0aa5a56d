"""The official Bifrost CLI's credential store, so one ``bifrost login`` serves both tools.

``~/.bifrost/credentials.json`` (``%APPDATA%/Bifrost`` on Windows) maps each API URL (no
trailing slash) to ``{api_url, access_token, refresh_token, expires_at}`` (ISO 8601 with a zone),
as Bifrost's ``bifrost/credentials.py`` writes it. The official CLI uses the OS keychain instead
when one works; tokens kept there are not visible here (log in with ``bifrost-gitops login``).

A rewrite re-reads the file and replaces only its own URL's entry, atomically, mode 0600, so
other URLs' entries (and anything written meanwhile for them) are kept.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

from ..atomic import write_atomic
from . import DeployError

#: what Bifrost gives an access token when the token does not say (30 minutes)
DEFAULT_LIFETIME = 1800


class Entry(TypedDict):
    api_url: str
    access_token: str
    refresh_token: str
    expires_at: str


def store_path() -> Path:
    """Where the official CLI keeps its JSON store."""
    if platform.system() == "Windows" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "Bifrost" / "credentials.json"
    return Path.home() / ".bifrost" / "credentials.json"


def key(api_url: str) -> str:
    return api_url.rstrip("/")


def read_store(path: Path) -> dict[str, Entry]:
    """The store's complete entries by URL; a missing file is empty, an unreadable one an error.
    The legacy single-record shape counts as that one URL's entry (the official CLI migrates it)."""
    return {k: got for k, v in _read_raw(path).items() if (got := _entry(v)) is not None}


def _read_raw(path: Path) -> dict[str, object]:
    """The store as the file has it, by URL (entries of other shapes kept as they are)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise DeployError(f"{path}: cannot read credentials ({e.strerror})") from None
    except ValueError:
        raise DeployError(f"{path}: not a JSON credentials file") from None
    if not isinstance(data, dict):
        raise DeployError(f"{path}: not a Bifrost credentials store")
    if "api_url" in data:  # legacy: one record at the top level (the official CLI migrates it)
        return {key(str(data["api_url"])): data}
    return data


def _entry(value: object) -> Entry | None:
    if not isinstance(value, dict):
        return None
    fields = ("api_url", "access_token", "refresh_token", "expires_at")
    if not all(isinstance(value.get(f), str) for f in fields):
        return None
    return Entry(
        api_url=value["api_url"],
        access_token=value["access_token"],
        refresh_token=value["refresh_token"],
        expires_at=value["expires_at"],
    )


def save_entry(path: Path, api_url: str, access_token: str, refresh_token: str, expires_at: str) -> None:
    """Replace API_URL's entry, keeping every other one as the file has it now; a store that is
    not one (broken JSON) is an error, never overwritten with the other URLs' logins lost."""
    doc = _read_raw(path)
    doc[key(api_url)] = Entry(
        api_url=key(api_url), access_token=access_token, refresh_token=refresh_token, expires_at=expires_at
    )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = (json.dumps(doc, indent=2) + "\n").encode("utf-8")
    write_atomic(str(path), data, mode=0o600, prefix=".credentials-", sync_folder=True)


def expires_at(access_token: str, expires_in: float | None = None, now: float | None = None) -> str:
    """When the access token expires, ISO 8601 UTC: EXPIRES_IN if given, else the token's own
    ``exp`` claim (read, not verified: only a hint for the official CLI), else 30 minutes."""
    at = time.time() if now is None else now
    when = at + expires_in if expires_in is not None else _exp_claim(access_token) or at + DEFAULT_LIFETIME
    return datetime.fromtimestamp(when, UTC).isoformat()


def _exp_claim(token: str) -> float | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


__all__ = ["Entry", "expires_at", "read_store", "save_entry", "store_path"]
