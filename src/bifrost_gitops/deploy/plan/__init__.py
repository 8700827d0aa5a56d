"""Desired (deploy manifest) vs live (Bifrost) -> ordered operations, in Bifrost's safe order.

Per integration: create it, or PUT its changed scalar fields; the schema in its own PUT,
before any value; the defaults PUT with changed keys only and explicit nulls for removals
(values whose key changed type, or is new to the schema while values exist, are re-sent); per
organization the mapping POST (then a PUT nulling leftover overrides the create's answer shows)
/ PUT (entity fields and the override diff: undeclared keys nulled) / delete (overrides nulled
first); the OAuth provider POST / PUT and, for client_credentials, a token refresh. Last, the
ownership ledger. Why this order: docs/bifrost-api.md#apply-order.

One module per part: :mod:`.ops` (Change / Op / Plan and their renderings), :mod:`.integration`
(fields, schema, defaults), :mod:`.values` (config value diffs), :mod:`.mappings`,
:mod:`.oauth`, :mod:`.ledger` (retirement and ownership), :mod:`.batch` (override-free mapping
creates, 500 a request), :mod:`.build` (the whole plan).
Secrets never enter a Change: they show as set / changed / removed, decided by comparing
sha256 hashes.
"""

from __future__ import annotations

from .build import make_plan
from .ledger import LEDGER_SCHEMA
from .oauth import KEEP_LIVE_SECRET, normalise_scopes
from .ops import Change, Op, Options, Plan, digest, same, secret_digest, show

__all__ = [
    "KEEP_LIVE_SECRET",
    "LEDGER_SCHEMA",
    "Change",
    "Op",
    "Options",
    "Plan",
    "digest",
    "make_plan",
    "normalise_scopes",
    "same",
    "secret_digest",
    "show",
]
