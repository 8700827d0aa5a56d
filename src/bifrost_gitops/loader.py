"""Find the repository's YAML files and parse them safely, keeping every value's position.

Parsing is driven from libyaml's event stream (the C parser) instead of PyYAML's composer and
constructor: one pass builds plain Python data, records the line/column of every key and
value, refuses duplicate keys and unsafe tags, and enforces depth and alias-expansion limits
before anything can blow up. Timestamps stay strings, so no date object reaches a value.
"""

from __future__ import annotations

import marshal
import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol, cast

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

from .diagnostics import Diagnostic, error
from .nodes import Node, Scalar
from .remedy import quote_key_hint

Pos = tuple[int, int]
Path = tuple[str | int, ...]

MAX_BYTES = 1 << 20  # 1 MiB: a config document is a few KiB
MAX_DEPTH = 64
MAX_NODES = 100_000  # values a document may expand to, aliases included

_T = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT, _TIME, _MERGE = (
    _T + "str",
    _T + "null",
    _T + "bool",
    _T + "int",
    _T + "float",
    _T + "timestamp",
    _T + "merge",
)
_IMPLICIT = yaml.SafeLoader.yaml_implicit_resolvers
_CONSTRUCTOR = yaml.SafeLoader("")  # only its scalar constructors are used
_TYPE_NAMES = {_BOOL: "boolean", _INT: "integer", _FLOAT: "number", _TIME: "date"}
_SAFE_SCALAR = {_STR, _NULL, _BOOL, _INT, _FLOAT, _TIME}


class Document:
    """One parsed YAML file with the position of everything in it.

    The positions may come packed (marshal bytes of ``(values, keys)``, from the cache or a
    worker process): they are unpacked only when first asked for, which in a clean repository
    is for a few documents out of thousands."""

    __slots__ = ("_keys", "_packed", "_values", "data", "implicit", "marked", "notes", "path")

    def __init__(
        self,
        path: str,
        data: Any,
        values: dict[Path, Pos] | None = None,
        keys: dict[Path, Pos] | None = None,
        implicit: dict[Path, tuple[str, str]] | None = None,
        notes: list[Diagnostic] | None = None,
        marked: bool = False,
        packed: bytes | None = None,
    ):
        self.path = path  # repository-relative, '/'-separated
        #: a Node (see .nodes), deliberately left loose: every check reads its own fields straight from it
        self.data = data
        self._values = values if values is not None else {}
        self._keys = keys if keys is not None else {}
        self._packed = packed
        #: plain scalars YAML 1.1 typed as something other than text: path -> (type, source text)
        self.implicit = implicit if implicit is not None else {}
        #: findings that matter only if the file is one of ours (e.g. non-text keys)
        self.notes = notes if notes is not None else []
        #: the text holds "bifrost-gitops:", maybe a suppression comment (suppress.py reads it again)
        self.marked = marked

    def __repr__(self) -> str:
        return f"Document({self.path!r})"

    @property
    def values(self) -> dict[Path, Pos]:
        """Position of every value, by path."""
        if self._packed is not None:
            self._unpack()
        return self._values

    @property
    def keys(self) -> dict[Path, Pos]:
        """Position of every mapping key, by the path of its value."""
        if self._packed is not None:
            self._unpack()
        return self._keys

    def pack(self) -> bytes:
        """The positions as plain bytes (see `perfile.FileResult`)."""
        return marshal.dumps((self.values, self.keys))

    def _unpack(self) -> None:
        packed, self._packed = self._packed, None
        try:
            values, keys = marshal.loads(packed or b"")
        except (ValueError, EOFError, TypeError):
            return  # cannot happen for bytes this tool packed (the cache checks its files)
        if type(values) is dict and type(keys) is dict:
            self._values, self._keys = values, keys

    def on_a_path(self, key: str) -> bool:
        """Whether some value's path holds KEY (as ``<<`` for a merge key), without unpacking
        packed positions: marshal writes a short ASCII text as its length byte and its
        characters, so the packed bytes are searched for those (a false yes is possible, a
        false no is not)."""
        if self._packed is not None and key.isascii() and len(key) < 256:
            return bytes([len(key)]) + key.encode() in self._packed
        return any(key in path for path in self.values)

    def pos(self, path: Path) -> Pos:
        """Position of the value at ``path``, or of its nearest ancestor that exists."""
        while path:
            p = self.values.get(path)
            if p is not None:
                return p
            path = path[:-1]
        return self.values.get((), (1, 1))

    def key_pos(self, path: Path) -> Pos:
        """Position of the key naming ``path`` (falls back to the value or an ancestor)."""
        return self.keys.get(path) or self.pos(path)


class _Refused(Exception):
    def __init__(self, code: str, pos: Pos, message: str, hint: str | None = None):
        super().__init__(message)
        self.code, self.pos, self.message, self.hint = code, pos, message, hint


class _Mark(Protocol):
    @property
    def line(self) -> int: ...
    @property
    def column(self) -> int: ...


def _p(mark: _Mark | None) -> Pos:
    if mark is None:  # pragma: no cover - libyaml marks every event
        return (0, 0)
    return (mark.line + 1, mark.column + 1)


_RESOLVED: dict[str, str] = {}


def _resolve_plain(value: str) -> str:
    """YAML 1.1 implicit tag of a plain scalar (memoised: config values repeat a lot)."""
    cached = _RESOLVED.get(value)
    if cached is not None:
        return cached
    if value and value[0] not in _IMPLICIT:
        return _STR
    tag = _STR
    if not value:
        tag = _NULL
    else:
        for t, rx in _IMPLICIT.get(value[0], ()):
            if rx.match(value):
                tag = str(t)
                break
    if len(_RESOLVED) < 50_000:
        _RESOLVED[value] = tag
    return tag


def _construct(tag: str, value: str) -> Scalar:
    if tag in (_STR, _TIME):
        return value
    if tag == _NULL:
        return None
    node = ScalarNode(tag, value)
    if tag == _BOOL:
        return _CONSTRUCTOR.construct_yaml_bool(node)
    if tag == _INT:
        return _CONSTRUCTOR.construct_yaml_int(node)
    return _CONSTRUCTOR.construct_yaml_float(node)


class _Builder:
    """Turns one document's events into data; raises _Refused on anything unsafe."""

    def __init__(self, parser: yaml.CSafeLoader, doc: Document, diags: list[Diagnostic]):
        # libyaml returns None only after the stream's end, which the builder never reads past
        self.next = cast(Callable[[], Event], parser.get_event)
        self.doc = doc
        self.values, self.keys = doc.values, doc.keys  # the hot loop skips the properties
        self.diags = diags
        self.anchors: dict[str, tuple[Node, int]] = {}
        self.nodes = 0

    def count(self, n: int, pos: Pos) -> None:
        self.nodes += n
        if self.nodes > MAX_NODES:
            raise _Refused(
                "Y004",
                pos,
                f"document expands to more than {MAX_NODES} values (alias bomb?)",
                "write the values out instead of nesting aliases",
            )

    def build(self, ev: Event, path: Path, depth: int) -> Node:
        t = type(ev)
        pos = _p(ev.start_mark)
        self.values[path] = pos
        value: Node
        if type(ev) is ScalarEvent:
            self.count(1, pos)
            value, n = self.scalar(ev, path, pos), 1
        elif type(ev) is MappingStartEvent:
            self._check_depth(depth, pos)
            self._check_tag(ev.tag, _T + "map", pos)
            start = self.nodes
            value = self.mapping(path, depth)
            n = self.nodes - start + 1
            self.count(1, pos)
        elif type(ev) is SequenceStartEvent:
            self._check_depth(depth, pos)
            self._check_tag(ev.tag, _T + "seq", pos)
            start = self.nodes
            items: list[Node] = []
            i = 0
            while True:
                item = self.next()
                if type(item) is SequenceEndEvent:
                    break
                items.append(self.build(item, path + (i,), depth + 1))
                i += 1
            value = items
            n = self.nodes - start + 1
            self.count(1, pos)
        elif type(ev) is AliasEvent:
            if ev.anchor not in self.anchors:
                raise _Refused("Y001", pos, f"unknown alias *{ev.anchor}")
            value, n = self.anchors[ev.anchor]
            self.count(n, pos)
            return value
        else:  # pragma: no cover - libyaml never yields anything else here
            raise _Refused("Y001", pos, f"unexpected YAML event {t.__name__}")
        anchor = cast(NodeEvent, ev).anchor  # every branch that gets here built a node event
        if anchor is not None:
            self.anchors[anchor] = (value, n)
        return value

    def _check_depth(self, depth: int, pos: Pos) -> None:
        if depth >= MAX_DEPTH:
            raise _Refused("Y004", pos, f"nesting deeper than {MAX_DEPTH} levels")

    @staticmethod
    def _check_tag(tag: str | None, allowed: str, pos: Pos) -> None:
        if tag is not None and tag != "!" and tag != allowed:
            raise _Refused(
                "Y003",
                pos,
                f"tag {tag!r} is not allowed",
                "only plain YAML is accepted: remove the tag",
            )

    def scalar(self, ev: ScalarEvent, path: Path | None, pos: Pos) -> Scalar:
        """Construct a scalar; ``path`` None means it is a mapping key (nothing recorded)."""
        tag = ev.tag
        value = ev.value
        if tag is None or tag == "!":
            if not ev.implicit[0]:  # quoted, or a block scalar: always text
                return value
            tag = _resolve_plain(value)
            if tag == _STR:
                return value
            if tag in _TYPE_NAMES and path is not None:
                self.doc.implicit[path] = (_TYPE_NAMES[tag], value)
            elif tag not in _SAFE_SCALAR:  # merge '<<' or value '=' outside a key
                return value
        elif tag not in _SAFE_SCALAR:
            raise _Refused(
                "Y003",
                pos,
                f"tag {tag!r} is not allowed",
                "only plain YAML is accepted: remove the tag",
            )
        try:
            return _construct(tag, value)
        except (ValueError, yaml.YAMLError):
            raise _Refused("Y001", pos, f"scalar is not a valid {tag.rsplit(':', 1)[-1]}") from None

    def mapping(self, path: Path, depth: int) -> dict[str, Node]:
        result: dict[str, Node] = {}
        merged: set[str] = set()
        while True:
            kev = self.next()
            if type(kev) is MappingEndEvent:
                return result
            kpos = _p(kev.start_mark)
            if type(kev) is not ScalarEvent:
                raise _Refused("Y001", kpos, "mapping keys must be plain scalars")
            if kev.implicit[0] and kev.tag is None and kev.value == "<<":
                self.merge(self.build(self.next(), path + ("<<",), depth + 1), result, merged, kpos)
                continue
            key = self.scalar(kev, None, kpos)
            if not isinstance(key, str):
                # kept on the document: reported only if the file turns out to be ours
                self.doc.notes.append(
                    error(
                        "Y005",
                        self.doc.path,
                        kpos,
                        f"key {kev.value} is read as {type(key).__name__}, not text",
                        quote_key_hint(kev.value),
                    )
                )
                key = kev.value
            if key in result and key not in merged:
                first = self.keys.get(path + (key,), kpos)
                self.diags.append(
                    error(
                        "Y002",
                        self.doc.path,
                        kpos,
                        f"duplicate key {key!r} (first at line {first[0]})",
                        "remove one of them: YAML keeps only one",
                    )
                )
                self.build(self.next(), path + (key, "<duplicate>"), depth + 1)
                continue
            merged.discard(key)
            self.keys[path + (key,)] = kpos
            result[key] = self.build(self.next(), path + (key,), depth + 1)

    @staticmethod
    def merge(value: Node, into: dict[str, Node], merged: set[str], pos: Pos) -> None:
        sources = value if isinstance(value, list) else [value]
        for src in sources:
            if not isinstance(src, dict):
                raise _Refused("Y001", pos, "merge key '<<' needs a mapping or a list of mappings")
            for k, v in src.items():
                if k not in into:
                    into[k] = v
                    merged.add(k)


def parse(text: bytes | str, path: str) -> tuple[Document | None, list[Diagnostic]]:
    """Parse one YAML file. Returns (None, []) for an empty file."""
    diags: list[Diagnostic] = []
    doc = Document(path, None)
    parser = yaml.CSafeLoader(text)
    try:
        parser.get_event()  # StreamStart
        ev = parser.get_event()
        if type(ev) is StreamEndEvent:
            return None, diags
        builder = _Builder(parser, doc, diags)
        doc.data = builder.build(builder.next(), (), 0)
        parser.get_event()  # DocumentEnd
        ev = parser.get_event()
        if type(ev) is DocumentStartEvent:
            return None, [
                error(
                    "Y008",
                    path,
                    _p(ev.start_mark),
                    "more than one YAML document in a file",
                    "put each document in its own file",
                )
            ]
    except _Refused as r:
        return None, [*diags, Diagnostic(r.code, "error", path, r.pos[0], r.pos[1], r.message, r.hint)]
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        pos = _p(mark) if mark is not None else (0, 0)
        msg = e.problem or "invalid YAML"
        if e.context:
            msg += f" ({e.context})"
        return None, [*diags, error("Y001", path, pos, msg)]
    except yaml.YAMLError as e:  # reader errors: bad encoding, control characters
        reason = getattr(e, "reason", None) or "cannot decode the file"
        return None, [*diags, error("Y007", path, (0, 0), f"not readable as UTF-8 YAML: {reason}")]
    finally:
        parser.dispose()
    return doc, diags


def load_file(root: str, rel: str) -> tuple[Document | None, list[Diagnostic]]:
    """Read and parse ``root/rel`` within the size limit."""
    try:
        with open(os.path.join(root, rel), "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        return None, [error("Y007", rel, (0, 0), f"cannot read file: {e.strerror}")]
    return load_bytes(data, rel)


def load_bytes(data: bytes, rel: str) -> tuple[Document | None, list[Diagnostic]]:
    """Parse a file's content (from disk or from a git object) within the size limit."""
    if len(data) > MAX_BYTES:
        return None, [too_large(rel)]
    doc, diags = parse(data, rel)
    if doc is not None:
        doc.marked = b"bifrost-gitops:" in data
    return doc, diags


def too_large(rel: str) -> Diagnostic:
    """The finding for a file over the size limit (also for a git blob never read)."""
    return error(
        "Y004",
        rel,
        (0, 0),
        f"file is larger than {MAX_BYTES // 1024} KiB",
        "split it, or list it under exclude: in bifrost-gitops.yaml",
    )


def wanted(rel: str, exclude: list[str]) -> bool:
    """Whether a repository-relative path is a YAML file we read (no dot parts, not excluded)."""
    from fnmatch import fnmatchcase

    if not rel.endswith((".yaml", ".yml")) or any(part.startswith(".") for part in rel.split("/")):
        return False
    return not any(fnmatchcase(rel, p) or rel.startswith(p.rstrip("/") + "/") for p in exclude)


def discover(root: str, exclude: list[str] | None = None) -> tuple[list[str], list[Diagnostic]]:
    """Every *.yaml / *.yml below ``root`` (dot files and folders skipped), sorted.

    Symlinks are followed only while they stay inside the repository.
    """
    from fnmatch import fnmatchcase

    real_root = os.path.realpath(root)
    found: list[str] = []
    diags: list[Diagnostic] = []
    patterns = exclude or []

    def excluded(rel: str) -> bool:
        return any(fnmatchcase(rel, p) or rel.startswith(p.rstrip("/") + "/") for p in patterns)

    def inside(path: str) -> bool:
        real = os.path.realpath(path)
        return real == real_root or real.startswith(real_root + os.sep)

    def walk(dirpath: str, rel: str) -> Iterator[str]:
        try:
            entries = sorted(os.scandir(dirpath), key=lambda e: e.name)
        except OSError as e:
            diags.append(error("Y007", rel or ".", (0, 0), f"cannot list folder: {e.strerror}"))
            return
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            child = f"{rel}/{name}" if rel else name
            if excluded(child):
                continue
            is_link = entry.is_symlink()
            if is_link:
                yaml_name = name.endswith((".yaml", ".yml"))
                try:
                    real = os.path.realpath(entry.path, strict=True)
                except OSError:  # a missing target or a loop
                    if yaml_name:
                        diags.append(
                            error("Y007", child, (0, 0), "broken symlink (missing target, or a loop)")
                        )
                    continue
                if not inside(real):
                    if yaml_name or os.path.isdir(real):
                        diags.append(
                            error(
                                "Y006",
                                child,
                                (0, 0),
                                "symlink points outside the repository; refused",
                                "copy the file into the repository instead",
                            )
                        )
                    continue
                rel_real = os.path.relpath(real, real_root).replace(os.sep, "/")
                if yaml_name and (excluded(rel_real) or any(p.startswith(".") for p in rel_real.split("/"))):
                    yield child  # its target is not walked (a dot folder): read it through the link
                continue  # otherwise it is read once, where it really is
            if entry.is_dir():
                yield from walk(entry.path, child)
            elif name.endswith((".yaml", ".yml")):
                if entry.is_file():
                    yield child
                else:  # a FIFO or device would block or never end
                    diags.append(error("Y007", child, (0, 0), "not a regular file; refused"))

    found = list(walk(root, ""))
    return found, diags
