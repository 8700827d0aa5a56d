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
        object.__setattr__(self, "_memo", {})

    @property
    def memo(self) -> dict[str, bool]:
        """What :meth:`matches` answered, by key (walks read it first: keys repeat across files)."""
        return self._memo  # type: ignore[attr-defined,no-any-return]

    @property
    def by_comment(self) -> bool:
        """Comment rules need the YAML comments, which are not part of the data we see."""
        return self._comment  # type: ignore[attr-defined,no-any-return]

    def matches(self, key: str) -> bool:
        """Whether one key of the path matches the rule's suffix or regex."""
        found = self.memo.get(key)
        if found is None:
            if self._suffix:  # type: ignore[attr-defined]
                found = key.endswith(self.value)
            elif self._comment:  # type: ignore[attr-defined]
                found = False
            else:
                found = bool(self._rx.search(key))  # type: ignore[attr-defined]
            if len(self.memo) < _MEMO_MAX:
                self.memo[key] = found
        return found

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
    """The rule recorded in sops metadata (default ``unencrypted_suffix: _unencrypted``); one
    object per rule, so its memo serves every file that has it."""
    found = [(f, meta[f]) for f in RULE_FIELDS if meta.get(f) not in (None, "")]
    if len(found) > 1:
        raise SopsError("sops metadata sets more than one of " + ", ".join(f for f, _ in found), file=file)
    f, v = found[0] if found else ("unencrypted_suffix", DEFAULT_SUFFIX)
    if not isinstance(v, str):
        raise SopsError(f"sops metadata field {f} is not a string", file=file)
    rule = _RULES.get((f, v))
    if rule is None:
        rule = Rule(f, v)
        if len(_RULES) < _MEMO_MAX:
            _RULES[f, v] = rule
    return rule


#: the rules seen (a repository has one or a few) and how many keys each remembers: bounded,
#: since every file can bring its own
_RULES: dict[tuple[str, str], Rule] = {}
_MEMO_MAX = 4096


def make_rule(**options: str | None) -> Rule:
    """The rule from keyword options (at most one may be set); the default suffix rule otherwise."""
    given = [(k, v) for k, v in options.items() if v is not None]
    if len(given) > 1:
        raise SopsError("only one of " + ", ".join(RULE_FIELDS) + " may be given")
    if not given:
        return Rule("unencrypted_suffix", DEFAULT_SUFFIX)
    return Rule(*given[0])
