"""Write a changed sops YAML document back into its own text, so every comment survives.

sops keeps a YAML file's comments (clear, or ``#ENC[...]`` under an encrypted key) but never
hashes them into the MAC. A rewrite therefore only has to replace the entries whose value
changed (a secret, the ``sops`` block) and append the new ones: every other line, comment, blank
line and quoting style stays byte for byte (unchanged aliases included). :func:`rewrite` does
that, or returns None when the change is not one it can splice (a removed or reordered key, a
changed value behind an alias, a document that is one flow mapping); the caller then writes the
whole document anew.
"""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from .store import _map_lines, loads

_Node = yaml.Node
_Edit = tuple[int, int, str]  # replace text[start:end] with the string


class _Unspliceable(Exception):
    pass


def rewrite(text: str, new: Mapping[str, object], indent: int = 4) -> str | None:
    """TEXT with its document changed into NEW (a sops tree), or None when it cannot be spliced.

    The result is checked: it parses back to exactly NEW, or None is returned."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        old = loads(text)
    except Exception:  # unreadable here: the caller's full rewrite reports it
        return None
    if not isinstance(root, yaml.MappingNode) or root.flow_style or not root.value:
        return None
    edits: list[_Edit] = []
    try:
        _Splicer(text, indent, edits).mapping(root, old, new, top=True)
    except (_Unspliceable, ValueError):
        return None
    out = text
    for start, end, repl in sorted(edits, reverse=True):
        out = out[:start] + repl + out[end:]
    try:
        back = loads(out)
    except Exception:
        return None
    return out if _same(back, new) else None


def _same(a: object, b: object) -> bool:
    """Equal as sops sees them: types count (True is not 1, a timestamp is not its text)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


class _Splicer:
    def __init__(self, text: str, indent: int, edits: list[_Edit]) -> None:
        self.text, self.indent, self.edits = text, indent, edits
        self.seen: set[int] = set()

    def mapping(
        self, node: yaml.MappingNode, old: Mapping[str, object], new: Mapping[str, object], top: bool = False
    ) -> None:
        keys_old, keys_new = list(old), list(new)
        if keys_new[: len(keys_old)] != keys_old or len(node.value) != len(keys_old):
            raise _Unspliceable  # a key removed or moved, or a merge key (<<) in play
        for (knode, vnode), key in zip(node.value, keys_old, strict=True):
            if id(vnode) in self.seen or knode.value != key:
                raise _Unspliceable  # an alias: one node, several places
            self.seen.add(id(vnode))
            ov, nv = old[key], new[key]
            if _same(ov, nv):
                continue
            if isinstance(ov, Mapping) and isinstance(nv, Mapping) and ov and _block_map(vnode):
                assert isinstance(vnode, yaml.MappingNode)
                self.mapping(vnode, ov, nv)
            else:
                start, end = knode.start_mark.index, value_end(self.text, vnode, knode)
                self.edits.append((start, end, self.entry(key, nv, knode.start_mark.column, pad_first=False)))
        added = keys_new[len(keys_old) :]
        if added:
            col = node.value[0][0].start_mark.column
            last_k, last_v = node.value[-1]
            lines = "\n".join(self.entry(k, new[k], col, pad_first=True) for k in added)
            if top:  # at the very end, after closing comments, as sops puts its block
                tail = self.text.rstrip("\n")
                self.edits.append((len(tail), len(self.text), "\n" + lines + "\n"))
                return
            at = self.text.find("\n", value_end(self.text, last_v, last_k))
            at = len(self.text) if at < 0 else at
            self.edits.append((at, at, "\n" + lines))

    def entry(self, key: str, value: object, col: int, pad_first: bool) -> str:
        """KEY: VALUE laid out as the sops store writes it, its key at column COL (the first line
        unpadded when it replaces an entry in place, after the original's own indentation)."""
        text = "\n".join(_map_lines({key: value}, col, col + self.indent, self.indent))
        return text if pad_first else text[col:]


def value_end(text: str, node: _Node, key: _Node) -> int:
    """Where the value NODE (of KEY) ends in TEXT: its last scalar, not the comments and blank
    lines a block's end mark takes in."""
    if isinstance(node, yaml.ScalarNode):
        if node.value == "" and node.style is None:  # `key:` alone (null)
            return text.index(":", key.end_mark.index) + 1
        end = int(node.end_mark.index)
        if node.style in ("|", ">"):  # a block scalar's mark runs into the next line
            end = _content_end(text, node.start_mark.index, end)
        return end
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        if node.flow_style or not node.value:
            return int(node.end_mark.index)
        last = node.value[-1]
        if isinstance(node, yaml.MappingNode):
            return value_end(text, last[1], last[0])
        return value_end(text, last, key)
    raise _Unspliceable


def _content_end(text: str, start: int, end: int) -> int:
    """The end of a block scalar's last non-blank line (its mark includes trailing blank lines)."""
    if not text[start:end].endswith("\n"):
        return end
    cut = end - 1
    while cut > start:
        line_start = text.rfind("\n", start, cut) + 1
        if text[line_start:cut].strip() or line_start <= start:
            return cut
        cut = line_start - 1
    return end


def _block_map(node: _Node) -> bool:
    return isinstance(node, yaml.MappingNode) and not node.flow_style and bool(node.value)
