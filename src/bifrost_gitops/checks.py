"""Rules across documents: names declared once, references that resolve, every organization
given a value for each required key; each document's own values are checked by valuechecks.py
(those that need no other document, such as its sops metadata, once per content: perfile.py).

Messages name keys, types and organizations, never a value that could be a secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from .catalog import Catalog, Parsed, oauth_of, of_kind
from .diagnostics import Diagnostic, error, warning
from .loader import Path
from .model import (
    AnyDocument,
    Integration,
    Mapping,
    OAuthProvider,
    OAuthSettings,
    Organizations,
    Project,
    ProviderRef,
)
from .structure import suggest
from .valuechecks import check_oauth, check_values

Named = TypeVar("Named", Integration, OAuthProvider)


class Memo(Protocol):
    """Findings of checks that read only a few documents, kept from an earlier run under a key
    made from exactly those documents' contents (repo.py gives the cache's; see cache.Cache)."""

    def key(self, paths: tuple[str | None, ...]) -> bytes | None:
        """The key of these files' contents as read in this run (None: not cached)."""
        ...

    def get(self, key: bytes) -> list[Diagnostic] | None: ...

    def put(self, key: bytes, found: list[Diagnostic]) -> None: ...


def check(
    parsed: Iterable[Parsed[AnyDocument]], unverified: set[str] | None = None, memo: Memo | None = None
) -> tuple[Catalog, list[Diagnostic]]:
    """Index the structurally valid documents and check the rules across them (UNVERIFIED:
    names declared by documents that failed their schema, so references to them are not
    reported again; MEMO: where a mapping's own checks are found again when none of the
    documents they read changed)."""
    cat = Catalog(unverified=unverified or set())
    out: list[Diagnostic] = []
    docs = list(parsed)
    for project in of_kind(docs, Project):
        if cat.project is None:
            cat.project = project
        else:
            out.append(
                error(
                    "S003",
                    project.doc.path,
                    project.doc.pos(("kind",)),
                    f"a second Project document (the first is {cat.project.doc.path})",
                )
            )

    providers = of_kind(docs, OAuthProvider)
    _index_orgs(cat, of_kind(docs, Organizations), out)
    _index_named(cat.providers, providers, "OAuth provider", out)
    _index_named(cat.integrations, of_kind(docs, Integration), "integration", out)
    for provider in providers:
        check_oauth(provider.doc, (), provider.model, out)
    for integration in cat.integrations.values():
        _check_integration(cat, integration, out)
    for mapping in of_kind(docs, Mapping):
        _check_mapping(cat, mapping, out, memo)
    for integration in cat.integrations.values():
        _check_unmapped(cat, integration, out)
    return cat, out


def _index_orgs(cat: Catalog, docs: list[Parsed[Organizations]], out: list[Diagnostic]) -> None:
    ids: dict[str, tuple[str, str]] = {}
    for p in docs:
        for i, org in enumerate(p.model.organizations):
            path: Path = ("organizations", i, "name")
            seen = cat.orgs.get(org.name.lower())
            if seen is not None:
                first = seen[1].doc
                out.append(
                    error(
                        "R001",
                        p.doc.path,
                        p.doc.pos(path),
                        f"organization {org.name!r} is declared twice "
                        f"(first at {first.path}:{first.pos(('organizations', seen[2], 'name'))[0]})",
                    )
                )
                continue
            cat.orgs[org.name.lower()] = (org, p, i)
            if org.id:
                if org.id.lower() in ids:
                    other, where = ids[org.id.lower()]
                    out.append(
                        error(
                            "R001",
                            p.doc.path,
                            p.doc.pos(("organizations", i, "id")),
                            f"organization {org.name!r} has the same id as {other!r} ({where})",
                        )
                    )
                else:
                    line = p.doc.pos(("organizations", i, "id"))[0]
                    ids[org.id.lower()] = (org.name, f"{p.doc.path}:{line}")


def _index_named(
    index: dict[str, Parsed[Named]], docs: list[Parsed[Named]], what: str, out: list[Diagnostic]
) -> None:
    lowered: dict[str, Parsed[Named]] = {}
    for p in docs:
        name = p.model.name
        first = lowered.get(name.lower())
        if first is not None:
            same = (
                "" if first.model.name == name else f" (as {first.model.name!r}; names differ only in case)"
            )
            out.append(
                error(
                    "R001",
                    p.doc.path,
                    p.doc.pos(("name",)),
                    f"{what} {name!r} is already declared in {first.doc.path}{same}",
                )
            )
            continue
        lowered[name.lower()] = p
        index[name] = p


def _check_integration(cat: Catalog, p: Parsed[Integration], out: list[Diagnostic]) -> None:
    integ = p.model
    doc = p.doc
    keys: dict[str, int] = {}
    for i, item in enumerate(integ.config_schema):
        if item.key in keys:
            out.append(
                error(
                    "R006",
                    doc.path,
                    doc.pos(("config_schema", i, "key")),
                    f"config key {item.key!r} is declared twice (first at line "
                    f"{doc.pos(('config_schema', keys[item.key], 'key'))[0]})",
                )
            )
        else:
            keys[item.key] = i
        if item.options is not None and item.type != "string":
            out.append(
                error(
                    "S001",
                    doc.path,
                    doc.pos(("config_schema", i, "options")),
                    f"options apply to string keys, not to {item.type} key {item.key!r}",
                )
            )
    link = integ.oauth
    if isinstance(link, ProviderRef):
        if link.provider not in cat.providers and link.provider.lower() not in cat.unverified:
            out.append(
                error(
                    "R005",
                    doc.path,
                    doc.pos(("oauth", "provider")),
                    f"OAuth provider {link.provider!r} is not declared",
                    suggest(link.provider, cat.providers) or "declare it in a kind: OAuthProvider document",
                )
            )
    elif link is not None:
        check_oauth(doc, ("oauth",), link, out)
    if integ.defaults is not None:
        check_values(doc, ("defaults",), integ, integ.defaults.config, integ.defaults.secrets, False, out)


def _has(values: dict[str, object], key: str) -> bool:
    return values.get(key) not in (None, "")


def _check_mapping(cat: Catalog, p: Parsed[Mapping], out: list[Diagnostic], memo: Memo | None = None) -> None:
    # from the facts: an unchanged mapping whose checks are memoised is never loaded
    organization, integration = p.facts.organization or "", p.facts.integration or ""
    ok = organization.lower() in cat.orgs
    if not ok and organization.lower() not in cat.unverified:
        out.append(
            error(
                "R002",
                p.path,
                p.doc.pos(("organization",)),
                f"organization {organization!r} is not declared",
                suggest(organization, [o[0].name for o in cat.orgs.values()])
                or "add it to organizations.yaml",
            )
        )
    ip = cat.integrations.get(integration)
    if ip is None:
        if integration.lower() in cat.unverified:
            return
        out.append(
            error(
                "R003",
                p.path,
                p.doc.pos(("integration",)),
                f"integration {integration!r} is not declared",
                suggest(integration, cat.integrations),
            )
        )
        return
    pair = (integration, organization.lower())
    first = cat.mappings.get(pair)
    if first is not None:
        out.append(
            error(
                "R004",
                p.path,
                p.doc.pos(("organization",)),
                f"a second mapping of {integration!r} for {organization!r} (the first is {first.path})",
            )
        )
        return
    if ok:
        cat.mappings[pair] = p
    # the rest reads this mapping, its integration and that one's provider, nothing else
    link = ip.model.oauth
    provider = cat.providers.get(link.provider) if isinstance(link, ProviderRef) else None
    key = memo.key((p.path, ip.path, provider.path if provider else None)) if memo else None
    found = memo.get(key) if memo is not None and key is not None else None
    if found is None:
        found = []
        _check_mapping_values(cat, p, ip, found)
        if memo is not None and key is not None:
            memo.put(key, found)
    out.extend(found)


def _check_mapping_values(
    cat: Catalog, p: Parsed[Mapping], ip: Parsed[Integration], out: list[Diagnostic]
) -> None:
    """A declared mapping's values against its integration (and its provider's settings)."""
    m = p.model
    doc = p.doc
    integ = ip.model
    token_ok = oauth_of(cat, integ) is not None  # a mapping may carry org tokens
    check_values(doc, (), integ, m.config, m.secrets, token_ok, out)
    defaults = integ.defaults
    for item in integ.config_schema:
        if not item.required:
            continue
        own = m.secrets if item.type == "secret" else m.config
        inherited = (defaults.secrets if item.type == "secret" else defaults.config) if defaults else {}
        if not (_has(own, item.key) or _has(inherited, item.key)):
            out.append(
                error(
                    "C006",
                    doc.path,
                    doc.pos(("organization",)),
                    f"required key {item.key!r} has no value for organization {m.organization!r}",
                    f"set it under {'secrets' if item.type == 'secret' else 'config'}: here "
                    f"or in the defaults of {ip.doc.path}",
                )
            )
    oauth = oauth_of(cat, integ)
    if m.oauth == "own":
        _check_own_connection(p, integ, oauth, out)
    if (
        oauth is not None
        and "{entity_id}" in oauth.token_url
        and not (m.entity_id or integ.default_entity_id)
    ):
        out.append(
            error(
                "C008",
                doc.path,
                doc.pos(("entity_id",)),
                f"the token URL needs {{entity_id}}, but organization {m.organization!r} has none",
                "set entity_id here, or default_entity_id on the integration",
            )
        )


def _check_own_connection(
    p: Parsed[Mapping], integ: Integration, oauth: OAuthSettings | None, out: list[Diagnostic]
) -> None:
    """`oauth: own` needs a provider, and one whose Connect flow Bifrost can run per mapping:
    its per-mapping authorize endpoint needs an authorization URL, and nothing else in its API
    creates a mapping's token (docs/deploy.md#organization-oauth-connections)."""
    doc, m = p.doc, p.model
    if oauth is None:
        out.append(
            error(
                "C012",
                doc.path,
                doc.pos(("oauth",)),
                f"organization {m.organization!r} connects its own OAuth account, but integration "
                f"{integ.name!r} has no OAuth provider",
                "declare oauth: on the integration, or remove oauth: own here",
            )
        )
    elif oauth.flow == "client_credentials" or not oauth.authorization_url:
        out.append(
            warning(
                "C013",
                doc.path,
                doc.pos(("oauth",)),
                f"Bifrost cannot connect an account of its own for organization {m.organization!r}: "
                f"the provider of {integ.name!r} has no authorization step (flow {oauth.flow}), and its "
                "API creates a per-organization token only through one; the organization keeps the "
                "integration's token",
                "for a token per tenant, put {entity_id} in the token URL (Bifrost then fetches one "
                "per organization on each get), or remove oauth: own",
            )
        )


def _check_unmapped(cat: Catalog, p: Parsed[Integration], out: list[Diagnostic]) -> None:
    """Organizations without a mapping get the defaults: warn once if that view is incomplete."""
    integ = p.model
    unmapped = [o.name for o, _, _ in cat.orgs.values() if (integ.name, o.name.lower()) not in cat.mappings]
    if not unmapped:
        return
    who = f"{len(unmapped)} organization{'s' if len(unmapped) != 1 else ''} without a mapping (e.g. {unmapped[0]!r})"
    d = integ.defaults
    missing = [
        (i, item.key)
        for i, item in enumerate(integ.config_schema)
        if item.required and not (d and _has(d.secrets if item.type == "secret" else d.config, item.key))
    ]
    if missing:
        keys = ", ".join(repr(k) for _, k in missing)
        out.append(
            warning(
                "C007",
                p.doc.path,
                p.doc.pos(("config_schema", missing[0][0], "key")),
                f"required {'keys' if len(missing) > 1 else 'key'} {keys} "
                f"{'have' if len(missing) > 1 else 'has'} no default: {who} get no value",
                "add a default, or ignore this if those organizations do not use it",
            )
        )
    oauth = oauth_of(cat, integ)
    if (
        oauth is not None
        and "{entity_id}" in oauth.token_url
        and not (integ.default_entity_id or integ.entity_id)
    ):
        pos = p.doc.pos(("oauth",))
        out.append(
            warning(
                "C009",
                p.doc.path,
                pos,
                f"the token URL needs {{entity_id}}, but {who} resolve none",
                "set default_entity_id (e.g. 'common') or entity_id on the integration",
            )
        )
