"""The security-relevant part of a diff: what decides which Bifrost organization receives a
client's workflows and secrets, and who can decrypt them.

`diff` shows these first and counts them for ``--exit-code``: an organization's Bifrost UUID or
display name (two organizations swapping ids would send each client's secrets to the other),
an integration's Bifrost UUID (apply would write its schema, defaults and secrets into the
integration that id names),
the bundle's age recipients (a recipient opens every sealed bundle) and the ``.sops.yaml``
creation rules (who future secrets are encrypted to). Only public recipients and key ids are
shown; text that looks like private key material is never printed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from . import loader
from .catalog import Catalog
from .sopsrules import CONFIG_NAME

Kind = Literal["organization", "integration", "bundle.recipients", "sops"]
Action = Literal["added", "removed", "changed"]
PROJECT_FILE = "bifrost-gitops.yaml"
SOPS_FILE = CONFIG_NAME  # where it always was, for the other modules
UNREADABLE = "(unreadable: see findings)"
LIMIT = 160  # characters of a displayed value (recipients and key ids are shorter)

#: .sops.yaml rule fields that list recipients or key ids (a list, or one comma-separated string)
KEY_FIELDS = ("age", "pgp", "kms", "gcp_kms", "azure_keyvault", "hc_vault_transit_uri", "hckms", "hc_vault")
_PRIVATE = re.compile(r"SECRET-KEY|PRIVATE KEY|-----BEGIN", re.IGNORECASE)
PRIVATE = "<private key material: not shown>"


@dataclass(frozen=True)
class Alert:
    """One security-relevant change. ``old``/``new`` are display texts (None: absent/unset)."""

    kind: Kind
    subject: str  # the organization, "bundle.recipients", or the .sops.yaml rule
    field: str | None  # "id", "display_name", "age", "path_regex", ...
    action: Action
    old: str | None
    new: str | None
    note: str | None
    source: str | None  # file:line in head (or "... in base" for what was removed)


class ConfigFile(NamedTuple):
    """A revision's nearest .sops.yaml: its path relative to the repository root, and bytes."""

    path: str
    data: bytes


def _public(text: str) -> str:
    """TEXT, unless it looks like private key material (pasted into .sops.yaml by mistake)."""
    return PRIVATE if _PRIVATE.search(text) else text


def _plain(text: str) -> str:
    text = _public(text)
    return text if len(text) <= LIMIT else text[: LIMIT - 1] + "…"


def _show(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = _public(json.dumps(text, ensure_ascii=False) if isinstance(value, str) else text)
    return text if len(text) <= LIMIT else text[: LIMIT - 1] + "…"


def _at(doc: loader.Document | None, path: loader.Path, base: bool = False) -> str | None:
    if doc is None:
        return None
    return f"{doc.path}:{doc.pos(path)[0]}" + (" in base" if base else "")


# --- organizations -------------------------------------------------------------------------


class _Org(NamedTuple):
    name: str
    id: str | None  # as written
    display_name: str | None
    doc: loader.Document
    at: loader.Path  # the organization's path in its document

    @property
    def key(self) -> str | None:
        """The UUID compared: Bifrost's UUIDs are case-insensitive."""
        return self.id.lower() if self.id else None

    def where(self, field: str) -> str:
        return f"{self.doc.path}:{self.doc.pos((*self.at, field))[0]}"


def _orgs(c: Catalog) -> dict[str, _Org]:
    return {
        key: _Org(o.name, o.id, o.display_name, p.doc, ("organizations", i))
        for key, (o, p, i) in c.orgs.items()
    }


def _action(old: object, new: object) -> Action:
    return "changed" if old is not None and new is not None else ("added" if new is not None else "removed")


def organization_identity(base: Catalog, head: Catalog) -> list[Alert]:
    """An organization's Bifrost UUID or display name changed, or a UUID moved between names."""
    old, new = _orgs(base), _orgs(head)
    owner_old = {o.key: o.name for o in old.values() if o.key}
    owner_new = {o.key: o.name for o in new.values() if o.key}
    alerts: list[Alert] = []
    for key, h in sorted(new.items()):
        b = old.get(key)
        notes = []
        was = owner_old.get(h.key) if h.key else None
        if was is not None and was.lower() != key:
            notes.append(f"this id was {was}'s in base")
        now = owner_new.get(b.key) if b is not None and b.key else None
        if now is not None and now.lower() != key:
            notes.append(f"its old id is now {now}'s")
        note = "; ".join(notes) or None
        if b is None:
            if note:  # a new name for an existing Bifrost organization
                alerts.append(Alert("organization", h.name, "id", "added", None, h.id, note, h.where("id")))
            continue
        if b.key != h.key:
            alerts.append(
                Alert("organization", h.name, "id", _action(b.key, h.key), b.id, h.id, note, h.where("id"))
            )
        if b.display_name != h.display_name:
            alerts.append(
                Alert(
                    "organization",
                    h.name,
                    "display_name",
                    _action(b.display_name, h.display_name),
                    None if b.display_name is None else _show(b.display_name),
                    None if h.display_name is None else _show(h.display_name),
                    None,
                    h.where("display_name"),
                )
            )
    return alerts


def integration_identity(base: Catalog, head: Catalog) -> list[Alert]:
    """An integration's declared Bifrost UUID (``id:``) added, changed or removed."""
    old = {name: p.model.id for name, p in base.integrations.items()}
    owner_old = {i.lower(): name for name, i in old.items() if i}
    alerts: list[Alert] = []
    for name, p in sorted(head.integrations.items()):
        new_id = p.model.id
        old_id = old.get(name)
        if (old_id or "").lower() == (new_id or "").lower():
            continue
        was = owner_old.get(new_id.lower()) if new_id else None
        note = f"this id was {was}'s in base" if was is not None and was != name else None
        if name not in old and note is None:
            continue  # a new integration: no identity to compare with
        where = f"{p.doc.path}:{p.doc.pos(('id',) if new_id else ())[0]}"
        alerts.append(Alert("integration", name, "id", _action(old_id, new_id), old_id, new_id, note, where))
    return alerts


# --- bundle recipients ---------------------------------------------------------------------


def _recipients(doc: loader.Document | None) -> list[str] | None:
    if doc is None or not isinstance(doc.data, dict):
        return None
    bundle = doc.data.get("bundle")
    items = bundle.get("recipients") if isinstance(bundle, dict) else None
    return [str(r) for r in items] if isinstance(items, list) else []


def bundle_recipients(base: loader.Document | None, head: loader.Document | None) -> list[Alert]:
    """Age recipients of sealed bundles added or removed (BASE None: no repository there yet)."""
    old, new = _recipients(base) or [], _recipients(head)
    subject = f"{PROJECT_FILE} bundle.recipients"
    if new is None:
        if not old:
            return []
        return [Alert("bundle.recipients", subject, None, "changed", str(len(old)), UNREADABLE, None, None)]
    alerts = [
        Alert(
            "bundle.recipients",
            subject,
            None,
            "removed",
            _plain(r),
            None,
            "it no longer opens new bundles",
            _at(base, ("bundle", "recipients", old.index(r)), base=True),
        )
        for r in dict.fromkeys(old)
        if r not in new
    ]
    alerts += [
        Alert(
            "bundle.recipients",
            subject,
            None,
            "added",
            None,
            _plain(r),
            "it can open every sealed bundle",
            _at(head, ("bundle", "recipients", new.index(r))),
        )
        for r in dict.fromkeys(new)
        if r not in old
    ]
    return alerts


# --- .sops.yaml ----------------------------------------------------------------------------

Flat = dict[str, "str | tuple[str, ...]"]  # field -> a value, or the set of keys it lists


def _keys(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
    out = []
    for item in items:
        text = _plain(item.strip()) if isinstance(item, str) else _show(item)
        if text:
            out.append(text)
    return tuple(sorted(set(out)))


def _flatten(rule: dict[Any, Any]) -> tuple[Flat, dict[str, loader.Path]]:
    """A rule's fields, key_groups spread out, with the YAML path of each (for its line)."""
    flat: Flat = {}
    paths: dict[str, loader.Path] = {}
    for k, v in rule.items():
        if k == "key_groups" and isinstance(v, list):
            for i, group in enumerate(v):
                items = group.items() if isinstance(group, dict) else [("", group)]
                for gk, gv in items:
                    name = f"key_groups[{i}].{gk}".rstrip(".")
                    flat[name] = _keys(gv) if gk in KEY_FIELDS else _show(gv)
                    paths[name] = (k, i, gk) if gk else (k, i)
        elif k != "path_regex":
            flat[str(k)] = _keys(v) if k in KEY_FIELDS else _show(v)
            paths[str(k)] = (k,)
    return flat, paths


class _Rule(NamedTuple):
    at: int
    label: str
    flat: Flat
    paths: dict[str, loader.Path]


def _rules(cfg: ConfigFile | None) -> tuple[loader.Document | None, dict[tuple[str | None, int], _Rule]]:
    """The rules of a .sops.yaml by (path_regex, occurrence): a rule keeps its identity when
    others are inserted before it."""
    if cfg is None:
        return None, {}
    doc, _ = loader.load_bytes(cfg.data, cfg.path)
    raw = doc.data.get("creation_rules") if doc is not None and isinstance(doc.data, dict) else None
    out: dict[tuple[str | None, int], _Rule] = {}
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        rule = item if isinstance(item, dict) else {"(not a mapping)": item}
        regex = rule.get("path_regex")
        regex = None if regex is None else _public(str(regex))
        n = sum(1 for r, _ in out if r == regex)
        label = f"{cfg.path} creation_rules[{i}] " + (
            f"(path_regex {json.dumps(regex, ensure_ascii=False)})" if regex is not None else "(every file)"
        )
        out[(regex, n)] = _Rule(i, label, *_flatten(rule))
    return doc, out


def sops_rules(base: ConfigFile | None, head: ConfigFile | None) -> list[Alert]:
    """Creation rules added, removed or changed: which field, which recipient or key id."""
    if base == head:
        return []
    bdoc, old = _rules(base)
    hdoc, new = _rules(head)
    alerts: list[Alert] = []
    if (base and base.path) != (head and head.path):
        alerts.append(
            Alert(
                "sops",
                SOPS_FILE,
                "location",
                "changed" if base and head else ("added" if head else "removed"),
                base.path if base else None,
                head.path if head else None,
                "the rules new secrets are encrypted by" if head else "no rules: sops asks for keys",
                None,
            )
        )
    if head is not None and (hdoc is None or not isinstance(hdoc.data, dict)):
        alerts.append(Alert("sops", head.path, None, "changed", None, UNREADABLE, None, None))
        return alerts
    for key in sorted(set(old) | set(new), key=lambda k: (new.get(k) or old[k]).at):
        a, b = old.get(key), new.get(key)
        if b is None:
            assert a is not None
            alerts.append(
                Alert(
                    "sops",
                    a.label,
                    None,
                    "removed",
                    None,
                    None,
                    None,
                    _at(bdoc, ("creation_rules", a.at), True),
                )
            )
        elif a is None:
            alerts.append(
                Alert("sops", b.label, None, "added", None, None, None, _at(hdoc, ("creation_rules", b.at)))
            )
        alerts += _rule_fields(a, b, bdoc, hdoc)
    common = [k for k in old if k in new]
    if [k for k in sorted(common, key=lambda k: new[k].at)] != common:
        alerts.append(
            Alert(
                "sops",
                f"{head.path if head else SOPS_FILE} creation_rules",
                "order",
                "changed",
                None,
                None,
                "the first rule whose path_regex matches a file applies",
                None,
            )
        )
    alerts += _other_settings(bdoc, hdoc)
    return alerts


def _rule_fields(
    a: _Rule | None, b: _Rule | None, bdoc: loader.Document | None, hdoc: loader.Document | None
) -> list[Alert]:
    rule = b or a
    label = rule.label if rule is not None else ""
    of, nf = (a.flat if a else {}), (b.flat if b else {})
    alerts: list[Alert] = []
    for name in list(dict.fromkeys([*nf, *of])):
        x, y = of.get(name), nf.get(name)
        if x == y:
            continue
        src = _at(hdoc, ("creation_rules", b.at, *b.paths[name])) if b and name in nf else None
        old_src = _at(bdoc, ("creation_rules", a.at, *a.paths[name]), True) if a and name in of else None
        if isinstance(x, tuple) or isinstance(y, tuple):
            xs = x if isinstance(x, tuple) else (() if x is None else (x,))
            ys = y if isinstance(y, tuple) else (() if y is None else (y,))
            alerts += [
                Alert("sops", label, name, "removed", k, None, None, src or old_src)
                for k in xs
                if k not in ys
            ]
            alerts += [Alert("sops", label, name, "added", None, k, None, src) for k in ys if k not in xs]
        else:
            action: Action = (
                "changed" if x is not None and y is not None else ("added" if y is not None else "removed")
            )
            alerts.append(Alert("sops", label, name, action, x, y, None, src or old_src))
    return alerts


def _other_settings(bdoc: loader.Document | None, hdoc: loader.Document | None) -> list[Alert]:
    """Top-level settings other than creation_rules (stores, destination_rules, ...)."""
    old = bdoc.data if bdoc is not None and isinstance(bdoc.data, dict) else {}
    new = hdoc.data if hdoc is not None and isinstance(hdoc.data, dict) else {}
    alerts = []
    for k in list(dict.fromkeys([*new, *old])):
        if k == "creation_rules" or old.get(k) == new.get(k):
            continue
        x, y = old.get(k), new.get(k)
        action: Action = "changed" if k in old and k in new else ("added" if k in new else "removed")
        src = _at(hdoc, (k,)) if k in new else _at(bdoc, (k,), True)
        subject = hdoc.path if hdoc is not None else bdoc.path if bdoc is not None else SOPS_FILE
        alerts.append(
            Alert(
                "sops",
                subject,
                str(k),
                action,
                None if x is None else _show(x),
                None if y is None else _show(y),
                None,
                src,
            )
        )
    return alerts
