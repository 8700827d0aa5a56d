"""`publish BUNDLE --to DIR`: install a compiled bundle for runtimes that read bundles from disk.

Layout::

    DIR/releases/<UTC timestamp>-<index sha256 prefix>/   one verified copy per publish
    DIR/current -> releases/<...>                          swapped atomically (os.replace)

The bundle is verified first (every file the index lists exists and matches its sha256; no path
leaves the bundle), copied into a temporary folder inside releases/ and renamed into place, then
``current`` is replaced by a fresh symlink in one rename, so a reader sees the old bundle or the
new one, never a mix. The previous N releases are kept (default 5); ``--rollback`` points
``current`` at the release before it. Publishing the bundle ``current`` already holds does nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

CURRENT = "current"
RELEASES = "releases"


class PublishError(Exception):
    """The bundle or the target cannot be used (exit 2)."""


@dataclass
class Published:
    release: str  # path of the release current points to
    changed: bool
    removed: list[str]


def _entries(index: dict[str, Any]) -> list[dict[str, Any]]:
    """Every {file, sha256} the index lists, wherever it sits (global, orgs, deploy, ...)."""
    out: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("file"), str) and isinstance(node.get("sha256"), str):
                out.append(node)
                return
            for v in node.values():
                walk(v)

    walk({k: v for k, v in index.items() if k not in ("source", "recipients")})
    return out


def verify(bundle: str) -> list[str]:
    """The bundle's files (index.json first) after checking every sha256; raises PublishError."""
    index_path = os.path.join(bundle, "index.json")
    try:
        with open(index_path, "rb") as f:
            index = json.loads(f.read())
    except OSError as e:
        raise PublishError(f"{bundle}: not a bundle (index.json: {e.strerror})") from None
    except ValueError:
        raise PublishError(f"{index_path}: not JSON") from None
    if not isinstance(index, dict) or index.get("kind") != "bifrost-gitops/bundle":
        raise PublishError(f"{index_path}: not a bifrost-gitops bundle index")
    files = ["index.json"]
    for entry in _entries(index):
        rel = entry["file"]
        norm = os.path.normpath(rel)
        if os.path.isabs(rel) or norm.startswith("..") or "\\" in rel:
            raise PublishError(f"{index_path}: file {rel!r} points outside the bundle")
        try:
            with open(os.path.join(bundle, norm), "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        except OSError as e:
            raise PublishError(f"{bundle}: {rel}: {e.strerror}") from None
        if digest != entry["sha256"]:
            raise PublishError(
                f"{bundle}: {rel} does not match its sha256 in index.json (altered or partial)"
            )
        files.append(norm)
    return files


def _releases(to: str) -> list[str]:
    folder = os.path.join(to, RELEASES)
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if not n.startswith("."))


def current(to: str) -> str | None:
    """The release name ``current`` points to, if any."""
    link = os.path.join(to, CURRENT)
    if not os.path.islink(link):
        return None
    return os.path.basename(os.readlink(link).rstrip("/"))


def _point(to: str, name: str) -> None:
    """Replace DIR/current with a symlink to releases/NAME in one rename."""
    tmp = os.path.join(to, f".{CURRENT}.{os.getpid()}.tmp")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.path.join(RELEASES, name), tmp)
    os.replace(tmp, os.path.join(to, CURRENT))


def _index_hash(path: str) -> str:
    with open(os.path.join(path, "index.json"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def publish(bundle: str, to: str, keep: int = 5, now: dt.datetime | None = None) -> Published:
    if keep < 0:
        raise PublishError("--keep must be 0 or more")
    files = verify(bundle)
    if os.path.lexists(os.path.join(to, CURRENT)) and not os.path.islink(os.path.join(to, CURRENT)):
        raise PublishError(f"{os.path.join(to, CURRENT)} exists and is not a symlink: not a publish target")
    releases_dir = os.path.join(to, RELEASES)
    os.makedirs(releases_dir, exist_ok=True)
    digest = _index_hash(bundle)
    cur = current(to)
    if (
        cur is not None
        and os.path.isdir(os.path.join(releases_dir, cur))
        and _index_hash(os.path.join(releases_dir, cur)) == digest
    ):
        return Published(os.path.join(releases_dir, cur), False, [])
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    name = f"{stamp}-{digest[:12]}"
    tmp = tempfile.mkdtemp(prefix=".incoming-", dir=releases_dir)
    try:
        for rel in files:
            dst = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.join(bundle, rel), dst)
        os.chmod(
            tmp, 0o755 if all(os.stat(os.path.join(bundle, r)).st_mode & 0o044 for r in files) else 0o700
        )
        verify(tmp)  # the copy is what runtimes will read
        os.rename(tmp, os.path.join(releases_dir, name))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _point(to, name)
    return Published(os.path.join(releases_dir, name), True, _prune(to, name, keep))


def _prune(to: str, cur: str, keep: int) -> list[str]:
    """Keep CUR and the KEEP releases before it; older ones (and newer rolled-back ones beyond) go."""
    names = _releases(to)
    if cur not in names:
        return []
    pos = names.index(cur)
    kept = set(names[max(0, pos - keep) : pos + 1]) | set(names[pos + 1 :])
    removed = [n for n in names if n not in kept]
    for n in removed:
        shutil.rmtree(os.path.join(to, RELEASES, n), ignore_errors=True)
    return removed


def rollback(to: str) -> Published:
    """Point ``current`` at the release before it."""
    names = _releases(to)
    cur = current(to)
    if cur is None or cur not in names:
        raise PublishError(f"{to}: nothing is published here")
    pos = names.index(cur)
    if pos == 0:
        raise PublishError(f"{to}: {cur} is the oldest release kept; nothing to roll back to")
    previous = names[pos - 1]
    verify(os.path.join(to, RELEASES, previous))
    _point(to, previous)
    return Published(os.path.join(to, RELEASES, previous), True, [])
