"""`secrets updatekeys`: re-key every encrypted file whose recipients drifted from .sops.yaml.

Drift is what `secrets recipients` reports (recipients.list_recipients). A file whose master keys
are all age, in one group, is re-keyed natively: its data key, opened with the available age
key, is wrapped for each new recipient and dropped for each removed one. Values, comments, the
MAC and lastmodified stay byte for byte (as `sops updatekeys` leaves them), so the only lines
that change are the sops block's age entries. Anything else (PGP, KMS, key groups) goes to the
real `sops updatekeys -y`, or is left for a person when that binary is missing.
"""

from __future__ import annotations

import enum
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from . import sops, sopsfile, sopsmeta, sopsrules
from .recipients import Recipients, list_recipients
from .repo import Result
from .sops import binary, datakey
from .sops.errors import NoKeyError, SopsError, without_file


class How(enum.Enum):
    """Who re-keys a file (or would, with --dry-run)."""

    NATIVE = "re-keyed"
    SOPS = "re-keyed by sops updatekeys"
    NO_KEY = "not re-keyed: no available key opens it"
    LEFT = "left for a person"


@dataclass(frozen=True)
class Rekey:
    """One drifted file: the recipients added and removed (public keys only) and what happened."""

    path: str
    added: list[str]
    removed: list[str]
    how: How
    reason: str = ""  # why it was left or failed (never a value)


class _Config(NamedTuple):
    """One .sops.yaml as this run read it (once, however many files it covers)."""

    path: str  # absolute
    rules: list[sopsrules.Rule] | None  # None: unreadable, or no creation_rules
    indent: int  # stores.yaml.indent, else sops's 4


class _Configs:
    """Each .sops.yaml named by a drifted file, read on first use (a repository has thousands
    of encrypted files and a handful of configs)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.read: dict[str, _Config] = {}

    def get(self, config: str) -> _Config:
        if config not in self.read:
            path = os.path.join(self.root, config)
            try:
                with open(path, "rb") as f:
                    text = f.read()
            except OSError:
                self.read[config] = _Config(path, None, sopsrules.yaml_indent(None))
                return self.read[config]
            try:
                rules: list[sopsrules.Rule] | None = sopsrules.parse_rules(text, path)
            except sopsrules.RulesError:
                rules = None
            self.read[config] = _Config(path, rules, sopsrules.indent_of(text))
        return self.read[config]


def update_keys(result: Result, dry_run: bool = False, keyring: sops.Keyring | None = None) -> list[Rekey]:
    """Re-key every drifted file (none written with DRY_RUN); one Rekey per drifted file, in path order."""
    ring = keyring or sops.default_keyring()
    configs = _Configs(result.root)
    drifted = [row for row in list_recipients(result) if row.missing or row.extra]
    return [_one(result, row, dry_run, ring, configs) for row in drifted]


def _one(result: Result, row: Recipients, dry_run: bool, ring: sops.Keyring, configs: _Configs) -> Rekey:
    config = configs.get(row.config) if row.config is not None else None
    how, reason = _rekey(result, row, dry_run, ring, config)
    return Rekey(row.path, row.missing, row.extra, how, reason)


def _rekey(
    result: Result, row: Recipients, dry_run: bool, ring: sops.Keyring, config: _Config | None
) -> tuple[How, str]:
    path = os.path.join(result.root, row.path)
    try:
        source = sopsfile.read(path)
        current = source.tree()
    except SopsError as e:
        return How.LEFT, without_file(e, path)
    meta = current["sops"]
    if not _native(meta, path, config):
        return (How.SOPS, "") if dry_run else _by_sops(result, row)
    try:
        key = datakey.unwrap(meta, ring, file=row.path)
    except NoKeyError:
        return How.NO_KEY, f"it is encrypted to {', '.join(sops.recipients(meta))}"
    except SopsError as e:
        return How.LEFT, without_file(e, row.path)
    if not dry_run:
        wanted = set(row.wanted or [])
        kept = [e for e in meta.get("age") or [] if isinstance(e, Mapping) and e.get("recipient") in wanted]
        entries = kept + [datakey.wrap_age(key, r) for r in row.missing]
        tree = {**current, "sops": {**meta, "age": entries}}  # only its sops block changed
        indent = config.indent if config is not None else sopsrules.yaml_indent(None)
        sopsfile.write(path, sopsfile.new_text(source, tree, indent))
    return How.NATIVE, ""


def _native(meta: Mapping[str, object], path: str, config: _Config | None) -> bool:
    """Only age keys in one group, in the file and in the rule: the native path can do it all."""
    if len(sopsmeta.groups(meta)) != 1 or any(not r.startswith("age:") for r in sopsmeta.recipients(meta)):
        return False
    if config is None or config.rules is None:
        return False
    folder = os.path.dirname(os.path.abspath(config.path))
    rel = os.path.relpath(os.path.abspath(path), folder).replace(os.sep, "/")
    try:
        rule = sopsrules.first_rule(config.path, config.rules, rel)
    except sopsrules.RulesError:
        return False
    return not rule.other_keys and len(rule.age_groups) == 1


def _by_sops(result: Result, row: Recipients) -> tuple[How, str]:
    """`sops --config CONFIG updatekeys -y FILE`; its output is not passed on (only its exit code)."""
    exe = binary.find_sops()
    if exe is None:
        return How.LEFT, "it has non-age keys or key groups, and the sops binary was not found"
    args = [exe, *(["--config", row.config] if row.config else []), "updatekeys", "-y", row.path]
    try:
        proc = subprocess.run(
            args,
            cwd=result.root,
            capture_output=True,
            timeout=binary.DEFAULT_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return How.LEFT, f"sops updatekeys could not run ({type(e).__name__})"
    if proc.returncode == 0:
        return How.SOPS, ""
    if proc.returncode == 128 or b"Failed to get the data key" in proc.stderr:
        return How.NO_KEY, "sops updatekeys could not open it"
    return How.LEFT, f"sops updatekeys failed (exit {proc.returncode})"
