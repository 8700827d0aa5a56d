"""Identical changes read once: the same change (integration, kind, key, old -> new) made to
many organizations is one Group that lists them.

A default changed in an integration touches every organization that does not override it; a
reviewer must see that once ("page_size 45 -> 60: 1,504 organizations, all but contoso"), not
1,504 times. Grouping is exact: each organization of a group made exactly that change, and each
(organization, change) of the Diff lands in exactly one group.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from .diff import Change, Diff
from .nodes import Json


class _Key(NamedTuple):
    """What makes two changes the same change (the source line may differ: a mapping's)."""

    integration: str
    what: str
    key: str
    old: str
    new: str
    old_value: str
    new_value: str
    secret: bool


@dataclass
class Group:
    """One change and every organization that makes it, in the diff's order."""

    change: Change  # the first organization's change: its values stand for all
    orgs: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # distinct file:line, in order

    @property
    def integration(self) -> str | None:
        return self.change.integration


def _key(c: Change) -> _Key:
    def typed(v: Json) -> str:
        return json.dumps(v, sort_keys=True)

    return _Key(
        c.integration or "",
        c.what,
        c.key or "",
        "" if c.old is None else "\0" + c.old,
        "" if c.new is None else "\0" + c.new,
        typed(c.old_value),
        typed(c.new_value),
        c.secret,
    )


def groups(d: Diff) -> list[Group]:
    """The diff's changes grouped: organization-level first, then integration by integration;
    within one, fields in the order the diff meets them (as an organization's list reads),
    and the widest group of a field first."""
    found: dict[_Key, Group] = {}
    for org, changes in d.changes.items():
        for c in changes:
            g = found.setdefault(_key(c), Group(c))
            if not g.orgs or g.orgs[-1] != org:
                g.orgs.append(org)
            if c.source and c.source not in g.sources:
                g.sources.append(c.source)
    order = {k: i for i, k in enumerate(found)}
    field_order: dict[tuple[str, str, str], int] = {}
    for k in found:
        field_order.setdefault((k.integration, k.what, k.key), len(field_order))

    def rank(k: _Key) -> tuple[bool, str, int, int, int]:
        first = field_order[(k.integration, k.what, k.key)]
        return (k.integration != "", k.integration, first, -len(found[k].orgs), order[k])

    return [found[k] for k in sorted(found, key=rank)]


def all_but(orgs: list[str], universe: list[str], names: int = 3) -> list[str] | None:
    """The organizations left out, when "all but" them (at most NAMES) is the shorter way to
    say ORGS; None when it is not."""
    chosen = set(orgs)
    rest = [o for o in universe if o not in chosen]
    if rest and len(rest) < len(orgs) and len(rest) <= names and len(chosen & set(universe)) == len(orgs):
        return rest
    return None


def overriding(n: int) -> str:
    """What follows "all but a, b" when they keep their own value."""
    return ", which overrides it" if n == 1 else ", which override it"


def who(
    orgs: list[str],
    universe: list[str],
    names: int = 3,
    shielded: bool = False,
    show: Callable[[str], str] = str,
) -> str:
    """``"2 organizations: a, b"``, ``"2,999 of 3,000 organizations: all but contoso"``,
    ``"all 3,000 organizations"``; at most NAMES names, the rest counted (the caller lists
    them in full where it has room; SHIELDED: those left out override the key). Each name goes
    through SHOW, the escape of the output it lands in."""
    n, total = len(orgs), len(universe)
    if n > 1 and n == total and set(orgs) == set(universe):
        return f"all {total:,} organizations"
    rest = all_but(orgs, universe, names)
    if rest is not None:
        why = overriding(len(rest)) if shielded else ""
        return f"{n:,} of {total:,} organizations: all but {', '.join(map(show, rest))}{why}"
    more = f" and {n - names:,} more" if n > names else ""
    noun = "organization" if n == 1 else "organizations"
    return f"{n:,} {noun}: {', '.join(map(show, orgs[:names]))}{more}"
