"""The pure planner, table-driven: the branches a fake server reaches only with hand-made state.

The desired side is a manifest built with the deploy contract's TypedDicts, the live side the
checked reply models (deploy/replies.py); no server. Each row says what the user sees in plan:
the operation titles, the drift and error lines, and what a body sends (never a secret it
should not).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from bifrost_gitops.deploy.apply import _Run
from bifrost_gitops.deploy.client import Client, Credentials
from bifrost_gitops.deploy.live import Live
from bifrost_gitops.deploy.manifest import LEDGER
from bifrost_gitops.deploy.plan import KEEP_LIVE_SECRET, Op, Options, Plan, make_plan, secret_digest
from bifrost_gitops.deploy.render import render_text
from bifrost_gitops.deploy.replies import Connection, Detail, Integration, Mapping, OAuthSummary, SchemaItem
from bifrost_gitops.deploy.spec import IntegrationSpec, Ledger, Manifest, OAuthSpec

IID = "11111111-1111-4111-8111-111111111111"
ORG = "2222aaaa-2222-4222-8222-22222222bbbb"
MID = "33333333-3333-4333-8333-333333333333"
SECRET = "s3cr3t-client-secret"
TOKEN_URL = "https://login.example.com/token"
AUTH_URL = "https://login.example.com/authorize"


def oauth_spec(**over: Any) -> OAuthSpec:
    spec = OAuthSpec(
        flow="client_credentials",
        client_id="app",
        client_secret=SECRET,
        authorization_url=None,
        token_url=TOKEN_URL,
        scopes=["read"],
        audience=None,
    )
    spec.update(over)  # type: ignore[typeddict-item]
    return spec


def integration_spec(**over: Any) -> IntegrationSpec:
    spec = IntegrationSpec(
        name="Halo",
        id=None,
        entity_id=None,
        entity_id_name=None,
        default_entity_id=None,
        list_entities_data_provider_id=None,
        config_schema=[],
        defaults={},
        oauth=None,
        mappings={},
    )
    spec.update(over)  # type: ignore[typeddict-item]
    return spec


def manifest(*integrations: IntegrationSpec) -> Manifest:
    return Manifest(
        format=1,
        kind="bifrost-gitops/deploy",
        secrets="revealed",
        organizations=[{"name": "contoso", "id": ORG}],
        integrations=list(integrations),
    )


def summary(**over: Any) -> OAuthSummary:
    fields: dict[str, Any] = {
        "oauth_flow_type": "client_credentials",
        "client_id": "app",
        "token_url": TOKEN_URL,
        "scopes": ["read"],
        "status": "completed",
    }
    return OAuthSummary(**{**fields, **over})


def live(
    detail: Detail | None = None,
    *,
    managed: bool = True,
    connection: Connection | None = None,
    hashes: dict[str, str] | None = None,
) -> Live:
    """Bifrost with DETAIL (managed by the ledger unless told) and the organization contoso."""
    ledger = Ledger(integrations={IID: detail.name} if detail is not None and managed else {})
    if hashes is not None:
        ledger["oauth_client_secret_sha256"] = hashes
    state = Live({ORG: "contoso"}, {}, {}, {}, ledger_id=None, ledger=ledger)
    if detail is not None:
        state.integrations[detail.name] = Integration(id=detail.id, name=detail.name)
        state.details[detail.id] = detail
        if connection is not None:
            state.connections[detail.id] = connection
    return state


def detail(**over: Any) -> Detail:
    return Detail(**{"id": IID, "name": "Halo", **over})


def titles(plan: Plan) -> list[str]:
    return [o.title() for o in plan.changes]


def only(plan: Plan, title: str) -> Op:
    [op] = [o for o in plan.ops if o.title() == title]
    return op


# --- OAuth: prune and drift ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prune", "ops", "drift"),
    [
        (True, ["- delete oauth Halo"], []),
        (
            False,
            [],
            ["oauth Halo: Bifrost has a provider the repository does not declare (apply --prune deletes it)"],
        ),
    ],
)
def test_an_undeclared_provider_is_deleted_with_prune_else_drift(
    prune: bool, ops: list[str], drift: list[str]
) -> None:
    plan = make_plan(manifest(integration_spec()), live(detail(oauth_config=summary())), Options(prune=prune))
    assert titles(plan) == ops and plan.drift == drift and not plan.errors
    if prune:
        op = only(plan, "- delete oauth Halo")
        assert (op.method, op.path, op.destructive) == ("DELETE", "/api/oauth/connections/{iid}", True)


@pytest.mark.parametrize(
    ("want", "have", "drift", "sent"),
    [
        # a URL Bifrost keeps once set: dropping it is drift, nothing is written
        (
            {"authorization_url": None},
            {"authorization_url": AUTH_URL},
            ["oauth Halo: authorization_url is set in Bifrost and cannot be cleared over the API"],
            None,
        ),
        (
            {"token_url": ""},
            {},
            ["oauth Halo: token_url is set in Bifrost and cannot be cleared over the API"],
            None,
        ),
        # the audience can be emptied: sent as ""
        ({"audience": None}, {}, [], {"audience": ""}),
        # scopes compare as lists, whatever their spelling on either side
        ({"scopes": ["read", "write"]}, {}, [], {"scopes": ["read", "write"]}),
    ],
)
def test_provider_fields_that_cannot_be_cleared_are_drift(
    want: dict[str, Any], have: dict[str, Any], drift: list[str], sent: dict[str, Any] | None
) -> None:
    hashes = {IID: secret_digest(IID, SECRET)}
    conn = Connection(scopes="read", audience="api://halo")
    desired = integration_spec(oauth=oauth_spec(**{"audience": "api://halo", **want}))
    state = live(detail(oauth_config=summary(**have)), connection=conn, hashes=hashes)
    plan = make_plan(manifest(desired), state, Options())
    assert plan.drift == drift and not plan.errors
    if sent is None:
        assert titles(plan) == []
    else:
        assert titles(plan) == ["~ update oauth Halo", "> refresh oauth token Halo"]
        assert only(plan, "~ update oauth Halo").body == sent


# --- OAuth: the client secret, and the import placeholder -----------------------------------


@pytest.mark.parametrize(
    ("secret", "recorded", "rotate", "edit"),
    [
        (SECRET, None, False, "set"),  # never recorded: Bifrost's may differ
        (SECRET, SECRET, False, None),  # as recorded: not sent
        (SECRET, "an older secret", False, "rotate"),  # changed in the repository
        (SECRET, SECRET, True, "rotate"),  # --rotate-oauth-secrets
        (KEEP_LIVE_SECRET, None, True, None),  # the import placeholder: never sent
        (None, None, True, None),  # not declared: Bifrost's is kept
    ],
)
def test_when_the_client_secret_is_sent_to_a_live_provider(
    secret: str | None, recorded: str | None, rotate: bool, edit: str | None
) -> None:
    hashes = {IID: secret_digest(IID, recorded)} if recorded else {}
    desired = integration_spec(oauth=oauth_spec(client_secret=secret))
    state = live(detail(oauth_config=summary()), connection=Connection(scopes="read"), hashes=hashes)
    plan = make_plan(manifest(desired), state, Options(rotate_oauth_secrets=rotate))
    text = render_text(plan)
    assert SECRET not in text and KEEP_LIVE_SECRET not in text
    if edit is None:
        assert titles(plan) == [] and all(o.sent_secret is None for o in plan.ops)
        return
    op = only(plan, "~ update oauth Halo")
    assert op.body == {"client_secret": SECRET} and op.sent_secret == SECRET
    assert [c.text() for c in op.changes] == [
        f"{'+' if edit == 'set' else '~'} client_secret: {edit} (secret)"
    ]
    assert plan.ops[-1].title() == f"~ record ownership in {LEDGER}"  # the ledger records its hash


@pytest.mark.parametrize(
    ("flow", "ops", "errors"),
    [
        (
            "client_credentials",
            [],
            [
                "oauth Halo: flow client_credentials needs the client secret; the repository holds the "
                "import placeholder: put the real secret in (sops edit) and plan again"
            ],
        ),
        ("authorization_code", ["+ create oauth Halo"], []),
    ],
)
def test_a_new_provider_with_the_import_placeholder(flow: str, ops: list[str], errors: list[str]) -> None:
    want = oauth_spec(flow=flow, client_secret=KEEP_LIVE_SECRET, authorization_url=AUTH_URL)
    plan = make_plan(manifest(integration_spec(oauth=want)), live(detail()), Options())
    assert titles(plan) == ops and plan.errors == errors
    for op in plan.ops:
        assert "client_secret" not in json.dumps(op.body) and op.sent_secret is None


def test_a_live_client_credentials_provider_without_a_token_gets_a_refresh() -> None:
    desired = integration_spec(oauth=oauth_spec(client_secret=KEEP_LIVE_SECRET))
    state = live(detail(oauth_config=summary(status="not_connected")), connection=Connection(scopes="read"))
    plan = make_plan(manifest(desired), state, Options())
    assert titles(plan) == ["> refresh oauth token Halo"]
    assert only(plan, "> refresh oauth token Halo").deps == []


# --- integration fields that cannot be cleared over the API ----------------------------------


@pytest.mark.parametrize(
    ("field", "ops", "drift", "body"),
    [
        (
            "entity_id",
            [],
            ["integration Halo: entity_id is set in Bifrost and cannot be cleared over the API"],
            None,
        ),
        (
            "list_entities_data_provider_id",
            [],
            [
                "integration Halo: list_entities_data_provider_id is set in Bifrost and cannot be cleared over the API"
            ],
            None,
        ),
        ("default_entity_id", ["~ update integration Halo"], [], {"default_entity_id": ""}),
        ("entity_id_name", ["~ update integration Halo"], [], {"entity_id_name": ""}),
    ],
)
def test_dropping_an_integration_field(
    field: str, ops: list[str], drift: list[str], body: dict[str, str] | None
) -> None:
    plan = make_plan(manifest(integration_spec()), live(detail(**{field: "was-set"})), Options())
    assert titles(plan) == ops and plan.drift == drift
    if body is not None:
        assert only(plan, ops[0]).body == body


# --- the reserved ledger name ---------------------------------------------------------------


def test_the_ledger_name_is_reserved() -> None:
    plan = make_plan(manifest(integration_spec(name=LEDGER), integration_spec()), live(), Options())
    assert plan.errors == [f"integration name {LEDGER!r} is reserved for bifrost-gitops's ownership ledger"]
    assert plan.managed_names == ["Halo"]
    assert all(o.integration != LEDGER or o.bookkeeping for o in plan.ops)
    assert titles(plan) == ["+ create integration Halo"]


# --- config values and mappings -------------------------------------------------------------


def test_a_key_new_to_the_schema_whose_values_exist_is_re_sent() -> None:
    """Values stored before their key was declared are untyped: only a write types them."""
    schema = [{"key": "region", "type": "string", "required": False, "description": None, "options": None}]
    desired = integration_spec(config_schema=schema, defaults={"region": "eu"})
    plan = make_plan(manifest(desired), live(detail(config_defaults={"region": "eu"})), Options())
    assert titles(plan) == ["~ update schema Halo", "~ update defaults Halo"]
    assert only(plan, "~ update defaults Halo").body == {"config": {"region": "eu"}}


def test_an_unknown_live_key_is_masked_as_a_secret() -> None:
    """A key neither schema types may hold anything: its value is never shown."""
    desired = integration_spec(defaults={})
    state = live(detail(config_defaults={"mystery": "hunter2"}))
    pruned = make_plan(manifest(desired), state, Options(prune=True))
    assert "hunter2" not in render_text(pruned)
    assert "- config.mystery: removed (secret)" in render_text(pruned)
    kept = make_plan(manifest(desired), state, Options())
    assert kept.drift == [
        "integration Halo: default 'mystery' is set in Bifrost but not in the repository "
        "(apply --prune removes it)"
    ]


def test_an_undeclared_mapping_is_deleted_with_prune_its_overrides_nulled_first() -> None:
    schema = [SchemaItem(key="site", type="string")]
    lm = Mapping(id=MID, organization_id=ORG.upper(), entity_id="7", config={"site": "a"})
    state = live(detail(config_schema=schema, mappings=[lm]))
    desired = integration_spec(
        config_schema=[
            {"key": "site", "type": "string", "required": False, "description": None, "options": None}
        ]
    )
    plan = make_plan(manifest(desired), state, Options(prune=True))
    assert titles(plan) == ["~ update mapping Halo/contoso", "- delete mapping Halo/contoso"]
    nulled, deleted = plan.changes
    assert nulled.body == {"config": {"site": None}} and deleted.deps == [plan.ops.index(nulled)]
    assert [c.text() for c in nulled.changes] == ['- config.site: removed (was "a")']


# --- apply.read_back: is the resource a retried create met there the one it sent? -------------


def _run(replies: dict[str, Any]) -> tuple[_Run, list[str]]:
    """An apply run whose client answers GETs from REPLIES (path -> JSON, or an int status)."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        reply = replies.get(request.url.path, 404)
        status, doc = (reply, {"detail": "Not found"}) if isinstance(reply, int) else (200, reply)
        content = json.dumps(doc).encode()
        headers = {"Content-Type": "application/json"}
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content))

    client = Client(
        Credentials("https://bifrost.test", "token", None),
        environ={},
        max_attempts=1,
        transport=httpx.MockTransport(handler),
    )
    plan = Plan([], [], [], [], ids={"Halo": IID})
    return _Run(client, plan), seen


MAPPING_PATH = f"/api/integrations/{IID}/mappings/by-org/{ORG}"
OAUTH_PATH = f"/api/oauth/connections/{IID}"


@pytest.mark.parametrize(
    ("resource", "sent", "replies", "found"),
    [
        # a mapping, by organization: the same entity (organization ids compare case-insensitively)
        (
            "mapping",
            {"organization_id": ORG, "entity_id": "7"},
            {MAPPING_PATH: {"organization_id": ORG.upper(), "entity_id": "7"}},
            True,
        ),
        (
            "mapping",
            {"organization_id": ORG, "entity_id": "7"},
            {MAPPING_PATH: {"organization_id": ORG, "entity_id": "8"}},
            False,
        ),
        (
            "mapping",
            {"organization_id": ORG, "entity_id": ""},
            {MAPPING_PATH: {"organization_id": ORG, "entity_id": None}},
            True,
        ),
        ("mapping", {"organization_id": ORG, "entity_id": "7"}, {}, False),  # 404
        (
            "mapping",
            {"organization_id": ORG, "entity_id": "7"},
            {MAPPING_PATH: ["not", "an", "object"]},
            False,
        ),
        ("mapping", {"entity_id": "7"}, {}, False),  # no organization to look it up by
        # an OAuth provider, by integration id: the same flow and client
        (
            "oauth",
            {"oauth_flow_type": "client_credentials", "client_id": "app"},
            {OAUTH_PATH: {"oauth_flow_type": "client_credentials", "client_id": "app"}},
            True,
        ),
        (
            "oauth",
            {"oauth_flow_type": "client_credentials", "client_id": "app"},
            {OAUTH_PATH: {"oauth_flow_type": "client_credentials", "client_id": "other"}},
            False,
        ),
        ("oauth", {"oauth_flow_type": "client_credentials", "client_id": "app"}, {OAUTH_PATH: 500}, False),
    ],
)
def test_read_back_after_a_retried_create(
    resource: str, sent: dict[str, Any], replies: dict[str, Any], found: bool
) -> None:
    run, seen = _run(replies)
    path = "/api/integrations/{iid}/mappings" if resource == "mapping" else "/api/oauth/connections"
    op = Op("create", resource, "Halo/contoso", "Halo", "POST", path)  # type: ignore[arg-type]
    try:
        got = run.read_back(op, sent)
    finally:
        run.client.close()
    assert (got is not None) == found
    if found:
        assert got == replies[seen[-1]]
    if "organization_id" not in sent and resource == "mapping":
        assert seen == []  # nothing to ask for


def test_read_back_needs_the_integration_id() -> None:
    run, seen = _run({OAUTH_PATH: {"oauth_flow_type": "client_credentials", "client_id": "app"}})
    run.ids.clear()  # its create failed: nothing to read back
    op = Op("create", "oauth", "Halo", "Halo", "POST", "/api/oauth/connections")  # type: ignore[arg-type]
    try:
        assert run.read_back(op, {"client_id": "app"}) is None
    finally:
        run.client.close()
    assert seen == []
