"""The runtime SDK: Bifrost's ``integrations.get`` read path over a compiled bundle.

A workflow written for Bifrost runs unchanged but for its import line::

    from bifrost_gitops.runtime import integrations      # instead of: from bifrost import integrations

    integration = await integrations.get("HaloPSA")      # scope: BIFROST_GITOPS_ORG
    integration.config["base_url"], integration.entity_id, integration.oauth

What it returns has the shape of Bifrost's SDK models (docs/bifrost-api.md#sdk-models):
:class:`IntegrationData` (``integration_id``, ``entity_id``, ``entity_name``, ``config``,
``config_secret_keys``, ``oauth``) with :class:`OAuthCredentials` under ``oauth``, and
:class:`IntegrationMappingResponse` from :meth:`Integrations.list_mappings` /
:meth:`Integrations.get_mapping`.

Where the data comes from:

- The bundle folder written by ``bifrost-gitops compile``: ``BIFROST_GITOPS_BUNDLE``, read
  when the module-level ``integrations`` is first used (and again if the variable changes), or
  an explicit ``Integrations(Bundle(path, keyring=...))``.
- Scope (docs/bifrost-api.md#resolution): ``None`` (or ``""``) is the workflow's organization from
  ``BIFROST_GITOPS_ORG`` (an error when unset); an organization's name or its Bifrost UUID is
  that organization; ``"global"`` is the defaults-only view (``global.json``), always, even if
  an organization were named ``global``. An organization the bundle does not have raises
  :class:`UnknownOrganizationError` (a ``LookupError``). An integration the bundle does not
  have returns None, as Bifrost does.
- ``index.json``'s sha256 of an org file is checked when the file is read: a mismatch raises
  :class:`BundleIntegrityError` naming the file. So does an org file whose own
  ``organization`` (name and id) is not the index entry's that points to it (another
  organization's file swapped in), or a ``global.json`` without ``scope: global``. Sealed files are opened with the runtime's
  age key, found where sops looks (``SOPS_AGE_KEY``, ``SOPS_AGE_KEY_FILE``,
  ``SOPS_AGE_KEY_CMD``, the user's ``sops/age/keys.txt``, then the sops binary); no key raises
  :class:`BundleKeyError` naming the file and the key sources tried.
- Redacted bundles (``compile --secrets redact``) return the marker ``"<redacted>"`` as the
  value of every secret (config secret keys, client secret, tokens): fine for tests and
  review, useless for calling a real API.

Caching: each org file is read, checked and decrypted once per process (per :class:`Bundle`),
and the built objects are kept per (scope, integration). Every call returns a fresh copy, so
a workflow that changes ``config`` (nested JSON values included) or ``oauth.scopes`` does not
change what the next call returns. A recompiled bundle is picked up only for org files not
read yet; :meth:`Integrations.clear_cache` (or a new process) starts over.

Leak guard: ``repr()``/``str()`` of the returned objects, and of their ``config`` dict, show
``<secret>`` for the values of ``config_secret_keys``, ``client_secret``, ``access_token``
and ``refresh_token``. The attributes themselves hold the real values: workflows need them.
``model_dump()`` returns the plain dict (clear values), as pydantic's does in Bifrost.

Differences from Bifrost, by nature of a static bundle: ``oauth_scope`` is accepted and
ignored (no token is minted; ``access_token`` is what the bundle holds, often None: use
``client_id``/``client_secret``/``token_url`` to mint one); ``OAuthCredentials.refresh()``
does not exist; mappings have no ``id``, ``oauth_token_id`` or timestamps (None), and their
``entity_id`` is the resolved one (the mapping's, else ``default_entity_id``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "ENV_BUNDLE",
    "ENV_ORG",
    "GLOBAL",
    "MASK",
    "REDACTED",
    "Bundle",
    "BundleIntegrityError",
    "BundleKeyError",
    "BundleReadError",
    "IntegrationData",
    "IntegrationMappingResponse",
    "Integrations",
    "NoScopeError",
    "OAuthCredentials",
    "UnknownOrganizationError",
    "integrations",
]

ENV_BUNDLE: Final = "BIFROST_GITOPS_BUNDLE"
ENV_ORG: Final = "BIFROST_GITOPS_ORG"
GLOBAL: Final = "global"
MASK: Final = "<secret>"
REDACTED: Final = "<redacted>"  # what `compile --secrets redact` writes (bundle.REDACTED)
FORMAT: Final = 1
_MISS: Final[Any] = object()


# --- errors --------------------------------------------------------------------------------


class BundleReadError(Exception):
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


# --- the models ----------------------------------------------------------------------------


def _copy_json(v: Any) -> Any:
    """A deep copy of a JSON value (dicts and lists rebuilt, scalars shared)."""
    if isinstance(v, dict):
        return {k: _copy_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy_json(x) for x in v]
    return v


class _Config(dict[str, Any]):
    """``IntegrationData.config``: a plain dict whose repr masks the secret keys' values."""

    __slots__ = ("_secret_keys",)
    _secret_keys: frozenset[str]

    def __repr__(self) -> str:
        keys: frozenset[str] = getattr(self, "_secret_keys", frozenset())
        return repr({k: (MASK if k in keys and v is not None else v) for k, v in self.items()})

    __str__ = __repr__

    def __reduce__(self) -> Any:  # pickles / deep-copies as a plain dict
        return (dict, (dict(self),))


def _masked(v: Any) -> str:
    return "None" if v is None else repr(MASK)


class OAuthCredentials:
    """Bifrost's OAuthCredentials; secrets masked in repr, clear in attributes.

    docs/bifrost-api.md#sdk-models"""

    __slots__ = (
        "access_token",
        "authorization_url",
        "client_id",
        "client_secret",
        "connection_name",
        "expires_at",
        "refresh_token",
        "scopes",
        "token_url",
    )
    connection_name: str
    client_id: str | None
    client_secret: str | None
    authorization_url: str | None
    token_url: str | None
    scopes: list[str]
    access_token: str | None
    refresh_token: str | None
    expires_at: str | None

    FIELDS: Final = (
        "connection_name",
        "client_id",
        "client_secret",
        "authorization_url",
        "token_url",
        "scopes",
        "access_token",
        "refresh_token",
        "expires_at",
    )
    SECRET_FIELDS: Final = frozenset({"client_secret", "access_token", "refresh_token"})

    def __init__(self, **fields: Any) -> None:
        for name in self.FIELDS:
            setattr(self, name, fields.get(name))
        if self.scopes is None:
            self.scopes = []

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> OAuthCredentials:
        o = cls(**{k: rec.get(k) for k in cls.FIELDS})
        o.scopes = list(o.scopes or [])
        return o

    def _clone(self) -> OAuthCredentials:
        new = object.__new__(OAuthCredentials)
        new.connection_name = self.connection_name
        new.client_id = self.client_id
        new.client_secret = self.client_secret
        new.authorization_url = self.authorization_url
        new.token_url = self.token_url
        new.scopes = list(self.scopes)
        new.access_token = self.access_token
        new.refresh_token = self.refresh_token
        new.expires_at = self.expires_at
        return new

    def model_dump(self) -> dict[str, Any]:
        """The fields as a dict, secrets in clear (like pydantic's ``model_dump``)."""
        out = {name: getattr(self, name) for name in self.FIELDS}
        out["scopes"] = list(self.scopes)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OAuthCredentials) and self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = [
            f"{name}={_masked(getattr(self, name)) if name in self.SECRET_FIELDS else repr(getattr(self, name))}"
            for name in self.FIELDS
        ]
        return f"OAuthCredentials({', '.join(parts)})"

    __str__ = __repr__


class IntegrationData:
    """Bifrost's IntegrationData (docs/bifrost-api.md#sdk-models); what :meth:`Integrations.get` returns."""

    __slots__ = ("config", "config_secret_keys", "entity_id", "entity_name", "integration_id", "oauth")
    integration_id: str | None
    entity_id: str | None
    entity_name: str | None
    config: dict[str, Any]
    config_secret_keys: list[str]
    oauth: OAuthCredentials | None

    FIELDS: Final = ("integration_id", "entity_id", "entity_name", "config", "oauth", "config_secret_keys")

    def __init__(
        self,
        *,
        integration_id: str | None = None,
        entity_id: str | None = None,
        entity_name: str | None = None,
        config: Mapping[str, Any] | None = None,
        oauth: OAuthCredentials | None = None,
        config_secret_keys: list[str] | None = None,
    ) -> None:
        self.integration_id = integration_id
        self.entity_id = entity_id
        self.entity_name = entity_name
        self.config_secret_keys = list(config_secret_keys or [])
        cfg = _Config(config or {})
        cfg._secret_keys = frozenset(self.config_secret_keys)
        self.config = cfg
        self.oauth = oauth

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> IntegrationData:
        oauth = rec.get("oauth")
        config = rec.get("config")
        return cls(
            integration_id=rec.get("integration_id"),
            entity_id=rec.get("entity_id"),
            entity_name=rec.get("entity_name"),
            config=config if isinstance(config, Mapping) else {},
            oauth=OAuthCredentials.from_record(oauth) if isinstance(oauth, Mapping) else None,
            config_secret_keys=list(rec.get("config_secret_keys") or []),
        )

    def model_dump(self) -> dict[str, Any]:
        """The fields as a dict, secrets in clear (like pydantic's ``model_dump``)."""
        return {
            "integration_id": self.integration_id,
            "entity_id": self.entity_id,
            "entity_name": self.entity_name,
            "config": _copy_json(dict(self.config)),
            "oauth": self.oauth.model_dump() if self.oauth is not None else None,
            "config_secret_keys": list(self.config_secret_keys),
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IntegrationData) and self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"IntegrationData(integration_id={self.integration_id!r}, entity_id={self.entity_id!r}, "
            f"entity_name={self.entity_name!r}, config={_masked_config(self.config, self.config_secret_keys)}, "
            f"oauth={self.oauth!r}, config_secret_keys={self.config_secret_keys!r})"
        )

    __str__ = __repr__


def _masked_config(config: Mapping[str, Any], secret_keys: list[str]) -> str:
    keys = set(secret_keys)
    return repr({k: (MASK if k in keys and v is not None else v) for k, v in config.items()})


class _Template:
    """A cached IntegrationData, handed out as fresh copies (cheap: see benchmarks/bench_runtime.py)."""

    __slots__ = ("config", "keys", "mutable", "oauth", "secret_keys", "value")

    def __init__(self, value: IntegrationData) -> None:
        self.value = value
        self.config = dict(value.config)
        self.mutable = tuple(k for k, v in self.config.items() if isinstance(v, dict | list))
        self.keys = tuple(value.config_secret_keys)
        self.secret_keys = frozenset(self.keys)
        self.oauth = value.oauth

    def copy(self) -> IntegrationData:
        v = self.value
        new = object.__new__(IntegrationData)
        new.integration_id = v.integration_id
        new.entity_id = v.entity_id
        new.entity_name = v.entity_name
        cfg = _Config(self.config)
        for k in self.mutable:
            cfg[k] = _copy_json(cfg[k])
        cfg._secret_keys = self.secret_keys
        new.config = cfg
        new.config_secret_keys = list(self.keys)
        new.oauth = None if self.oauth is None else self.oauth._clone()
        return new


class IntegrationMappingResponse:
    """Bifrost's IntegrationMappingResponse (docs/bifrost-api.md#sdk-models), from the bundle.

    ``config`` is the merged config (defaults plus the org's overrides, secrets clear), as
    Bifrost returns it. ``organization`` (the org's name) is an addition: Bifrost has only the
    UUID, which a repository may not declare. ``id``, ``oauth_token_id``, ``created_at`` and
    ``updated_at`` are None: the bundle does not know them.
    """

    __slots__ = (
        "config",
        "created_at",
        "entity_id",
        "entity_name",
        "id",
        "integration_id",
        "oauth_token_id",
        "organization",
        "organization_id",
        "secret_keys",
        "updated_at",
    )
    FIELDS: Final = (
        "id",
        "integration_id",
        "organization_id",
        "entity_id",
        "entity_name",
        "oauth_token_id",
        "config",
        "created_at",
        "updated_at",
    )

    def __init__(self, organization: str, organization_id: str | None, data: IntegrationData) -> None:
        self.id: str | None = None
        self.integration_id = data.integration_id
        self.organization = organization
        self.organization_id = organization_id
        self.entity_id = data.entity_id or ""
        self.entity_name = data.entity_name
        self.oauth_token_id: str | None = None
        self.config = data.config
        self.secret_keys = list(data.config_secret_keys)
        self.created_at: Any = None
        self.updated_at: Any = None

    def model_dump(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.FIELDS}
        out["config"] = _copy_json(dict(self.config))
        return out

    def __repr__(self) -> str:
        return (
            f"IntegrationMappingResponse(organization={self.organization!r}, "
            f"organization_id={self.organization_id!r}, integration_id={self.integration_id!r}, "
            f"entity_id={self.entity_id!r}, entity_name={self.entity_name!r}, "
            f"config={_masked_config(self.config, self.secret_keys)})"
        )

    __str__ = __repr__


# --- the bundle ----------------------------------------------------------------------------


class _View:
    """One loaded org file (or global.json)."""

    __slots__ = ("id", "mapped", "name", "records", "templates")

    def __init__(
        self, name: str, org_id: str | None, records: dict[str, Any], mapped: frozenset[str] | None = None
    ) -> None:
        self.name = name
        self.id = org_id
        self.records = records
        self.mapped = mapped  # the file's "mapped" list of integration names, when it has one
        self.templates: dict[str, _Template] = {}

    def template(self, integration: str) -> _Template | None:
        t = self.templates.get(integration)
        if t is None:
            rec = self.records.get(integration)
            if not isinstance(rec, Mapping):
                return None
            t = self.templates[integration] = _Template(IntegrationData.from_record(rec))
        return t


def _norm_id(v: Any) -> str | None:
    return str(v).lower() if isinstance(v, str) and v else None


def _check_owner(tree: dict[str, Any], key: str, entry: Mapping[str, Any], path: str) -> None:
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


def _who(org: Any) -> str:
    if not isinstance(org, Mapping):
        return "no organization"
    return f"organization {org.get('name')!r} (id {org.get('id')!r})"


class Bundle:
    """A compiled bundle folder, read lazily and cached (see the module docstring).

    ``keyring``: a :class:`bifrost_gitops.sops.Keyring` (or a list of pyrage identities) that
    opens sealed files; None means sops's key sources, looked up when a sealed file is read.
    """

    def __init__(self, path: str | os.PathLike[str], keyring: Any = None) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.keyring = keyring
        self._lock = threading.RLock()
        self._index: dict[str, Any] | None = None
        self._by_id: dict[str, str] = {}
        self._views: dict[str, _View] = {}
        # (scope as given, integration) -> template, or None for an unknown integration
        self._hot: dict[tuple[str, str], _Template | None] = {}

    def __repr__(self) -> str:
        return f"Bundle({self.path!r})"

    # -- index

    def _read_index(self) -> dict[str, Any]:
        path = os.path.join(self.path, "index.json")
        try:
            with open(path, "rb") as f:
                index = json.loads(f.read())
        except FileNotFoundError:
            raise BundleReadError(
                f"{path}: not found (is {self.path} a bundle written by `bifrost-gitops compile`?)"
            ) from None
        except OSError as e:
            raise BundleReadError(f"{path}: cannot read it ({e.strerror or type(e).__name__})") from None
        except ValueError:
            raise BundleReadError(f"{path}: not valid JSON") from None
        if not isinstance(index, dict) or index.get("kind") != "bifrost-gitops/bundle":
            raise BundleReadError(f"{path}: not a bifrost-gitops bundle index")
        if index.get("format") != FORMAT:
            raise BundleReadError(
                f"{path}: bundle format {index.get('format')!r} is not supported (this runtime reads {FORMAT})"
            )
        if index.get("secrets") not in ("seal", "plain", "redact"):
            raise BundleReadError(f"{path}: unknown secrets mode {index.get('secrets')!r}")
        if not isinstance(index.get("orgs"), dict) or not isinstance(index.get("global"), dict):
            raise BundleReadError(f"{path}: malformed (no orgs or global entry)")
        return index

    @property
    def index(self) -> dict[str, Any]:
        """index.json (read once)."""
        index = self._index
        if index is None:
            with self._lock:
                if self._index is None:
                    self._set_index(self._read_index())
                index = self._index
                assert index is not None
        return index

    def _set_index(self, index: dict[str, Any]) -> None:
        self._index = index
        self._by_id = {
            str(e["id"]).lower(): name
            for name, e in index["orgs"].items()
            if isinstance(e, dict) and isinstance(e.get("id"), str)
        }

    @property
    def mode(self) -> str:
        """``seal``, ``plain`` or ``redact``."""
        return str(self.index["secrets"])

    def organizations(self) -> list[str]:
        """The organizations' names, sorted."""
        return sorted(self.index["orgs"])

    def org_name(self, scope: str) -> str:
        """The bundle's key for SCOPE: ``"global"``, or an organization's name (given its name or UUID)."""
        if scope == GLOBAL:
            return GLOBAL
        orgs = self.index["orgs"]
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

    def _entry(self, index: dict[str, Any], key: str) -> dict[str, Any]:
        entry = index["global"] if key == GLOBAL else index["orgs"].get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise BundleReadError(f"{os.path.join(self.path, 'index.json')}: no valid entry for {key!r}")
        rel = entry["file"]
        if os.path.isabs(rel) or ".." in rel.replace("\\", "/").split("/"):
            raise BundleReadError(
                f"{os.path.join(self.path, 'index.json')}: entry {key!r} points outside the bundle"
            )
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
                fresh_entry = self._entry(fresh, key) if key == GLOBAL or key in fresh["orgs"] else None
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
        org_id = None if key == GLOBAL else index["orgs"][key].get("id")
        listed = tree.get("mapped")
        mapped = frozenset(x for x in listed if isinstance(x, str)) if isinstance(listed, list) else None
        return _View(key, org_id, records, mapped)

    def _open_sealed(self, data: bytes, path: str) -> dict[str, Any]:
        from . import sops  # imported only for sealed bundles (it pulls in pyrage/cryptography)
        from .storable import unsendable

        try:
            doc = sops.loads(data, "json", file=path)
            tree: dict[str, Any] = sops.decrypt_document(doc, identities=self.keyring, file=path, fmt="json")
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
        from . import sops

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

    # -- lookups

    def get(self, name: str, scope: str) -> IntegrationData | None:
        """IntegrationData for NAME in SCOPE (an org name/UUID or "global"); None if unknown."""
        t = self._hot.get((scope, name), _MISS)
        if t is _MISS:
            t = self.view(self.org_name(scope)).template(name)
            self._hot[(scope, name)] = t
        return None if t is None else t.copy()

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
        data = self.get(name, org)
        if data is None:
            return None
        return IntegrationMappingResponse(org, self.index["orgs"][org].get("id"), data)


# --- the SDK object ------------------------------------------------------------------------


def _env_scope() -> str:
    scope = os.environ.get(ENV_ORG)
    if not scope:
        raise NoScopeError(
            f"no scope given and {ENV_ORG} is not set: set it to the organization's name or UUID, "
            "or pass scope= (an organization, or 'global')"
        )
    return scope


class Integrations:
    """Bifrost's ``integrations`` SDK object over a bundle (explicit, or ``BIFROST_GITOPS_BUNDLE``)."""

    def __init__(self, bundle: Bundle | str | os.PathLike[str] | None = None) -> None:
        self._fixed = bundle if isinstance(bundle, Bundle) or bundle is None else Bundle(bundle)
        self._env_path: str | None = None
        self._env_bundle: Bundle | None = None

    @property
    def bundle(self) -> Bundle:
        """The bundle read: the explicit one, else the one ``BIFROST_GITOPS_BUNDLE`` names."""
        if self._fixed is not None:
            return self._fixed
        path = os.environ.get(ENV_BUNDLE)
        if path != self._env_path or self._env_bundle is None:
            if not path:
                raise BundleReadError(
                    f"{ENV_BUNDLE} is not set: point it at a folder written by `bifrost-gitops compile`, "
                    "or use Integrations(Bundle(path))"
                )
            self._env_bundle, self._env_path = Bundle(path), path
        return self._env_bundle

    def clear_cache(self) -> None:
        """Forget what was read (the next call reads the bundle again)."""
        if self._fixed is not None:
            self._fixed.clear_cache()
        self._env_bundle = self._env_path = None

    def get_sync(
        self, name: str, scope: str | None = None, oauth_scope: str | None = None
    ) -> IntegrationData | None:
        """:meth:`get` without ``await``."""
        return self.bundle.get(name, scope or _env_scope())

    async def get(
        self, name: str, scope: str | None = None, oauth_scope: str | None = None
    ) -> IntegrationData | None:
        """What Bifrost's ``integrations.get(name, scope, oauth_scope)`` returns, from the bundle.

        None for an integration the bundle does not have. ``oauth_scope`` is accepted for
        compatibility and ignored (the bundle mints no tokens).
        """
        return self.bundle.get(name, scope or _env_scope())

    def list_mappings_sync(
        self, name: str, scope: str | None = None
    ) -> list[IntegrationMappingResponse] | None:
        """:meth:`list_mappings` without ``await``."""
        b = self.bundle
        key = b.org_name(scope or _env_scope())
        if name not in b.view(GLOBAL).records:  # global.json has every integration
            return None
        orgs = b.organizations() if key == GLOBAL else [key]
        return [m for m in (b.mapping(o, name) for o in orgs) if m is not None]

    async def list_mappings(
        self, name: str, scope: str | None = None
    ) -> list[IntegrationMappingResponse] | None:
        """The mappings of integration NAME: the scope's organization's (0 or 1), or every
        organization's with ``scope="global"`` (reads every org file). None for an unknown integration.
        """
        return self.list_mappings_sync(name, scope)

    def get_mapping_sync(
        self, name: str, scope: str | None = None, entity_id: str | None = None
    ) -> IntegrationMappingResponse | None:
        """:meth:`get_mapping` without ``await``."""
        b = self.bundle
        key = b.org_name(scope or _env_scope())
        if key != GLOBAL:  # by organization (the entity id cannot find another org's mapping)
            return b.mapping(key, name)
        if entity_id is None:
            return None
        for org in b.organizations():
            rec = b.view(org).records.get(name)
            if isinstance(rec, Mapping) and rec.get("entity_id") == entity_id and b.mapped(org, name):
                return b.mapping(org, name)
        return None

    async def get_mapping(
        self, name: str, scope: str | None = None, entity_id: str | None = None
    ) -> IntegrationMappingResponse | None:
        """One mapping: the scope organization's first, then (``scope="global"``) the one whose
        entity id is ENTITY_ID. None when there is none.
        """
        return self.get_mapping_sync(name, scope, entity_id)


#: The module-level SDK object, bound to ``BIFROST_GITOPS_BUNDLE`` when first used.
integrations: Final = Integrations()
