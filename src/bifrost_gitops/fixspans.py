"""Where each scalar of a YAML file sits in its text, for ``validate --fix``.

libyaml's event marks give every scalar's start and end as character offsets into the text
(after a byte order mark, which libyaml skips), so a fix can replace exactly those characters
and leave every other byte of the file as it was: comments, key order, quoting, indentation and
line endings included. A round-trip library (ruamel.yaml) would re-emit the whole document and
differ in small ways; splicing the original text cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import yaml
from yaml import events as ev

Path = tuple[str | int, ...]
Pos = tuple[int, int]


class Span(NamedTuple):
    """One scalar: where it is, what it says, and whether it is written plain (unquoted)."""

    start: int  # character offsets into the text without its BOM
    end: int
    value: str
    plain: bool
    path: Path  # the keys and list indexes leading to it (a key's path ends with its own text)
    key: bool  # a mapping key, not a value
    lines: tuple[int, int]  # its first and last line (1-based)


@dataclass
class _Frame:
    path: Path
    mapping: bool
    index: int = 0  # next list index, or (in a mapping) 0 = expecting a key, 1 = a value
    key: str = ""


@dataclass
class Spans:
    """Every scalar of one YAML text, by its 1-based (line, column) as findings report it."""

    at: dict[Pos, Span] = field(default_factory=dict)

    def get(self, line: int, col: int) -> Span | None:
        return self.at.get((line, col))


def scan(text: str) -> Spans | None:
    """The scalars of TEXT (BOM stripped), or None when it is not one parseable document."""
    out = Spans()
    stack: list[_Frame] = []
    parser = yaml.CSafeLoader(text.encode("utf-8"))
    try:
        while (event := parser.get_event()) is not None:
            if isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
                stack.pop()
                continue
            if not isinstance(event, ev.NodeEvent):
                continue
            path, is_key = _place(stack, event)
            if isinstance(event, ev.ScalarEvent):
                start, end = event.start_mark, event.end_mark
                if start is not None and end is not None:
                    out.at[(start.line + 1, start.column + 1)] = Span(
                        start.index,
                        end.index,
                        event.value,
                        event.implicit[0],
                        path,
                        is_key,
                        (start.line + 1, end.line + 1),
                    )
            elif isinstance(event, ev.CollectionStartEvent):
                stack.append(_Frame(path, isinstance(event, ev.MappingStartEvent)))
    except yaml.YAMLError:
        return None
    finally:
        parser.dispose()
    return out


def _place(stack: list[_Frame], event: ev.NodeEvent) -> tuple[Path, bool]:
    """The path of the node EVENT starts, and whether it is a mapping key; advances its parent."""
    if not stack:
        return (), False
    top = stack[-1]
    if not top.mapping:
        top.index += 1
        return (*top.path, top.index - 1), False
    if top.index == 0:
        top.index = 1
        top.key = event.value if isinstance(event, ev.ScalarEvent) else "?"
        return (*top.path, top.key), True
    top.index = 0
    return (*top.path, top.key), False
