"""``validate --fix``: apply the fixes the findings already describe, and nothing else.

A fix is mechanical when the finding leaves one reading: quote a scalar YAML 1.1 misreads
(Y005: ``region: no``, ``entity_id: 01234``, ``version: 1.10``, ``1:30``, dates, keys), write
``true``/``false`` for a YAML 1.1 boolean word (Y009) or a quoted one under a bool key (C002),
unquote a whole number under an int key (C002), and point a ``# yaml-language-server: $schema=``
comment at the repository's own ``.schemas/`` file for the document's kind.

Each fix replaces exactly the characters of one scalar (fixspans), so the rest of the file keeps
its bytes; the result is parsed again and must hold the same data apart from the fixed values,
or the file is left alone. In a sops-encrypted file the MAC covers clear values too: a fix is
made there only when sops would hash the same bytes before and after (``region: no`` is the
text ``no`` to sops either way), or when the file says ``mac_only_encrypted``; anything else is
left for a person, to make with ``sops edit``.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from . import loader
from .diagnostics import Diagnostic
from .fixspans import Span, Spans, scan
from .model import KINDS
from .nodes import Node
from .remedy import Kind, Remedy, of
from .schemas import COMMENT_RE, filename, link
from .structure import in_secrets
from .valuechecks import BOOL_WORDS

#: what the fix report shows in the code column for a repaired $schema comment
SCHEMA_CODE = "$schema"

_WHOLE_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_BOM = "\ufeff"


class Edit(NamedTuple):
    """Replace the characters START..END of a file's text (without its BOM) with TEXT."""

    start: int
    end: int
    text: str


class Outcome(NamedTuple):
    """One fix: made (or, for --diff, to be made), or left for a person and why."""

    path: str
    line: int
    col: int
    code: str
    message: str  # the finding's own message (never a secret value: see diagnostics.py)
    fixed: bool
    note: str  # what the fix did, or why it was not made
    hint: str | None = None


@dataclass
class FilePlan:
    """What --fix does to one file."""

    path: str  # repository-relative
    real: str  # the file written (a symlink's target)
    before: bytes
    after: bytes
    outcomes: list[Outcome] = field(default_factory=list)
    #: lines holding a value under secrets: (a diff shows them masked)
    secret_lines: frozenset[int] = frozenset()


@dataclass
class Plan:
    """Every file --fix looked at, in path order."""

    files: list[FilePlan]

    @property
    def changed(self) -> list[FilePlan]:
        return [f for f in self.files if f.after != f.before]

    @property
    def outcomes(self) -> list[Outcome]:
        return [o for f in self.files for o in f.outcomes]


class _Fixable(NamedTuple):
    finding: Diagnostic
    remedy: Remedy


def plan(
    root: str,
    findings: Sequence[Diagnostic],
    documents: Mapping[str, Node],
    masked: Sequence[Diagnostic] = (),
) -> Plan:
    """The fixes for FINDINGS (already filtered by suppressions) and for the $schema comments of
    DOCUMENTS (repository-relative path -> data of each of our files, as just checked); nothing
    is written."""
    by_path: dict[str, list[_Fixable]] = {}
    for d in findings:
        r = of(d)
        if r is not None:
            by_path.setdefault(d.path, []).append(_Fixable(d, r))
    # $schema comments are looked at only where init put the schemas (reading every file costs)
    schemas = os.path.isdir(os.path.join(root, ".schemas"))
    paths = sorted(set(by_path) | (set(documents) if schemas else set()))
    misplaced: dict[str, list[Diagnostic]] = {}
    for d in [*findings, *masked]:  # a suppressed C004 still points at a secret: still masked
        if d.code == "C004":
            misplaced.setdefault(d.path, []).append(d)
    planned = (
        _plan_file(root, rel, by_path.get(rel, []), documents.get(rel), misplaced.get(rel, []))
        for rel in paths
    )
    return Plan([p for p in planned if p is not None])


def write(p: Plan) -> None:
    """Write every changed file back in place, atomically, keeping its mode."""
    from .atomic import write_atomic

    for f in p.changed:
        mode = os.stat(f.real).st_mode & 0o7777
        write_atomic(f.real, f.after, mode=mode, prefix=".bifrost-gitops-fix-", suffix=".tmp")


def _read(root: str, rel: str) -> tuple[str, bytes] | None:
    """(the path to write, the bytes) of a file inside the repository, or None."""
    real = os.path.realpath(os.path.join(root, rel))
    top = os.path.realpath(root)
    if not real.startswith(top + os.sep) or not os.path.isfile(real):
        return None
    with open(real, "rb") as f:
        data = f.read(loader.MAX_BYTES + 1)
    return (real, data) if len(data) <= loader.MAX_BYTES else None


def _plan_file(
    root: str, rel: str, fixable: list[_Fixable], data: Node, misplaced: list[Diagnostic]
) -> FilePlan | None:
    """What --fix does to REL: the findings that name a fix, its $schema comment (DATA: the
    document as checked, None if not one of ours), C004 findings MISPLACED (lines masked)."""
    got = _read(root, rel)
    if got is None:
        return None
    real, before = got
    ours = data if isinstance(data, dict) else None
    if not fixable and (ours is None or b"$schema=" not in before):
        return None
    try:
        text = before.decode("utf-8")
    except UnicodeDecodeError:
        return None
    bom = _BOM if text.startswith(_BOM) else ""
    body = text[len(bom) :]
    if not fixable and ours is not None and _schema_fix(root, rel, body, ours) is None:
        return None  # the usual file: its comment points home, nothing to parse
    spans = scan(body)
    doc, _ = loader.parse(before, rel)
    if spans is None or doc is None or not isinstance(doc.data, dict):
        return None
    meta = doc.data.get("sops")
    sops_meta = meta if isinstance(meta, dict) else None
    edits: list[Edit] = []
    expected: dict[tuple[str | int, ...], Node] = {}
    outcomes: list[Outcome] = []
    for d, r in fixable:
        span = spans.get(d.line, d.col)
        found = _fix_for(r, span, body) if span is not None and _still(doc, d, r, span) else None
        if found is None or span is None:
            continue  # not a mechanical fix: the finding stays in the report
        edit, new, how = found
        if any(e.start < edit.end and edit.start < e.end for e in edits):
            continue  # a second finding about the same scalar: one fix is enough
        if sops_meta is not None and not _mac_neutral(sops_meta, span, body[span.start : span.end], edit):
            outcomes.append(_left_in_sops(d, rel))
            continue
        edits.append(edit)
        if not span.key:
            expected[span.path] = new
        outcomes.append(Outcome(d.path, d.line, d.col, d.code, d.message, True, how))
    schema = _schema_fix(root, rel, body, doc.data)
    if schema is not None:
        edits.append(schema[0])
        outcomes.append(schema[1])
    after = before
    if edits:
        fixed = bom + _splice(body, edits)
        if _reads_back(doc.data, expected, fixed.encode("utf-8"), rel):
            after = fixed.encode("utf-8")
        else:  # pragma: no cover - a safety net: every fix above keeps the rest of the data
            outcomes = [_unverified(o) if o.fixed else o for o in outcomes]
    outcomes.sort(key=lambda o: (o.line, o.col))
    return FilePlan(rel, real, before, after, outcomes, _secret_lines(spans, misplaced))


def _secret_lines(spans: Spans, c004: list[Diagnostic]) -> frozenset[int]:
    """The lines of every value under secrets:, and of a secret-typed key's value put under
    config: by mistake (C004 findings point at its key), which diff and explain mask too."""
    keys = [spans.get(d.line, d.col) for d in c004]
    misplaced = {k.path for k in keys if k is not None and k.key}
    return frozenset(
        n
        for s in spans.at.values()
        if not s.key and (in_secrets(s.path) or s.path in misplaced)
        for n in range(s.lines[0], s.lines[1] + 1)
    )


def _still(doc: loader.Document, d: Diagnostic, r: Remedy, span: Span) -> bool:
    """Whether the scalar at the finding's position is still the one the finding is about (the
    file may have changed since it was checked): the same text, read the same way."""
    if span.key:
        return any(n.code == d.code and (n.line, n.col) == (d.line, d.col) for n in doc.notes)
    implicit = doc.implicit.get(span.path)
    if r.key is not None and (not span.path or span.path[-1] != r.key):
        return False  # another key stands there now
    if d.code in ("Y005", "Y009"):  # a YAML 1.1 reading of the text the finding saw
        if r.kind is Kind.QUOTE and r.text != span.value and not (r.text is None and in_secrets(span.path)):
            return False
        return implicit is not None and implicit[1] == span.value
    node: object = doc.data
    for part in span.path:
        if isinstance(node, dict) and isinstance(part, str) and part in node:  # noqa: SIM114 - mypy narrows each
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return False
    return node == span.value and implicit is None


def _fix_for(r: Remedy, span: Span, body: str) -> tuple[Edit, Node, str] | None:
    """The one edit a finding's remedy describes, the value it leaves, and what it did; None if
    the scalar is not written the way the fix expects (then the finding stays for a person)."""
    source = body[span.start : span.end]
    single_plain = span.plain and source == span.value
    quoted = not span.plain and len(source) == len(span.value) + 2 and source[0] in "\"'"
    quoted = quoted and source[-1] == source[0] and source[1:-1] == span.value
    if r.kind is Kind.QUOTE:
        return (
            (Edit(span.start, span.end, _quote(span.value)), span.value, "quoted it")
            if single_plain
            else None
        )
    if span.key or not (single_plain or quoted):
        return None
    word = BOOL_WORDS.get(span.value.lower())
    if r.kind is Kind.BOOL and word is not None and word == r.word:
        return Edit(span.start, span.end, word), word == "true", f"wrote {word}"
    if r.kind is Kind.UNQUOTE and quoted and _WHOLE_NUMBER.fullmatch(span.value):
        return Edit(span.start, span.end, span.value), int(span.value), "unquoted the number"
    return None


def _quote(value: str) -> str:
    """VALUE as a one-line quoted YAML scalar: double quotes unless it holds a quote or backslash."""
    if '"' not in value and "\\" not in value and value.isprintable():
        return f'"{value}"'
    return "'" + value.replace("'", "''") + "'"


def _mac_neutral(meta: dict[str, object], span: Span, source: str, edit: Edit) -> bool:
    """Whether sops's MAC stays valid after EDIT: the value is clear (not under secrets:, not
    sops metadata, not a key) and sops hashes the same bytes for it before and after, or the
    MAC covers only encrypted values (mac_only_encrypted)."""
    if span.key or not span.path or span.path[0] == "sops" or in_secrets(span.path):
        return False
    if meta.get("mac_only_encrypted") is True:
        return True
    old, new = _mac_bytes(source), _mac_bytes(edit.text)
    return old is not None and old == new


def _mac_bytes(scalar: str) -> bytes | None:
    """The bytes sops's MAC hashes for a clear scalar written as SCALAR (go-yaml v3 typing)."""
    from .sops import SopsError
    from .sops.store import loads
    from .sops.values import to_plaintext

    try:
        value = loads(f"v: {scalar}\n")["v"]
        return b"" if value is None else to_plaintext(value)[0]
    except (SopsError, TypeError, ValueError):
        return None


def _left_in_sops(d: Diagnostic, rel: str) -> Outcome:
    return Outcome(
        d.path,
        d.line,
        d.col,
        d.code,
        d.message,
        False,
        "left for a person: the file is sops-encrypted and its MAC covers this value",
        f"make the change in `sops edit {rel}` (sops recomputes the MAC)",
    )


def _unverified(o: Outcome) -> Outcome:  # pragma: no cover - see _plan_file
    return o._replace(fixed=False, note="left for a person: the fixed file did not read back the same")


def _schema_fix(root: str, rel: str, body: str, data: Mapping[str, object]) -> tuple[Edit, Outcome] | None:
    """Repoint a wrong `# yaml-language-server: $schema=` path in the file's leading comments to
    the repository's .schemas/ file for its kind (only when that file exists; URLs are kept)."""
    kind = data.get("kind")
    if (
        not isinstance(kind, str)
        or kind not in KINDS
        or not str(data.get("apiVersion", "")).startswith("bifrost-gitops/")
    ):
        return None
    target = f".schemas/{filename(kind)}"
    if not os.path.isfile(os.path.join(root, target)):
        return None
    folder = posixpath.dirname(rel)
    offset = 0
    for number, line in enumerate(body.split("\n"), start=1):
        content = line.strip()
        if content and not content.startswith("#"):
            return None  # only the comments above the document
        m = COMMENT_RE.match(line)
        if m is not None:
            current = m.group(1)
            if "://" in current or posixpath.normpath(posixpath.join(folder, current)) == target:
                return None
            want = link(target, rel)
            edit = Edit(offset + m.start(1), offset + m.end(1), want)
            message = "comment does not point to this kind's schema in .schemas/"
            note = f"now {want}, was {current}"
            return edit, Outcome(rel, number, m.start(1) + 1, SCHEMA_CODE, message, True, note)
        offset += len(line) + 1
    return None


def _splice(body: str, edits: list[Edit]) -> str:
    """BODY with EDITS applied (they never overlap: one per scalar, one per comment)."""
    parts: list[str] = []
    at = 0
    for e in sorted(set(edits)):
        parts += [body[at : e.start], e.text]
        at = e.end
    parts.append(body[at:])
    return "".join(parts)


def _reads_back(before: object, expected: dict[tuple[str | int, ...], Node], after: bytes, rel: str) -> bool:
    """Whether the fixed text parses to the old data with exactly the fixed values changed."""
    import copy

    doc, diags = loader.parse(after, rel)
    if doc is None or any(d.code.startswith("Y") and d.code != "Y005" for d in diags):
        return False
    want = copy.deepcopy(before)
    for path, value in expected.items():
        node = want
        for part in path[:-1]:
            node = node[part]  # type: ignore[index]
        node[path[-1]] = value  # type: ignore[index]
    return repr(doc.data) == repr(want)
