"""An integration's OAuth provider: POST / PUT / (with --prune) DELETE, and for
client_credentials a token refresh (docs/bifrost-api.md#oauth-connections), except when the
token URL holds ``{entity_id}``: Bifrost then fetches a token on each SDK ``get`` and stores
none, and a refresh would only try the literal template (docs/bifrost-api.md#oauth-tokens).

The client secret cannot be read back, so whether to send it is decided from the ledger's
salted hash of the one sent last: sent when never recorded, changed in the repository, or
rotated on request; the import placeholder :data:`KEEP_LIVE_SECRET` is never sent.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..replies import Connection, OAuthSummary
from ..spec import Action, Edit, Json, OAuthSpec, Resource
from .ops import Change, Options, Plan, blank, secret_digest

#: What `import` writes for an OAuth client secret it cannot read back: "keep the live one".
KEEP_LIVE_SECRET = "bifrost-gitops:keep-live-client-secret"
PATH = "/api/oauth/connections/{iid}"
#: fields Bifrost keeps once set (they must be https:// URLs): a PUT of "" does not clear them
_UNCLEARABLE = ("authorization_url", "token_url")


def normalise_scopes(scopes: str | Iterable[object] | None) -> list[str]:
    """Scopes go in comma-separated and come out space-joined: one list for both.

    docs/bifrost-api.md#oauth-scopes"""
    if scopes is None:
        return []
    if isinstance(scopes, str):
        scopes = scopes.replace(",", " ").split()
    return [s.strip() for s in scopes if isinstance(s, str) and s.strip()]


def _refreshable(want: OAuthSpec) -> bool:
    """Whether the provider keeps a stored token that a refresh mints: client credentials with
    a fixed token URL (a templated one is fetched per organization on each SDK get)."""
    return want["flow"] == "client_credentials" and "{entity_id}" not in (want["token_url"] or "")


def _refresh(plan: Plan, name: str, want: OAuthSpec, deps: list[int]) -> None:
    """Plan the token refresh after a change of the provider, or say why there is none."""
    if _refreshable(want):
        _op(plan, Action.REFRESH, name, PATH + "/refresh", deps=deps)
    elif want["flow"] == "client_credentials" and name not in plan.fetched_per_get:
        plan.fetched_per_get.append(name)


def plan_oauth(
    plan: Plan,
    name: str,
    want: OAuthSpec | None,
    summary: OAuthSummary | None,
    conn: Connection | None,
    deps: list[int],
    opts: Options,
) -> None:
    """Bring integration NAME's provider (SUMMARY, CONN: what Bifrost has) to WANT."""
    if want is None:
        if summary is None:
            return
        if opts.prune:
            _op(plan, Action.DELETE, name, PATH, deps=deps, destructive=True)
        else:
            plan.drift.append(
                f"oauth {name}: Bifrost has a provider the repository does not declare (apply --prune deletes it)"
            )
    elif summary is None:
        _create(plan, name, want, deps)
    else:
        _update(plan, name, want, summary, conn, deps, opts)


def _op(
    plan: Plan,
    action: Action,
    name: str,
    path: str,
    *,
    deps: list[int],
    body: dict[str, object] | None = None,
    changes: list[Change] | None = None,
    destructive: bool = False,
    sent_secret: Json = None,
) -> int:
    """An operation of NAME's provider: its own group, after the mappings' stage."""
    return plan.add(
        action,
        Resource.OAUTH,
        name,
        path,
        body=body,
        changes=changes or [],
        deps=deps,
        group=f"{name}#oauth",
        stage=2,
        destructive=destructive,
        sent_secret=sent_secret,
    )


def _usable(secret: Json) -> bool:
    """A declared client secret that can be sent (not missing, not the import placeholder)."""
    return secret is not None and secret != KEEP_LIVE_SECRET


def _create(plan: Plan, name: str, want: OAuthSpec, deps: list[int]) -> None:
    secret = want.get("client_secret")
    if want["flow"] == "client_credentials" and not _usable(secret):
        plan.errors.append(
            f"oauth {name}: flow client_credentials needs the client secret; the repository holds the "
            "import placeholder: put the real secret in (sops edit) and plan again"
        )
        return
    scopes = normalise_scopes(want["scopes"])
    body: dict[str, object] = {
        "integration_id": "{iid}",
        "oauth_flow_type": want["flow"],
        "client_id": want["client_id"],
        "token_url": want["token_url"],
        "scopes": ",".join(scopes),
    }
    changes = [
        Change("oauth_flow_type", Edit.ADD, None, want["flow"]),
        Change("client_id", Edit.ADD, None, want["client_id"]),
        Change("token_url", Edit.ADD, None, want["token_url"]),
        Change("scopes", Edit.ADD, None, scopes),
    ]
    for f in ("authorization_url", "audience"):
        value = want.get(f)
        if not blank(value):
            body[f] = value
            changes.append(Change(f, Edit.ADD, None, value))
    sent = secret if _usable(secret) else None
    if sent is not None:
        body["client_secret"] = sent
        changes.append(Change("client_secret", Edit.SET, secret=True))
    path = "/api/oauth/connections"
    created = _op(plan, Action.CREATE, name, path, body=body, changes=changes, deps=deps, sent_secret=sent)
    _refresh(plan, name, want, [created])


def _update(
    plan: Plan,
    name: str,
    want: OAuthSpec,
    summary: OAuthSummary,
    conn: Connection | None,
    deps: list[int],
    opts: Options,
) -> None:
    body, changes = _field_diff(plan, name, want, summary, conn)
    secret = want.get("client_secret")
    edit = _secret_edit(plan, name, secret, opts)
    if edit is not None:
        body["client_secret"] = secret
        changes.append(Change("client_secret", edit, secret=True))
    after = deps
    if body:
        sent = secret if edit is not None else None
        after = [
            _op(plan, Action.UPDATE, name, PATH, body=body, changes=changes, deps=deps, sent_secret=sent)
        ]
    if body:
        _refresh(plan, name, want, after)
    elif _refreshable(want) and summary.status not in ("completed", "connected"):
        # a client-credentials provider has no stored token until one is minted
        # (docs/bifrost-api.md#oauth-tokens)
        _op(plan, Action.REFRESH, name, PATH + "/refresh", deps=after)


def _field_diff(
    plan: Plan, name: str, want: OAuthSpec, summary: OAuthSummary, conn: Connection | None
) -> tuple[dict[str, object], list[Change]]:
    """The partial PUT body of the provider's changed fields and scopes, and its Changes."""
    body: dict[str, object] = {}
    changes: list[Change] = []
    pairs = [
        ("oauth_flow_type", want["flow"], summary.oauth_flow_type),
        ("client_id", want["client_id"], summary.client_id),
        ("authorization_url", want.get("authorization_url"), summary.authorization_url),
        ("token_url", want["token_url"], summary.token_url),
        ("audience", want.get("audience"), conn.audience if conn else None),
    ]
    for f, new, old in pairs:
        if (blank(new) and blank(old)) or new == old:
            continue
        if blank(new) and f in _UNCLEARABLE:
            plan.drift.append(f"oauth {name}: {f} is set in Bifrost and cannot be cleared over the API")
            continue
        body[f] = new if new is not None else ""
        changes.append(Change(f, Edit.ADD if blank(old) else Edit.CHANGE, old, new))
    live_scopes = normalise_scopes(conn.scopes if conn and conn.scopes is not None else summary.scopes)
    want_scopes = normalise_scopes(want["scopes"])
    if want_scopes != live_scopes:
        body["scopes"] = want_scopes
        changes.append(Change("scopes", Edit.CHANGE, live_scopes, want_scopes))
    return body, changes


def _secret_edit(plan: Plan, name: str, secret: Json, opts: Options) -> Edit | None:
    """Whether to send the declared client secret to a live provider, and as what."""
    if not _usable(secret):
        return None
    iid = plan.ids.get(name)
    recorded = plan.ledger.get("oauth_client_secret_sha256", {}).get(iid) if iid else None
    if opts.rotate_oauth_secrets:
        return Edit.ROTATE
    if recorded is None:
        return Edit.SET  # never recorded: Bifrost's may differ, so send the declared one
    if iid is not None and recorded != secret_digest(iid, secret):
        return Edit.ROTATE  # changed in the repository since the last apply
    return None
