"""What Bifrost can store as a secret value: text, an integer, a finite float or true/false.

sops decrypts more than that: bytes (a value tagged ``type:bytes``; the tag sits outside the
MAC, so a pull request can retag a value without breaking the file's integrity), NaN and the
infinities (``.nan``/``.inf`` in YAML). JSON carries none of them, so such a value is a K007
finding at ``validate --decrypt`` and ``secrets check``, a refusal at compile and deploy, and a
failed operation at apply: never a crash half-way. Messages name the kind of value, never it.
"""

from __future__ import annotations

import math

from .diagnostics import Diagnostic, error
from .loader import Document, Path
from .sops import Secret, SopsError

CODE = "K007"
WHAT = "Bifrost stores a secret as text, an integer, a finite number or true/false"
HINT = "set it again with `bifrost-gitops secrets set` (it stores text), or re-encrypt the file with sops"


def problem(value: object) -> str | None:
    """Why Bifrost cannot store VALUE as a secret (what kind of value it is), or None when it can."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "a float that is not finite (NaN or infinity)"
    if isinstance(value, (bytes, bytearray)):
        return "bytes (sops type:bytes)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a value of type {type(value).__name__}"


def unsendable(body: object, at: str = "") -> str | None:
    """Where and why BODY cannot go to Bifrost as JSON (``config.api_key is a float NaN``), or None."""
    if isinstance(body, dict):
        for k, v in body.items():
            where = f"{at}.{k}" if at else str(k)
            if not isinstance(k, str):
                return f"{at or 'the body'} has a key that is not text"
            found = unsendable(v, where)
            if found:
                return found
        return None
    if isinstance(body, list):
        for n, v in enumerate(body):
            found = unsendable(v, f"{at}[{n}]")
            if found:
                return found
        return None
    why = problem(body)
    return f"{at or 'the body'} is {why}" if why else None


def _dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)


#: what findings' walk looks into: a Secret, or what may hold one
_INSIDE = (Secret, dict, list)


def findings(doc: Document, clear: object) -> list[Diagnostic]:
    """K007 for every encrypted value of DOC that decrypts to something Bifrost cannot store.

    CLEAR is the file decrypted with ``wrap=True``: encrypted leaves are :class:`Secret`, so
    clear values (checked by validate's own rules) are left alone."""
    out: list[Diagnostic] = []

    def walk(node: object, path: Path) -> None:
        if isinstance(node, Secret):
            why = problem(node.reveal())
            if why:
                out.append(
                    error(CODE, doc.path, doc.pos(path), f"{_dotted(path)} decrypts to {why}: {WHAT}", HINT)
                )
            return
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            if isinstance(v, _INSIDE):  # clear leaves, most of a file, are passed by here
                walk(v, (*path, k))

    walk(clear, ())
    return out


class UnstorableSecret(SopsError):
    """A decrypted file holds values Bifrost cannot store; ``diagnostics`` are their K007 findings."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        first = diagnostics[0]
        super().__init__(f"{first.location()}: {first.code} {first.message}")
        self.file = first.path
        self.diagnostics = diagnostics
