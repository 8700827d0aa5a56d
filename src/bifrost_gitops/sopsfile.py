"""One home for rewriting a sops-encrypted file in place (`secrets set`, `secrets updatekeys`).

The file is read once (`read`): its bytes are what sops parses, its text is what the new text
is spliced into. A YAML file keeps every comment, blank line and untouched line (sops keeps
comments too); when a change cannot be spliced, it is written anew with only its leading
comment lines kept. JSON is written the way sops writes it. The write is atomic and keeps the
file's mode.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from . import sops
from .atomic import write_atomic
from .sops import splice


class Source(NamedTuple):
    """A sops file as read once."""

    path: str
    raw: bytes

    @property
    def text(self) -> str:
        """The bytes as Python reads a text file (UTF-8, universal newlines): what is spliced."""
        return self.raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")

    def tree(self) -> dict[str, Any]:
        """The document typed the way sops types it (see sops.store), metadata and all."""
        return sops.loads(self.raw, sops.store.format_of(self.path), file=self.path)


def read(path: str) -> Source:
    """PATH's bytes; a SopsError (as sops.load_file raises) when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return Source(path, f.read())
    except OSError as e:
        raise sops.SopsError(f"cannot read the file: {e.strerror}", file=path) from None


def new_text(source: Source, tree: dict[str, Any], indent: int) -> str:
    """TREE (SOURCE's document, changed) as the file's new text, with INDENT for YAML."""
    if sops.store.format_of(source.path) == "json":
        return sops.dump_json(tree)
    old = source.text
    spliced = splice.rewrite(old, tree, indent)
    return spliced if spliced is not None else _header(old) + sops.dump_yaml(tree, indent)


def _header(text: str) -> str:
    """The leading comment lines of TEXT (schema pointer, description): kept across a rewrite."""
    end = 0
    for line in text.split("\n"):
        if not line.startswith("#"):
            break
        end += len(line) + 1
    return text[:end]


def write(path: str, text: str) -> None:
    """TEXT into PATH atomically, keeping the file's mode (0644 for a new file)."""
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
    write_atomic(path, text.encode("utf-8"), mode=mode, prefix=".bifrost-gitops-")
