"""`.sops.yaml` creation rules: which recipients and selectors a file is encrypted with.

Used for encryption (`secrets set`) and to spot files whose recipients drifted from what the
rules ask for (`secrets recipients`). Decryption never needs them: each file carries its own.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Final, Literal, TypedDict, get_args

import yaml

from .errors import BifrostGitopsError

CONFIG_NAME = ".sops.yaml"
#: the fields that choose which leaves sops encrypts: a creation rule's and a file's metadata alike
Selector = Literal[
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
]
SELECTORS: Final[tuple[Selector, ...]] = get_args(Selector)
_OTHER_KEYS = ("pgp", "kms", "gcp_kms", "azure_keyvault", "hc_vault_transit_uri", "hckms")


class EncryptOptions(TypedDict, total=False):
    """Keyword arguments of ``sops.encrypt_document``: recipients (or key groups), one selector."""

    recipients: list[str]
    key_groups: list[list[str]]
    shamir_threshold: int | None
    mac_only_encrypted: bool
    unencrypted_suffix: str
    encrypted_suffix: str
    unencrypted_regex: str
    encrypted_regex: str
    unencrypted_comment_regex: str
    encrypted_comment_regex: str


class RulesError(BifrostGitopsError):
    """No usable creation rule (missing or unreadable .sops.yaml, no rule matching a path)."""


@dataclass(frozen=True)
class Rule:
    path_regex: str | None
    #: age recipients, one tuple per key group (a single group when the rule is flat)
    age_groups: tuple[tuple[str, ...], ...]
    #: a non-age master key (pgp, kms, ...) is asked for: only the sops binary can encrypt
    other_keys: bool = False
    shamir_threshold: int | None = None
    selector: tuple[Selector, str] | None = None  # e.g. ("encrypted_regex", "^secrets$")
    mac_only_encrypted: bool = False

    @property
    def recipients(self) -> list[str]:
        return sorted({r for group in self.age_groups for r in group})


def find_config(start: str, stop: str | None = None) -> str | None:
    """The nearest .sops.yaml in ``start`` or its parents (as sops looks from its working folder)."""
    here = os.path.abspath(start)
    for _ in range(100):
        candidate = os.path.join(here, CONFIG_NAME)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here or (stop is not None and here == os.path.abspath(stop)):
            return None
        here = parent
    return None


def _recipients(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    return tuple(dict.fromkeys(str(v).strip() for v in items if str(v).strip()))


def _parse_rule(raw: dict[str, Any]) -> Rule:
    selectors = [(k, str(raw[k])) for k in SELECTORS if raw.get(k) not in (None, "")]
    if len(selectors) > 1:
        raise RulesError(f"a creation rule sets more than one of {', '.join(k for k, _ in selectors)}")
    groups_raw = raw.get("key_groups")
    if groups_raw:
        groups = tuple(_recipients(g.get("age")) for g in groups_raw if isinstance(g, dict))
        other = any(g.get(k) for g in groups_raw if isinstance(g, dict) for k in (*_OTHER_KEYS, "hc_vault"))
    else:
        groups = (_recipients(raw.get("age")),)
        other = any(raw.get(k) for k in _OTHER_KEYS)
    threshold = raw.get("shamir_threshold")
    return Rule(
        path_regex=raw.get("path_regex"),
        age_groups=groups,
        other_keys=bool(other),
        shamir_threshold=int(threshold) if threshold else None,
        selector=selectors[0] if selectors else None,
        mac_only_encrypted=bool(raw.get("mac_only_encrypted", False)),
    )


def load_rules(config_path: str) -> list[Rule]:
    try:
        with open(config_path, "rb") as f:
            return parse_rules(f.read(), config_path)
    except OSError as e:
        raise RulesError(f"{config_path}: cannot read sops config ({type(e).__name__})") from None


def parse_rules(text: bytes, config_path: str) -> list[Rule]:
    """The creation rules of a .sops.yaml's TEXT (read from disk or from a git revision)."""
    try:
        data = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as e:
        raise RulesError(f"{config_path}: cannot read sops config ({type(e).__name__})") from None
    rules = data.get("creation_rules") if isinstance(data, dict) else None
    if not isinstance(rules, list):
        raise RulesError(f"{config_path}: no creation_rules list")
    return [_parse_rule(r) for r in rules if isinstance(r, dict)]


def yaml_indent(config_path: str | None) -> int:
    """`stores.yaml.indent` of the config, else sops's default of 4."""
    if config_path is None:
        return 4
    try:
        with open(config_path, "rb") as f:
            return indent_of(f.read())
    except OSError:
        return 4


def indent_of(text: bytes) -> int:
    """`stores.yaml.indent` of a config's TEXT (already read), else sops's default of 4."""
    try:
        indent = yaml.load(text, Loader=yaml.CSafeLoader)["stores"]["yaml"]["indent"]
    except (yaml.YAMLError, KeyError, TypeError):
        return 4
    return indent if isinstance(indent, int) and 1 <= indent <= 16 else 4


def rule_for(config_path: str, file_path: str) -> Rule:
    """The first rule whose path_regex matches ``file_path`` relative to the config's folder."""
    rel = os.path.relpath(os.path.abspath(file_path), os.path.dirname(os.path.abspath(config_path)))
    return first_rule(config_path, load_rules(config_path), rel.replace(os.sep, "/"))


def first_rule(config_path: str, rules: list[Rule], rel: str) -> Rule:
    """The first of RULES (read from CONFIG_PATH) whose path_regex matches REL, the file's
    '/'-separated path relative to the config's folder."""
    for rule in rules:
        if rule.path_regex is None or re.search(rule.path_regex, rel):
            return rule
    raise RulesError(f"{config_path}: no creation rule matches {rel}")


def encrypt_options(rule: Rule) -> EncryptOptions:
    """Keyword arguments for ``sops.encrypt_document`` that follow RULE (age recipients only)."""
    opts: EncryptOptions = {"mac_only_encrypted": rule.mac_only_encrypted}
    if rule.selector:
        opts[rule.selector[0]] = rule.selector[1]
    if len(rule.age_groups) > 1:
        opts["key_groups"] = [list(g) for g in rule.age_groups]
        opts["shamir_threshold"] = rule.shamir_threshold
    else:
        opts["recipients"] = list(rule.age_groups[0])
    return opts
