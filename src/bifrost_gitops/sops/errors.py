"""Exceptions of the sops package.

Messages name files, paths in the document, recipients and key sources, never a value: callers
may print them as they are.
"""

from __future__ import annotations

from ..errors import BifrostGitopsError


class SopsError(BifrostGitopsError):
    """A failure to read or write a sops document (malformed file, unsupported feature...)."""

    def __init__(self, message: str, *, file: str | None = None) -> None:
        self.file = file
        super().__init__(f"{file}: {message}" if file else message)


def without_file(e: Exception, file: str | None) -> str:
    """E's message without the ``FILE: `` it starts with (for a caller that names the file itself)."""
    text = str(e)
    return text[len(file) + 2 :] if file and text.startswith(f"{file}: ") else text


class NoKeyError(SopsError):
    """No available key opens the data key (exit 2, with a hint on where keys are looked for)."""

    hint = "set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY"


class IntegrityError(SopsError):
    """A value, the MAC or the metadata fails authentication: the file was altered.

    ``value_at`` is sops's key path of the value that failed (``secrets:api_key:``, the key
    names each followed by ``:``) and ``meta_key`` the metadata key that failed (``mac``,
    ``lastmodified``), so a report can point at its line; None when unknown."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        value_at: str | None = None,
        meta_key: str | None = None,
    ) -> None:
        super().__init__(message, file=file)
        self.value_at, self.meta_key = value_at, meta_key
