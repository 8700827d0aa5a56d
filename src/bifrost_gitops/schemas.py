"""The checked-in JSON Schema files, generated from the models."""

from __future__ import annotations

import json
import os
import re

from .model import BUNDLE_KINDS, KINDS, json_schema

#: Every schema file under schemas/: the five document kinds, then the bundle.
ALL_KINDS: tuple[str, ...] = (*KINDS, *BUNDLE_KINDS)


#: The editor's schema comment (YAML language server) that init, new and --fix write and read.
COMMENT_RE = re.compile(r"^[ \t]*#[ \t]*yaml-language-server:[ \t]*\$schema=(\S+)", re.MULTILINE)


def comment(link: str) -> str:
    """The schema comment line that points an editor at LINK (a path or URL)."""
    return f"# yaml-language-server: $schema={link}\n"


def link(schema: str, doc: str) -> str:
    """The path from repository file DOC to repository file SCHEMA, as a `$schema` comment holds
    it (relative to DOC's folder, '/'-separated)."""
    import posixpath

    return posixpath.relpath(schema, posixpath.dirname(doc) or ".")


def filename(kind: str) -> str:
    return f"{kind.lower()}.schema.json"


def schema_of(kind: str) -> dict[str, object]:
    """The JSON Schema of a document kind or of a bundle kind."""
    if kind in KINDS:
        return json_schema(kind)
    schema = BUNDLE_KINDS[kind].model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://bifrost-gitops.dev/schemas/{filename(kind)}",
        **schema,
    }


def dump(kind: str) -> str:
    """The schema text exactly as checked in (stable key order, trailing newline)."""
    return json.dumps(schema_of(kind), indent=2, ensure_ascii=False) + "\n"


def write_all(directory: str, kinds: list[str] | None = None) -> list[str]:
    """Write the schema files of KINDS (default: every kind) into DIRECTORY."""
    os.makedirs(directory, exist_ok=True)
    written = []
    for kind in kinds or list(ALL_KINDS):
        path = os.path.join(directory, filename(kind))
        with open(path, "w", encoding="utf-8") as f:
            f.write(dump(kind))
        written.append(path)
    return written
