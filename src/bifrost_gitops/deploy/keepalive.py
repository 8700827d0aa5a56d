"""Staying logged in unattended: refresh on demand, and hand the rotated refresh token back.

Bifrost's management API takes only its own JWTs, and a refresh token is single use with a
7-day life: each refresh spends it and issues a new one. A CI job that refreshed must therefore
put the new token where the next job reads it (a CI secret), and a quiet repository needs a
refresh at least weekly. This module does the two steps a job cannot do with shell alone:
``login --refresh`` (refresh now, store the pair where it came from) and ``login --export
refresh-token`` (the current refresh token on stdout, only when stdout is not a terminal).
Both read the credentials exactly as plan and apply do (:func:`.credentials.load_credentials`).
"""

from __future__ import annotations

from typing import TextIO

from . import DeployError
from .credentials import Credentials

#: what a pipe from the export step feeds into
PIPE_HINT = "pipe it into your secret store, e.g. `... | gh secret set BIFROST_REFRESH_TOKEN`"


def check_exportable(out: TextIO) -> None:
    """Refuse (exit 2) before anything happens when OUT is a terminal: a token shown on a
    screen (or in a terminal's scrollback) is a token leaked."""
    if out.isatty():
        err = DeployError("refusing to print the refresh token to a terminal")
        err.hint = PIPE_HINT
        raise err


def check_kept(creds: Credentials, exporting: bool) -> None:
    """A refresh spends the old token: refuse one whose new token would be neither stored nor
    exported (environment tokens without BIFROST_CREDENTIALS_FILE), before sending anything."""
    if creds.refresh_token is None:
        raise DeployError(f"no refresh token for {creds.shown_url}: nothing to refresh or export")
    if not creds.store and not exporting:
        err = DeployError("refusing to refresh: the rotated refresh token would be lost")
        err.hint = "set BIFROST_CREDENTIALS_FILE, or add --export refresh-token and store its output"
        raise err


def exported(creds: Credentials) -> str:
    """The refresh token to hand back, checked to be one line of visible ASCII (a JWT is): text
    from a server goes nowhere unchecked, and a stray newline would break the secret."""
    token = creds.refresh_token
    if not token:
        raise DeployError(f"no refresh token for {creds.shown_url}: nothing to export")
    if not (token.isascii() and token.isprintable()) or any(c.isspace() for c in token):
        raise DeployError("the stored refresh token is not one line of visible ASCII: not exported")
    return token
