"""One file's own work, done once per content: parse, schema check, the findings that need no
other file. Its result (`FileResult`) is what a worker process returns (parallel.py) and what
the cache stores (cache.py), so it holds plain Python types only (marshal-able), never a model
object and never a decrypted value: the loader reads the file as it is, ciphertext and all.

The cross-file rules (checks.py) run afterwards on the documents rebuilt from these results.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from enum import IntEnum
from typing import NamedTuple

from pydantic import ValidationError

from . import loader, structure
from .catalog import Facts, Parsed, facts_of
from .diagnostics import Diagnostic, error
from .model import KINDS, AnyDocument
from .nodes import Node
from .valuechecks import check_sops_metadata, raw_secret_findings

PROJECT_FILE = "bifrost-gitops.yaml"

#: a Diagnostic as a plain tuple (code, severity, path, line, col, message, hint)
DiagRow = tuple[str, str, str, int, int, str, "str | None"]
#: catalog.Facts as a plain tuple (kind, organization, integration, age recipients, marked)
FactsRow = tuple[str, "str | None", "str | None", "tuple[tuple[str, ...], ...] | None", bool]


class State(IntEnum):
    """What a file turned out to be, for the stages after parsing."""

    OTHER = 0  # not one of our documents (or unreadable): only its findings count
    VALID = 1  # one of ours and its model validates: the document is kept
    UNVERIFIED = 2  # one of ours that failed its schema: only the names it declares are kept


class FileResult(NamedTuple):
    """Everything later stages need from one file's bytes (plain types: see the module doc)."""

    path: str
    state: int  # a State
    diags: tuple[DiagRow, ...]  # the file's own findings, in the order they were found
    data: Node  # the parsed document (VALID only, else None)
    #: `loader.Document.pack()`: its positions, unpacked only if a finding needs one (b"": not packed)
    positions: bytes
    implicit: dict[loader.Path, tuple[str, str]]
    marked: bool
    declared: tuple[str, ...]  # lower-cased names an UNVERIFIED document still declares
    facts: FactsRow | None  # what checks read of a VALID document besides its path (else None)
    digest: bytes  # `source_digest` of the file (b"" when it could not be read)

    def summary(self) -> Summary:
        return Summary(self.path, self.state, self.diags, self.declared, self.facts, self.digest)

    def body(self) -> Body | None:
        """The parsed document (None unless VALID)."""
        if self.state != State.VALID:
            return None
        return Body(self.data, self.positions, self.implicit, self.marked)


class Summary(NamedTuple):
    """The small part of a FileResult that every run reads (the cache keeps it apart)."""

    path: str
    state: int
    diags: tuple[DiagRow, ...]
    declared: tuple[str, ...]
    facts: FactsRow | None
    digest: bytes


class Body(NamedTuple):
    """The parsed document of a VALID FileResult, read only when a later stage needs it."""

    data: Node
    positions: bytes
    implicit: dict[loader.Path, tuple[str, str]]
    marked: bool


def _declared_names(data: dict[str, object]) -> tuple[str, ...]:
    """Names an invalid document still declares, so references to them are not reported twice."""
    names = [data.get("name")]
    orgs = data.get("organizations")
    if isinstance(orgs, list):
        names += [o.get("name") for o in orgs if isinstance(o, dict)]
    return tuple(n.lower() for n in names if isinstance(n, str))


def _result(
    rel: str,
    diags: list[Diagnostic],
    state: State = State.OTHER,
    doc: loader.Document | None = None,
    pack: bool = True,
    facts: Facts | None = None,
    digest: bytes = b"",
) -> FileResult:
    rows = tuple(tuple(d) for d in diags)
    if doc is None or state is not State.VALID:
        declared = _declared_names(doc.data) if doc is not None and state is State.UNVERIFIED else ()
        return FileResult(rel, int(state), rows, None, b"", {}, False, declared, None, b"")  # type: ignore[arg-type]
    positions = doc.pack() if pack else b""
    row = tuple(facts) if facts is not None else None
    return FileResult(rel, int(state), rows, doc.data, positions, doc.implicit, doc.marked, (), row, digest)  # type: ignore[arg-type]


def source_digest(rel: str, content: bytes) -> bytes:
    """sha256 of a file's path and bytes: the same digest, the same parsed document (whatever
    the cache, the machine or the run), so compile and diff compare documents without loading
    them (catalog.Parsed.digest)."""
    h = hashlib.sha256(rel.encode("utf-8", "surrogateescape") + b"\0")
    h.update(content)
    return h.digest()


def analyse(rel: str, content: bytes, pack: bool = True) -> tuple[FileResult, Parsed[AnyDocument] | None]:
    """Parse and check one file's bytes on its own; also the document, when it is a valid one.
    PACK False leaves the result's positions out (nothing will store or send it)."""
    doc, diags = loader.load_bytes(content, rel)
    if doc is not None and isinstance(doc.data, list) and any(structure.is_ours(x) for x in doc.data):
        diags.append(
            error(
                "Y008",
                rel,
                doc.pos(()),
                "a list of documents: one document per file",
                "put each document in a file of its own",
            )
        )
        return _result(rel, diags), None
    if doc is None or not structure.is_ours(doc.data):
        return _result(rel, diags), None
    diags.extend(doc.notes)
    if rel == PROJECT_FILE and doc.data.get("kind") != "Project":
        diags.append(
            error(
                "S002",
                rel,
                doc.pos(("kind",)),
                f"{PROJECT_FILE} must be kind: Project",
                "it marks the repository root; put other documents in files of their own",
            )
        )
        return _result(rel, diags), None
    model, found = structure.validate(doc)
    diags.extend(found)
    if model is None:
        diags.extend(raw_secret_findings(doc))  # a broken file may still leak a secret
        return _result(rel, diags, State.UNVERIFIED, doc), None
    if "sops" in doc.data:
        check_sops_metadata(doc, diags)
    facts = facts_of(doc, model)
    digest = source_digest(rel, content)
    return _result(rel, diags, State.VALID, doc, pack, facts, digest), Parsed(
        doc, model, facts=facts, digest=digest
    )


def unread(rel: str, why: Diagnostic | None) -> FileResult:
    """The result for a file whose bytes could not be had (its finding, if any)."""
    return _result(rel, [why] if why is not None else [])


def findings(result: FileResult | Summary) -> list[Diagnostic]:
    return [Diagnostic(*row) for row in result.diags]  # type: ignore[arg-type]


def rebuild(result: FileResult) -> Parsed[AnyDocument] | None:
    """The valid document a result stands for (see `lazy`)."""
    body = result.body()
    return None if body is None else lazy(result.summary(), lambda: body)


def lazy(summary: Summary, body: Callable[[], Body]) -> Parsed[AnyDocument] | None:
    """The valid document a summary stands for, its data read (BODY) and its model validated
    again on first use only: checks answered from the cache (checks.Memo) need neither for a
    file that did not change. The model is never stored, so nothing but plain data is ever read
    back from a cache."""
    if summary.state != State.VALID or summary.facts is None:
        return None
    path = summary.path

    def load() -> loader.Document:
        data, positions, implicit, marked = body()
        return loader.Document(path, data, implicit=implicit, marked=marked, packed=positions)

    facts = Facts(*summary.facts)
    kind = KINDS[facts.kind]
    return Parsed(None, make=_model, kind=kind, load=load, path=path, facts=facts, digest=summary.digest)


def _model(doc: loader.Document) -> AnyDocument:
    kind = KINDS[doc.data["kind"]]  # a valid document's
    try:  # the usual case, without structure.validate's findings (already in the result)
        return kind.model_validate(doc.data)
    except ValidationError:
        pass  # a document valid once its quoting traps are mended: see structure._salvage
    model, _ = structure.validate(doc)
    if model is None:  # it validated when its result was made: same data, same code
        raise AssertionError(f"{doc.path}: a valid document no longer validates")
    return model
