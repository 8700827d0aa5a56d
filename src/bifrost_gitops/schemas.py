"""The checked-in JSON Schema files, generated from the models."""

from __future__ import annotations

import json
import os

from .model import KINDS, json_schema


def filename(kind: str) -> str:
    return f"{kind.lower()}.schema.json"


def dump(kind: str) -> str:
    """The schema text exactly as checked in (stable key order, trailing newline)."""
    return json.dumps(json_schema(kind), indent=2, ensure_ascii=False) + "\n"


def write_all(directory: str) -> list[str]:
    os.makedirs(directory, exist_ok=True)
    written = []
    for kind in KINDS:
        path = os.path.join(directory, filename(kind))
        with open(path, "w", encoding="utf-8") as f:
            f.write(dump(kind))
        written.append(path)
    return written
