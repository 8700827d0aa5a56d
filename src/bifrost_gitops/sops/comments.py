"""Encrypt the YAML comments sops would encrypt: those inside a mapping the file's rule selects.

sops treats a comment as a leaf of the mapping it sits in: under ``secrets:`` (with
``encrypted_regex: ^secrets$``) it becomes ``#ENC[...,type:comment]`` (AAD: the mapping's path,
``secrets:``), while top-level comments stay clear. A comment at the end of a line under such a
key is moved onto its own line before the key, as sops does. Comments are not in the MAC, so
this changes no other line. A clear comment left in such a place would show up in clear in the
repository and make `sops decrypt` warn (quoting it).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass

import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import values
from .splice import value_end
from .tree import Rule, rule_of


@dataclass(frozen=True)
class _Region:
    """The lines of one block mapping: where its own comments may sit."""

    first: int  # first line (0-based) a comment of this mapping can be on
    last: int  # last such line
    col: int  # the column of its keys; its comments are not left of it
    aad: str  # the mapping's path, sops style (``secrets:``; ``:`` at the top)
    encrypt: bool


def seal_comments(text: str, meta: Mapping[str, object], key: bytes) -> str:
    """TEXT with every clear comment that sops would encrypt encrypted under the data KEY."""
    rule = rule_of(meta)
    if rule.by_comment:  # comment rules: the comments choose the values; leave them as written
        return text
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return text
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        return text
    walk = _Walk(text, rule, AESGCM(key))
    walk.mapping(root, (), False, first=0)
    return walk.apply()


class _Walk:
    def __init__(self, text: str, rule: Rule, aes: AESGCM) -> None:
        self.text, self.rule, self.aes = text, rule, aes
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.regions: list[_Region] = []
        self.edits: list[tuple[int, int, str]] = []

    def line_of(self, offset: int) -> int:
        """The index of the line holding OFFSET (the last line's for any offset past it)."""
        return max(0, min(bisect.bisect_right(self.starts, offset) - 1, len(self.lines) - 1))

    def mapping(self, node: yaml.MappingNode, path: tuple[str, ...], matched: bool, first: int) -> None:
        if node.flow_style or not node.value:
            return
        col = node.value[0][0].start_mark.column
        enc = self.rule.encrypted(matched) is True
        last_k, last_v = node.value[-1]
        last = self._region_end(self.line_of(value_end(self.text, last_v, last_k)), col)
        self.regions.append(_Region(first, last, col, ":".join(path) + ":", enc))
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode) or (not path and knode.value == "sops"):
                continue  # the metadata block is not the document's
            sub = matched or self.rule.matches(knode.value)
            if isinstance(vnode, yaml.MappingNode):
                self.mapping(vnode, (*path, knode.value), sub, self.line_of(knode.start_mark.index) + 1)
            elif isinstance(vnode, yaml.ScalarNode) and enc and vnode.style not in ("|", ">"):
                self.line_comment(knode, vnode, ":".join(path) + ":")

    def _region_end(self, line: int, col: int) -> int:
        """The last line before the next content line left of COL (comments after the last entry
        still belong to the mapping while they are indented like its keys)."""
        i = line + 1
        while i < len(self.lines):
            stripped = self.lines[i].lstrip(" ")
            if stripped.strip() and not stripped.startswith("#") and len(self.lines[i]) - len(stripped) < col:
                break
            i += 1
        return i - 1

    def line_comment(self, knode: yaml.Node, vnode: yaml.Node, aad: str) -> None:
        """``key: value  # note`` -> an encrypted own-line comment before the key, as sops writes it."""
        end = value_end(self.text, vnode, knode)
        line = self.line_of(end)
        eol = self.starts[line] + len(self.lines[line].rstrip("\r\n"))
        rest = self.text[end:eol]
        if not rest.strip().startswith("#"):
            return
        col = knode.start_mark.column
        self.edits.append((end, eol, ""))
        start = self.starts[self.line_of(knode.start_mark.index)]
        self.edits.append((start, start, " " * col + self.seal(rest.strip()[1:], aad) + "\n"))

    def seal(self, comment: str, aad: str) -> str:
        return "#" + values.encrypt_bytes(self.aes, comment.encode(), "comment", aad)

    def apply(self) -> str:
        for i, line in enumerate(self.lines):
            body = line.lstrip(" ")
            if not body.startswith("#") or body.startswith("#ENC["):
                continue
            col = len(line) - len(body)
            region = self._owner(i, col)
            if region is not None and region.encrypt:
                content = body.rstrip("\r\n")
                eol = self.starts[i] + col + len(content)
                self.edits.append((self.starts[i] + col, eol, self.seal(content[1:], region.aad)))
        out = self.text
        for start, end, repl in sorted(self.edits, key=lambda e: (e[0], e[1]), reverse=True):
            out = out[:start] + repl + out[end:]
        return out

    def _owner(self, line: int, col: int) -> _Region | None:
        """The innermost mapping a comment on LINE at COL belongs to."""
        owner = None
        for r in self.regions:
            if (
                r.first <= line <= r.last
                and col >= r.col
                and (owner is None or (r.first, r.col) >= (owner.first, owner.col))
            ):
                owner = r
        return owner
