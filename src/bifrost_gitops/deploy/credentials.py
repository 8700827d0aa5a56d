"""Credentials for the Bifrost API: where the URL and tokens come from, and where a rotated
refresh token goes.

- Base URL: ``--url`` or ``BIFROST_API_URL`` (or the credentials file's ``api_url``).
- Tokens: ``BIFROST_ACCESS_TOKEN`` / ``BIFROST_REFRESH_TOKEN``, or a credentials file (JSON
  ``{api_url, access_token, refresh_token}``). Never on argv, never printed (not in a repr).
- The refresh token is single use: the client persists the rotated one where it came from (the
  credentials file, rewritten atomically with mode 0600; for env tokens the file named by
  ``BIFROST_CREDENTIALS_FILE``).
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from .. import escape
from ..atomic import write_atomic
from . import DeployError


@dataclass
class Credentials:
    api_url: str
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    #: where the rotated refresh token goes: a credentials file path, or None (warn)
    store: str | None = None
    source: str = "env"  # "env" | "file"

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
        try:
            with open(credentials_file, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as e:
            raise DeployError(f"{credentials_file}: cannot read credentials ({e.strerror})") from None
        except ValueError:
            raise DeployError(f"{credentials_file}: not a JSON credentials file") from None
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            raise DeployError(f"{credentials_file}: no access_token in the credentials file")
        refresh = data.get("refresh_token")
        api_url = url or data.get("api_url") or env.get("BIFROST_API_URL")
        if not isinstance(api_url, str) or not api_url:
            raise DeployError("no Bifrost URL: pass --url, set BIFROST_API_URL, or api_url in the file")
        return Credentials(
            api_url,
            data["access_token"],
            refresh if isinstance(refresh, str) and refresh else None,
            store=credentials_file,
            source="file",
        )
    api_url = url or env.get("BIFROST_API_URL")
    if not api_url:
        raise DeployError("no Bifrost URL: pass --url or set BIFROST_API_URL")
    access = env.get("BIFROST_ACCESS_TOKEN")
    if not access:
        raise DeployError(
            "no access token: set BIFROST_ACCESS_TOKEN (and BIFROST_REFRESH_TOKEN) or pass --credentials FILE"
        )
    return Credentials(
        api_url,
        access,
        env.get("BIFROST_REFRESH_TOKEN") or None,
        store=env.get("BIFROST_CREDENTIALS_FILE") or None,
        source="env",
    )


def write_credentials(path: str, creds: Credentials) -> None:
    """Rewrite the credentials file atomically, mode 0600."""
    doc = {"api_url": creds.api_url, "access_token": creds.access_token, "refresh_token": creds.refresh_token}
    data = (json.dumps(doc, indent=2) + "\n").encode("utf-8")
    # the folder too: a refreshed token lost in a crash would lock the next run out
    write_atomic(path, data, mode=0o600, prefix=".bifrost-credentials-", sync_folder=True)
