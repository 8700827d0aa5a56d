"""Find the age identities sops would use, combined from every source sops reads.

Sources (all combined, as sops does): ``SOPS_AGE_KEY`` (key text), ``SOPS_AGE_KEY_FILE`` (path),
``SOPS_AGE_KEY_CMD`` (command printing key text), the user's ``sops/age/keys.txt`` and the SSH
keys sops falls back to. The description of what was tried lists env var names and paths only,
so it can go into error messages; key material never leaves the identity objects.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import pyrage  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from .agex25519 import X25519Key

CMD_TIMEOUT = 30.0


class AgeIdentity(Protocol):
    """A pyrage X25519 identity (``str()`` of it is the secret key: never print it)."""

    def to_public(self) -> object: ...


@dataclass(frozen=True)
class Keyring:
    """Identities usable natively, their age recipients, and what was tried to find them."""

    identities: tuple[object, ...]  # pyrage x25519 / ssh identities, only handed to pyrage
    recipients: frozenset[str]  # public age1... of the x25519 identities
    tried: tuple[str, ...]  # "SOPS_AGE_KEY_FILE=/path: 1 key", never key material

    #: recipient -> its identity as a ready X25519 key, made on first use (see :meth:`x25519`)
    _ready: dict[str, X25519Key] = field(default_factory=dict, init=False, repr=False, compare=False)

    def describe(self) -> str:
        """One line for error messages."""
        return "; ".join(self.tried) if self.tried else "no key sources"

    def x25519(self, recipient: str) -> X25519Key | None:
        """RECIPIENT's identity as a ready key for :mod:`.agex25519` (the keyring's X25519 keys
        are read back once, not once per file), or None when we hold no such key."""
        if not self._ready and self.recipients:
            from .agex25519 import key_of

            for ident in self.identities:
                key = key_of(ident) if isinstance(ident, pyrage.x25519.Identity) else None
                if key is not None:
                    self._ready.setdefault(key.recipient, key)
        return self._ready.get(recipient)


@dataclass
class _Parsed:
    identities: list[AgeIdentity]
    notes: list[str]


def parse_identities(text: str) -> list[AgeIdentity]:
    """The age X25519 identities in key text (``#`` comments and blank lines ignored)."""
    return _parse(text).identities


def _parse(text: str) -> _Parsed:
    found: list[AgeIdentity] = []
    bad = plugin = pq = 0
    encrypted = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-----BEGIN AGE ENCRYPTED FILE-----"):
            encrypted = True
            break
        for word in line.split():
            upper = word.upper()
            if upper.startswith("AGE-SECRET-KEY-PQ-"):
                pq += 1
            elif upper.startswith("AGE-SECRET-KEY-1"):
                try:
                    found.append(pyrage.x25519.Identity.from_str(word))
                except Exception:
                    bad += 1
            elif upper.startswith("AGE-PLUGIN-"):
                plugin += 1
            else:
                bad += 1
    notes = [f"{len(found)} key{'s' if len(found) != 1 else ''}"]
    if plugin:
        notes.append(f"{plugin} plugin identit{'ies' if plugin > 1 else 'y'} (left to the sops binary)")
    if pq:
        notes.append(f"{pq} post-quantum identit{'ies' if pq > 1 else 'y'} (left to the sops binary)")
    if encrypted:
        notes.append("passphrase-protected identity file (left to the sops binary)")
    if bad:
        notes.append(f"{bad} unreadable entr{'ies' if bad > 1 else 'y'}")
    return _Parsed(found, notes)


def default_keys_path(env: Mapping[str, str]) -> str:
    """``<user config dir>/sops/age/keys.txt`` the way Go's os.UserConfigDir finds it."""
    xdg = env.get("XDG_CONFIG_HOME")
    if xdg:
        base = xdg
    elif sys.platform == "darwin":
        base = os.path.join(env.get("HOME", os.path.expanduser("~")), "Library", "Application Support")
    else:
        base = os.path.join(env.get("HOME", os.path.expanduser("~")), ".config")
    return os.path.join(base, "sops", "age", "keys.txt")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def _run_cmd(cmd: str, env: Mapping[str, str]) -> tuple[str | None, str]:
    try:
        argv = shlex.split(cmd)
    except ValueError:
        return None, "cannot parse the command"
    if not argv:
        return None, "empty command"
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            timeout=CMD_TIMEOUT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"could not run it ({type(e).__name__})"
    if proc.returncode != 0:
        return None, f"it exited with code {proc.returncode}"
    return proc.stdout.decode("utf-8", "replace"), ""


def _ssh_identity(path: str) -> tuple[object | None, str]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None, "not found"
    try:
        return pyrage.ssh.Identity.from_buffer(data), "1 key"
    except Exception:
        return None, "not usable (passphrase-protected or unsupported)"


def find_identities(environ: Mapping[str, str] | None = None) -> Keyring:
    """Every identity sops would load from ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    identities: list[object] = []
    tried: list[str] = []

    def add(label: str, text: str | None, missing: str = "not found") -> None:
        if text is None:
            tried.append(f"{label}: {missing}")
            return
        parsed = _parse(text)
        identities.extend(parsed.identities)
        tried.append(f"{label}: {', '.join(parsed.notes)}")

    if "SOPS_AGE_KEY" in env:
        add("SOPS_AGE_KEY", env["SOPS_AGE_KEY"])
    else:
        tried.append("SOPS_AGE_KEY: not set")
    path = env.get("SOPS_AGE_KEY_FILE")
    if path:
        add(f"SOPS_AGE_KEY_FILE={path}", _read(path), "cannot read the file")
    else:
        tried.append("SOPS_AGE_KEY_FILE: not set")
    cmd = env.get("SOPS_AGE_KEY_CMD")
    if cmd:
        out, why = _run_cmd(cmd, env)
        add("SOPS_AGE_KEY_CMD", out, why)
    default = default_keys_path(env)
    add(default, _read(default))
    ssh_paths = (
        [env["SOPS_AGE_SSH_PRIVATE_KEY_FILE"]]
        if env.get("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
        else [
            os.path.join(env.get("HOME", os.path.expanduser("~")), ".ssh", name)
            for name in ("id_ed25519", "id_rsa")
        ]
    )
    for p in ssh_paths:
        if env.get("SOPS_AGE_SSH_PRIVATE_KEY_FILE") or os.path.exists(p):
            ident, note = _ssh_identity(p)
            if ident is not None:
                identities.append(ident)
            tried.append(f"{p} (ssh): {note}")
    return make_keyring(identities, tried)


def make_keyring(identities: Sequence[object], tried: list[str] | None = None) -> Keyring:
    """A Keyring for explicitly given identities (e.g. from :func:`parse_identities`)."""
    recips: set[str] = set()
    for ident in identities:
        if isinstance(ident, pyrage.x25519.Identity):
            recips.add(str(ident.to_public()))
    return Keyring(tuple(identities), frozenset(recips), tuple(tried or ("identities given by the caller",)))


_CACHE: dict[tuple[Hashable, ...], Keyring] = {}


def default_keyring() -> Keyring:
    """:func:`find_identities` for the current environment, cached while env and files are unchanged.

    A batch decrypting thousands of files must not re-read key files (or re-run
    ``SOPS_AGE_KEY_CMD``) per file.
    """
    env = os.environ
    names = ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY_CMD", "SOPS_AGE_SSH_PRIVATE_KEY_FILE")
    files = [env.get("SOPS_AGE_KEY_FILE") or "", default_keys_path(env)]
    stamp: list[tuple[int, int] | None] = []
    for f in files:
        try:
            st = os.stat(f) if f else None
            stamp.append((st.st_mtime_ns, st.st_size) if st else None)
        except OSError:
            stamp.append(None)
    key = (
        tuple(env.get(n) for n in names),
        env.get("XDG_CONFIG_HOME"),
        env.get("HOME"),
        tuple(stamp),
    )
    ring = _CACHE.get(key)
    if ring is None:
        _CACHE.clear()
        ring = _CACHE[key] = find_identities(env)
    return ring
