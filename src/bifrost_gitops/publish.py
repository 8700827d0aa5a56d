"""`publish BUNDLE --to DIR`: install a compiled bundle for runtimes that read bundles from disk.

Layout::

    DIR/releases/<UTC timestamp>-<index sha256 prefix>/   one verified copy per publish
    DIR/current -> releases/<...>                          swapped atomically (os.replace)
    DIR/history.jsonl                                      what was made current, when, how

The bundle is verified first (every file the index lists exists and matches its sha256; no path
leaves the bundle), copied into a temporary folder inside releases/ and renamed into place, then
``current`` is replaced by a fresh symlink in one rename, so a reader sees the old bundle or the
new one, never a mix. Publishing the bundle ``current`` already holds does nothing.

The history is what ``--rollback`` follows: it returns to what was live before the current
release, never to a release that was rolled back from (the time order of releases cannot tell:
publish A, B, roll back to A, publish C, roll back must give A, not B). Lines are only ever
added, and the file is replaced whole (temporary file, fsync, rename), so it is never torn.
Publishers of one DIR take turns (an flock on DIR).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .atomic import write_atomic
from .bundleformat import INDEX_FILE, BadIndex, Problem, listed_entries, load_index, safe_entry
from .errors import BifrostGitopsError
from .escape import term

CURRENT = "current"
RELEASES = "releases"
HISTORY = "history.jsonl"
_INCOMING = ".incoming-"
#: a killed run's temporary history file or ``current`` link (older versions named it by pid)
_LEFTOVER = re.compile(rf"\.{re.escape(HISTORY)}\.[a-z0-9_]{{8}}\.tmp|\.{CURRENT}(\.[0-9]+)?\.tmp")


class PublishError(BifrostGitopsError):
    """The bundle or the target cannot be used (exit 2)."""


@dataclass
class Published:
    release: str  # path of the release current points to
    changed: bool
    removed: list[str]
    left: str | None = None  # a rollback: the release current pointed to before


class How(enum.Enum):
    """How a release became current."""

    PUBLISHED = "published"
    ROLLED_BACK_TO = "rolled-back-to"
    FOUND = "found"  # current when the history first saw it (set before history was kept, or by hand)

    @property
    def text(self) -> str:
        return {"published": "published", "rolled-back-to": "rolled back to", "found": "found current"}[
            self.value
        ]


@dataclass(frozen=True)
class Event:
    """One line of the history: RELEASE became current AT (UTC, None when unknown) by HOW."""

    release: str
    at: str | None
    how: How
    left: str | None = None  # rollbacks: the release rolled back from


@dataclass(frozen=True)
class Row:
    """One event as `publish --list` shows it."""

    event: Event
    current: bool  # this is the release current points to now
    rolled_back_from: bool  # this time as current ended with a rollback
    rollback_target: bool  # --rollback would return to this release (from this event)
    kept: bool  # the release folder is still there


@dataclass(frozen=True)
class History:
    """The events replayed: what is live, what a rollback returns to, what was rolled back from."""

    events: list[Event]
    live: list[tuple[str, int]]  # what rollbacks walk back through: (release, event index), oldest first
    rolled_back: frozenset[int]  # indexes of events whose time as current ended with a rollback
    pointed: str | None = None  # the release DIR/current points to now (None: no link, or not ours)

    @property
    def current(self) -> str | None:
        return self.live[-1][0] if self.live else None

    @property
    def rollback_target(self) -> str | None:
        return self.live[-2][0] if len(self.live) > 1 else None


def verify(bundle: str) -> list[str]:
    """The bundle's files (index.json first) after checking every sha256; raises PublishError."""
    index_path = os.path.join(bundle, INDEX_FILE)
    try:
        index = load_index(bundle)
    except BadIndex as e:
        if e.problem is Problem.NOT_JSON:
            raise PublishError(f"{term(index_path)}: not JSON") from None
        if e.problem is Problem.NOT_BUNDLE:
            raise PublishError(f"{term(index_path)}: not a bifrost-gitops bundle index") from None
        raise PublishError(
            f"{term(bundle)}: not a bundle ({INDEX_FILE}: {e.cause.strerror if e.cause else None})"
        ) from None
    files = [INDEX_FILE]
    for entry in listed_entries(index):
        rel = entry["file"]
        norm = safe_entry(rel)
        if norm is None:
            raise PublishError(f"{term(index_path)}: file {term(repr(rel))} points outside the bundle")
        try:
            with open(os.path.join(bundle, norm), "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        except OSError as e:
            raise PublishError(f"{term(bundle)}: {term(rel)}: {e.strerror}") from None
        if digest != entry["sha256"]:
            raise PublishError(
                f"{term(bundle)}: {term(rel)} does not match its sha256 in index.json (altered or partial)"
            )
        files.append(norm)
    return files


_NAME = re.compile(r"[^./\x00][^/\x00]*")  # a folder in releases/, not a path


def _releases(to: str) -> list[str]:
    folder = os.path.join(to, RELEASES)
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if not n.startswith("."))


def current(to: str) -> str | None:
    """The release ``current`` points to, when it is one of ours (``releases/NAME``, present)."""
    link = os.path.join(to, CURRENT)
    if not os.path.islink(link):
        return None
    head, name = os.path.split(os.readlink(link).rstrip("/"))
    if head != RELEASES or not _NAME.fullmatch(name) or not os.path.isdir(os.path.join(to, RELEASES, name)):
        return None
    return name


def _point(to: str, name: str) -> None:
    """Replace DIR/current with a symlink to releases/NAME in one rename (publishers take turns,
    so one temporary name will do, and a killed run's is simply replaced)."""
    tmp = os.path.join(to, f".{CURRENT}.tmp")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.path.join(RELEASES, name), tmp)
    os.replace(tmp, os.path.join(to, CURRENT))


def _index_hash(path: str) -> str:
    with open(os.path.join(path, INDEX_FILE), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _stamp(now: dt.datetime | None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the history -----------------------------------------------------------------------------


def _parse(line: str, where: str) -> Event:
    try:
        raw = json.loads(line)
        if not isinstance(raw, dict):
            raise TypeError
        release, at, how, left = raw["release"], raw.get("at"), How(raw["how"]), raw.get("from")
    except (ValueError, KeyError, TypeError):
        raise PublishError(f"{where}: not a history entry; the file was changed by hand") from None
    for name in (release, left):
        if name is not None and not (isinstance(name, str) and _NAME.fullmatch(name)):
            raise PublishError(f"{where}: not a release name; the file was changed by hand")
    if at is not None and not isinstance(at, str):
        raise PublishError(f"{where}: not a time; the file was changed by hand")
    return Event(release, at, how, left)


def _line(e: Event) -> str:
    doc: dict[str, str | None] = {"release": e.release, "at": e.at, "how": e.how.value}
    if e.left is not None:
        doc["from"] = e.left
    return json.dumps(doc, ensure_ascii=True, sort_keys=True) + "\n"


def _replay(events: list[Event]) -> History:
    """Walk the events: a publish (or a found current) goes on top; a rollback leaves the top
    (marked rolled back from) for the one below it."""
    live: list[tuple[str, int]] = []
    rolled_back: set[int] = set()
    for i, e in enumerate(events):
        if e.how is How.ROLLED_BACK_TO and live:
            rolled_back.add(live.pop()[1])
            if live and live[-1][0] == e.release:
                live.pop()
        live.append((e.release, i))
    return History(events, live, frozenset(rolled_back))


def history(to: str) -> History:
    """What was made current in TO, oldest first. When ``current`` is not what the history ends
    with (published before history was kept, changed by hand, or a run killed between the swap
    and the record), it is added as found: it is what is live, so a rollback starts from it."""
    path = os.path.join(to, HISTORY)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        lines = []
    except (OSError, UnicodeDecodeError) as e:
        raise PublishError(f"{term(path)}: cannot read the history ({e})") from None
    events = [_parse(line, f"{term(path)}:{n}") for n, line in enumerate(lines, 1) if line.strip()]
    live = current(to)
    if live is not None and _replay(events).current != live:
        events = [*events, Event(live, None, How.FOUND)]
    return dataclasses.replace(_replay(events), pointed=live)


def _record(to: str, events: list[Event]) -> None:
    """Replace TO/history.jsonl with EVENTS in one rename, durable before it."""
    data = "".join(_line(e) for e in events).encode("ascii")
    write_atomic(
        os.path.join(to, HISTORY), data, mode=0o644, prefix=f".{HISTORY}.", suffix=".tmp", sync_folder=True
    )


def rows(h: History, to: str) -> list[Row]:
    """The history as `publish --list` shows it."""
    on_disk = set(_releases(to))
    last = len(h.events) - 1
    target = h.live[-2][1] if len(h.live) > 1 else None
    return [
        Row(e, i == last and h.pointed is not None, i in h.rolled_back, i == target, e.release in on_disk)
        for i, e in enumerate(h.events)
    ]


@contextmanager
def _turn(to: str) -> Iterator[None]:
    """Publishers of one TO take turns (an flock on the folder, dropped however the run ends);
    a temporary folder or file left in TO then is a killed run's, and goes."""
    fd = os.open(to, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        releases = os.path.join(to, RELEASES)
        for name in os.listdir(releases) if os.path.isdir(releases) else []:
            path = os.path.join(releases, name)
            if name.startswith(_INCOMING) and not os.path.islink(path) and os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
        for name in os.listdir(to):
            path = os.path.join(to, name)
            if _LEFTOVER.fullmatch(name) and (os.path.islink(path) or os.path.isfile(path)):
                os.unlink(path)
        yield
    finally:
        os.close(fd)


# --- publish, rollback -----------------------------------------------------------------------


def publish(bundle: str, to: str, keep: int = 5, now: dt.datetime | None = None) -> Published:
    if keep < 0:
        raise PublishError("--keep must be 0 or more")
    files = verify(bundle)
    link = os.path.join(to, CURRENT)
    if os.path.lexists(link) and not os.path.islink(link):
        raise PublishError(f"{term(link)} exists and is not a symlink: not a publish target")
    releases_dir = os.path.join(to, RELEASES)
    os.makedirs(releases_dir, exist_ok=True)
    digest = _index_hash(bundle)
    with _turn(to):
        h = history(to)
        cur = h.pointed
        if cur is not None and _index_hash(os.path.join(releases_dir, cur)) == digest:
            return Published(os.path.join(releases_dir, cur), False, [])
        moment = _stamp(now)
        name = f"{moment.strftime('%Y%m%dT%H%M%S%fZ')}-{digest[:12]}"
        if os.path.lexists(os.path.join(releases_dir, name)):
            raise PublishError(f"{term(os.path.join(releases_dir, name))} exists already; try again")
        tmp = tempfile.mkdtemp(prefix=_INCOMING, dir=releases_dir)  # 0700 from creation
        try:
            for rel in files:
                dst = os.path.join(tmp, rel)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy2(os.path.join(bundle, rel), dst)
            verify(tmp)  # the copy is what runtimes will read
            readable = all(os.stat(os.path.join(bundle, r)).st_mode & 0o044 for r in files)
            os.chmod(tmp, 0o755 if readable else 0o700)
            os.rename(tmp, os.path.join(releases_dir, name))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        # swap first, then record: a run killed in between leaves the new release live and
        # unrecorded, and the next run records it as found, so a rollback still returns to CUR
        _point(to, name)
        h = _replay([*h.events, Event(name, _iso(moment), How.PUBLISHED)])
        _record(to, h.events)
        return Published(os.path.join(releases_dir, name), True, _prune(to, h, keep))


def _prune(to: str, h: History, keep: int) -> list[str]:
    """Keep current, the release a rollback returns to (even with KEEP 0), and up to KEEP earlier
    releases: first those further rollbacks would reach, in order, then the newest others."""
    names = _releases(to)
    cur, target = h.current, h.rollback_target
    chain: list[str] = []
    for name, _ in reversed(h.live[:-1]):
        if name in names and name not in chain and name != cur:
            chain.append(name)
    others = sorted((n for n in names if n not in chain and n != cur), reverse=True)
    kept = {n for n in (cur, target) if n} | set((chain + others)[:keep])
    removed = [n for n in names if n not in kept]
    for n in removed:
        shutil.rmtree(os.path.join(to, RELEASES, n), ignore_errors=True)
    return removed


def rollback(to: str, now: dt.datetime | None = None) -> Published:
    """Point ``current`` back at what was live before it (see the module's docstring)."""
    if not os.path.isdir(to):
        raise PublishError(f"{term(to)}: nothing is published here")
    with _turn(to):
        h = history(to)
        cur, target = h.pointed, h.rollback_target
        if cur is None:
            if os.path.lexists(os.path.join(to, CURRENT)):
                raise PublishError(
                    f"{term(os.path.join(to, CURRENT))} does not point into {RELEASES}/: not changed"
                )
            raise PublishError(f"{term(to)}: nothing is published here")
        if target is None:
            raise PublishError(
                f"{term(to)}: nothing to roll back to: nothing recorded was live before {term(cur)} "
                f"(hint: `publish {term(os.path.join(to, RELEASES))}/NAME --to {term(to)}` makes a kept release current)"
            )
        path = os.path.join(to, RELEASES, target)
        if not os.path.isdir(path):
            raise PublishError(
                f"{term(to)}: cannot roll back: {term(target)}, live before {term(cur)}, is no longer kept"
            )
        verify(path)
        # record first, then swap: a run killed in between leaves CUR live, recorded as found
        # above TARGET by the next run, so running the rollback again finishes it
        events = [*h.events, Event(target, _iso(_stamp(now)), How.ROLLED_BACK_TO, cur)]
        _record(to, events)
        _point(to, target)
        return Published(path, True, [], left=cur)
