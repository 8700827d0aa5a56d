"""`bifrost-gitops new org|integration|mapping`: one more document in an existing repository.

Adding an organization used to mean copying a file and fixing its `$schema` path by hand. These
scaffolds write where the repository already keeps that kind of document (its organizations
file, its integrations folder, the integration's mappings folder), point `$schema` at the
schema files its documents already use, and write only what validates. Names come from the
command line and end up in paths: they pass the model's own rules plus path rules before use.
An organization is appended to the organizations file as text, so every other byte of the file
(comments, quoting, indentation) stays as it was.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

import yaml
from pydantic import TypeAdapter, ValidationError

from . import structure
from .atomic import new_file_mode, write_atomic
from .catalog import Catalog
from .diagnostics import Diagnostic
from .errors import BifrostGitopsError
from .escape import describe, first_unsafe, term
from .loader import Document, load_bytes, load_file, wanted
from .model import AnyDocument, Integration, Mapping, Name, Organizations, ProviderName, Slug, Text255, Uuid
from .repo import Result
from .scaffold import ORGANIZATIONS_HEAD
from .schemas import COMMENT_RE, comment, dump, filename, link
from .valuechecks import BOOL_WORDS

_SCHEMA_DIR = ".schemas"  # where `init` puts them
_SAMPLE = 200  # documents read for their `$schema` comment (a repository uses one style)


class NewError(BifrostGitopsError):
    """The document cannot be added (exists, bad name, unknown reference): exit 2."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class Written:
    """What a scaffold wrote (absolute paths; ``changed`` was edited, the rest created)."""

    created: list[str]
    changed: list[str]
    next_step: str


# --- names ----------------------------------------------------------------------------------

#: the model's own types for what the command line names, with the rule said in words
_RULES: dict[str, tuple[TypeAdapter[str], str]] = {
    "slug": (
        TypeAdapter(Slug),
        "a lower-case slug: a-z, 0-9 and '-', first a letter or digit, at most 63 characters",
    ),
    "uuid": (TypeAdapter(Uuid), "a UUID (8-4-4-4-12 hex digits)"),
    "name": (TypeAdapter(Name), "1 to 255 characters, no '/'"),
    "provider": (TypeAdapter(ProviderName), "1 to 100 characters, no '/'"),
    "text": (TypeAdapter(Text255), "at most 255 characters"),
}


def _checked(value: str, rule: str, what: str) -> str:
    """VALUE when the model accepts it as RULE (the same rules validate applies), else NewError."""
    adapter, words = _RULES[rule]
    _shown_as_is(value, what)
    try:
        adapter.validate_python(value)
    except ValidationError:
        raise NewError(f"{what} {value!r} is not valid: {words}") from None
    return value


def _shown_as_is(value: str, what: str) -> None:
    """Refuse a control, bidi or invisible character: what a reviewer reads must be what it is."""
    ch = first_unsafe(value)
    if ch is not None:
        raise NewError(
            f"{what} {value!r} holds {describe(ch)} ({term(ch)})",
            "names and values are shown in terminals, CI logs and pull-request comments",
        )


def _path_safe(value: str, what: str) -> str:
    """A name that becomes a folder or file name: no path tricks, nothing hidden from discovery."""
    if value.startswith((".", "-")) or "\\" in value or value != value.strip():
        raise NewError(
            f"{what} {value!r} cannot be a folder name",
            "no leading '.' or '-', no '\\', no leading or trailing blanks",
        )
    return value


#: text that every YAML reader (1.1 like PyYAML, 1.2 like sops' Go library) reads as text
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_ .,()&+'-]*")
_WORDS = {*BOOL_WORDS, "null"}  # booleans in YAML 1.1, or null
_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")  # its dashes keep it text


def _scalar(value: str) -> str:
    """VALUE as a YAML scalar that reads back as that text in any YAML version: plain when it
    is plainly text, else double-quoted (`no`, `01234`, `1e3`, `2024-01-01`, `a: b`)."""
    if _UUID.fullmatch(value):
        return value
    if _PLAIN.fullmatch(value) and value == value.strip() and value.lower() not in _WORDS:
        try:
            if yaml.safe_load(f"k: {value}\n") == {"k": value}:
                return value
        except yaml.YAMLError:
            pass
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


# --- where things go ------------------------------------------------------------------------


def _inside(root: str, rel: str) -> str:
    """The absolute path of REL, refused unless it stays inside the repository."""
    path = os.path.normpath(os.path.join(root, *rel.split("/")))
    real_root = os.path.realpath(root)
    parent = os.path.realpath(os.path.dirname(path))
    if parent != real_root and not parent.startswith(real_root + os.sep):
        raise NewError(f"{rel}: outside the repository")
    return path


def _schema_dir(result: Result, kind: str) -> str:
    """The folder (repository-relative, or a URL) of the schema files the documents already
    point at, when KIND's schema is there; `.schemas` (init's) otherwise."""
    for p in result.catalog.documents()[:_SAMPLE]:
        found = COMMENT_RE.search(_head(os.path.join(result.root, p.doc.path)))
        if found is None:
            continue
        target = found.group(1)
        if "://" in target:
            return target.rsplit("/", 1)[0]
        folder = os.path.normpath(os.path.join(os.path.dirname(p.doc.path), os.path.dirname(target)))
        if os.path.isfile(os.path.join(result.root, folder, filename(kind))):
            return folder.replace(os.sep, "/")
    return _SCHEMA_DIR


def _head(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(4096)
    except (OSError, UnicodeDecodeError):
        return ""


def _header(result: Result, kind: str, rel: str) -> tuple[str, str | None]:
    """The `$schema` comment for a new document at REL, and the schema file to write first
    when it does not exist yet (always inside the repository, under `.schemas/`)."""
    folder = _schema_dir(result, kind)
    if "://" in folder:
        return comment(f"{folder}/{filename(kind)}"), None
    schema_rel = f"{folder}/{filename(kind)}" if folder != "." else filename(kind)
    missing = None
    if not os.path.isfile(os.path.join(result.root, schema_rel)):
        missing = _inside(result.root, schema_rel)
    return comment(link(schema_rel, rel)), missing


def _write_new(result: Result, kind: str, rel: str, body: str, extra: tuple[str, ...] = ()) -> list[str]:
    """Create the document REL (its `$schema` header, then BODY), the schema file it points at
    when missing, and the empty files EXTRA; nothing is written when REL exists, or when
    validate would not read it (under a dot folder, or excluded by bifrost-gitops.yaml)."""
    rel = posixpath.normpath(rel)
    project = result.catalog.project
    if not wanted(rel, project.model.exclude if project else []):
        raise NewError(f"{rel}: validate does not read it (excluded by bifrost-gitops.yaml's exclude:)")
    path = _inside(result.root, rel)
    if os.path.lexists(path):
        raise NewError(f"{rel}: already exists", "choose another name, or remove it")
    header, schema = _header(result, kind, rel)
    written = []
    if schema is not None:
        _create(schema, dump(kind))
        written.append(schema)
    _create(path, header + body)
    written.append(path)
    for other in extra:
        _create(_inside(result.root, other), "")
        written.append(_inside(result.root, other))
    return written


def _create(path: str, text: str) -> None:
    """A new file (its folders too), written whole or not at all; refuses to replace one."""
    if os.path.lexists(path):
        raise NewError(f"{path}: already exists")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, text.encode("utf-8"), mode=new_file_mode(0o666), prefix=".new-", suffix=".tmp")


# --- new org --------------------------------------------------------------------------------


def new_org(result: Result, name: str, org_id: str | None, display_name: str | None) -> Written:
    """Declare organization NAME: appended to the repository's organizations file (created
    when there is none), with its id and display name when given."""
    cat = result.catalog
    _checked(name, "slug", "organization name")
    if org_id is not None:
        _checked(org_id, "uuid", "--id")
    if display_name is not None:
        _checked(display_name, "text", "--display-name")
    if name in cat.orgs or name in cat.unverified:
        raise NewError(f"organization {name!r} is already declared", _where_org(cat, name))
    if org_id is not None:
        for org, p, _ in cat.orgs.values():
            if org.id and org.id.lower() == org_id.lower():
                raise NewError(f"--id {org_id} is already the id of {org.name!r} ({p.doc.path})")
    lines = [("name", name)]
    lines += [("id", org_id)] if org_id else []
    lines += [("display_name", display_name)] if display_name is not None else []
    nxt = f"bifrost-gitops new mapping INTEGRATION {name}"
    files = {p.doc.path: p for _, p, _ in cat.orgs.values()}
    folders = {path.rpartition("/")[0] for path in files}
    if len(files) > 1 and len(folders) == 1 and all(len(p.model.organizations) == 1 for p in files.values()):
        folder = folders.pop()  # one file per organization: one more file
        rel = f"{folder}/{name}.yaml" if folder else f"{name}.yaml"
        body = ORGANIZATIONS_HEAD + _entry(lines, "  ", "  ", "\n")
        return Written(_write_new(result, "Organizations", rel, body), [], nxt)
    target = files[min(files)].doc if files else _empty_org_file(result)
    if target is None:
        body = ORGANIZATIONS_HEAD + _entry(lines, "  ", "  ", "\n")
        return Written(_write_new(result, "Organizations", "organizations.yaml", body), [], nxt)
    sops = target.data.get("sops")
    if isinstance(sops, dict) and sops.get("mac_only_encrypted") is not True:
        raise NewError(f"{target.path}: encrypted by sops with a MAC over every value", "use sops edit")
    path = os.path.realpath(_inside(result.root, target.path))  # a symlink stays one
    with open(path, "rb") as f:
        data = f.read()
    new = _append_org(data.decode("utf-8"), lines, target.path)
    mode = os.stat(path).st_mode & 0o7777
    write_atomic(path, new.encode("utf-8"), mode=mode, prefix=".new-", suffix=".tmp")
    return Written([], [path], nxt)


def _empty_org_file(result: Result) -> Document | None:
    """organizations.yaml when it is a valid Organizations document with no organization yet
    (the catalog indexes organizations, so it does not know that file); None when it is absent."""
    rel = "organizations.yaml"
    if not os.path.lexists(os.path.join(result.root, rel)):
        return None
    doc, _ = load_file(result.root, rel)
    model = structure.validate(doc)[0] if doc is not None and structure.is_ours(doc.data) else None
    if doc is None or not isinstance(model, Organizations):
        raise NewError(f"{rel} holds no valid Organizations document", "run validate")
    return doc


def _where_org(cat: Catalog, name: str) -> str | None:
    found = cat.orgs.get(name)
    return f"see {found[1].doc.path}" if found else None


def _entry(fields: list[tuple[str, str]], dash: str, pad: str, nl: str) -> str:
    """One list item: `- name: x` at the list's indentation, further keys aligned under it."""
    out = [f"{dash}-{pad[1:]}{fields[0][0]}: {_scalar(fields[0][1])}"]
    out += [f"{dash}{pad}{k}: {_scalar(v)}" for k, v in fields[1:]]
    return nl.join(out) + nl


def _append_org(text: str, fields: list[tuple[str, str]], rel: str) -> str:
    """TEXT with one more organization at the end of its `organizations:` list; every other
    character unchanged. The list's own indentation (and the item's key offset) is reused."""
    nl = "\r\n" if "\r\n" in text else "\n"
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        raise NewError(f"{rel}: cannot be read as one YAML document", "run validate") from None
    seq = None
    if isinstance(root, yaml.MappingNode):
        seq = next((v for k, v in root.value if k.value == "organizations"), None)
    if (
        isinstance(root, yaml.MappingNode)
        and isinstance(seq, yaml.SequenceNode)
        and seq.flow_style
        and not seq.value
    ):
        return _fill_empty(text, root, seq, fields, nl, rel)
    if not isinstance(seq, yaml.SequenceNode) or seq.flow_style or not seq.value:
        raise NewError(
            f"{rel}: the organizations list is not a block list with an entry to follow",
            "add the organization by hand (`  - name: ...`)",
        )
    last = seq.value[-1]
    line_start = text.rfind("\n", 0, last.start_mark.index) + 1
    dash = text.rfind("-", line_start, last.start_mark.index)
    if dash < 0:
        raise NewError(f"{rel}: cannot tell the organizations list's indentation")
    indent = " " * (dash - line_start)
    pad = " " * (last.start_mark.index - dash)
    at = _item_end(text, line_start, dash - line_start)
    head = text[:at] if at == 0 or text[at - 1] == "\n" else text[:at] + nl
    new = head + _entry(fields, indent, pad, nl) + text[at:]
    _verify(new, fields, rel)
    return new


def _fill_empty(
    text: str,
    root: yaml.MappingNode,
    seq: yaml.SequenceNode,
    fields: list[tuple[str, str]],
    nl: str,
    rel: str,
) -> str:
    """`organizations: []` becomes a block list holding the new organization."""
    key = next(k for k, v in root.value if v is seq)
    entry = _entry(fields, " " * (key.start_mark.column + 2), "  ", nl)
    new = text[: seq.start_mark.index].rstrip(" ") + nl + entry[: -len(nl)] + text[seq.end_mark.index :]
    _verify(new, fields, rel)
    return new


def _item_end(text: str, start: int, dash: int) -> int:
    """Where the list item whose line starts at offset START ends: after its last line indented
    deeper than its dash (comment and blank lines after it stay after the new entry). Lines are
    split at \\n only, as git and editors count them."""
    end = offset = text.find("\n", start) + 1 or len(text)
    for line in re.findall(r"[^\n]*\n|[^\n]+$", text[offset:]):
        offset += len(line)
        body = line.lstrip(" ")
        if not body.strip() or body.startswith("#"):
            continue
        if len(line) - len(body) <= dash:
            break
        end = offset
    return end


def _verify(text: str, fields: list[tuple[str, str]], rel: str) -> None:
    """The edited text reads back with the new organization last: never write a broken file."""
    try:
        data = yaml.safe_load(text)
        last = data["organizations"][-1]
    except (yaml.YAMLError, TypeError, KeyError, IndexError):
        last = None
    if last != dict(fields):
        raise NewError(f"{rel}: the organizations list could not be extended safely", "add it by hand")


# --- new integration ------------------------------------------------------------------------


def new_integration(result: Result, name: str, provider: str | None) -> Written:
    """Declare integration NAME in its own folder, beside the others, with an empty config
    schema and a mappings/ folder; ``provider`` links a shared OAuth provider."""
    cat = result.catalog
    _path_safe(_checked(name, "name", "integration name"), "integration name")
    same = {n.lower(): n for n in cat.integrations}.get(name.lower())
    if same is not None or name.lower() in cat.unverified:
        where = cat.integrations[same].doc.path if same else None
        raise NewError(
            f"integration {name!r} is already declared{f' in {where}' if where else ''}",
            "names differ only in case" if same and same != name else None,
        )
    token_url = ""
    if provider is not None:
        _checked(provider, "provider", "--oauth")
        if provider not in cat.providers:
            raise NewError(
                f"OAuth provider {provider!r} is not declared",
                structure.suggest(provider, cat.providers)
                or "declare it in a kind: OAuthProvider document first",
            )
        token_url = cat.providers[provider].model.token_url
    folder = f"{_integrations_dir(cat)}/{name}"
    if os.path.lexists(_inside(result.root, folder)):
        raise NewError(f"{folder}: already exists", "choose another name, or remove it")
    written = _write_new(
        result,
        "Integration",
        f"{folder}/integration.yaml",
        _integration_text(name, provider, provider is not None and "{entity_id}" in token_url),
        (f"{folder}/mappings/.gitkeep",),  # git keeps no empty folder
    )
    return Written(written, [], f"bifrost-gitops new mapping {shlex.quote(name)} ORG")


def _integrations_dir(cat: Catalog) -> str:
    """Where integrations live: the folder holding <Name>/ of the existing ones, else `integrations`."""
    for name, p in sorted(cat.integrations.items()):
        parts = p.doc.path.split("/")
        if len(parts) >= 2 and parts[-2] == name:
            return "/".join(parts[:-2]) or "."
    return "integrations"


def _integration_text(name: str, provider: str | None, needs_entity: bool) -> str:
    oauth = f"oauth:\n  provider: {_scalar(provider)}\n" if provider else ""
    if needs_entity:
        oauth += "# default_entity_id: common   # the token URL needs {entity_id}: for orgs without one\n"
    return (
        "# One integration: its typed config schema and the defaults every organization starts from.\n"
        "apiVersion: bifrost-gitops/v1\n"
        "kind: Integration\n"
        f"name: {_scalar(name)}\n"
        "# entity_id_name: Customer ID   # what a mapping's entity_id means\n"
        f"{oauth}"
        "# Each key: {key: NAME, type: string|int|bool|json|secret, required: true, description: ...}\n"
        "config_schema: []\n"
        "# defaults:\n"
        "#   config: {}   # values every organization gets unless its mapping overrides them\n"
    )


# --- new mapping ----------------------------------------------------------------------------


def new_mapping(
    result: Result,
    integration: str,
    org: str,
    entity_id: str | None,
    entity_name: str | None,
    values: Sequence[str] = (),
) -> Written:
    """Map organization ORG into INTEGRATION: a mapping file beside the integration's others,
    with VALUES (KEY=VALUE, typed by the config schema) under config:. Checked by validate's own
    rules before it is written; only a required secret without a default may still be missing
    (values never come from the command line): the next step says how to set it."""
    cat = result.catalog
    _checked(integration, "name", "integration name")
    ip = cat.integrations.get(integration)
    if ip is None:
        raise NewError(
            f"integration {integration!r} is not declared",
            structure.suggest(integration, cat.integrations) or "bifrost-gitops new integration NAME",
        )
    if org not in cat.orgs:
        raise NewError(
            f"organization {org!r} is not declared",
            structure.suggest(org, [o.name for o, _, _ in cat.orgs.values()])
            or f"bifrost-gitops new org {org}",
        )
    if entity_id is not None:
        _checked(entity_id, "text", "--entity-id")
    if entity_name is not None:
        _checked(entity_name, "text", "--entity-name")
    existing = cat.mappings.get((integration, org))
    if existing is not None:
        raise NewError(f"{integration} already has a mapping for {org!r}: {existing.doc.path}")
    config = _config_lines(ip.model, values)
    rel = f"{_mappings_dir(cat, integration)}/{org}.yaml"
    body = _mapping_text(ip.model, org, entity_id, entity_name, config)
    secrets = _preflight(cat, ip.model, rel, body)
    nxt = "bifrost-gitops validate"
    if secrets:
        nxt = f"bifrost-gitops secrets set {shlex.quote(integration)} {secrets[0]} --org {org}   (required, no default)"
    return Written(_write_new(result, "Mapping", rel, body), [], nxt)


def _config_lines(integ: Integration, values: Sequence[str]) -> list[str]:
    """`KEY: value` lines for the --set KEY=VALUE pairs, each value written as its schema type."""
    schema = {item.key: item for item in integ.config_schema}
    lines: dict[str, str] = {}
    for pair in values:
        key, eq, raw = pair.partition("=")
        item = schema.get(key)
        if not eq or item is None:
            raise NewError(
                f"--set {pair!r}: {'KEY=VALUE' if not eq else f'{key!r} is not in the config_schema'}",
                structure.suggest(key, [k for k, i in schema.items() if i.type != "secret"]) if eq else None,
            )
        if item.type == "secret":
            raise NewError(
                f"--set {key}: secret-typed; a secret never goes on the command line",
                f"after this: bifrost-gitops secrets set {shlex.quote(integ.name)} {key} --org ORG",
            )
        _shown_as_is(raw, f"--set {key}")
        lines[key] = f"  {key}: {_typed(key, item.type, raw)}"
    return list(lines.values())


def _typed(key: str, kind: str, raw: str) -> str:
    """RAW as a YAML value of config type KIND (validate's type check runs on the result too)."""
    if kind == "int" and re.fullmatch(r"-?[0-9]+", raw):
        return str(int(raw))
    if kind == "bool" and raw in ("true", "false"):
        return raw
    if kind == "json":
        try:
            return json.dumps(json.loads(raw), ensure_ascii=True, allow_nan=False)
        except ValueError:
            raise NewError(f"--set {key}: not JSON", "quote the whole KEY=VALUE for the shell") from None
    if kind in ("int", "bool"):
        raise NewError(f"--set {key}: {raw!r} is not {'an integer' if kind == 'int' else 'true or false'}")
    return _scalar(raw)


def _preflight(cat: Catalog, integ: Integration, rel: str, body: str) -> list[str]:
    """Check the new mapping with validate's rules against the repository's declarations.
    Returns the required secrets it still lacks (set after writing); NewError on any other error."""
    from .catalog import Parsed
    from .checks import check

    defaults = integ.defaults.secrets if integ.defaults else {}
    missing = [
        i.key for i in integ.config_schema if i.required and i.type == "secret" and not defaults.get(i.key)
    ]
    doc, diags = load_bytes(body.encode("utf-8"), rel)
    model, found = structure.validate(doc) if doc is not None else (None, [])
    diags += found
    if doc is not None and isinstance(model, Mapping):
        context: list[Parsed[AnyDocument]] = [cat.integrations[integ.name], Parsed(doc, model)]
        context += [*cat.providers.values(), *{p.doc.path: p for _, p, _ in cat.orgs.values()}.values()]
        diags += check(context)[1]
    wrong = [d for d in diags if d.path == rel and d.severity == "error" and not _lacks(d, missing)]
    if wrong or model is None:
        first = wrong[0] if wrong else None
        hint = {"C006": "give --set KEY=VALUE", "C008": "give --entity-id ID"}.get(
            first.code if first else ""
        )
        raise NewError(
            f"the mapping would not validate: {first.message if first else 'not a Mapping'}",
            hint or (first.hint if first else None),
        )
    return missing


def _lacks(finding: Diagnostic, secrets: list[str]) -> bool:
    """FINDING says a required secret has no value (written afterwards with `secrets set`)."""
    return finding.code == "C006" and any(f"required key {k!r} " in finding.message for k in secrets)


def _mappings_dir(cat: Catalog, integration: str) -> str:
    """The folder of the integration's mappings: where its mappings are, else mappings/ beside
    its integration.yaml (mappings/<file name>/ when integrations share a folder)."""
    own = sorted(p.doc.path for (name, _), p in cat.mappings.items() if name == integration)
    if own:
        return own[0].rsplit("/", 1)[0] if "/" in own[0] else "."
    folder, _, base = cat.integrations[integration].doc.path.rpartition("/")
    mappings = f"{folder}/mappings" if folder else "mappings"
    if base in ("integration.yaml", "integration.yml"):
        return mappings
    return f"{mappings}/{base.rsplit('.', 1)[0]}"  # integrations side by side in one folder


def _mapping_text(
    integ: Integration, org: str, entity_id: str | None, entity_name: str | None, config: list[str]
) -> str:
    keys = [i.key for i in integ.config_schema if i.type != "secret"]
    secret = [i.key for i in integ.config_schema if i.type == "secret"]
    lines = [
        f"# {org}'s mapping of {integ.name}: its id in the external system and its overrides.",
        "apiVersion: bifrost-gitops/v1",
        "kind: Mapping",
        f"integration: {_scalar(integ.name)}",
        f"organization: {_scalar(org)}",
        f"entity_id: {json.dumps(entity_id or '', ensure_ascii=False)}",
    ]
    if entity_name is not None:
        lines.append(f"entity_name: {_scalar(entity_name)}")
    if config:
        lines += ["config:", *config]
    elif keys:
        lines.append(f"# config:   # overrides of the defaults; keys: {', '.join(keys)}")
    if secret:
        lines.append(f"# secrets:  # {', '.join(secret)}: set with `bifrost-gitops secrets set`")
    return "\n".join(lines) + "\n"
