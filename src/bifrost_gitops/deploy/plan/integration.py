"""One declared integration: create it or PUT its changed scalar fields, then its schema (its
own PUT, before any value), then its defaults; its mappings and OAuth provider follow, after
these "head" operations (docs/bifrost-api.md#apply-order)."""

from __future__ import annotations

from collections.abc import Mapping as Map
from dataclasses import dataclass, field
from typing import Literal

from ..replies import Connection, Detail, Integration, Mapping, OAuthSummary
from ..replies import SchemaItem as LiveItem
from ..spec import Action, Edit, IntegrationSpec, Resource, SchemaItemSpec, schema_item
from .mappings import plan_mappings
from .oauth import plan_oauth
from .ops import Change, Options, Plan, blank
from .values import Keys, config_diff

_Field = Literal["entity_id", "entity_id_name", "default_entity_id", "list_entities_data_provider_id"]
_CREATE_FIELDS: tuple[_Field, ...] = ("entity_id", "entity_id_name", "default_entity_id")
_FIELDS: tuple[_Field, ...] = (*_CREATE_FIELDS, "list_entities_data_provider_id")
#: fields Bifrost keeps once set: a PUT of "" does not clear them
_UNCLEARABLE = ("entity_id", "list_entities_data_provider_id")
_ATTRS: tuple[Literal["type", "required", "description", "options"], ...] = (
    "type",
    "required",
    "description",
    "options",
)


@dataclass
class _Live:
    """What Bifrost has of the integration (nothing, for one to create)."""

    schema: list[SchemaItemSpec] = field(default_factory=list)
    defaults: dict[str, object] = field(default_factory=dict)
    mappings: list[Mapping] = field(default_factory=list)
    oauth: OAuthSummary | None = None
    connection: Connection | None = None


def schema_items(items: list[SchemaItemSpec] | None) -> list[SchemaItemSpec]:
    """The manifest's schema items, normalised (required a bool, options a list)."""
    return [_item(i) for i in items or []]


def _item(i: SchemaItemSpec) -> SchemaItemSpec:
    options = i.get("options")
    return SchemaItemSpec(
        key=i.get("key"),
        type=i.get("type"),
        required=bool(i.get("required")),
        description=i.get("description"),
        options=list(options) if options is not None else None,
    )


def live_schema(items: list[LiveItem] | None) -> list[SchemaItemSpec]:
    """The live schema in the manifest's form, so the two compare item by item."""
    return [schema_item(i) for i in items or []]


def plan_integration(
    plan: Plan,
    want: IntegrationSpec,
    have: Integration | None,
    detail: Detail | None,
    connection: Connection | None,
    opts: Options,
    org_names: Map[str, str],
) -> None:
    """Every operation that brings integration WANT to what the repository declares."""
    want_schema = schema_items(want["config_schema"])
    if have is None:
        head = _create(plan, want, want_schema)
        live = _Live()
    else:
        assert detail is not None
        head = _update_fields(plan, want, detail)
        live = _Live(
            live_schema(detail.config_schema),
            dict(detail.config_defaults or {}),
            list(detail.mappings),
            detail.oauth_config,
            connection,
        )
    keys = _keys(want_schema, live)
    if have is not None and want_schema != live.schema:
        head.append(_schema(plan, want["name"], want_schema, live.schema, keys, head, opts))
    what = f"integration {want['name']}: default"
    body, changes = config_diff(plan, what, want["defaults"], live.defaults, keys, opts.prune)
    if body:
        path = "/api/integrations/{iid}/config"
        head.append(
            plan.add(
                Action.UPDATE,
                Resource.DEFAULTS,
                want["name"],
                path,
                body={"config": body},
                changes=changes,
                deps=head,
            )
        )
    exists = have is not None
    plan_mappings(plan, want, live.mappings, keys, head, exists=exists, opts=opts, org_names=org_names)
    plan_oauth(plan, want["name"], want.get("oauth"), live.oauth, live.connection, head, opts)


def _keys(want_schema: list[SchemaItemSpec], live: _Live) -> Keys:
    want_types = {i["key"]: i["type"] for i in want_schema}
    live_types = {i["key"]: i["type"] for i in live.schema}
    retyped = {k for k in want_types if k in live_types and live_types[k] != want_types[k]}
    # a key new to the schema whose values already exist live: those rows were stored untyped
    # (type string, unencrypted, outside the cascade) and only a write types them
    # (docs/bifrost-api.md#config-values)
    live_valued = set(live.defaults).union(*(m.config or {} for m in live.mappings))
    retyped |= {k for k in want_types if k not in live_types and k in live_valued}
    gone = frozenset(k for k in live_types if k not in want_types)
    return Keys(want_types, live_types, frozenset(retyped), gone)


def _create(plan: Plan, want: IntegrationSpec, want_schema: list[SchemaItemSpec]) -> list[int]:
    """POST the integration (schema and entity fields); the data provider in a PUT after it."""
    name = want["name"]
    body: dict[str, object] = {"name": name, "config_schema": want_schema}
    changes = [Change(f"schema.{i['key']}", Edit.ADD, None, i["type"]) for i in want_schema]
    for f in _CREATE_FIELDS:
        value = want[f]
        if not blank(value):
            body[f] = value
            changes.append(Change(f, Edit.ADD, None, value))
    head = [
        plan.add(Action.CREATE, Resource.INTEGRATION, name, "/api/integrations", body=body, changes=changes)
    ]
    provider = want["list_entities_data_provider_id"]
    if provider:  # the create ignores it (docs/bifrost-api.md#integrations)
        change = Change("list_entities_data_provider_id", Edit.ADD, None, provider)
        body = {"list_entities_data_provider_id": provider}
        head.append(_put(plan, name, body, [change], head))
    return head


def _update_fields(plan: Plan, want: IntegrationSpec, detail: Detail) -> list[int]:
    """A PUT of the scalar fields that changed (partial), when any did."""
    name = want["name"]
    body: dict[str, object] = {}
    changes: list[Change] = []
    for f in _FIELDS:
        new, old = want[f], getattr(detail, f)
        if (blank(new) and blank(old)) or new == old:
            continue
        if blank(new) and f in _UNCLEARABLE:
            plan.drift.append(f"integration {name}: {f} is set in Bifrost and cannot be cleared over the API")
            continue
        body[f] = "" if new is None else new
        changes.append(Change(f, Edit.ADD if blank(old) else Edit.CHANGE, old, new))
    return [_put(plan, name, body, changes, [])] if body else []


def _put(plan: Plan, name: str, body: dict[str, object], changes: list[Change], deps: list[int]) -> int:
    """A PUT of an integration's scalar fields (partial: only what changed)."""
    path = "/api/integrations/{iid}"
    return plan.add(Action.UPDATE, Resource.INTEGRATION, name, path, body=body, changes=changes, deps=deps)


def _schema(
    plan: Plan,
    name: str,
    want: list[SchemaItemSpec],
    have: list[SchemaItemSpec],
    keys: Keys,
    head: list[int],
    opts: Options,
) -> int:
    """The schema PUT (whole, in declared order); a key removal is refused without
    --allow-key-removal (it deletes every value of the key)."""
    removed = [k for k in keys.live if k in keys.gone]
    path = "/api/integrations/{iid}"
    index = plan.add(
        Action.UPDATE,
        Resource.SCHEMA,
        name,
        path,
        body={"config_schema": want},
        changes=schema_changes(want, have, removed, keys),
        deps=head,
        destructive=bool(removed),
    )
    if removed and not opts.allow_key_removal:
        many = len(removed) > 1
        plan.blocked.append(
            f"integration {name}: removing schema key{'s' if many else ''} "
            f"{', '.join(removed)} deletes {'their' if many else 'its'} default and "
            "every organization's value in Bifrost: apply with --allow-key-removal to do it"
        )
    return index


def schema_changes(
    want: list[SchemaItemSpec], have: list[SchemaItemSpec], removed: list[str], keys: Keys
) -> list[Change]:
    """Per item: added, or each attribute that changed; then removals; else only the order."""
    changes = []
    live_by_key = {i["key"]: i for i in have}
    for item in want:
        old = live_by_key.get(item["key"])
        if old is None:
            changes.append(Change(f"schema.{item['key']}", Edit.ADD, None, item["type"]))
        elif old != item:
            for f in _ATTRS:
                if old[f] != item[f]:
                    changes.append(Change(f"schema.{item['key']}.{f}", Edit.CHANGE, old[f], item[f]))
    changes += [Change(f"schema.{k}", Edit.REMOVE, keys.live[k], None) for k in removed]
    if not changes:
        changes.append(Change("schema", Edit.CHANGE, "order", "declared order"))
    return changes
