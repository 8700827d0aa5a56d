"""What each organization's bundle file is made from, as one digest per organization.

compile records it in index.json (the org entry's ``inputs``) and, next time, reuses the file
it wrote when the digest is the same and the file still holds the bytes it was recorded with,
without resolving or rendering that organization: a one-mapping change costs one org file.

An org file is made from: its organizations.yaml entry, its own mappings, every integration
(an unmapped one still gives the organization its defaults) and OAuth provider, the project
settings, the secrets mode and recipients, and the tool (its version and the code that renders
the file). All are hashed from the parsed documents (sops ciphertext included, never a clear
value). The entry binds the digest to the file's sha256 with a key: for sealed bundles the key
only the compile environment holds (a new keyring never reuses a file), so an index entry
cannot be forged to keep a file compile did not write for those inputs.
"""

from __future__ import annotations

import hashlib
import hmac
import marshal
from collections.abc import Iterable

from . import codedigest
from .catalog import Catalog
from .nodes import Json

#: bump when what an org file is made from changes in a way the code digest does not show
MAGIC = b"bifrost-gitops org inputs 1"
#: the modules whose code shapes an org file's content (their source is part of every digest)
_RENDER_MODULES = (
    "bundle",
    "bundleformat",
    "catalog",
    "jsontext",
    "model",
    "orginputs",
    "resolve",
    "storable",
)


def _node(node: Json) -> bytes:
    """A parsed node's digest (marshal version 2: no references, so the same tree, same bytes)."""
    try:
        return hashlib.sha256(b"m" + marshal.dumps(node, 2)).digest()
    except ValueError:  # a str subclass (a sops timestamp) or the like: its repr, as exact
        return hashlib.sha256(b"r" + repr(node).encode()).digest()


def _parts(h: hashlib._Hash, parts: Iterable[bytes]) -> None:
    for part in parts:
        h.update(b"%d:" % len(part) + part)


class OrgInputs:
    """The inputs digest of every organization of CATALOG for one compile (mode, recipients)."""

    def __init__(self, catalog: Catalog, mode: str, recipients: list[str], key: bytes | None) -> None:
        self.key = key or b""
        self.catalog = catalog
        common = hashlib.sha256()
        project = catalog.project.doc.data if catalog.project else None
        _parts(
            common,
            [MAGIC, codedigest.of(_RENDER_MODULES), mode.encode(), "\n".join(sorted(recipients)).encode()],
        )
        _parts(common, [_node(project)])
        for kind in (catalog.integrations, catalog.providers):
            _parts(common, [b"%d" % len(kind)])
            for name in sorted(kind):
                _parts(common, [name.encode(), _node(kind[name].doc.data)])
        self.common = common.digest()
        self.mappings: dict[str, list[tuple[str, bytes]]] = {}
        for (integration, org), mp in catalog.mappings.items():
            self.mappings.setdefault(org, []).append((integration, _node(mp.doc.data)))
        for own in self.mappings.values():
            own.sort()  # the same mappings in another file order: the same digest

    def digest(self, org: str) -> bytes:
        """ORG's (a declared organization name) inputs digest."""
        o = self.catalog.orgs[org.lower()][0]
        h = hashlib.sha256(self.common)
        _parts(h, [_node(o.model_dump(mode="json"))])
        for integration, mapping in self.mappings.get(org.lower(), []):
            _parts(h, [integration.encode(), mapping])
        return h.digest()

    def entry(self, digest: bytes, sha256: str) -> str:
        """The index entry's ``inputs``: DIGEST bound to the file it was written as (its sha256)."""
        return hmac.new(self.key, digest + sha256.encode(), hashlib.sha256).hexdigest()
