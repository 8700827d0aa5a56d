"""A Bifrost server is untrusted: replies of the wrong shape end plan/import with one clear
message (exit 2), hostile names are never written by import and never printed raw."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bifrost_gitops.deploy.apply import Result
from bifrost_gitops.deploy.plan import Change, Op
from bifrost_gitops.deploy.render import render_results
from bifrost_gitops.deploy.spec import Action, Edit, Resource, Status
from bifrost_gitops.escape import has_unsafe

from .deploy_support import CONTOSO, Env, no_leaks
from .fakebifrost import FakeBifrost

LIST = "/api/integrations"
ORGS = "/api/organizations"
DETAIL = re.compile(r"^/api/integrations/[0-9a-f-]{36}$")
CONN = re.compile(r"^/api/oauth/connections/[0-9a-f-]{36}$")
#: Names anyone with Bifrost's UI can set: a forged workflow command, a screen clear, a bidi
#: override, a path separator.
HOSTILE = ["evil\n::add-mask::x", "\x1b[2Jclear", "rtl\u202eevil", "a/b", "tab\there"]


def _get(path: str | re.Pattern[str]) -> Callable[[str, str], bool]:
    if isinstance(path, str):
        return lambda m, p: m == "GET" and p == path
    return lambda m, p: m == "GET" and path.match(p) is not None


def _item(field: str, value: Any, index: int = -1) -> Callable[[Any], Any]:
    def fn(body: Any) -> Any:
        body["items"][index][field] = value
        return body

    return fn


def _set(field: str, value: Any) -> Callable[[Any], Any]:
    def fn(body: Any) -> Any:
        if value is _DROP:
            body.pop(field)
        else:
            body[field] = value
        return body

    return fn


_DROP = object()


def _org_without_id(body: Any) -> Any:
    body[0].pop("id")
    return body


def _detail_of_other(body: Any) -> Any:
    body["id"] = "00000000-0000-4000-8000-000000000000"
    return body


def _mapping_without_id(body: Any) -> Any:
    for m in body["mappings"][:1]:
        m.pop("id")
    return body


SHAPES: list[tuple[str, Callable[[str, str], bool], Callable[[Any], Any], str]] = [
    (
        "schema-not-a-list",
        _get(LIST),
        _item("config_schema", "oops"),
        r"GET /api/integrations: item \d+: config_schema: expected a list, got text",
    ),
    (
        "null-name",
        _get(LIST),
        _item("name", None),
        r"GET /api/integrations: item \d+: name: expected text, got null",
    ),
    (
        "list-not-object",
        _get(LIST),
        lambda b: b["items"],
        r"GET /api/integrations: expected an object, got a list",
    ),
    ("items-missing", _get(LIST), lambda b: {"total": 0}, r"GET /api/integrations: items: missing"),
    ("org-id-missing", _get(ORGS), _org_without_id, r"GET /api/organizations: item 0: id: missing"),
    (
        "org-not-a-list",
        _get(ORGS),
        lambda b: {"items": b},
        r"GET /api/organizations: expected a list, got an object",
    ),
    (
        "id-not-uuid",
        _get(LIST),
        _item("id", "../../auth/refresh"),
        r"GET /api/integrations: item \d+: id: expected a UUID",
    ),
    (
        "mappings-a-number",
        _get(DETAIL),
        _set("mappings", 5),
        r"GET /api/integrations/[0-9a-f-]{36}: mappings: expected a list, got a number",
    ),
    (
        "mapping-id-missing",
        _get(DETAIL),
        _mapping_without_id,
        r"GET /api/integrations/[0-9a-f-]{36}: mappings: item 0: id: missing",
    ),
    (
        "defaults-a-list",
        _get(DETAIL),
        _set("config_defaults", ["x"]),
        r"GET /api/integrations/[0-9a-f-]{36}: config_defaults: expected an object, got a list",
    ),
    (
        "schema-type-unknown",
        _get(DETAIL),
        _set("config_schema", [{"key": "k", "type": "float"}]),
        r"GET /api/integrations/[0-9a-f-]{36}: config_schema: item 0: type: expected one of",
    ),
    (
        "detail-of-another",
        _get(DETAIL),
        _detail_of_other,
        r"GET /api/integrations/[0-9a-f-]{36}: id: the reply is about another integration",
    ),
    (
        "oauth-not-object",
        _get(DETAIL),
        _set("oauth_config", "yes"),
        r"GET /api/integrations/[0-9a-f-]{36}: oauth_config: expected an object, got text",
    ),
    (
        "connection-scopes-number",
        _get(CONN),
        _set("scopes", 5),
        r"GET /api/oauth/connections/[0-9a-f-]{36}: scopes: expected text, got a number",
    ),
    (
        "detail-null",
        _get(DETAIL),
        lambda b: None,
        r"GET /api/integrations/[0-9a-f-]{36}: expected an object, got null",
    ),
]


def _one_clear_error(stderr: str, expected: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "internal error" not in stderr and "Traceback" not in stderr
    assert re.search(expected, lines[0]), lines[0]


@pytest.mark.parametrize(("case", "match", "fn", "expected"), SHAPES, ids=[s[0] for s in SHAPES])
def test_plan_refuses_a_reply_of_the_wrong_shape(
    denv: Env, case: str, match: Callable[[str, str], bool], fn: Callable[[Any], Any], expected: str
) -> None:
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    e.bf.rewrite(match, fn)
    r = e.cli("plan", str(e.root))
    assert r.code == 2, r.output
    assert r.stdout == ""
    _one_clear_error(r.stderr, "cannot read the live state: " + expected)
    no_leaks(r.output, e)


@pytest.mark.parametrize("case", ["schema-not-a-list", "mappings-a-number", "org-id-missing", "detail-null"])
def test_import_refuses_a_reply_of_the_wrong_shape(denv: Env, tmp_path: Path, case: str) -> None:
    e = denv
    assert e.cli("apply", str(e.root), "--yes").code == 0
    _, match, fn, expected = next(s for s in SHAPES if s[0] == case)
    e.bf.rewrite(match, fn)
    out = tmp_path / "imported"
    r = e.cli("import", "-o", str(out), "--age", e.recipient)
    assert r.code == 2, r.output
    _one_clear_error(r.stderr, "cannot read the live state: " + expected)
    assert not any(p.is_file() for p in out.rglob("*")), (
        "nothing is written when the live state is unreadable"
    )


def _api(bf: FakeBifrost) -> httpx.Client:
    return httpx.Client(base_url=bf.url, headers=bf.auth_headers())


def _seed_hostile(e: Env) -> dict[str, str]:
    """Integrations and an organization with hostile names, a good one and its case twin."""
    hostile_org = e.bf.add_org("Org\n::error::forged\u202e")
    ids: dict[str, str] = {}
    with _api(e.bf) as api:
        for name in [*HOSTILE, "Good", "good"]:
            r = api.post(
                "/api/integrations", json={"name": name, "config_schema": [{"key": "k", "type": "string"}]}
            )
            assert r.status_code == 201, r.text
            ids[name] = r.json()["id"]
        for org, entity_name in ((CONTOSO, "fine"), (hostile_org, "\x1b]0;title\x07")):
            r = api.post(
                f"/api/integrations/{ids['Good']}/mappings",
                json={
                    "organization_id": org,
                    "entity_id": "1",
                    "entity_name": entity_name,
                    "config": {"k": "v"},
                },
            )
            assert r.status_code == 201, r.text
    return ids


def _assert_safe(text: str) -> None:
    for line in text.split("\n"):
        assert not has_unsafe(line), repr(line)
        assert not line.lstrip().startswith("::"), repr(line)
        assert "##[" not in line, repr(line)


def test_import_leaves_out_hostile_names_and_the_result_validates(denv: Env, tmp_path: Path) -> None:
    e = denv
    ids = _seed_hostile(e)
    out = tmp_path / "imported"
    r = e.cli("import", "-o", str(out), "--age", e.recipient)
    assert r.code == 0, r.output
    _assert_safe(r.output)
    left = [line for line in r.stderr.splitlines() if line.startswith("left out: ")]
    # one line per item left out, naming it (escaped) and saying why
    for name in HOSTILE:
        assert sum(ids[name] in line for line in left) == 1, (name, left)
    assert any(ids["a/b"] in line and 'holds "/"' in line for line in left)
    assert any(ids["evil\n::add-mask::x"] in line and "control, bidi" in line for line in left)
    assert any(ids["good"] in line and "differs only in case from 'Good'" in line for line in left)
    assert any("mapping Good/org-error-forged" in line and "entity_name" in line for line in left), left
    assert any("display_name" in line and "org-error-forged" in line for line in left), left
    assert len(left) == len(HOSTILE) + 3
    assert f"{len(left)} left out" in r.stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml"))
    assert written == [
        ".sops.yaml",
        "bifrost-gitops.yaml",
        "integrations/Good/integration.yaml",
        "integrations/Good/mappings/contoso-ltd.yaml",
        "organizations.yaml",
    ]
    for f in out.rglob("*.yaml"):
        assert not has_unsafe(f.read_text(encoding="utf-8").replace("\n", ""))
    r = e.cli("validate", str(out), "--strict")
    assert r.code == 0, r.output
    r = e.cli("plan", str(out), "--exit-code")
    assert r.code == 0, r.output
    _assert_safe(r.output)


def _hostile_plan(e: Env) -> None:
    """Applied repository, then hostile names in what plan reports: unmanaged integrations,
    a live mapping of an organization with a hostile name, a live value with escapes."""
    assert e.cli("apply", str(e.root), "--yes").code == 0
    halo = e.bf.state.integration_by_name("HaloPSA")
    assert halo is not None
    org = e.bf.add_org("\n::add-mask::x\x1b[2J\u202e")
    with _api(e.bf) as api:
        for name in HOSTILE:
            assert api.post("/api/integrations", json={"name": name}).status_code == 201
        r = api.post(f"/api/integrations/{halo.id}/mappings", json={"organization_id": org, "entity_id": "9"})
        assert r.status_code == 201, r.text
        r = api.put(
            f"/api/integrations/{halo.id}/config", json={"config": {"url": "x\n::error::y\x1b[2J\u202e"}}
        )
        assert r.status_code in (200, 204), r.text


def test_plan_text_prints_server_names_escaped(denv: Env) -> None:
    e = denv
    _hostile_plan(e)
    r = e.cli("plan", str(e.root), "--prune")
    assert r.code == 0, r.output
    _assert_safe(r.output)
    assert "integration evil\\x0a::add-mask::x: exists in Bifrost but is not managed here" in r.stdout
    assert "integration \\x1b[2Jclear: exists" in r.stdout
    assert "integration rtl\\u202eevil: exists" in r.stdout
    assert "- delete mapping HaloPSA/\\x0a::add-mask::x\\x1b[2J\\u202e" in r.stdout, r.stdout
    assert "config.url" in r.stdout


def test_plan_json_is_ascii_and_keeps_the_names(denv: Env) -> None:
    e = denv
    _hostile_plan(e)
    r = e.cli("plan", str(e.root), "--prune", "--format", "json")
    assert r.code == 0, r.output
    _assert_safe(r.output)
    assert r.stdout.isascii()
    doc = json.loads(r.stdout)
    assert (
        "integration evil\n::add-mask::x: exists in Bifrost but is not managed here (left alone)"
        in doc["drift"]
    )
    addresses = {o["address"] for o in doc["operations"]}
    assert "HaloPSA/\n::add-mask::x\x1b[2J\u202e" in addresses


def test_apply_report_escapes_server_messages() -> None:
    op = Op(
        Action.UPDATE,
        Resource.MAPPING,
        "Halo/\u202eorg",
        "Halo",
        "PUT",
        "/x",
        changes=[Change("entity_id", Edit.CHANGE, "1", "2")],
    )
    results = [Result(op, Status.FAILED, "409: name '\n::add-mask::secret' \x1b[2J taken")]
    text = render_results(results, 3, "text")
    _assert_safe(text)
    assert (
        "FAILED  ~ update mapping Halo/\\u202eorg: 409: name '\\x0a::add-mask::secret' \\x1b[2J taken" in text
    )
    doc = render_results(results, 3, "json")
    _assert_safe(doc)
    assert json.loads(doc)["results"][0]["message"] == results[0].message


def test_import_leaves_out_what_validate_refuses(denv: Env, tmp_path: Path) -> None:
    """What only the repository's checks refuse (a value outside the key's options) is found by
    validating the written repository: the integration or mapping is removed and listed."""
    e = denv
    schema = [{"key": "region", "type": "string", "options": ["us", "eu"]}]
    with _api(e.bf) as api:
        ids = {}
        for name in ("Opt", "Fine"):
            resp = api.post("/api/integrations", json={"name": name, "config_schema": schema})
            assert resp.status_code == 201, resp.text
            ids[name] = resp.json()["id"]
        resp = api.put(f"/api/integrations/{ids['Opt']}/config", json={"config": {"region": "moon"}})
        assert resp.status_code in (200, 204), resp.text
        resp = api.post(
            f"/api/integrations/{ids['Fine']}/mappings",
            json={"organization_id": CONTOSO, "entity_id": "1", "config": {"region": "mars"}},
        )
        assert resp.status_code == 201, resp.text
    out = tmp_path / "imported"
    r = e.cli("import", "-o", str(out), "--age", e.recipient)
    assert r.code == 0, r.output
    left = [line for line in r.stderr.splitlines() if line.startswith("left out: ")]
    assert sorted(left) == [
        "left out: integration 'Opt': C003 'moon' is not an option of 'region'",
        "left out: mapping Fine/contoso-ltd: C003 'mars' is not an option of 'region' "
        "(plan shows it as drift; apply --prune would delete it)",
    ], r.stderr
    assert not (out / "integrations/Opt").exists()
    assert (out / "integrations/Fine/integration.yaml").exists()
    assert not (out / "integrations/Fine/mappings").exists() or not any(
        (out / "integrations/Fine/mappings").iterdir()
    )
    assert ": 4 files written; 2 left out (listed above)" in r.stderr
    r = e.cli("validate", str(out), "--strict")
    assert r.code == 0, r.output
