"""Per-document structure: which kind a file is, and whether it matches that kind's schema."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .diagnostics import Diagnostic, error
from .escape import describe, first_unsafe, term
from .loader import Document, Path
from .model import API_VERSION, KINDS, AnyDocument, OAuthSettings, ProviderRef
from .remedy import quote_hint

_UNION_TAGS: dict[str, type[BaseModel]] = {"ref": ProviderRef, "inline": OAuthSettings}


def is_ours(data: object) -> bool:
    """A YAML file belongs to the repository when it says so (apiVersion or one of our kinds)."""
    if not isinstance(data, dict):
        return False
    api = data.get("apiVersion")
    return (
        (isinstance(api, str) and api.startswith("bifrost-gitops/"))
        or (isinstance(data.get("kind"), str) and data["kind"] in KINDS and "apiVersion" not in data)
        or (isinstance(api, str) and api.startswith("ENC[") and "sops" in data)  # encrypted whole
    )


def in_secrets(path: Path) -> bool:
    return "secrets" in path


def trap(doc: Document, path: Path, expected: str = "text") -> Diagnostic | None:
    """A YAML 1.1 implicit-typing trap at ``path``, if that is what went wrong there."""
    found = doc.implicit.get(path)
    if found is None:
        return None
    kind, raw = found
    secret = in_secrets(path)  # never repeat what stands under secrets:
    # quoting mends it only where text is wanted: a number or true/false is written as one
    hint = quote_hint(None if secret else raw) if expected == "text" else f"write {expected}"
    said = "value" if secret else repr(raw)
    return error("Y005", doc.path, doc.pos(path), f"{said} is read by YAML as {kind}, not {expected}", hint)


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """A did-you-mean hint, or None."""
    names = list(choices)
    lowered = {c.lower(): c for c in names}
    if word.lower() in lowered:
        return f"did you mean {lowered[word.lower()]!r}? (names are case-sensitive)"
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _data_path(data: object, loc: tuple[int | str, ...]) -> tuple[Path, object]:
    """Map a pydantic error location onto the document (dropping union tags)."""
    path: list[str | int] = []
    cur = data
    for i, part in enumerate(loc):
        if isinstance(cur, dict) and part in cur:  # noqa: SIM114 - two branches so mypy narrows each
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and part < len(cur):
            cur = cur[part]
        elif i == len(loc) - 1 or isinstance(part, int):
            path.append(part)
            return tuple(path), None
        else:
            continue  # a union tag such as 'ref' / 'inline': not part of the data
        path.append(part)
    return tuple(path), cur


def _fields(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names allowed where ``loc`` points (for did-you-mean on unknown fields)."""
    cls: type[BaseModel] | None = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if part in _UNION_TAGS:
            cls = _UNION_TAGS[part]
            continue
        field = getattr(cls, "model_fields", {}).get(part)
        cls = next(_models_in(field.annotation), None) if field is not None else None
    return list(getattr(cls, "model_fields", {}))


def _models_in(annotation: object) -> Iterator[type[BaseModel]]:
    """The pydantic models inside a type annotation (list[X], X | None, Annotated[...])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _models_in(arg)


def validate(doc: Document) -> tuple[AnyDocument | None, list[Diagnostic]]:
    """Check one of our documents against its kind's model."""
    data = doc.data
    api, kind = data.get("apiVersion"), data.get("kind")
    if isinstance(api, str) and api.startswith("ENC["):
        return None, [
            error(
                "K003",
                doc.path,
                doc.pos(("apiVersion",)),
                "the whole document is encrypted (apiVersion, kind, names): it cannot be checked or reviewed",
                "decrypt it, then encrypt only the secrets: with encrypted_regex: ^secrets$ in .sops.yaml",
            )
        ]
    if api != API_VERSION:
        pos = doc.pos(("apiVersion",)) if "apiVersion" in data else doc.pos(())
        return None, [
            error(
                "S002",
                doc.path,
                pos,
                f"apiVersion must be {API_VERSION!r}",
                f"write: apiVersion: {API_VERSION}",
            )
        ]
    if kind not in KINDS:
        where = doc.pos(("kind",)) if "kind" in data else doc.pos(())
        hint = suggest(str(kind), KINDS) if isinstance(kind, str) else None
        return None, [
            error(
                "S002",
                doc.path,
                where,
                "missing kind" if kind is None else f"unknown kind {kind!r}",
                hint or f"one of: {', '.join(KINDS)}",
            )
        ]
    model = KINDS[kind]
    try:
        return model.model_validate(data), date_traps(doc)
    except ValidationError as e:
        errors = e.errors(include_input=False, include_url=False)
    # date traps load as text, so no schema error stands for them: report them in the same pass
    diags = [_diag(doc, model, err) for err in errors] + date_traps(doc)
    return _salvage(doc, model, errors), diags


def _salvage(doc: Document, model: type[AnyDocument], errors: list[ErrorDetails]) -> AnyDocument | None:
    """The document as its author meant it, when every error is a quoting trap or an unknown
    field: cross-document checks then still run on it, so one pass reports everything."""
    import copy

    data = copy.deepcopy(doc.data)
    for err in errors:
        path, _ = _data_path(doc.data, tuple(err["loc"]))
        if not path:
            return None
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        if err["type"] == "extra_forbidden":
            del parent[path[-1]]
        elif path in doc.implicit and err["type"] == "string_type":
            parent[path[-1]] = doc.implicit[path][1]
        elif path[-1] in _DESCRIPTIVE and path[-1] in parent and (len(path) == 1 or _unsafe(err)):
            del parent[path[-1]]  # a bad label no other rule reads: drop it, check the rest
        else:
            return None
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


#: optional fields no cross-document rule reads: a bad value in one hides nothing else
_DESCRIPTIVE = {"entity_name", "description", "display_name", "entity_id_name", "id",
                "list_entities_data_provider_id"}  # fmt: skip


def _unsafe(err: ErrorDetails) -> bool:
    return bool(err["type"] == "unsafe_text")  # raised by model.Plain


def unsafe_text(doc: Document, path: Path, value: object) -> Diagnostic:
    """S004: a name or label holding a control, bidi or invisible character, shown escaped."""
    dotted = ".".join(str(p) for p in path)
    ch = first_unsafe(value) if isinstance(value, str) else None
    what = f"{describe(ch)} ({term(ch)})" if ch else "a control or invisible character"
    hint = (
        "write it on one line (in a block scalar, `>-` folds its lines into one)"
        if ch in ("\n", "\r")
        else "remove it: names and labels are shown in terminals, CI logs and pull-request comments"
    )
    return error("S004", doc.path, doc.pos(path), f"{dotted} holds {what}", hint)


def date_traps(doc: Document) -> list[Diagnostic]:
    """Unquoted dates in a document's own text fields (entity_name: 2024-01-01, org names...).

    They load as text, so the schema accepts them; sops and other YAML tools read a date."""
    return [
        t
        for path, (kind, _) in doc.implicit.items()
        if kind == "date" and path and path[0] not in ("config", "defaults", "secrets", "sops")
        for t in [trap(doc, path)]
        if t is not None
    ]


def _diag(doc: Document, model: type[BaseModel], err: ErrorDetails) -> Diagnostic:
    loc = tuple(err["loc"])
    path, value = _data_path(doc.data, loc)
    etype = err["type"]
    dotted = ".".join(str(p) for p in path)
    if etype == "extra_forbidden":
        hint = suggest(str(path[-1]), _fields(model, loc))
        return error("S001", doc.path, doc.key_pos(path), f"unknown field {dotted!r}", hint)
    if etype == "unsafe_text":
        return unsafe_text(doc, path, value)
    if etype == "missing":
        return error("S001", doc.path, doc.pos(path[:-1]), f"missing required field {dotted!r}")
    if etype in ("string_type", "int_type", "bool_type"):
        expected = {"string_type": "text", "int_type": "an integer", "bool_type": "true or false"}[etype]
        t = trap(doc, path, expected)
        if t is not None:
            return t
    return error("S001", doc.path, doc.pos(path), f"{dotted or 'document'}: {err['msg']}")
