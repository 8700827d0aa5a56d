"""Read and write sops documents as YAML or JSON the way sops's stores do.

Reading types scalars like go-yaml v3 (see :mod:`.gotypes`), not like the repository's YAML 1.1
loader, because the type decides the ``type:`` tag and the MAC bytes. Writing produces what
sops reads: 4-space YAML indent with literal blocks for ``enc``, tab-indented JSON. Comments are
not kept (they are not data; sops never hashes them).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, cast

import yaml
from yaml import events as yev

from ..nodes import Node, Scalar, Tree
from .errors import SopsError
from .gotypes import Timestamp, format_float, parse_timestamp, resolve_plain
from .secret import Secret

MAX_NODES = 1_000_000
_T = "tag:yaml.org,2002:"


def format_of(path: str) -> str:
    """``json`` for *.json, else ``yaml`` (sops picks the store from the extension)."""
    return "json" if path.lower().endswith(".json") else "yaml"


def load_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a YAML or JSON file with sops's typing; the top level must be a mapping.

    A Tree (see ..nodes), returned loosely typed: callers walk into the paths they expect.
    """
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise SopsError(f"cannot read the file: {e.strerror}", file=p) from None
    return loads(raw, format_of(p), file=p)


def loads(text: str | bytes, fmt: str = "yaml", *, file: str | None = None) -> dict[str, Any]:
    """Parse YAML (go-yaml v3 typing) or JSON text into a dict (a Tree, typed loosely like load_file)."""
    if fmt == "json":
        return _load_json(text, file)
    return _load_yaml(text, file)


# --- YAML reading ------------------------------------------------------------------------


class _Refused(Exception):
    pass


class _Builder:
    def __init__(self, parser: yaml.CSafeLoader) -> None:
        # libyaml returns None only after the stream's end, which the builder never reads past
        self.next = cast(Callable[[], yev.Event], parser.get_event)
        self.anchors: dict[str, Node] = {}
        self.nodes = 0

    def build(self, ev: yev.Event, depth: int) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > 200:
            raise _Refused("document too large or too deeply nested")
        value: Node
        if type(ev) is yev.ScalarEvent:
            value = self.scalar(ev)
        elif type(ev) is yev.MappingStartEvent:
            self.check_tag(ev.tag, "map")
            value = self.mapping(depth)
        elif type(ev) is yev.SequenceStartEvent:
            self.check_tag(ev.tag, "seq")
            items: list[Node] = []
            while True:
                item = self.next()
                if type(item) is yev.SequenceEndEvent:
                    break
                items.append(self.build(item, depth + 1))
            value = items
        elif type(ev) is yev.AliasEvent:
            if ev.anchor not in self.anchors:
                raise _Refused(f"unknown alias *{ev.anchor}")
            return self.anchors[ev.anchor]
        else:  # pragma: no cover
            raise _Refused("unexpected YAML event")
        anchor = cast(yev.NodeEvent, ev).anchor  # every branch that gets here built a node event
        if anchor is not None:
            self.anchors[anchor] = value
        return value

    @staticmethod
    def check_tag(tag: str | None, kind: str) -> None:
        if tag is not None and tag not in ("!", _T + kind):
            raise _Refused("only plain YAML is supported: remove the tag")

    @staticmethod
    def scalar(ev: yev.ScalarEvent) -> Scalar:
        tag, text = ev.tag, ev.value
        if tag is None:
            if not ev.implicit[0]:  # quoted or block scalar
                return text
            try:
                return resolve_plain(text)
            except ValueError as e:
                raise _Refused(str(e)) from None
        if tag in ("!", _T + "str"):
            return text
        want = {_T + "int": int, _T + "float": float, _T + "bool": bool, _T + "null": type(None)}
        if tag == _T + "timestamp":
            ts = parse_timestamp(text)
            if ts is None:
                raise _Refused("invalid !!timestamp")
            return ts
        if tag in want:
            try:
                v = resolve_plain(text)
            except ValueError as e:
                raise _Refused(str(e)) from None
            if tag == _T + "float" and isinstance(v, int) and not isinstance(v, bool):
                return float(v)
            if type(v) is not want[tag]:
                raise _Refused(f"scalar is not a valid {tag.rsplit(':', 1)[-1]}")
            return v
        raise _Refused("only plain YAML is supported: remove the tag")

    def mapping(self, depth: int) -> Tree:
        result: Tree = {}
        while True:
            kev = self.next()
            if type(kev) is yev.MappingEndEvent:
                return result
            if type(kev) is not yev.ScalarEvent:
                raise _Refused("mapping keys must be scalars")
            key = self.scalar(kev)
            if type(key) is not str:
                raise _Refused(f"key {kev.value!r} is not a string (quote it)")
            if key in result:
                raise _Refused(f"duplicate key {key!r}")
            result[key] = self.build(self.next(), depth + 1)


def _load_yaml(text: str | bytes, file: str | None) -> Tree:
    parser = yaml.CSafeLoader(text)
    try:
        parser.get_event()  # StreamStart
        ev = parser.get_event()
        if type(ev) is yev.StreamEndEvent:
            raise SopsError("the document is empty", file=file)
        builder = _Builder(parser)
        data = builder.build(builder.next(), 0)
        parser.get_event()  # DocumentEnd
        if type(parser.get_event()) is yev.DocumentStartEvent:
            raise SopsError("multi-document YAML files are not supported", file=file)
    except _Refused as r:
        raise SopsError(f"invalid YAML: {r}", file=file) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SopsError(f"invalid YAML{where}: {e.problem}", file=file) from None
    except yaml.YAMLError:
        raise SopsError("not readable as UTF-8 YAML", file=file) from None
    finally:
        parser.dispose()
    if not isinstance(data, dict):
        raise SopsError("the top level of a sops document must be a mapping", file=file)
    return data


# --- JSON reading -------------------------------------------------------------------------


def _pairs(pairs: list[tuple[str, Node]]) -> Tree:
    out: Tree = {}
    for k, v in pairs:
        if k in out:
            raise SopsError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _no_constant(name: str) -> NoReturn:
    raise SopsError(f"invalid JSON number {name}")


def _load_json(text: str | bytes, file: str | None) -> Tree:
    try:
        data: object = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except SopsError as e:
        raise SopsError(str(e), file=file) from None
    except (ValueError, UnicodeDecodeError) as e:
        where = f" at line {e.lineno}" if isinstance(e, json.JSONDecodeError) else ""
        raise SopsError(f"invalid JSON{where}", file=file) from None
    if not isinstance(data, dict):
        raise SopsError("the top level of a sops document must be an object", file=file)
    return data


# --- writing ------------------------------------------------------------------------------

_PLAIN_FIRST = re.compile(r"[^\s\-?:,\[\]{}#&*!|>'\"%@`]")
_BAD_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")
_YAML11 = yaml.resolver.Resolver()


def _plain_ok(s: str) -> bool:
    if not s or not _PLAIN_FIRST.match(s) or s != s.strip() or _BAD_CHARS.search(s):
        return False
    if ": " in s or " #" in s or s.endswith(":"):
        return False
    try:
        if type(resolve_plain(s)) is not str:  # go-yaml would re-type it
            return False
    except ValueError:
        return False
    # the repository's YAML 1.1 loader must read it back as text too
    tag = _YAML11.resolve(yaml.ScalarNode, s, (True, False))  # type: ignore[no-untyped-call]
    return bool(tag == _T + "str")


def _quote(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or 0x7F <= o <= 0x9F or ch in "\u2028\u2029\ufeff" or 0xD800 <= o <= 0xDFFF:
            out.append(f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}")
        elif o in (0xFFFE, 0xFFFF):
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _str_scalar(s: str) -> str:
    return s if _plain_ok(s) else _quote(s)


def _yaml_float(x: float) -> str:
    if math.isnan(x):
        return ".nan"
    if math.isinf(x):
        return ".inf" if x > 0 else "-.inf"
    r = repr(x)
    if "e" in r and "." not in r:
        m, e = r.split("e")
        r = f"{m}.0e{e}"
    return r


def _scalar(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _yaml_float(v)
    if isinstance(v, Timestamp):
        if parse_timestamp(v) is None:
            raise SopsError("a Timestamp value is not a valid timestamp")
        return str.__str__(v)
    if isinstance(v, str):
        return _str_scalar(v)
    if isinstance(v, Secret):
        raise SopsError("refusing to write a Secret: encrypt the document first")
    raise SopsError(f"cannot write a value of type {type(v).__name__}")


def _literal_ok(s: str) -> bool:
    if "\n" not in s or s[0] in " \n\t" or _BAD_CHARS.search(s.replace("\n", "").replace("\t", "")):
        return False
    body = s[:-1] if s.endswith("\n") else s
    return not body.endswith("\n")


def _literal(s: str, indent: int) -> list[str]:
    head = "|" if s.endswith("\n") else "|-"
    body = s[:-1] if s.endswith("\n") else s
    pad = " " * indent
    return [head] + [pad + line if line else "" for line in body.split("\n")]


def _map_lines(m: Mapping[str, object], key_indent: int, child_indent: int, step: int = 4) -> list[str]:
    lines: list[str] = []
    pad = " " * key_indent
    for k, v in m.items():
        if not isinstance(k, str):
            raise SopsError("mapping keys must be strings")
        head = f"{pad}{_str_scalar(k)}:"
        if isinstance(v, Mapping) and v:
            lines.append(head)
            lines.extend(_map_lines(v, child_indent, child_indent + step, step))
        elif isinstance(v, list) and v:
            lines.append(head)
            lines.extend(_list_lines(v, child_indent, step))
        elif isinstance(v, str) and not isinstance(v, Timestamp) and _literal_ok(v):
            block = _literal(v, child_indent)
            lines.append(f"{head} {block[0]}")
            lines.extend(block[1:])
        else:
            lines.append(f"{head} {_empty_or_scalar(v)}")
    return lines


def _empty_or_scalar(v: object) -> str:
    if isinstance(v, Mapping):
        return "{}"
    if isinstance(v, list):
        return "[]"
    return _scalar(v)


def _list_lines(items: list[object], indent: int, step: int = 4) -> list[str]:
    lines: list[str] = []
    dash = " " * indent + "- "
    inner = " " * (indent + 2)
    for v in items:
        if isinstance(v, Mapping) and v:
            # go-yaml indents a list item's mapping from the dash column, not the key's
            sub = _map_lines(v, indent + 2, indent + step if step > 2 else indent + 2 + step, step)
        elif isinstance(v, list) and v:
            sub = _list_lines(v, indent + 2, step)
        elif isinstance(v, str) and not isinstance(v, Timestamp) and _literal_ok(v):
            block = _literal(v, indent + 4)
            lines.append(dash + block[0])
            lines.extend(block[1:])
            continue
        else:
            lines.append(dash + _empty_or_scalar(v))
            continue
        lines.append(dash + sub[0][len(inner) :])
        lines.extend(sub[1:])
    return lines


def dump_yaml(tree: Mapping[str, object], indent: int = 4) -> str:
    """YAML text sops reads back to the same tree (go-yaml v3 style; sops's default indent is 4,
    `stores.yaml.indent` in .sops.yaml changes it)."""
    if not tree:
        return "{}\n"
    return "\n".join(_map_lines(tree, 0, indent, indent)) + "\n"


def _json_default(v: object) -> NoReturn:
    if isinstance(v, Secret):
        raise SopsError("refusing to write a Secret: encrypt the document first")
    raise SopsError(f"cannot write a value of type {type(v).__name__}")


def dump_json(tree: Mapping[str, object], indent: str | None = "\t") -> str:
    """Tab-indented JSON with a trailing newline, as sops writes it; ``indent=None`` writes one
    compact line (sops reads it the same), several times faster for large machine-read files."""
    seps = (",", ":") if indent is None else None
    try:
        text = json.dumps(
            tree, indent=indent, separators=seps, ensure_ascii=False, default=_json_default, allow_nan=False
        )
    except ValueError as e:  # the encoder's own check, in the same pass as the writing
        if "Out of range float" in str(e):
            raise SopsError("JSON cannot hold Inf or NaN") from None
        raise SopsError(f"cannot write the document as JSON: {e}") from None
    return text + "\n"


def dumps(tree: Mapping[str, object], fmt: str) -> str:
    """:func:`dump_json` or :func:`dump_yaml` by format name."""
    return dump_json(tree) if fmt == "json" else dump_yaml(tree)


__all__ = ["dump_json", "dump_yaml", "dumps", "format_float", "load_file", "loads"]
