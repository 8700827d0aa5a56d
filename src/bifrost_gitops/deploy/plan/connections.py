"""An organization's own OAuth connection (a mapping's ``oauth: own``): its token state, and
what apply can do about it over Bifrost's API (docs/deploy.md#organization-oauth-connections).

Bifrost links a token to a mapping only at the end of an admin's Connect flow (the OAuth
callback), so plan never links one: it says which organizations still need that, and apply
refreshes an expired token (``POST .../oauth/refresh``). A token on a mapping the repository
says is shared is drift; ``--disconnect-org-tokens`` deletes it (``POST .../oauth/disconnect``,
the organization then falls back to the integration's token). The authorization URL of a
Connect flow is never planned or printed here: its signed state lets whoever opens it attach
their own account to the organization (``bifrost-gitops connect`` prints it for an admin).
"""

from __future__ import annotations

import datetime as dt
import shlex

from ..replies import Mapping
from ..spec import Action, MappingSpec, OAuthSpec, Resource, TokenState
from .ops import Options, OrgConnection, Plan

BASE = "/api/integrations/{{iid}}/mappings/{mid}/oauth"


def connectable(oauth: OAuthSpec | None) -> bool:
    """Whether Bifrost can run a Connect flow for one mapping: its per-mapping authorize
    endpoint needs the provider's authorization URL (a client-credentials provider has none)."""
    return oauth is not None and oauth["flow"] != "client_credentials" and bool(oauth["authorization_url"])


def token_state(lm: Mapping | None, now: dt.datetime | None = None) -> TokenState:
    """The state of live mapping LM's own token (None: the mapping is not there yet)."""
    if lm is None or lm.oauth_token_id is None:
        return TokenState.MISSING
    if lm.connection_status == "failed":
        return TokenState.FAILED
    expires = _when(lm.connection_expires_at)
    if expires is not None and expires <= (now or dt.datetime.now(dt.UTC)):
        return TokenState.EXPIRED
    return TokenState.CONNECTED


def _when(text: str | None) -> dt.datetime | None:
    """An ISO 8601 time from Bifrost (naive means UTC); None when absent or unreadable."""
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _advice(state: TokenState, name: str, org: str, oauth: OAuthSpec | None, new: bool) -> str:
    command = f"bifrost-gitops connect {shlex.quote(name)} {shlex.quote(org)}"
    connect = f"an admin connects it in Bifrost's UI, or opens the URL `{command}` prints"
    if state is TokenState.CONNECTED:
        return ""
    if state is TokenState.EXPIRED:
        return "apply refreshes it"
    if not connectable(oauth):
        return (
            "Bifrost cannot create it over its API (the provider has no authorization step): the "
            "organization uses the integration's token"
        )
    fallback = "until then the organization uses the integration's token"
    if state is TokenState.FAILED:
        return f"its last refresh failed (Bifrost's UI shows why): {connect} again; {fallback}"
    when = " once apply has created the mapping" if new else ""
    return f"{connect}{when}; {fallback}"


def plan_connection(
    plan: Plan,
    name: str,
    org: str,
    mp: MappingSpec,
    lm: Mapping | None,
    oauth: OAuthSpec | None,
    deps: list[int],
    opts: Options,
) -> None:
    """The own-connection part of organization ORG's mapping of integration NAME (MP declared,
    LM live or None when apply creates it; DEPS: the ops of that mapping, run first)."""
    addr = f"{name}/{org}"
    if mp.get("oauth") == "own":
        state = token_state(lm)
        who = mp["organization_id"] or org  # connect takes Bifrost's UUID or name
        plan.connections.append(OrgConnection(addr, state, _advice(state, name, who, oauth, lm is None)))
        if state is TokenState.EXPIRED and lm is not None:
            _op(plan, Action.REFRESH, name, addr, lm, "/refresh", deps)
    elif lm is not None and lm.oauth_token_id is not None:
        if opts.disconnect_org_tokens:
            _op(plan, Action.DISCONNECT, name, addr, lm, "/disconnect", deps, destructive=True)
        else:
            plan.drift.append(
                f"mapping {addr}: has an OAuth token of its own in Bifrost, the repository says it uses "
                "the integration's (declare oauth: own to keep it; apply --disconnect-org-tokens deletes it)"
            )


def _op(
    plan: Plan,
    action: Action,
    name: str,
    addr: str,
    lm: Mapping,
    tail: str,
    deps: list[int],
    *,
    destructive: bool = False,
) -> None:
    plan.add(
        action,
        Resource.MAPPING,
        addr,
        BASE.format(mid=lm.id) + tail,
        integration=name,
        deps=deps,
        stage=1,
        destructive=destructive,
    )
