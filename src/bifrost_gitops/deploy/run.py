"""The steps plan, apply and import share: connect (version gate), read live, plan."""

from __future__ import annotations

from typing import Any

from . import live as live_state
from .client import ApiError, Client
from .credentials import load_credentials
from .plan import Options, Plan, make_plan
from .source import load_desired, secret_values
from .spec import Manifest


def connect(url: str | None, credentials: str | None, concurrency: int = 8, **kw: Any) -> Client:
    client = Client(load_credentials(url, credentials), concurrency=concurrency, **kw)
    try:
        client.check_version()
    except BaseException:
        client.close()
        raise
    return client


def plan_for(client: Client, desired: Manifest, opts: Options) -> Plan:
    """Read the live state (counting requests) and diff it against DESIRED."""
    client.add_sensitive(secret_values(desired))  # text and numbers; booleans are skipped
    state = live_state.read(client, desired["integrations"], include_ledger_managed=opts.prune)
    return make_plan(desired, state, opts, client.requests)  # the version check included


__all__ = ["ApiError", "Client", "Options", "Plan", "connect", "load_desired", "plan_for"]
