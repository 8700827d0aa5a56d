"""`import -o DIR`: write a v1 repository from a live Bifrost (the adoption path).

Read with a bounded number of requests (organizations, integrations, one detail and one OAuth
connection per integration), then write:

- ``bifrost-gitops.yaml``, ``organizations.yaml`` (slugs made from the org names, the Bifrost
  UUIDs, the names as ``display_name``);
- ``integrations/<Name>/integration.yaml``: scalar fields, ``config_schema``, defaults, and the
  OAuth provider inline;
- ``integrations/<Name>/mappings/<org>.yaml``: entity id/name and the org's overrides.

Secret-typed values go under ``secrets:`` and the file is encrypted with the native sops to the
recipients of DIR/.sops.yaml (created from ``--age`` when missing; ``encrypted_regex:
^secrets$``, ``mac_only_encrypted``). An OAuth client secret cannot be read back: a
client-credentials provider gets the placeholder :data:`~.plan.KEEP_LIVE_SECRET`, which plan
and apply read as "keep the secret Bifrost has" (never sent) until it is replaced with the real
one. Values that cannot be written faithfully are reported and left out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from pydantic import BaseModel, ValidationError

from .. import model, sops, sopsrules
from ..atomic import write_atomic
from ..escape import has_unsafe
from ..model import API_VERSION
from ..repo import load
from . import DeployError, replies
from .client import Client
from .live import read_connection, read_detail
from .manifest import LEDGER
from .plan import KEEP_LIVE_SECRET, normalise_scopes
from .replies import Connection, Detail, Org, SchemaItem, describe
from .spec import Json

#: a YAML document (or a part of one) being written
Doc: TypeAlias = dict[str, object]

SOPS_CONFIG = """\
# sops encrypts only the values under a `secrets:` key, so reviews show config in clear.
stores:
  yaml:
    indent: 2
creation_rules:
  - path_regex: \\.ya?ml$
    encrypted_regex: ^secrets$
    mac_only_encrypted: true
    age: {recipients}
"""


@dataclass
class Imported:
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: what was not written because our format refuses it: "<item>: <why>", one per item
    left_out: list[str] = field(default_factory=list)
    requests: int = 0


def slug(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:55] or "org"
    if not base[0].isalnum():
        base = "org-" + base
    out, n = base, 2
    while out in taken:
        out, n = f"{base}-{n}", n + 1
    taken.add(out)
    return out


def _dirname(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip(".") or "integration"
    out, n = base, 2
    while out.lower() in taken:
        out, n = f"{base}_{n}", n + 1
    taken.add(out.lower())
    return out


def _canonical(value: Json, typ: str | None) -> tuple[bool, Json]:
    """(ok, value as the repository needs it) for a live value of schema type TYP."""
    if value in (None, ""):
        return False, None
    if typ == "int":
        if isinstance(value, bool) or not isinstance(value, int | str):
            return False, None
        if isinstance(value, str):
            try:
                return True, int(value)
            except ValueError:
                return False, None
        return True, value
    if typ == "bool":
        return isinstance(value, bool), value
    if typ == "json" and isinstance(value, str):
        try:
            return True, json.loads(value)
        except ValueError:
            return False, None
    if typ == "string":
        return isinstance(value, str), value
    return True, value


def _values(
    values: Mapping[str, Json],
    types: dict[str, str],
    where: str,
    notes: list[str],
    left_out: str = "not imported",
) -> tuple[dict[str, Json], dict[str, Json]]:
    config: dict[str, Json] = {}
    secrets: dict[str, Json] = {}
    for key in sorted(values):
        typ = types.get(key)
        if typ is None:
            notes.append(f"{where}: {key!r} is not in the config schema; {left_out}")
            continue
        ok, value = _canonical(values[key], typ)
        if not ok:
            if values[key] not in (None, ""):
                shown = "a secret value" if typ == "secret" else f"{values[key]!r}"
                notes.append(f"{where}: {key!r} holds {shown} that is not a valid {typ}; {left_out}")
            continue
        (secrets if typ == "secret" else config)[key] = value
    return config, secrets


def read_all(client: Client) -> tuple[list[Org], list[Detail], dict[str, Connection]]:
    """Organizations, every integration's detail (the ledger's aside) and OAuth connections,
    each reply checked against its shape (raises BadReply)."""
    orgs = replies.get(client, "/api/organizations", replies.ORGS)
    listed = replies.get(client, "/api/integrations", replies.INTEGRATIONS).items
    items = [i for i in listed if i.name != LEDGER]
    details = client.map(lambda i: read_detail(client, i.id), items)
    with_oauth = [d for d in details if d.oauth_config is not None]
    conns = client.map(lambda d: read_connection(client, d.id), with_oauth)
    return orgs, details, {d.id: c for d, c in zip(with_oauth, conns, strict=True)}


def name_problem(name: str) -> str | None:
    """Why a live name cannot be a name in the repository, or None."""
    if not name.strip():
        return "its name is blank"
    if "/" in name:
        return 'its name holds "/" (names here are folder names and references)'
    if has_unsafe(name):
        return "its name holds a control, bidi or invisible character"
    if len(name) > 255:
        return "its name is longer than 255 characters"
    return None


def _label_problem(what: str, value: str | None) -> str | None:
    if value is not None and has_unsafe(value):
        return f"its {what} holds a control, bidi or invisible character"
    return None


def _model_problem(kind: type[BaseModel], doc: Doc) -> str | None:
    """What our format refuses in DOC (checked as validate checks it), or None."""
    try:
        kind.model_validate(doc)
    except ValidationError as e:
        return describe(e)
    return None


def import_live(client: Client, out_dir: str, age: list[str] | None = None) -> Imported:
    """Write the repository into OUT_DIR (which must not hold documents yet).

    Only what our format accepts is written: an integration or mapping whose names (or any
    other field) it refuses is left out whole and listed in ``left_out``; the result passes
    ``validate``.
    """
    result = Imported()
    config_path = os.path.join(out_dir, sopsrules.CONFIG_NAME)
    new_config = _check_target(out_dir, age)
    orgs, details, conns = read_all(client)
    if new_config is not None:
        _write(config_path, new_config)
        result.files.append(sopsrules.CONFIG_NAME)
    taken: set[str] = set()
    org_slugs: dict[str, str] = {}
    org_docs = []
    for o in sorted(orgs, key=lambda o: (o.name, o.id)):
        s = slug(o.name or "org", taken)
        org_slugs[o.id] = s
        entry: dict[str, str] = {"name": s, "id": o.id}
        if o.name:
            why = _label_problem("name", o.name)
            if why:
                result.left_out.append(f"organization {s} ({o.id}): display_name: {why}")
            else:
                entry["display_name"] = o.name[:255]
        org_docs.append(entry)
    files: dict[str, Doc] = {
        "bifrost-gitops.yaml": {"apiVersion": API_VERSION, "kind": "Project"},
        "organizations.yaml": {"apiVersion": API_VERSION, "kind": "Organizations", "organizations": org_docs},
    }
    labels: dict[str, str] = {}  # integration folder -> its name, for the report
    dirs: set[str] = set()
    names_seen: dict[str, str] = {}  # lower-case name -> name (names here are case-insensitive)
    for d in sorted(details, key=lambda d: (d.name, d.id)):
        name = d.name
        why = name_problem(name) or _label_problem("entity_id_name", d.entity_id_name)
        if why is None and name.lower() in names_seen:
            why = f"its name differs only in case from {names_seen[name.lower()]!r} (names here are case-insensitive)"
        if why:
            result.left_out.append(f"integration {name!r} ({d.id}): {why}")
            continue
        schema = d.config_schema or []
        types: dict[str, str] = {i.key: i.type for i in schema}
        doc: Doc = {"apiVersion": API_VERSION, "kind": "Integration", "name": name, "id": d.id}
        for f in ("entity_id_name", "entity_id", "default_entity_id", "list_entities_data_provider_id"):
            if getattr(d, f) not in (None, ""):
                doc[f] = getattr(d, f)
        notes: list[str] = []
        oauth = _oauth(d, conns.get(d.id), notes)
        if oauth:
            doc["oauth"] = oauth
        doc["config_schema"] = [_schema_item(i) for i in schema]
        config, secrets = _values(d.config_defaults or {}, types, f"{name} defaults", notes)
        if config or secrets:
            doc["defaults"] = {k: v for k, v in (("config", config), ("secrets", secrets)) if v}
        why = _model_problem(model.Integration, doc)
        if why:
            result.left_out.append(f"integration {name!r} ({d.id}): {why}")
            continue
        names_seen[name.lower()] = name
        result.notes += notes
        folder = _dirname(name, dirs)
        labels[folder] = name
        base = f"integrations/{folder}"
        files[f"{base}/integration.yaml"] = doc
        for m in sorted(d.mappings, key=lambda m: org_slugs.get(m.organization_id or "", "")):
            org = org_slugs.get(m.organization_id or "")
            if org is None:
                result.notes.append(
                    f"{name}: mapping of organization {m.organization_id} (not active) not imported"
                )
                continue
            mdoc: Doc = {
                "apiVersion": API_VERSION,
                "kind": "Mapping",
                "integration": name,
                "organization": org,
                "entity_id": m.entity_id or "",
            }
            if m.entity_name not in (None, ""):
                mdoc["entity_name"] = m.entity_name
            notes = []
            config, secrets = _values(
                m.config or {},
                types,
                f"{name}/{org}",
                notes,
                "not imported (a mapping's overrides are declared whole: the next apply removes it)",
            )
            if config:
                mdoc["config"] = config
            if secrets:
                mdoc["secrets"] = secrets
            if m.oauth_token_id is not None:
                mdoc["oauth"] = "own"  # the organization's own connection (a per-mapping token)
            why = _label_problem("entity_name", m.entity_name) or _model_problem(model.Mapping, mdoc)
            if why:
                result.left_out.append(f"mapping {name}/{org}: {why} ({_MAPPING_LEFT_OUT})")
                continue
            result.notes += notes
            files[f"{base}/mappings/{org}.yaml"] = mdoc
    indent = sopsrules.yaml_indent(config_path)
    for rel, doc in files.items():
        path = os.path.join(out_dir, *rel.split("/"))
        sealed = sops.encrypt_document(doc, **_sops_options(config_path, path)) if _has_secrets(doc) else doc
        _write(path, sops.dump_yaml(sealed, indent))
        result.files.append(rel)
    _drop_invalid(out_dir, labels, result)
    return result


_MAPPING_LEFT_OUT = "plan shows it as drift; apply --prune would delete it"
_ROUNDS = 4  # removing a mapping can change what its integration's checks find, once


def _drop_invalid(out_dir: str, labels: dict[str, str], result: Imported) -> None:
    """The backstop: validate what was written and remove what validate refuses (an integration's
    folder when its integration.yaml fails, else the mapping file), until the repository passes."""
    for attempt in range(_ROUNDS):
        errors = [d for d in load(out_dir).diagnostics if d.severity == "error"]
        if not errors:
            return
        if attempt == _ROUNDS - 1:
            raise DeployError(f"{out_dir}: the imported repository still does not validate")
        for d in errors:
            parts = d.path.split("/")
            if len(parts) < 3 or parts[0] != "integrations":
                raise DeployError(
                    f"{out_dir}: the imported repository does not validate: "
                    f"{d.location()}: {d.code} {d.message}"
                )
            name = labels.get(parts[1], parts[1])
            if parts[2] == "integration.yaml":
                target = os.path.join(out_dir, "integrations", parts[1])
                what, after = f"integration {name!r}", ""
            else:
                target = os.path.join(out_dir, *parts)
                what = f"mapping {name}/{os.path.splitext(parts[-1])[0]}"
                after = f" ({_MAPPING_LEFT_OUT})"
            if not os.path.exists(target):
                continue  # another finding removed it already
            if os.path.isdir(target):
                shutil.rmtree(target)
            else:
                os.unlink(target)
            gone = os.path.relpath(target, out_dir).replace(os.sep, "/")
            result.files = [f for f in result.files if f != gone and not f.startswith(gone + "/")]
            result.left_out.append(f"{what}: {d.code} {d.message}{after}")


def _has_secrets(doc: Doc) -> bool:
    if doc.get("secrets"):
        return True
    d = doc.get("defaults")
    o = doc.get("oauth")
    return bool((isinstance(d, dict) and d.get("secrets")) or (isinstance(o, dict) and o.get("secrets")))


def _schema_item(i: SchemaItem) -> Doc:
    out: Doc = {"key": i.key, "type": i.type}
    if i.required:
        out["required"] = True
    if i.description not in (None, ""):
        out["description"] = i.description
    if i.options is not None:
        out["options"] = list(i.options)
    return out


def _oauth(d: Detail, conn: Connection | None, notes: list[str]) -> dict[str, object] | None:
    oc = d.oauth_config
    if oc is None:
        return None
    flow = oc.oauth_flow_type or "authorization_code"
    out: Doc = {"flow": flow}
    if oc.authorization_url:
        out["authorization_url"] = oc.authorization_url
    out["token_url"] = oc.token_url or ""
    out["scopes"] = normalise_scopes(
        conn.scopes if conn is not None and conn.scopes is not None else oc.scopes
    )
    if conn is not None and conn.audience:
        out["audience"] = conn.audience
    out["client_id"] = oc.client_id or ""
    if flow == "client_credentials":
        out["secrets"] = {"client_secret": KEEP_LIVE_SECRET}
        notes.append(
            f"{d.name}: the OAuth client secret cannot be read back; the repository holds a placeholder "
            "that keeps Bifrost's (replace it with `sops edit` to manage it)"
        )
    return out


def _sops_options(config_path: str, path: str) -> sopsrules.EncryptOptions:
    try:
        rule = sopsrules.rule_for(config_path, path)
    except sopsrules.RulesError as e:
        raise DeployError(str(e)) from None
    if rule.other_keys or not rule.recipients:
        raise DeployError(
            f"{config_path}: the rule for {path} names no age recipient (only age is supported here)"
        )
    return sopsrules.encrypt_options(rule)


def _check_target(out_dir: str, age: list[str] | None) -> str | None:
    """Refuse an unusable OUT_DIR before anything is read or written; the .sops.yaml to write
    (from --age) when it has none."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise DeployError(f"{out_dir}: exists and is not a folder")
    os.makedirs(out_dir, exist_ok=True)
    present = [e for e in os.listdir(out_dir) if e not in (".git", sopsrules.CONFIG_NAME)]
    if present:
        raise DeployError(f"{out_dir}: folder is not empty (import writes a new repository)")
    if os.path.exists(os.path.join(out_dir, sopsrules.CONFIG_NAME)):
        return None
    if not age:
        raise DeployError(
            f"{out_dir}: no {sopsrules.CONFIG_NAME}: pass --age RECIPIENT (whoever must read the secrets)"
        )
    bad = [r for r in age if not re.match(r"^age1[0-9a-z]{20,}$", r)]
    if any("SECRET-KEY" in b.upper() for b in bad):  # never echo a private key
        raise DeployError("--age: that is a secret key; pass its public recipient (age1...) instead")
    if bad:
        raise DeployError(f"--age: {', '.join(repr(b) for b in bad)} is not an age recipient (age1...)")
    return SOPS_CONFIG.format(recipients=",".join(age))


def _write(path: str, text: str) -> None:
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    write_atomic(path, text.encode("utf-8"), mode=0o644, prefix=".import-", suffix=".tmp")
