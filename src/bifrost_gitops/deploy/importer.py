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
import tempfile
from dataclasses import dataclass, field
from typing import Any

from .. import sops, sopsrules
from ..model import API_VERSION
from . import DeployError
from .client import Client
from .manifest import LEDGER
from .plan import KEEP_LIVE_SECRET, normalise_scopes

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


def _canonical(value: Any, typ: str | None) -> tuple[bool, Any]:
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
    values: dict[str, Any],
    types: dict[str, str],
    where: str,
    notes: list[str],
    left_out: str = "not imported",
) -> tuple[dict[str, Any], dict[str, Any]]:
    config: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
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


def read_all(client: Client) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, dict[str, Any]]]:
    orgs = client.get("/api/organizations")
    listed = client.get("/api/integrations")
    items = [
        i for i in (listed.get("items") if isinstance(listed, dict) else []) or [] if i.get("name") != LEDGER
    ]
    details = client.map(lambda i: client.get(f"/api/integrations/{i['id']}"), items)
    with_oauth = [d for d in details if d.get("oauth_config")]
    conns = client.map(lambda d: client.get(f"/api/oauth/connections/{d['id']}"), with_oauth)
    return (
        [o for o in orgs if isinstance(o, dict)] if isinstance(orgs, list) else [],
        details,
        {d["id"]: c for d, c in zip(with_oauth, conns, strict=True)},
    )


def import_live(client: Client, out_dir: str, age: list[str] | None = None) -> Imported:
    """Write the repository into OUT_DIR (which must not hold documents yet)."""
    result = Imported()
    _prepare(out_dir, age, result)
    config_path = os.path.join(out_dir, sopsrules.CONFIG_NAME)
    orgs, details, conns = read_all(client)
    taken: set[str] = set()
    org_slugs: dict[str, str] = {}
    org_docs = []
    for o in sorted(orgs, key=lambda o: (str(o.get("name")), str(o.get("id")))):
        s = slug(str(o.get("name") or "org"), taken)
        org_slugs[o["id"]] = s
        entry: dict[str, Any] = {"name": s, "id": o["id"]}
        if o.get("name"):
            entry["display_name"] = str(o["name"])[:255]
        org_docs.append(entry)
    files: dict[str, dict[str, Any]] = {
        "bifrost-gitops.yaml": {"apiVersion": API_VERSION, "kind": "Project"},
        "organizations.yaml": {"apiVersion": API_VERSION, "kind": "Organizations", "organizations": org_docs},
    }
    dirs: set[str] = set()
    for d in sorted(details, key=lambda d: d["name"]):
        name = d["name"]
        base = f"integrations/{_dirname(name, dirs)}"
        schema = d.get("config_schema") or []
        types = {i["key"]: i["type"] for i in schema}
        doc: dict[str, Any] = {"apiVersion": API_VERSION, "kind": "Integration", "name": name, "id": d["id"]}
        for f in ("entity_id_name", "entity_id", "default_entity_id", "list_entities_data_provider_id"):
            if d.get(f) not in (None, ""):
                doc[f] = d[f]
        oauth = _oauth(d, conns.get(d["id"]), result.notes)
        if oauth:
            doc["oauth"] = oauth
        doc["config_schema"] = [_schema_item(i) for i in schema]
        config, secrets = _values(d.get("config_defaults") or {}, types, f"{name} defaults", result.notes)
        if config or secrets:
            doc["defaults"] = {k: v for k, v in (("config", config), ("secrets", secrets)) if v}
        files[f"{base}/integration.yaml"] = doc
        for m in sorted(d.get("mappings") or [], key=lambda m: org_slugs.get(m.get("organization_id"), "")):
            org = org_slugs.get(m.get("organization_id"))
            if org is None:
                result.notes.append(
                    f"{name}: mapping of organization {m.get('organization_id')} (not active) not imported"
                )
                continue
            mdoc: dict[str, Any] = {
                "apiVersion": API_VERSION,
                "kind": "Mapping",
                "integration": name,
                "organization": org,
                "entity_id": m.get("entity_id") or "",
            }
            if m.get("entity_name") not in (None, ""):
                mdoc["entity_name"] = m["entity_name"]
            config, secrets = _values(
                m.get("config") or {},
                types,
                f"{name}/{org}",
                result.notes,
                "not imported (a mapping's overrides are declared whole: the next apply removes it)",
            )
            if config:
                mdoc["config"] = config
            if secrets:
                mdoc["secrets"] = secrets
            files[f"{base}/mappings/{org}.yaml"] = mdoc
    indent = sopsrules.yaml_indent(config_path)
    for rel, doc in files.items():
        path = os.path.join(out_dir, *rel.split("/"))
        if _has_secrets(doc):
            opts = _sops_options(config_path, path)
            doc = sops.encrypt_document(doc, **opts)
        _write(path, sops.dump_yaml(doc, indent))
        result.files.append(rel)
    return result


def _has_secrets(doc: dict[str, Any]) -> bool:
    if doc.get("secrets"):
        return True
    d = doc.get("defaults")
    o = doc.get("oauth")
    return bool((isinstance(d, dict) and d.get("secrets")) or (isinstance(o, dict) and o.get("secrets")))


def _schema_item(i: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"key": i["key"], "type": i["type"]}
    if i.get("required"):
        out["required"] = True
    if i.get("description") not in (None, ""):
        out["description"] = i["description"]
    if i.get("options") is not None:
        out["options"] = list(i["options"])
    return out


def _oauth(d: dict[str, Any], conn: dict[str, Any] | None, notes: list[str]) -> dict[str, Any] | None:
    oc = d.get("oauth_config")
    if not oc:
        return None
    flow = oc.get("oauth_flow_type") or "authorization_code"
    out: dict[str, Any] = {"flow": flow}
    if oc.get("authorization_url"):
        out["authorization_url"] = oc["authorization_url"]
    out["token_url"] = oc.get("token_url") or ""
    out["scopes"] = normalise_scopes((conn or {}).get("scopes", oc.get("scopes")))
    if conn and conn.get("audience"):
        out["audience"] = conn["audience"]
    out["client_id"] = oc.get("client_id") or ""
    if flow == "client_credentials":
        out["secrets"] = {"client_secret": KEEP_LIVE_SECRET}
        notes.append(
            f"{d['name']}: the OAuth client secret cannot be read back; the repository holds a placeholder "
            "that keeps Bifrost's (replace it with `sops edit` to manage it)"
        )
    return out


def _sops_options(config_path: str, path: str) -> dict[str, Any]:
    try:
        rule = sopsrules.rule_for(config_path, path)
    except sopsrules.RulesError as e:
        raise DeployError(str(e)) from None
    if rule.other_keys or not rule.recipients:
        raise DeployError(
            f"{config_path}: the rule for {path} names no age recipient (only age is supported here)"
        )
    return sopsrules.encrypt_options(rule)


def _prepare(out_dir: str, age: list[str] | None, result: Imported) -> None:
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise DeployError(f"{out_dir}: exists and is not a folder")
    os.makedirs(out_dir, exist_ok=True)
    present = [e for e in os.listdir(out_dir) if e not in (".git", sopsrules.CONFIG_NAME)]
    if present:
        raise DeployError(f"{out_dir}: folder is not empty (import writes a new repository)")
    config = os.path.join(out_dir, sopsrules.CONFIG_NAME)
    if not os.path.exists(config):
        if not age:
            raise DeployError(
                f"{out_dir}: no {sopsrules.CONFIG_NAME}: pass --age RECIPIENT (whoever must read the secrets)"
            )
        bad = [r for r in age if not re.match(r"^age1[0-9a-z]{20,}$", r)]
        if any("SECRET-KEY" in b.upper() for b in bad):  # never echo a private key
            raise DeployError("--age: that is a secret key; pass its public recipient (age1...) instead")
        if bad:
            raise DeployError(f"--age: {', '.join(repr(b) for b in bad)} is not an age recipient (age1...)")
        _write(config, SOPS_CONFIG.format(recipients=",".join(age)))
        result.files.append(sopsrules.CONFIG_NAME)


def _write(path: str, text: str) -> None:
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".import-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
