"""A compiled bundle folder, read lazily, checked (sha256, owner, MAC) and cached.

The errors it raises are the SDK's (``bifrost_gitops.runtime`` re-exports them). Every
lookup goes through :meth:`Bundle.get`: a dict lookup in ``_hot``, then a template's copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..bundleformat import (
    CLIENT_CREDENTIALS_KEY,
    INDEX_FILE,
    ORGS_KEY,
    OWN_CONNECTION_KEY,
    REDACTED,
    BadIndex,
    BundleIndex,
    IndexEntry,
    read_index,
    safe_entry,
)
from ..bundleformat import GLOBAL_SCOPE as GLOBAL
from ..errors import BifrostGitopsError
from ..nodes import Json
from .models import IntegrationData, IntegrationMappingResponse, Mint, _Template
from .tokens import TokenCache, TokenRequest

if TYPE_CHECKING:
    from ..sops import Keyring


# --- errors --------------------------------------------------------------------------------


class BundleReadError(BifrostGitopsError):
    """The bundle cannot be read (missing, malformed, unsupported format). Never holds a value."""


class NoScopeError(BundleReadError):
    """No scope given and ``BIFROST_GITOPS_ORG`` is not set."""


class UnknownOrganizationError(BundleReadError, LookupError):
    """The scope names an organization the bundle does not have."""

    def __init__(self, message: str, scope: str) -> None:
        super().__init__(message)
        self.scope = scope


class BundleIntegrityError(BundleReadError):
    """An org file does not match index.json's sha256, or its sops MAC fails: it was altered."""


class BundleKeyError(BundleReadError):
    """No available age key opens a sealed org file."""


# --- the bundle ----------------------------------------------------------------------------


class _View:
    """One loaded org file (or global.json)."""

    __slots__ = ("cc", "id", "mapped", "name", "own", "records", "templates")

    def __init__(
        self,
        name: str,
        org_id: str | None,
        records: dict[str, Json],
        mapped: frozenset[str] | None = None,
        cc: Mapping[str, Json] | None = None,
        own: frozenset[str] = frozenset(),
    ) -> None:
        self.name = name
        self.id = org_id
        self.records = records
        self.mapped = mapped  # the file's "mapped" list of integration names, when it has one
        self.cc = cc or {}  # client-credentials integrations: token URL template and audience
        self.own = own  # integrations whose token this organization takes from its own connection
        self.templates: dict[str, _Template] = {}

    def template(self, integration: str) -> _Template | None:
        t = self.templates.get(integration)
        if t is None:
            rec = self.records.get(integration)
            if not isinstance(rec, Mapping):
                return None
            data = IntegrationData.from_record(rec)
            if data.oauth is not None:
                data.oauth.token_source = "own" if integration in self.own else "integration"
            t = self.templates[integration] = _Template(data, self._mint(integration))
        return t

    def _mint(self, integration: str) -> Mint | None:
        cc = self.cc.get(integration)
        url = cc.get("token_url") if isinstance(cc, Mapping) else None
        if not isinstance(cc, Mapping) or not isinstance(url, str):
            return None
        audience = cc.get("audience")
        return Mint(self.name, integration, url, audience if isinstance(audience, str) else None)


def _norm_id(v: object) -> str | None:
    return str(v).lower() if isinstance(v, str) and v else None


def _check_owner(tree: dict[str, Json], key: str, entry: IndexEntry, path: str) -> None:
    """The file's own ``organization`` (or ``scope: global``) must be the index entry's: a file
    swapped for another organization's (sha256 fixed in index.json) would hand one
    organization's workflows another's secrets."""
    swapped = "the file was swapped or altered; recompile the bundle"
    if key == GLOBAL:
        if tree.get("scope") != GLOBAL or "organization" in tree:
            raise BundleIntegrityError(
                f"{path}: is not the global view (no 'scope: global'; it holds "
                f"{_who(tree.get('organization'))}): {swapped}"
            )
        return
    org = tree.get("organization")
    name = org.get("name") if isinstance(org, Mapping) else None
    oid = org.get("id") if isinstance(org, Mapping) else None
    if name != key or _norm_id(oid) != _norm_id(entry.get("id")):
        raise BundleIntegrityError(
            f"{path}: holds {_who(org) if isinstance(org, Mapping) else 'no organization'}, but index.json "
            f"lists it for organization {key!r} (id {entry.get('id')!r}): {swapped}"
        )


def _who(org: object) -> str:
    if not isinstance(org, Mapping):
        return "no organization"
    return f"organization {org.get('name')!r} (id {org.get('id')!r})"


class Bundle:
    """A compiled bundle folder, read lazily and cached (see the module docstring).

    ``keyring``: a :class:`bifrost_gitops.sops.Keyring` (or a list of pyrage identities) that
    opens sealed files; None means sops's key sources, looked up when a sealed file is read.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        keyring: Keyring | Sequence[object] | None = None,
        tokens: TokenCache | None = None,
    ) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.keyring = keyring
        self.tokens = tokens or TokenCache()  # minted client-credentials tokens (see .tokens)
        self._lock = threading.RLock()
        self._index: BundleIndex | None = None
        self._by_id: dict[str, str] = {}
        self._views: dict[str, _View] = {}
        # (scope as given, integration) -> template, or None for an unknown integration
        self._hot: dict[tuple[str, str], _Template | None] = {}

    def __repr__(self) -> str:
        return f"Bundle({self.path!r})"

    # -- index

    def _read_index(self) -> BundleIndex:
        try:
            return read_index(self.path)
        except BadIndex as e:
            raise BundleReadError(str(e)) from None

    @property
    def index(self) -> BundleIndex:
        """index.json (read once)."""
        index = self._index
        if index is None:
            with self._lock:
                if self._index is None:
                    self._set_index(self._read_index())
                index = self._index
                assert index is not None
        return index

    def _set_index(self, index: BundleIndex) -> None:
        self._index = index
        self._by_id = {
            str(e["id"]).lower(): name
            for name, e in index[ORGS_KEY].items()
            if isinstance(e, dict) and isinstance(e.get("id"), str)
        }

    @property
    def mode(self) -> str:
        """``seal``, ``plain`` or ``redact``."""
        return str(self.index["secrets"])

    def organizations(self) -> list[str]:
        """The organizations' names, sorted."""
        return sorted(self.index[ORGS_KEY])

    def org_name(self, scope: str) -> str:
        """The bundle's key for SCOPE: ``"global"``, or an organization's name (given its name or UUID)."""
        if scope == GLOBAL:
            return GLOBAL
        orgs = self.index[ORGS_KEY]
        if scope in orgs:
            return scope
        name = self._by_id.get(scope.lower()) or (scope.lower() if scope.lower() in orgs else None)
        if name is None:
            raise UnknownOrganizationError(
                f"organization {scope!r} is not in the bundle {self.path} ({len(orgs)} organizations; "
                "scope takes an organization's name or its Bifrost UUID, or 'global')",
                scope,
            )
        return name

    # -- org files

    def view(self, key: str) -> _View:
        """The loaded file for KEY (``"global"`` or an organization's name), read once."""
        v = self._views.get(key)
        if v is None:
            with self._lock:
                v = self._views.get(key)
                if v is None:
                    v = self._views[key] = self._load(key)
        return v

    def _entry(self, index: BundleIndex, key: str) -> IndexEntry:
        entry = index[GLOBAL] if key == GLOBAL else index[ORGS_KEY].get(key)
        where = os.path.join(self.path, INDEX_FILE)
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise BundleReadError(f"{where}: no valid entry for {key!r}")
        if safe_entry(entry["file"]) is None:
            raise BundleReadError(f"{where}: entry {key!r} points outside the bundle")
        return entry

    def _load(self, key: str) -> _View:
        index = self.index
        entry = self._entry(index, key)
        path = os.path.join(self.path, entry["file"])
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise BundleReadError(f"{path}: missing (listed in index.json)") from None
        except OSError as e:
            raise BundleReadError(f"{path}: cannot read it ({e.strerror or type(e).__name__})") from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry.get("sha256"):
            # The bundle may have been recompiled (swapped in) since index.json was read.
            fresh = self._read_index()
            if fresh != index:
                fresh_entry = self._entry(fresh, key) if key == GLOBAL or key in fresh[ORGS_KEY] else None
                if (
                    fresh_entry
                    and fresh_entry["file"] == entry["file"]
                    and fresh_entry.get("sha256") == digest
                ):
                    self._set_index(fresh)
                    index, entry = fresh, fresh_entry
            if digest != entry.get("sha256"):
                raise BundleIntegrityError(
                    f"{path}: sha256 does not match index.json (file {digest[:12]}..., index "
                    f"{str(entry.get('sha256'))[:12]}...): the file was altered or the bundle is incomplete; "
                    "recompile it"
                )
        if index["secrets"] == "seal":
            tree = self._open_sealed(data, path)
        else:
            try:
                tree = json.loads(data)
            except ValueError:
                raise BundleReadError(f"{path}: not valid JSON") from None
        records = tree.get("integrations") if isinstance(tree, dict) else None
        if not isinstance(records, dict):
            raise BundleReadError(f"{path}: malformed bundle file (no integrations)")
        _check_owner(tree, key, entry, path)
        org_id = None if key == GLOBAL else index[ORGS_KEY][key].get("id")
        listed = tree.get("mapped")
        mapped = frozenset(x for x in listed if isinstance(x, str)) if isinstance(listed, list) else None
        cc = tree.get(CLIENT_CREDENTIALS_KEY)
        listed = tree.get(OWN_CONNECTION_KEY)
        own = frozenset(x for x in listed if isinstance(x, str)) if isinstance(listed, list) else frozenset()
        return _View(key, org_id, records, mapped, cc if isinstance(cc, dict) else None, own)

    def _open_sealed(self, data: bytes, path: str) -> dict[str, Json]:
        from .. import sops  # imported only for sealed bundles (it pulls in pyrage/cryptography)
        from ..storable import unsendable

        try:
            doc = sops.loads(data, "json", file=path)
            tree: dict[str, Json] = sops.decrypt_document(doc, identities=self.keyring, file=path, fmt="json")
        except sops.NoKeyError as e:
            tried = "" if "tried:" in str(e) else f"; tried: {self._key_sources()}"
            raise BundleKeyError(
                f"cannot open the sealed bundle file: {e}{tried} "
                "(give the runtime its age key: SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, SOPS_AGE_KEY_CMD "
                "or ~/.config/sops/age/keys.txt)"
            ) from None
        except sops.IntegrityError as e:
            raise BundleIntegrityError(f"sealed bundle file failed authentication: {e}") from None
        except sops.SopsError as e:
            raise BundleReadError(f"cannot open the sealed bundle file: {e}") from None
        # a value's sops type tag sits outside the MAC: a retagged value (bytes, NaN) is tampering
        bad = unsendable(tree)
        if bad:
            raise BundleIntegrityError(f"{path}: {bad}, which compile never writes: recompile the bundle")
        return tree

    def _key_sources(self) -> str:
        from .. import sops

        if self.keyring is None:
            return sops.default_keyring().describe()
        return (
            self.keyring.describe()
            if isinstance(self.keyring, sops.Keyring)
            else "identities given by the caller"
        )

    def clear_cache(self) -> None:
        """Forget everything read: the next call reads index.json and the org files again."""
        with self._lock:
            self._index = None
            self._by_id = {}
            self._views = {}
            self._hot = {}
        self.tokens.clear()

    # -- lookups

    def _template(self, name: str, scope: str) -> _Template | None:
        try:
            return self._hot[(scope, name)]
        except KeyError:
            t = self._hot[(scope, name)] = self.view(self.org_name(scope)).template(name)
            return t

    def mints(self, name: str, scope: str) -> bool:
        """Whether ``get`` of NAME in SCOPE may fetch a client-credentials token (network)."""
        t = self._template(name, scope)
        return t is not None and t.mint is not None

    def get(
        self, name: str, scope: str, oauth_scope: str | None = None, *, mint: bool = True
    ) -> IntegrationData | None:
        """IntegrationData for NAME in SCOPE (an org name/UUID or "global"); None if unknown.

        For a client-credentials integration the token is minted as Bifrost's ``get`` would
        (see :mod:`.tokens`); ``mint=False`` skips that (mappings carry no token)."""
        t = self._template(name, scope)
        if t is None:
            return None
        data = t.copy()
        if mint and t.mint is not None:
            self._mint_token(t.mint, data, oauth_scope)
        return data

    def _mint_token(self, m: Mint, data: IntegrationData, oauth_scope: str | None) -> None:
        """Bifrost's ``should_auto_refresh_token`` and ``_build_oauth_data``, over the bundle."""
        o = data.oauth
        if o is None or not o.token_url or not o.client_id:
            return
        bifrost_fetches = bool(oauth_scope) or (
            "{entity_id}" in m.token_url_template and bool(data.entity_id)
        )
        # where Bifrost hands out its stored token, a declared one is that token; none declared:
        # mint it, as Bifrost's scheduler did (a URL left as a template cannot be called). An
        # organization with its own connection has only its own stored token: nothing to mint.
        if not bifrost_fetches and (
            o.access_token is not None or "{entity_id}" in o.token_url or o.token_source == "own"
        ):
            return
        if o.client_secret == REDACTED:  # a redacted bundle keeps its markers
            return
        if o.client_secret is None:
            if bifrost_fetches:  # Bifrost: "cannot auto-refresh", no token
                o.access_token = o.refresh_token = o.expires_at = None
            return
        scope = oauth_scope or " ".join(o.scopes)
        req = TokenRequest(o.connection_name, o.token_url, o.client_id, o.client_secret, scope, m.audience)
        token = self.tokens.get((m.org, m.integration, scope), req)
        o.access_token, o.refresh_token, o.expires_at = token.access_token, None, token.expires_iso

    def mapped(self, org: str, name: str) -> bool:
        """Whether ORG has a mapping for NAME.

        Uses the org file's ``mapped`` list of integration names, or a record's ``mapped`` flag,
        when the bundle has them; otherwise infers it: a mapped
        org has an ``entity_name``, or an entity id or config that differs from the defaults
        (a mapping identical to the defaults-only view cannot be told apart).
        """
        view = self.view(org)
        rec = view.records.get(name)
        if not isinstance(rec, Mapping):
            return False
        if view.mapped is not None:
            return name in view.mapped
        if isinstance(rec.get("mapped"), bool):
            return bool(rec["mapped"])
        if rec.get("entity_name") is not None:
            return True
        base = self.view(GLOBAL).records.get(name)
        if not isinstance(base, Mapping):
            return True
        return rec.get("entity_id") != base.get("entity_id") or rec.get("config") != base.get("config")

    def mapping(self, org: str, name: str) -> IntegrationMappingResponse | None:
        if org == GLOBAL or not self.mapped(org, name):
            return None
        data = self.get(name, org, mint=False)
        if data is None:
            return None
        return IntegrationMappingResponse(org, self.index[ORGS_KEY][org].get("id"), data)
