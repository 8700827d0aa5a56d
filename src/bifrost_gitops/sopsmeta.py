"""A sops file's metadata read as data: its key groups and the master keys in them, described by
their public identifiers. No key, no cryptography and nothing of the sops package is loaded, so
every `validate` can read the recipients of thousands of files (catalog.Facts, K006)."""

from __future__ import annotations

from collections.abc import Mapping

#: master key lists and the field that names each entry (for messages and `secrets recipients`)
MASTER_KEYS: dict[str, tuple[str, ...]] = {
    "age": ("recipient",),
    "pgp": ("fp",),
    "kms": ("arn",),
    "gcp_kms": ("resource_id",),
    "azure_kv": ("vault_url", "name"),
    "hc_vault": ("vault_address", "engine_path", "key_name"),
    "hckms": ("key_id",),
}


def groups(meta: Mapping[str, object]) -> list[Mapping[str, object]]:
    """The key groups: ``key_groups`` when present, else the metadata itself as one group."""
    kg = meta.get("key_groups")
    if isinstance(kg, list) and kg:
        return [g if isinstance(g, Mapping) else {} for g in kg]
    return [meta]


def describe_entry(kind: str, entry: object) -> str:
    """``age:age1...`` style label of one master key entry (public identifiers only)."""
    if not isinstance(entry, Mapping):
        return f"{kind}:?"
    parts = [str(entry.get(f, "")) for f in MASTER_KEYS[kind]]
    return f"{kind}:" + "/".join(p for p in parts if p)


def recipients(meta: Mapping[str, object]) -> list[str]:
    """Every master key of the file, in group order, as ``kind:identifier``."""
    out: list[str] = []
    for g in groups(meta):
        for kind in MASTER_KEYS:
            entries = g.get(kind)
            if isinstance(entries, list):
                out.extend(describe_entry(kind, e) for e in entries)
    return out


def age_recipients(meta: Mapping[str, object]) -> list[list[str]]:
    """The age recipients per key group."""
    result = []
    for g in groups(meta):
        entries = g.get("age")
        result.append(
            [str(e.get("recipient")) for e in entries if isinstance(e, Mapping)]
            if isinstance(entries, list)
            else []
        )
    return result
