"""Rules on a document's own values: config values against the integration's schema, secrets
as SOPS ciphertext in a sops-encrypted file, sops metadata, OAuth settings.

Messages name keys, types and organizations, never a value that could be a secret: a
config value is only ever repeated when its key is declared non-secret.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .diagnostics import Diagnostic, error, warning
from .loader import Document, Path
from .model import TOKEN_KEYS, Integration, OAuthSettings, SchemaItem
from .remedy import UNQUOTE_HINT, bool_hint
from .sopsmeta import MASTER_KEYS
from .structure import suggest, trap

ENC_RE = re.compile(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
ENCRYPT_HINT = (
    "set it with `bifrost-gitops secrets set` (or `sops edit {path}`), and rotate it if it was ever pushed"
)


def _schema(integ: Integration) -> dict[str, SchemaItem]:
    return {item.key: item for item in integ.config_schema}


def is_ciphertext(value: object) -> bool:
    return isinstance(value, str) and ENC_RE.match(value) is not None


def check_oauth(doc: Document, at: Path, oauth: OAuthSettings, out: list[Diagnostic]) -> None:
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
    for name in ("token_url", "authorization_url"):
        url = getattr(oauth, name)
        if isinstance(url, str) and url.startswith("http://"):  # the model admits it on loopback only
            out.append(
                warning(
                    "C011",
                    doc.path,
                    doc.pos(at + (name,)),
                    f"{name} is plain http: the runtime SDK uses it on this machine, but Bifrost's "
                    "API refuses a provider whose URLs are not https, so plan/apply will fail",
                    "use https for anything deployed; keep http://127.0.0.1 for local token servers",
                )
            )
    if secrets is not None:
        _check_ciphertext(doc, at + ("secrets",), secrets.model_dump(exclude_none=True), out)


def _get(data: Any, path: Path) -> Any:
    for part in path:
        data = data[part]
    return data


#: findings that a secret value stands in the clear in its file (the parse cache keeps no copy
#: of such a document: repo.py)
CLEAR_SECRET = frozenset({"K001", "K002", "C004"})


def _check_ciphertext(doc: Document, at: Path, values: dict[str, object], out: list[Diagnostic]) -> None:
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


_MASTER_KEYS = (*MASTER_KEYS, "key_groups")


def check_sops_metadata(doc: Document, out: list[Diagnostic]) -> None:
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
        node: object = doc.data
        for part in at:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            _check_ciphertext(doc, at, node, out)
    return out


def _dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)


def check_values(
    doc: Document,
    at: Path,
    integ: Integration,
    config: dict[str, object],
    secrets: dict[str, object],
    token_ok: bool,
    out: list[Diagnostic],
) -> None:
    """The config: and secrets: values of INTEG's defaults (AT = defaults) or of a mapping (AT =
    ()) against its config_schema; TOKEN_OK: org token material may sit under secrets:."""
    schema = _schema(integ)
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
    enc_values: dict[str, object] = {}
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


def _check_type(doc: Document, path: Path, item: SchemaItem, value: object, out: list[Diagnostic]) -> None:
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
            hint = UNQUOTE_HINT if isinstance(value, str) and value.lstrip("-").isdigit() else None
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
        if isinstance(value, bool):
            out += _bool_word(doc, path, item)
        else:
            hint = "write true or false, unquoted" if isinstance(value, str) else None
            if isinstance(value, str) and value.lower() in BOOL_WORDS:
                hint = bool_hint(item.key, BOOL_WORDS[value.lower()])
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


#: YAML 1.1's boolean words (any case): YAML 1.2 reads all but true/false as text.
BOOL_WORDS = {
    **dict.fromkeys(("y", "yes", "on", "true"), "true"),
    **dict.fromkeys(("n", "no", "off", "false"), "false"),
}


def _bool_word(doc: Document, path: Path, item: SchemaItem) -> list[Diagnostic]:
    """A bool key given ``yes``/``off``...: read as a boolean here (YAML 1.1), as text by YAML 1.2
    tools (yq, editors, other parsers), so the file means different things to different readers."""
    raw = doc.implicit.get(path, ("", "true"))[1]
    if raw.lower() in ("true", "false"):
        return []
    fix = BOOL_WORDS.get(raw.lower(), "true or false")
    return [
        warning(
            "Y009",
            doc.path,
            doc.pos(path),
            f"{raw!r} is a YAML 1.1 boolean word: read here as {fix}, but as text by YAML 1.2 tools",
            bool_hint(item.key, fix),
        )
    ]


def _parses_as_json(text: str) -> bool:
    import json

    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _json_ok(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_json_ok(v) for v in value.values())
    if isinstance(value, list):
        return all(_json_ok(v) for v in value)
    return True


def _typename(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)
