"""Config values (integration defaults, organization overrides): which keys are secret, and
the partial-merge diff Bifrost's config PUTs take (changed keys, null for a removal)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..spec import Edit
from .ops import Change, Plan, same


@dataclass(frozen=True)
class Keys:
    """What the declared and the live schema say about one integration's config keys."""

    declared: Mapping[str, str]  # key -> type, as the repository declares it
    live: Mapping[str, str]  # key -> type, as Bifrost has it
    #: keys whose values are re-sent even when equal: their type changed, or they are new to
    #: the schema while values exist (stored untyped until a write types them)
    retyped: frozenset[str] = frozenset()
    #: keys removed from the schema: their values go with them (cascade), never diffed
    gone: frozenset[str] = frozenset()

    def secret(self, key: str) -> bool:
        """Typed secret by either schema, or unknown to both (then its value is never shown)."""
        return {**self.live, **self.declared}.get(key, "secret") == "secret"

    def public(self) -> frozenset[str]:
        """The declared keys whose values may be shown."""
        return frozenset(k for k, t in self.declared.items() if t != "secret")

    def change(self, key: str, edit: Edit, old: object = None, new: object = None) -> Change:
        """A Change of config value KEY, its values masked when the key is secret."""
        secret = self.secret(key)
        return Change(f"config.{key}", edit, None if secret else old, None if secret else new, secret)

    def removals(self, values: Mapping[str, object]) -> list[Change]:
        """A Change per removed value, in key order."""
        return [self.change(k, Edit.REMOVE, values[k]) for k in sorted(values)]


def config_diff(
    plan: Plan,
    what: str,
    want: Mapping[str, object],
    have: Mapping[str, object],
    keys: Keys,
    prune: bool,
) -> tuple[dict[str, object], list[Change]]:
    """The partial-merge body and its Changes. A live key the repository does not name is
    nulled when PRUNE, else reported as drift (WHAT names the place)."""
    body: dict[str, object] = {}
    changes: list[Change] = []
    for key in sorted(want):
        new = want[key]
        if new is None:
            if key in have and key not in keys.gone:
                body[key] = None
                changes.append(keys.change(key, Edit.REMOVE, have[key]))
        elif key not in have:
            body[key] = new
            changes.append(keys.change(key, Edit.ADD, None, new))
        elif not same(have[key], new) or key in keys.retyped:
            body[key] = new
            changes.append(keys.change(key, Edit.CHANGE, have[key], new))
    for key in sorted(have):
        if key in want or key in keys.gone:
            continue
        if prune:
            body[key] = None
            changes.append(keys.change(key, Edit.REMOVE, have[key]))
        else:
            plan.drift.append(
                f"{what} {key!r} is set in Bifrost but not in the repository (apply --prune removes it)"
            )
    return body, changes
