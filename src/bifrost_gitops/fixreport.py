"""What ``validate --fix`` says: one line per fix made or left, and the ``--diff`` dry run.

Paths, messages and file lines come from the repository: every one goes through escape.term.
A diff never shows a value under ``secrets:`` (a clear one would be a leak): such lines are
masked, the way diff and explain mask secrets.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import IO

from .colour import Style, paint
from .escape import term
from .fix import FilePlan, Outcome, Plan

_MASK = "<a line under secrets:, not shown>"
#: the line breaks libyaml counts (so line numbers agree with the scanned spans)
_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def report(outcomes: Sequence[Outcome], files: int, out: IO[str], colour: bool) -> None:
    """``path:line:col: FIXED CODE message (what it did)`` or ``... LEFT ...`` plus a hint, then
    how many were fixed in how many FILES."""
    for o in outcomes:
        out.write(line(o, colour) + "\n")
        if o.hint:
            out.write("  " + paint(f"hint: {term(o.hint)}", Style.DIM, colour) + "\n")
    fixed = sum(1 for o in outcomes if o.fixed)
    left = len(outcomes) - fixed
    if outcomes:
        tail = f", {left} left for a person" if left else ""
        out.write(f"fixed {fixed} in {files} file{'' if files == 1 else 's'}{tail}\n")


def line(o: Outcome, colour: bool) -> str:
    loc = paint(term(f"{o.path}:{o.line}:{o.col}"), Style.BOLD, colour)
    word = paint("FIXED", Style.GREEN, colour) if o.fixed else paint("LEFT", Style.YELLOW, colour)
    return f"{loc}: {word} {term(o.code)} {term(o.message)} ({term(o.note)})"


def diff(p: Plan, out: IO[str]) -> None:
    """A unified diff (a/ and b/ paths relative to the repository) of every file --fix changes."""
    for f in p.changed:
        before = _lines(f, f.before)
        after = _lines(f, f.after)
        path = term(f.path)
        for row in difflib.unified_diff(before, after, f"a/{path}", f"b/{path}", lineterm=""):
            out.write(row + "\n")


def _lines(f: FilePlan, data: bytes) -> list[str]:
    """The file's lines (split where YAML breaks lines), escaped, secret lines masked."""
    rows = _BREAK.split(data.decode("utf-8").removeprefix("\ufeff"))
    if rows[-1] == "":  # the break that ends the last line starts no line of its own
        rows.pop()
    return [_MASK if n in f.secret_lines else term(row) for n, row in enumerate(rows, start=1)]
