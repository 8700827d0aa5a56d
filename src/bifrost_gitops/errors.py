"""The one base of the errors a person sees, and the exit code each one means.

Every error the library raises for a user (a bad repository, a missing key, an unknown revision,
a server's refusal) derives from :class:`BifrostGitopsError`; the CLI turns any of them into one
line and its ``exit_code`` in one place, so commands do not catch and re-print. Stdlib only: the
runtime's errors derive from it too, and the runtime must import fast.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from .diagnostics import Diagnostic

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class BifrostGitopsError(Exception):
    """A failure meant for a person: ``str()`` is one line that never holds a secret value.

    ``exit_code`` is 2 (usage or environment) unless a subclass says otherwise; ``hint`` is
    printed after the message when set (a command may set a sharper one before re-raising).
    """

    exit_code: ClassVar[int] = EXIT_USAGE
    hint: str | None = None

    def line(self) -> str:
        """The message as the CLI prints it (not yet escaped for the terminal)."""
        return f"{self}{f' (hint: {self.hint})' if self.hint else ''}"


class Findings(BifrostGitopsError):
    """The input has findings (exit 1): the command reports ``diagnostics`` in the format it
    was asked for; the message (often empty: the report says it all) follows them."""

    exit_code: ClassVar[int] = EXIT_FINDINGS

    def __init__(self, diagnostics: Sequence[Diagnostic], message: str = "") -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics)


DEBUG_ENV = "BIFROST_GITOPS_DEBUG"


def debugging() -> bool:
    """Whether the user asked for tracebacks of unexpected errors (they may hold values)."""
    return bool(os.environ.get(DEBUG_ENV))
