"""Checked-in JSON Schemas: no drift from the models, and the same verdicts as the models."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from bifrost_gitops import model, schemas
from support import ENC, ROOT

SCHEMA_DIR = ROOT / "schemas"
REGEN = "run `bifrost-gitops schema -o schemas` and commit the result"


@pytest.mark.parametrize("kind", list(schemas.ALL_KINDS))
def test_checked_in_schema_matches_models(kind: str) -> None:
    path = SCHEMA_DIR / schemas.filename(kind)
    assert path.is_file(), f"{path.name} is missing: {REGEN}"
    assert path.read_text(encoding="utf-8") == schemas.dump(kind), (
        f"{path.name} drifted from the models: {REGEN}"
    )


def test_no_stale_schema_files() -> None:
    expected = {schemas.filename(k) for k in schemas.ALL_KINDS}
    present = {p.name for p in SCHEMA_DIR.glob("*.schema.json")}
    assert present == expected, f"schemas/ holds stale or missing files: {REGEN}"


@pytest.mark.parametrize("kind", list(schemas.ALL_KINDS))
def test_schemas_are_valid_draft_2020_12(kind: str) -> None:
    schema = json.loads((SCHEMA_DIR / schemas.filename(kind)).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(schemas.filename(kind))


# --- the JSON Schemas and the pydantic models agree -----------------------------------------

API = "bifrost-gitops/v1"
SOPS = {"mac": ENC, "version": "3.11.0", "age": [{"recipient": "age1xyz", "enc": "x"}]}

VALID: dict[str, dict[str, Any]] = {
    "Project": {"apiVersion": API, "kind": "Project"},
    "Organizations": {
        "apiVersion": API,
        "kind": "Organizations",
        "organizations": [
            {"name": "contoso", "id": "3f0c1d2e-0000-4000-8000-000000000001", "display_name": "Contoso"},
            {"name": "fabrikam"},
        ],
    },
    "OAuthProvider": {
        "apiVersion": API,
        "kind": "OAuthProvider",
        "name": "microsoft",
        "flow": "client_credentials",
        "token_url": "https://login.microsoftonline.com/{entity_id}/oauth2/v2.0/token",
        "scopes": ["https://graph.microsoft.com/.default"],
        "client_id": "0b7f",
        "secrets": {"client_secret": ENC},
        "sops": SOPS,
    },
    "Integration": {
        "apiVersion": API,
        "kind": "Integration",
        "name": "Microsoft_Graph",
        "description": "Graph",
        "entity_id_name": "Tenant ID",
        "default_entity_id": None,
        "entity_id": None,
        "id": None,
        "oauth": {"provider": "microsoft"},
        "config_schema": [
            {"key": "graph_url", "type": "string", "required": True, "description": "base"},
            {"key": "page_size", "type": "int"},
            {"key": "beta", "type": "bool"},
            {"key": "sku_map", "type": "json"},
            {"key": "region", "type": "string", "options": ["us", "eu"]},
            {"key": "webhook_secret", "type": "secret"},
        ],
        "defaults": {
            "config": {"graph_url": "https://g", "page_size": 100},
            "secrets": {"webhook_secret": ENC},
        },
    },
    "Mapping": {
        "apiVersion": API,
        "kind": "Mapping",
        "integration": "Microsoft_Graph",
        "organization": "contoso",
        "entity_id": "7c1a0f3e",
        "entity_name": "contoso.onmicrosoft.com",
        "config": {"page_size": 50, "region": "eu", "sku_map": {"a": [1, None, True]}},
        "secrets": {"webhook_secret": ENC},
    },
}

INLINE_OAUTH = {
    "flow": "authorization_code",
    "authorization_url": "https://login.example.com/authorize",
    "token_url": "https://login.example.com/token",
    "client_id": "abc",
}

# (kind, description, changes): changes maps a dotted path to a new value; None deletes it.
DELETE = object()
CASES: list[tuple[str, str, dict[str, Any]]] = [
    # Project
    ("Project", "bundle recipients", {"bundle": {"recipients": ["age1abc"]}}),
    ("Project", "exclude list", {"exclude": ["vendor", "*.gen.yaml"]}),
    ("Project", "bad recipient pattern", {"bundle": {"recipients": ["ssh-rsa AAA"]}}),
    ("Project", "unknown field", {"owner": "me"}),
    ("Project", "wrong apiVersion", {"apiVersion": "bifrost-gitops/v2"}),
    ("Project", "wrong kind", {"kind": "Mapping"}),
    ("Project", "missing apiVersion", {"apiVersion": DELETE}),
    ("Project", "exclude not a list", {"exclude": "vendor"}),
    # Organizations
    ("Organizations", "empty list", {"organizations": []}),
    ("Organizations", "uppercase slug", {"organizations": [{"name": "Contoso"}]}),
    ("Organizations", "slug starting with dash", {"organizations": [{"name": "-x"}]}),
    ("Organizations", "slug too long", {"organizations": [{"name": "a" * 64}]}),
    ("Organizations", "slug max length", {"organizations": [{"name": "a" * 63}]}),
    ("Organizations", "bad uuid", {"organizations": [{"name": "x", "id": "not-a-uuid"}]}),
    ("Organizations", "unknown org field", {"organizations": [{"name": "x", "tenant": "t"}]}),
    ("Organizations", "missing name", {"organizations": [{"display_name": "X"}]}),
    ("Organizations", "int name", {"organizations": [{"name": 5}]}),
    ("Organizations", "missing organizations", {"organizations": DELETE}),
    ("Organizations", "organizations is a mapping", {"organizations": {"name": "x"}}),
    # OAuthProvider
    ("OAuthProvider", "http token url", {"token_url": "http://insecure/token"}),
    ("OAuthProvider", "missing token url", {"token_url": DELETE}),
    ("OAuthProvider", "missing client_id", {"client_id": DELETE}),
    ("OAuthProvider", "empty client_id", {"client_id": ""}),
    ("OAuthProvider", "unknown flow", {"flow": "implicit"}),
    ("OAuthProvider", "refresh_token flow", {"flow": "refresh_token"}),
    ("OAuthProvider", "unknown secret field", {"secrets": {"client_secrt": ENC}}),
    ("OAuthProvider", "int secret", {"secrets": {"client_secret": 123}}),
    ("OAuthProvider", "scopes not a list", {"scopes": "openid"}),
    ("OAuthProvider", "name with slash", {"name": "a/b"}),
    ("OAuthProvider", "empty name", {"name": ""}),
    ("OAuthProvider", "no sops block", {"sops": DELETE}),
    ("OAuthProvider", "sops is null", {"sops": None}),
    ("OAuthProvider", "sops not a mapping", {"sops": "yes"}),
    ("OAuthProvider", "audience", {"audience": "api://x"}),
    # Integration
    ("Integration", "no oauth", {"oauth": DELETE}),
    ("Integration", "oauth null", {"oauth": None}),
    ("Integration", "inline oauth block", {"oauth": INLINE_OAUTH}),
    (
        "Integration",
        "inline block with secrets",
        {"oauth": {**INLINE_OAUTH, "secrets": {"client_secret": ENC}}},
    ),
    ("Integration", "ref plus inline fields", {"oauth": {"provider": "microsoft", "client_id": "abc"}}),
    ("Integration", "ref with unknown field", {"oauth": {"provider": "microsoft", "scope": "x"}}),
    ("Integration", "inline missing token url", {"oauth": {"client_id": "abc"}}),
    ("Integration", "inline unknown field", {"oauth": {**INLINE_OAUTH, "kind": "OAuthProvider"}}),
    ("Integration", "inline with name", {"oauth": {**INLINE_OAUTH, "name": "x"}}),
    ("Integration", "oauth empty mapping", {"oauth": {}}),
    ("Integration", "oauth is a string", {"oauth": "microsoft"}),
    ("Integration", "provider is an int", {"oauth": {"provider": 5}}),
    ("Integration", "unknown config type", {"config_schema": [{"key": "a", "type": "float"}]}),
    ("Integration", "bad config key", {"config_schema": [{"key": "a-b", "type": "string"}]}),
    ("Integration", "empty config key", {"config_schema": [{"key": "", "type": "string"}]}),
    (
        "Integration",
        "required as string",
        {"config_schema": [{"key": "a", "type": "bool", "required": "yes"}]},
    ),
    ("Integration", "required as int", {"config_schema": [{"key": "a", "type": "bool", "required": 1}]}),
    ("Integration", "item missing type", {"config_schema": [{"key": "a"}]}),
    ("Integration", "item unknown field", {"config_schema": [{"key": "a", "type": "int", "default": 1}]}),
    (
        "Integration",
        "options of ints",
        {"config_schema": [{"key": "a", "type": "string", "options": [1, 2]}]},
    ),
    ("Integration", "bad uuid", {"id": "1234"}),
    ("Integration", "good uuid", {"id": "3f0c1d2e-0000-4000-8000-000000000001"}),
    ("Integration", "empty global entity_id", {"entity_id": ""}),
    ("Integration", "defaults unknown block", {"defaults": {"config": {}, "overrides": {}}}),
    ("Integration", "defaults config not mapping", {"defaults": {"config": [1, 2]}}),
    ("Integration", "missing name", {"name": DELETE}),
    ("Integration", "name too long", {"name": "x" * 256}),
    ("Integration", "no config schema", {"config_schema": DELETE, "defaults": DELETE}),
    # Mapping
    ("Mapping", "empty entity id", {"entity_id": ""}),
    ("Mapping", "null entity id", {"entity_id": None}),
    ("Mapping", "int entity id", {"entity_id": 12345}),
    ("Mapping", "missing entity id", {"entity_id": DELETE}),
    ("Mapping", "entity id too long", {"entity_id": "x" * 256}),
    ("Mapping", "bad organization slug", {"organization": "Contoso Ltd"}),
    ("Mapping", "missing integration", {"integration": DELETE}),
    ("Mapping", "unknown field", {"overrides": {}}),
    ("Mapping", "config not a mapping", {"config": "page_size=5"}),
    ("Mapping", "secrets as a list", {"secrets": [ENC]}),
    ("Mapping", "any config values", {"config": {"x": [1, {"y": None}], "z": 1.5, "b": False}}),
    ("Mapping", "with sops", {"sops": SOPS}),
    ("Mapping", "entity_name null", {"entity_name": None}),
    ("Mapping", "entity_name int", {"entity_name": 5}),
    # names and labels: no control, bidi or invisible character (S004); values in config: may
    ("Integration", "name with an escape", {"name": "Halo\x1b[31mPSA"}),
    ("Integration", "name ending in a newline", {"name": "HaloPSA\n"}),
    ("Integration", "name with a workflow command", {"name": "x ::error::y ##[z]"}),
    ("Integration", "name with an emoji", {"name": "Halo \U0001f680"}),
    ("Integration", "description with a bidi override", {"description": "a\u202eb"}),
    (
        "Integration",
        "option with DEL",
        {"config_schema": [{"key": "a", "type": "string", "options": ["\x7f"]}]},
    ),
    ("Organizations", "display_name with NEL", {"organizations": [{"name": "x", "display_name": "a\x85"}]}),
    ("OAuthProvider", "scope with a line separator", {"scopes": ["openid\u2028"]}),
    ("OAuthProvider", "client_id with a zero-width space", {"client_id": "ab\u200bc"}),
    ("Mapping", "entity_name with a BOM", {"entity_name": "\ufeffcontoso"}),
    ("Mapping", "config value with control characters", {"config": {"page_size": 1, "x": "a\x1b\n"}}),
    ("Project", "recipient with a newline", {"bundle": {"recipients": ["age1abc\n"]}}),
]


def apply(doc: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for key, value in changes.items():
        if value is DELETE:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


def pydantic_accepts(kind: str, doc: dict[str, Any]) -> bool:
    try:
        model.KINDS[kind].model_validate(doc)
    except ValidationError:
        return False
    return True


_validators: dict[str, jsonschema.Draft202012Validator] = {}


def schema_accepts(kind: str, doc: dict[str, Any]) -> bool:
    if kind not in _validators:
        schema = json.loads((SCHEMA_DIR / schemas.filename(kind)).read_text())
        _validators[kind] = jsonschema.Draft202012Validator(schema)
    return bool(_validators[kind].is_valid(doc))


@pytest.mark.parametrize("kind", list(VALID))
def test_valid_examples_accepted_by_both(kind: str) -> None:
    assert pydantic_accepts(kind, VALID[kind])
    assert schema_accepts(kind, VALID[kind])


@pytest.mark.parametrize(("kind", "what", "changes"), CASES, ids=[f"{k}-{w}" for k, w, _ in CASES])
def test_schema_and_model_agree(kind: str, what: str, changes: dict[str, Any]) -> None:
    doc = apply(VALID[kind], changes)
    by_model = pydantic_accepts(kind, doc)
    by_schema = schema_accepts(kind, doc)
    assert by_model == by_schema, (
        f"{kind} / {what}: pydantic {'accepts' if by_model else 'rejects'}, "
        f"JSON Schema {'accepts' if by_schema else 'rejects'}"
    )


def test_cases_cover_both_verdicts() -> None:
    verdicts = {pydantic_accepts(k, apply(VALID[k], c)) for k, _, c in CASES}
    assert verdicts == {True, False}
    rejected = sum(1 for k, _, c in CASES if not pydantic_accepts(k, apply(VALID[k], c)))
    assert rejected >= 40
