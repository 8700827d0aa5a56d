"""Rules that span documents: names, references, config values against schemas, secrets.

Messages name keys, types and organizations, never a value that could be a secret: a
config value is only ever repeated when its key is declared non-secret.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .diagnostics import Diagnostic, error, warning
from .loader import Document, Path
from .model import (
    TOKEN_KEYS,
    Integration,
    Mapping,
    OAuthSettings,
    Organization,
    Organizations,
    ProviderRef,
    SchemaItem,
)
from .structure import suggest, trap

ENC_RE = re.compile(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
ENCRYPT_HINT = (
    "set it with `bifrost-gitops secrets set` (or `sops edit {path}`), and rotate it if it was ever pushed"
)


@dataclass
class Parsed:
    """A structurally valid document with its source."""

    doc: Document
    model: Any


@dataclass
class Catalog:
    """Every valid document, indexed; what the cross-document rules and later stages read."""

    project: Parsed | None = None
    orgs: dict[str, tuple[Organization, Parsed, int]] = field(default_factory=dict)
    providers: dict[str, Parsed] = field(default_factory=dict)
    integrations: dict[str, Parsed] = field(default_factory=dict)
    mappings: dict[tuple[str, str], Parsed] = field(default_factory=dict)
    #: lower-cased names declared by documents that failed their schema (already reported)
    unverified: set[str] = field(default_factory=set)

    def documents(self) -> list[Parsed]:
        """Every indexed document, once each (Organizations files appear once, not per org)."""
        seen: dict[str, Parsed] = {}
        head = [self.project] if self.project else []
        orgs = [p for _, p, _ in self.orgs.values()]
        for p in [
            *head,
            *orgs,
            *self.providers.values(),
            *self.integrations.values(),
            *self.mappings.values(),
        ]:
            seen.setdefault(p.doc.path, p)
        return list(seen.values())


def _schema(integ: Integration) -> dict[str, SchemaItem]:
    return {item.key: item for item in integ.config_schema}


def is_ciphertext(value: Any) -> bool:
    return isinstance(value, str) and ENC_RE.match(value) is not None


def oauth_of(cat: Catalog, integ: Integration) -> OAuthSettings | None:
    link = integ.oauth
    if isinstance(link, ProviderRef):
        p = cat.providers.get(link.provider)
        return p.model if p else None
    return link


def check(parsed: Iterable[Parsed], unverified: set[str] | None = None) -> tuple[Catalog, list[Diagnostic]]:
    cat = Catalog(unverified=unverified or set())
    out: list[Diagnostic] = []
    by_kind: dict[str, list[Parsed]] = {}
    for p in parsed:
        by_kind.setdefault(p.model.kind, []).append(p)

    for group in by_kind.values():
        for p in group:
            if "sops" in p.doc.data:
                _check_sops_metadata(p.doc, out)
    for p in by_kind.get("Project", []):
        if cat.project is None:
            cat.project = p
        else:
            out.append(
                error(
                    "S003",
                    p.doc.path,
                    p.doc.pos(("kind",)),
                    f"a second Project document (the first is {cat.project.doc.path})",
                )
            )

    _index_orgs(cat, by_kind.get("Organizations", []), out)
    _index_named(cat.providers, by_kind.get("OAuthProvider", []), "OAuth provider", out)
    _index_named(cat.integrations, by_kind.get("Integration", []), "integration", out)
    for p in by_kind.get("OAuthProvider", []):
        _check_oauth(p.doc, (), p.model, out)
    for p in cat.integrations.values():
        _check_integration(cat, p, out)
    for p in by_kind.get("Mapping", []):
        _check_mapping(cat, p, out)
    for p in cat.integrations.values():
        _check_unmapped(cat, p, out)
    return cat, out


def _index_orgs(cat: Catalog, docs: list[Parsed], out: list[Diagnostic]) -> None:
    ids: dict[str, tuple[str, str]] = {}
    for p in docs:
        model: Organizations = p.model
        for i, org in enumerate(model.organizations):
            path: Path = ("organizations", i, "name")
            seen = cat.orgs.get(org.name.lower())
            if seen is not None:
                first = seen[1].doc
                out.append(
                    error(
                        "R001",
                        p.doc.path,
                        p.doc.pos(path),
                        f"organization {org.name!r} is declared twice "
                        f"(first at {first.path}:{first.pos(('organizations', seen[2], 'name'))[0]})",
                    )
                )
                continue
            cat.orgs[org.name.lower()] = (org, p, i)
            if org.id:
                if org.id.lower() in ids:
                    other, where = ids[org.id.lower()]
                    out.append(
                        error(
                            "R001",
                            p.doc.path,
                            p.doc.pos(("organizations", i, "id")),
                            f"organization {org.name!r} has the same id as {other!r} ({where})",
                        )
                    )
                else:
                    line = p.doc.pos(("organizations", i, "id"))[0]
                    ids[org.id.lower()] = (org.name, f"{p.doc.path}:{line}")


def _index_named(index: dict[str, Parsed], docs: list[Parsed], what: str, out: list[Diagnostic]) -> None:
    lowered: dict[str, Parsed] = {}
    for p in docs:
        name = p.model.name
        first = lowered.get(name.lower())
        if first is not None:
            same = (
                "" if first.model.name == name else f" (as {first.model.name!r}; names differ only in case)"
            )
            out.append(
                error(
                    "R001",
                    p.doc.path,
                    p.doc.pos(("name",)),
                    f"{what} {name!r} is already declared in {first.doc.path}{same}",
                )
            )
            continue
        lowered[name.lower()] = p
        index[name] = p


def _check_oauth(doc: Document, at: Path, oauth: OAuthSettings, out: list[Diagnostic]) -> None:
    """Bifrost's own rules for a provider (it answers 422 otherwise), and its secrets."""
    for i, scope in enumerate(oauth.scopes):
        if not scope or any(c.isspace() or c == "," for c in scope):
            out.append(
                error(
                    "S001",
                    doc.path,
                    doc.pos(at + ("scopes", i)),
                    f"scope {scope!r} is empty or holds a space or comma: Bifrost splits scopes on them",
                    "list each scope as an item of its own",
                )
            )
    secrets = oauth.secrets
    if oauth.flow == "client_credentials" and not (secrets and secrets.client_secret):
        out.append(
            error(
                "S001",
                doc.path,
                doc.pos(at + ("flow",)),
                "flow client_credentials needs secrets.client_secret",
                "add the client secret under secrets: and encrypt the file with sops",
            )
        )
    if oauth.flow == "authorization_code" and not oauth.authorization_url:
        out.append(
            error(
                "S001",
                doc.path,
                doc.pos(at + ("flow",)) if "flow" in _get(doc.data, at) else doc.pos(at),
                "flow authorization_code needs authorization_url",
            )
        )
    if secrets is not None:
        _check_ciphertext(doc, at + ("secrets",), secrets.model_dump(exclude_none=True), out)


def _get(data: Any, path: Path) -> Any:
    for part in path:
        data = data[part]
    return data


def _check_ciphertext(doc: Document, at: Path, values: dict[str, Any], out: list[Diagnostic]) -> None:
    """Every value under a secrets: block is SOPS ciphertext in a sops-encrypted file."""
    present = [k for k, v in values.items() if v not in (None, "")]
    if not present:
        return
    if "sops" not in doc.data:
        out.append(
            error(
                "K002",
                doc.path,
                doc.key_pos(at),
                f"{_dotted(at)} holds values but the file is not encrypted with sops",
                "sops --encrypt --in-place " + doc.path,
            )
        )
        return
    for k in present:
        value = values[k]
        if isinstance(value, (dict, list)):
            out.append(
                error(
                    "C002",
                    doc.path,
                    doc.pos(at + (k,)),
                    f"{_dotted(at + (k,))} is a {_typename(value)[2:]}: a secret value is one string",
                    "a json structure belongs under config:, not secrets:",
                )
            )
        elif not is_ciphertext(value):
            out.append(
                error(
                    "K001",
                    doc.path,
                    doc.pos(at + (k,)),
                    f"{_dotted(at + (k,))} is not SOPS ciphertext (clear text in git)",
                    ENCRYPT_HINT.format(path=doc.path),
                )
            )


_MASTER_KEYS = ("age", "pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms", "key_groups")


def _check_sops_metadata(doc: Document, out: list[Diagnostic]) -> None:
    """The sops block must be one sops can open: a MAC, a timestamp and at least one master key."""
    meta = doc.data["sops"]
    if not isinstance(meta, dict):
        meta = {}
    problems = []
    if not is_ciphertext(meta.get("mac")):
        problems.append("no encrypted mac")
    if not isinstance(meta.get("lastmodified"), str):
        problems.append("no lastmodified")
    if not any(meta.get(k) for k in _MASTER_KEYS):
        problems.append("no master key (age, pgp, kms, ...)")
    if problems:
        out.append(
            error(
                "K003",
                doc.path,
                doc.key_pos(("sops",)),
                f"sops metadata is incomplete: {', '.join(problems)}",
                "re-encrypt the file with sops instead of editing the sops: block by hand",
            )
        )


def raw_secret_findings(doc: Document) -> list[Diagnostic]:
    """The secrets check for a document that failed its schema: its secrets: blocks still
    must be ciphertext, whatever else is wrong with it."""
    out: list[Diagnostic] = []
    if not isinstance(doc.data, dict) or str(doc.data.get("apiVersion", "")).startswith("ENC["):
        return out
    for at in (("secrets",), ("defaults", "secrets"), ("oauth", "secrets")):
        node: Any = doc.data
        for part in at:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            _check_ciphertext(doc, at, node, out)
    return out


def _dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)


def _check_integration(cat: Catalog, p: Parsed, out: list[Diagnostic]) -> None:
    integ: Integration = p.model
    doc = p.doc
    keys: dict[str, int] = {}
    for i, item in enumerate(integ.config_schema):
        if item.key in keys:
            out.append(
                error(
                    "R006",
                    doc.path,
                    doc.pos(("config_schema", i, "key")),
                    f"config key {item.key!r} is declared twice (first at line "
                    f"{doc.pos(('config_schema', keys[item.key], 'key'))[0]})",
                )
            )
        else:
            keys[item.key] = i
        if item.options is not None and item.type != "string":
            out.append(
                error(
                    "S001",
                    doc.path,
                    doc.pos(("config_schema", i, "options")),
                    f"options apply to string keys, not to {item.type} key {item.key!r}",
                )
            )
    link = integ.oauth
    if isinstance(link, ProviderRef):
        if link.provider not in cat.providers and link.provider.lower() not in cat.unverified:
            out.append(
                error(
                    "R005",
                    doc.path,
                    doc.pos(("oauth", "provider")),
                    f"OAuth provider {link.provider!r} is not declared",
                    suggest(link.provider, cat.providers) or "declare it in a kind: OAuthProvider document",
                )
            )
    elif link is not None:
        _check_oauth(doc, ("oauth",), link, out)
    if integ.defaults is not None:
        _check_values(cat, doc, ("defaults",), integ, integ.defaults.config, integ.defaults.secrets, out)


def _check_values(
    cat: Catalog,
    doc: Document,
    at: Path,
    integ: Integration,
    config: dict[str, Any],
    secrets: dict[str, Any],
    out: list[Diagnostic],
) -> None:
    schema = _schema(integ)
    token_ok = at == () and oauth_of(cat, integ) is not None  # mappings may carry org tokens
    for key, value in config.items():
        path = at + ("config", key)
        item = schema.get(key)
        if item is None:
            out.append(_unknown_key(doc, path, key, integ, schema))
        elif item.type == "secret":
            out.append(
                error(
                    "C004",
                    doc.path,
                    doc.key_pos(path),
                    f"{key!r} is secret-typed: it belongs under secrets:, encrypted",
                    "move it under secrets: and encrypt the file; rotate it if it was ever pushed",
                )
            )
        else:
            _check_type(doc, path, item, value, out)
    enc_values: dict[str, Any] = {}
    for key, value in secrets.items():
        path = at + ("secrets", key)
        item = schema.get(key)
        if item is None and not (token_ok and key in TOKEN_KEYS):
            out.append(_unknown_key(doc, path, key, integ, schema))
        elif item is not None and item.type != "secret":
            out.append(
                error(
                    "C005",
                    doc.path,
                    doc.key_pos(path),
                    f"{key!r} is a {item.type} key: it belongs under config:, not secrets:",
                )
            )
        enc_values[key] = value
    _check_ciphertext(doc, at + ("secrets",), enc_values, out)


def _unknown_key(
    doc: Document, path: Path, key: str, integ: Integration, schema: dict[str, SchemaItem]
) -> Diagnostic:
    return error(
        "C001",
        doc.path,
        doc.key_pos(path),
        f"{key!r} is not in the config_schema of integration {integ.name!r}",
        suggest(key, schema) or "add it to config_schema, or remove it",
    )


def _check_type(doc: Document, path: Path, item: SchemaItem, value: Any, out: list[Diagnostic]) -> None:
    if value is None:  # no value: the default (or nothing) applies
        return
    if is_ciphertext(value):
        out.append(
            error(
                "C002",
                doc.path,
                doc.pos(path),
                f"{item.key!r} is a {item.type} key but its value is sops ciphertext",
                "encrypt only secrets: (encrypted_regex: ^secrets$ in .sops.yaml), then re-encrypt",
            )
        )
        return
    t = item.type
    if t == "string":
        if doc.implicit.get(path, ("",))[0] == "date":  # kept as text, but only by our grace
            out.append(trap(doc, path) or error("Y005", doc.path, doc.pos(path), "date where text was meant"))
        elif not isinstance(value, str):
            out.append(
                trap(doc, path)
                or error(
                    "C002", doc.path, doc.pos(path), f"{item.key!r} is a string key, got {_typename(value)}"
                )
            )
        elif item.options is not None and value not in item.options:
            out.append(
                error(
                    "C003",
                    doc.path,
                    doc.pos(path),
                    f"{value!r} is not an option of {item.key!r}",
                    suggest(value, item.options) or f"one of: {', '.join(item.options)}",
                )
            )
    elif t == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            hint = (
                "write the number unquoted"
                if isinstance(value, str) and value.lstrip("-").isdigit()
                else None
            )
            out.append(
                error(
                    "C002",
                    doc.path,
                    doc.pos(path),
                    f"{item.key!r} is an int key, got {_typename(value)}",
                    hint,
                )
            )
    elif t == "bool":
        if not isinstance(value, bool):
            hint = "write true or false, unquoted" if isinstance(value, str) else None
            out.append(
                error(
                    "C002",
                    doc.path,
                    doc.pos(path),
                    f"{item.key!r} is a bool key, got {_typename(value)}",
                    hint,
                )
            )
    elif t == "json" and not _json_ok(value):
        out.append(
            error(
                "C002",
                doc.path,
                doc.pos(path),
                f"{item.key!r} is a json key, but its value holds NaN or infinity",
            )
        )
    elif t == "json" and isinstance(value, str) and not _parses_as_json(value):
        # any YAML value is valid json config, but Bifrost's API answers 400 for such a string
        out.append(
            warning(
                "C010",
                doc.path,
                doc.pos(path),
                f"{item.key!r} is a json key holding text that is not JSON: Bifrost's API refuses it",
                "write the value as YAML (a mapping, list or number), or as JSON text",
            )
        )


def _parses_as_json(text: str) -> bool:
    import json

    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _json_ok(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_json_ok(v) for v in value.values())
    if isinstance(value, list):
        return all(_json_ok(v) for v in value)
    return True


def _typename(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def _has(values: dict[str, Any], key: str) -> bool:
    return values.get(key) not in (None, "")


def _check_mapping(cat: Catalog, p: Parsed, out: list[Diagnostic]) -> None:
    m: Mapping = p.model
    doc = p.doc
    ok = m.organization.lower() in cat.orgs
    if not ok and m.organization.lower() not in cat.unverified:
        out.append(
            error(
                "R002",
                doc.path,
                doc.pos(("organization",)),
                f"organization {m.organization!r} is not declared",
                suggest(m.organization, [o[0].name for o in cat.orgs.values()])
                or "add it to organizations.yaml",
            )
        )
    ip = cat.integrations.get(m.integration)
    if ip is None:
        if m.integration.lower() in cat.unverified:
            return
        out.append(
            error(
                "R003",
                doc.path,
                doc.pos(("integration",)),
                f"integration {m.integration!r} is not declared",
                suggest(m.integration, cat.integrations),
            )
        )
        return
    pair = (m.integration, m.organization.lower())
    first = cat.mappings.get(pair)
    if first is not None:
        out.append(
            error(
                "R004",
                doc.path,
                doc.pos(("organization",)),
                f"a second mapping of {m.integration!r} for {m.organization!r} "
                f"(the first is {first.doc.path})",
            )
        )
        return
    if ok:
        cat.mappings[pair] = p
    integ: Integration = ip.model
    _check_values(cat, doc, (), integ, m.config, m.secrets, out)
    defaults = integ.defaults
    for item in integ.config_schema:
        if not item.required:
            continue
        own = m.secrets if item.type == "secret" else m.config
        inherited = (defaults.secrets if item.type == "secret" else defaults.config) if defaults else {}
        if not (_has(own, item.key) or _has(inherited, item.key)):
            out.append(
                error(
                    "C006",
                    doc.path,
                    doc.pos(("organization",)),
                    f"required key {item.key!r} has no value for organization {m.organization!r}",
                    f"set it under {'secrets' if item.type == 'secret' else 'config'}: here "
                    f"or in the defaults of {ip.doc.path}",
                )
            )
    oauth = oauth_of(cat, integ)
    if (
        oauth is not None
        and "{entity_id}" in oauth.token_url
        and not (m.entity_id or integ.default_entity_id)
    ):
        out.append(
            error(
                "C008",
                doc.path,
                doc.pos(("entity_id",)),
                f"the token URL needs {{entity_id}}, but organization {m.organization!r} has none",
                "set entity_id here, or default_entity_id on the integration",
            )
        )


def _check_unmapped(cat: Catalog, p: Parsed, out: list[Diagnostic]) -> None:
    """Organizations without a mapping get the defaults: warn once if that view is incomplete."""
    integ: Integration = p.model
    unmapped = [o.name for o, _, _ in cat.orgs.values() if (integ.name, o.name.lower()) not in cat.mappings]
    if not unmapped:
        return
    who = f"{len(unmapped)} organization{'s' if len(unmapped) != 1 else ''} without a mapping (e.g. {unmapped[0]!r})"
    d = integ.defaults
    missing = [
        (i, item.key)
        for i, item in enumerate(integ.config_schema)
        if item.required and not (d and _has(d.secrets if item.type == "secret" else d.config, item.key))
    ]
    if missing:
        keys = ", ".join(repr(k) for _, k in missing)
        out.append(
            warning(
                "C007",
                p.doc.path,
                p.doc.pos(("config_schema", missing[0][0], "key")),
                f"required {'keys' if len(missing) > 1 else 'key'} {keys} "
                f"{'have' if len(missing) > 1 else 'has'} no default: {who} get no value",
                "add a default, or ignore this if those organizations do not use it",
            )
        )
    oauth = oauth_of(cat, integ)
    if (
        oauth is not None
        and "{entity_id}" in oauth.token_url
        and not (integ.default_entity_id or integ.entity_id)
    ):
        pos = p.doc.pos(("oauth",))
        out.append(
            warning(
                "C009",
                p.doc.path,
                pos,
                f"the token URL needs {{entity_id}}, but {who} resolve none",
                "set default_entity_id (e.g. 'common') or entity_id on the integration",
            )
        )
