"""Credentials for the Bifrost API: where the URL and tokens come from, and where a rotated
refresh token goes.

- Base URL: ``--url`` or ``BIFROST_API_URL`` (or the credentials file's ``api_url``, or the one
  URL of the official store).
- Tokens, first found wins: ``--credentials FILE`` (JSON ``{api_url, access_token,
  refresh_token}``), then ``BIFROST_ACCESS_TOKEN`` / ``BIFROST_REFRESH_TOKEN``, then the official
  Bifrost CLI's store (:mod:`.bifroststore`, what ``bifrost login`` / ``bifrost-gitops login``
  write), kept current there at each rotation. Never on argv, never printed (not in a repr).
- The refresh token is single use: the client persists the rotated one where it came from (the
  credentials file, rewritten atomically with mode 0600; for env tokens the file named by
  ``BIFROST_CREDENTIALS_FILE``).
- So the next command of the same job does not reuse the spent environment token, that file wins
  over the environment when it holds tokens for the same URL rotated from the same environment
  refresh token (its ``origin``: a SHA-256 of that token, never the token). A file from another
  login (new secrets in the environment) or another URL is ignored, and overwritten at the next
  rotation.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .. import escape
from ..atomic import write_atomic
from . import DeployError, bifroststore


@dataclass
class Credentials:
    api_url: str
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    #: where the rotated refresh token goes: a credentials file path, or None (warn)
    store: str | None = None
    #: "env" | "file" | "stored" (env tokens, rotated into BIFROST_CREDENTIALS_FILE) | "bifrost"
    #: (the official CLI's store)
    source: str = "env"
    #: SHA-256 of the environment refresh token this pair was rotated from (see :func:`origin_of`)
    origin: str | None = field(default=None, repr=False)

    @property
    def shown_url(self) -> str:
        """The URL as messages show it: without a ``user:password@`` or a query (they can hold
        credentials), escaped."""
        parts = urllib.parse.urlsplit(self.api_url)
        host = parts.netloc.rpartition("@")[2]
        return escape.term(urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", "")))

    def __repr__(self) -> str:  # never show the tokens
        return f"Credentials(api_url={self.shown_url!r}, source={self.source!r})"


def load_credentials(
    url: str | None, credentials_file: str | None, environ: Mapping[str, str] | None = None
) -> Credentials:
    """Credentials from ``--credentials FILE`` or the environment; ``--url`` wins for the URL."""
    env = os.environ if environ is None else environ
    if credentials_file:
        data = _read_file(credentials_file)
        api_url = url or data.get("api_url") or env.get("BIFROST_API_URL")
        if not isinstance(api_url, str) or not api_url:
            raise DeployError("no Bifrost URL: pass --url, set BIFROST_API_URL, or api_url in the file")
        return _from_file(api_url, credentials_file, data, "file")
    api_url = url or env.get("BIFROST_API_URL")
    access = env.get("BIFROST_ACCESS_TOKEN")
    if not access:
        return _from_official_store(api_url)
    if not api_url:
        raise DeployError("no Bifrost URL: pass --url or set BIFROST_API_URL")
    refresh = env.get("BIFROST_REFRESH_TOKEN") or None
    store = env.get("BIFROST_CREDENTIALS_FILE") or None
    origin = origin_of(refresh) if refresh else None
    if store and origin and os.path.isfile(store) and os.path.getsize(store) > 0:  # mktemp's: none yet
        data = _read_file(store)
        if data.get("origin") == origin and _same_url(data.get("api_url"), api_url):
            return _from_file(api_url, store, data, "stored")
    return Credentials(api_url, access, refresh, store=store, source="env", origin=origin)


def _from_official_store(api_url: str | None) -> Credentials:
    """The official CLI's entry for API_URL (or for its only URL when none is given)."""
    path = bifroststore.store_path()
    entries = bifroststore.read_store(path)
    if not api_url:
        if len(entries) != 1:
            raise DeployError("no Bifrost URL: pass --url or set BIFROST_API_URL")
        api_url = next(iter(entries))
    entry = entries.get(bifroststore.key(api_url))
    if entry is None:
        raise DeployError(
            "no access token: run `bifrost-gitops login` (or `bifrost login`), set BIFROST_ACCESS_TOKEN "
            "(and BIFROST_REFRESH_TOKEN) or pass --credentials FILE"
        )
    return Credentials(
        api_url, entry["access_token"], entry["refresh_token"] or None, store=str(path), source="bifrost"
    )


def origin_of(refresh_token: str) -> str:
    """What a stored pair remembers of the environment token it replaced: a digest, not the token."""
    return "sha256:" + hashlib.sha256(refresh_token.encode("utf-8")).hexdigest()


def _same_url(stored: object, api_url: str) -> bool:
    return isinstance(stored, str) and bifroststore.key(stored) == bifroststore.key(api_url)


def _read_file(path: str) -> dict[str, object]:
    """A credentials file's JSON object, with an access token (DeployError otherwise)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise DeployError(f"{path}: cannot read credentials ({e.strerror})") from None
    except ValueError:
        raise DeployError(f"{path}: not a JSON credentials file") from None
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise DeployError(f"{path}: no access_token in the credentials file")
    return data


def _from_file(api_url: str, path: str, data: dict[str, object], source: str) -> Credentials:
    refresh, origin = data.get("refresh_token"), data.get("origin")
    return Credentials(
        api_url,
        str(data["access_token"]),  # a str: _read_file checked it
        refresh if isinstance(refresh, str) and refresh else None,
        store=path,
        source=source,
        origin=origin if isinstance(origin, str) else None,
    )


def write_credentials(path: str, creds: Credentials) -> None:
    """Rewrite the credentials file atomically, mode 0600 (in the official store: only this
    URL's entry, with the access token's expiry as the official CLI needs it)."""
    if creds.source == "bifrost":
        bifroststore.save_entry(
            Path(path),
            creds.api_url,
            creds.access_token,
            creds.refresh_token or "",
            bifroststore.expires_at(creds.access_token),
        )
        return
    doc = {"api_url": creds.api_url, "access_token": creds.access_token, "refresh_token": creds.refresh_token}
    if creds.origin:
        doc["origin"] = creds.origin
    data = (json.dumps(doc, indent=2) + "\n").encode("utf-8")
    # the folder too: a refreshed token lost in a crash would lock the next run out
    write_atomic(path, data, mode=0o600, prefix=".bifrost-credentials-", sync_folder=True)
