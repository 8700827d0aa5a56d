"""What each bundle file, and each integration's entry in deploy.json, is made from, as digests.

compile records them in index.json (an entry's ``inputs``; a clear deploy.json's entry lists
its integrations' as ``integrations``) and, next time, reuses what it wrote when the digest is
the same and the bytes are still the ones it was recorded with, without resolving or rendering
it (or opening its secrets): a one-mapping change costs one org file and one deploy entry.

An org file is made from: its organizations.yaml entry, its own mappings, every integration
(an unmapped one still gives the organization its defaults) and OAuth provider, the project
settings, the secrets mode and recipients, and the tool (its version and the code that renders
the file); global.json from the same minus organizations and mappings. An integration's entry
in deploy.json is made from that integration, the provider it names, its mappings and the ids
of their organizations (plus project, mode and tool); deploy.json as a whole from those and the
organizations list. All are hashed from the parsed documents (sops ciphertext included, never
a clear value). The entry binds the digest to the bytes' sha256 with a key: for sealed bundles
the key only the compile environment holds (a new keyring never reuses a file), so an index
entry cannot be forged to keep a file compile did not write for those inputs.
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
MAGIC = b"bifrost-gitops org inputs 2"
#: the modules whose code shapes an org file's content (their source is part of every digest)
_RENDER_MODULES = (
    "bundle",
    "bundleformat",
    "catalog",
    "deploymanifest",
    "deploy/spec",
    "jsontext",
    "model",
    "orginputs",
    "resolve",
    "storable",
    # how a decrypted value reads (its type) in a plain file or entry
    "sops/document",
    "sops/gotypes",
    "sops/secret",
    "sops/tree",
    "sops/values",
)


def _node(node: Json) -> bytes:
    """A parsed node's digest (marshal version 2: no references, so the same tree, same bytes)."""
    try:
        return hashlib.sha256(b"m" + marshal.dumps(node, 2)).digest()
    except ValueError:  # a str subclass (a sops timestamp) or the like: its repr, as exact
        return hashlib.sha256(b"r" + repr(node).encode()).digest()


def _provider(data: Json) -> str | None:
    """The OAuth provider an integration's data names (None: inline OAuth, or none)."""
    oauth = data.get("oauth") if isinstance(data, dict) else None
    name = oauth.get("provider") if isinstance(oauth, dict) else None
    return name if isinstance(name, str) else None


def _parts(h: hashlib._Hash, parts: Iterable[bytes]) -> None:
    """Feed PARTS to H, each prefixed with its length (so no two lists of parts read the same);
    one update: a call per part costs more than the hashing of a few digests."""
    h.update(b"".join(b"%d:" % len(part) + part for part in parts))


class OrgInputs:
    """The inputs digests of one compile (mode, recipients) of CATALOG: every organization's
    file, global.json, deploy.json, and each integration's entry in deploy.json."""

    def __init__(self, catalog: Catalog, mode: str, recipients: list[str], key: bytes | None) -> None:
        self.key = key or b""
        self.catalog = catalog
        tool = hashlib.sha256()
        project = catalog.project.doc.data if catalog.project else None
        _parts(
            tool,
            [MAGIC, codedigest.of(_RENDER_MODULES), mode.encode(), "\n".join(sorted(recipients)).encode()],
        )
        _parts(tool, [_node(project)])
        #: what every file and entry depends on: the tool, the mode and recipients, the project
        self.tool = tool.digest()
        self.providers = {name: _node(catalog.providers[name].doc.data) for name in sorted(catalog.providers)}
        self.integrations = {
            name: _node(catalog.integrations[name].doc.data) for name in sorted(catalog.integrations)
        }
        common = hashlib.sha256(self.tool)
        for kind in (self.providers, self.integrations):
            _parts(common, [b"%d" % len(kind)])
            for name, node in kind.items():
                _parts(common, [name.encode(), node])
        #: what every organization's file (and global.json) depends on
        self.common = common.digest()
        # each mapping's part of its organization's and of its integration's digest, as bytes:
        # names hold no NUL (model.Name, Slug) and a node digest is 32 bytes, so they read one way
        ids = {lower: str(o.id).encode() for lower, (o, _, _) in catalog.orgs.items()}
        self.mappings: dict[str, list[bytes]] = {}
        self.mapped: dict[str, list[bytes]] = {}
        for (integration, org), mp in catalog.mappings.items():
            # its file's digest when it has one (path and bytes): an unchanged mapping unloaded
            node = mp.digest if mp.digest is not None else _node(mp.doc.data)
            self.mappings.setdefault(org, []).append(integration.encode() + b"\0" + node)
            self.mapped.setdefault(integration, []).append(
                b"%s\0%s\0%s" % (org.encode(), ids.get(org, b"-"), node)
            )
        for own in (*self.mappings.values(), *self.mapped.values()):
            own.sort()  # the same mappings in another file order: the same digest

    def digest(self, org: str) -> bytes:
        """ORG's (a declared organization name) inputs digest."""
        o = self.catalog.orgs[org.lower()][0]
        own = self.mappings.get(org.lower(), [])
        return hashlib.sha256(
            b"".join([self.common, _node(o.model_dump(mode="json")), b"%d" % len(own), *own])
        ).digest()

    def global_digest(self) -> bytes:
        """global.json's inputs digest (the defaults-only view: no organization, no mapping)."""
        return hashlib.sha256(self.common + b"global").digest()

    def integration(self, name: str) -> bytes:
        """Integration NAME's deploy.json entry's inputs digest: the integration, the provider it
        names, its mappings and the Bifrost id of each mapped organization (nothing else's)."""
        h = hashlib.sha256(self.tool + b"deploy entry")
        _parts(h, [name.encode(), self.integrations[name]])
        provider = _provider(self.catalog.integrations[name].doc.data)
        if provider is not None:  # the provider it names (model.OAuthLink: a "provider" key)
            _parts(h, [provider.encode(), self.providers.get(provider, b"none")])
        mapped = self.mapped.get(name, [])
        h.update(b"".join([b"%d" % len(mapped), *mapped]))
        return h.digest()

    def deploy_digest(self, entries: dict[str, bytes]) -> bytes:
        """deploy.json's inputs digest, from every integration's (ENTRIES) and the organizations."""
        h = hashlib.sha256(self.tool + b"deploy")
        orgs = sorted((o.name, str(o.id)) for o, _, _ in self.catalog.orgs.values())
        _parts(h, [b"%d" % len(orgs), *(f"{name}\0{uid}".encode() for name, uid in orgs)])
        _parts(h, [b"%d" % len(entries), *(n.encode() + b"\0" + d for n, d in sorted(entries.items()))])
        return h.digest()

    def entry(self, digest: bytes, sha256: str) -> str:
        """The index entry's ``inputs``: DIGEST bound to the file it was written as (its sha256)."""
        return hmac.new(self.key, digest + sha256.encode(), hashlib.sha256).hexdigest()
