"""The `compile` command's steps: refuse a repository with errors, pick the recipients, write
the bundle, and turn a secret file that cannot be used into findings.

Nothing is written when this raises: Findings (exit 1) for errors in the repository, a broken
or altered secret file, or values Bifrost cannot store; a one-line error (exit 2) otherwise.
"""

from __future__ import annotations

from . import bundle, sops, storable
from .diagnostics import error
from .errors import Findings
from .repo import Result
from .sops.errors import without_file

NOT_COMPILED = "not compiled: fix the errors above"


def compile_repo(result: Result, out_dir: str, mode: str, recipients: list[str]) -> bundle.Written:
    """Write RESULT's bundle into OUT_DIR; RECIPIENTS default to the project's bundle.recipients."""
    if result.errors:
        raise Findings(result.diagnostics, NOT_COMPILED)
    project = result.catalog.project
    wanted = recipients or (list(project.model.bundle.recipients) if project and project.model.bundle else [])
    try:
        return bundle.write(
            result.catalog,
            result.root,
            out_dir,
            mode,
            recipients=wanted,
            keyring=None if mode == "redact" else sops.default_keyring(),
        )
    except sops.NoKeyError as e:
        e.hint = "set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY, or compile with --secrets redact"
        raise
    except storable.UnstorableSecret as e:
        raise Findings(e.diagnostics, NOT_COMPILED) from None
    except sops.SopsError as e:
        if e.file is None:  # not about a repository file (e.g. a recipient sops cannot use)
            raise
        problem = without_file(e, e.file)
        hint = "restore the file from git or re-encrypt it; nothing was written"
        raise Findings([error("K005", e.file, _where(result, e), problem, hint)]) from None


def _where(result: Result, e: sops.SopsError) -> tuple[int, int]:
    """The altered value's position in its file when it is known (else the file's start)."""
    from .secretops import integrity_pos

    doc = next((p.doc for p in result.catalog.documents() if p.doc.path == e.file), None)
    return integrity_pos(doc, e) if doc is not None and isinstance(e, sops.IntegrityError) else (0, 0)
