"""Which leaves sops encrypts: the one active selector rule of the metadata (spec section 5).

Rules look at each key of a leaf's path separately; "any component matches" is inherited down
the tree, so the walk carries one boolean instead of re-testing whole paths.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..sopsrules import SELECTORS as RULE_FIELDS  # the same six fields select leaves in a file
from .errors import SopsError

DEFAULT_SUFFIX = "_unencrypted"


@dataclass(frozen=True)
class Rule:
    """The active selector, e.g. ``Rule("encrypted_regex", "^secrets$")``."""

    field: str
    value: str

    def __post_init__(self) -> None:
        if self.field not in RULE_FIELDS:
            raise SopsError(f"unknown selector {self.field}")
        if self.field.endswith("regex"):
            try:
                object.__setattr__(self, "_rx", re.compile(self.value))
            except re.error:
                raise SopsError(f"{self.field} is not a valid regular expression") from None
        # asked for every key and leaf of a document: decided once per rule
        object.__setattr__(self, "_comment", self.field.endswith("comment_regex"))
        object.__setattr__(self, "_suffix", self.field.endswith("suffix"))
        object.__setattr__(self, "_positive", self.field.startswith("encrypted"))

    @property
    def by_comment(self) -> bool:
        """Comment rules need the YAML comments, which are not part of the data we see."""
        return self._comment  # type: ignore[attr-defined,no-any-return]

    def matches(self, key: str) -> bool:
        """Whether one key of the path matches the rule's suffix or regex."""
        if self._suffix:  # type: ignore[attr-defined]
            return key.endswith(self.value)
        if self._comment:  # type: ignore[attr-defined]
            return False
        return bool(self._rx.search(key))  # type: ignore[attr-defined]

    def encrypted(self, matched: bool) -> bool | None:
        """Whether a leaf is encrypted, given whether any key on its path matched.

        None for comment rules: without comments the decision is left to the value itself
        (on decryption: ENC[...] strings are encrypted; on encryption: ``unencrypted_comment_regex``
        encrypts everything, ``encrypted_comment_regex`` nothing).
        """
        if self._comment:  # type: ignore[attr-defined]
            return None
        return matched if self._positive else not matched  # type: ignore[attr-defined]


def rule_of(meta: Mapping[str, object], file: str | None = None) -> Rule:
    """The rule recorded in sops metadata (default ``unencrypted_suffix: _unencrypted``)."""
    found = [(f, meta[f]) for f in RULE_FIELDS if meta.get(f) not in (None, "")]
    if len(found) > 1:
        raise SopsError("sops metadata sets more than one of " + ", ".join(f for f, _ in found), file=file)
    if not found:
        return Rule("unencrypted_suffix", DEFAULT_SUFFIX)
    f, v = found[0]
    if not isinstance(v, str):
        raise SopsError(f"sops metadata field {f} is not a string", file=file)
    return Rule(f, v)


def make_rule(**options: str | None) -> Rule:
    """The rule from keyword options (at most one may be set); the default suffix rule otherwise."""
    given = [(k, v) for k, v in options.items() if v is not None]
    if len(given) > 1:
        raise SopsError("only one of " + ", ".join(RULE_FIELDS) + " may be given")
    if not given:
        return Rule("unencrypted_suffix", DEFAULT_SUFFIX)
    return Rule(*given[0])
