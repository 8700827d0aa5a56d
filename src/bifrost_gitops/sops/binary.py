"""Fallback to the real ``sops`` binary for files no native age key opens (PGP, KMS, plugins).

Its stderr is never passed on: sops puts clear values into some messages (e.g. a malformed
ENC string). Errors are mapped from its exit code to our exception types instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ..nodes import Tree
from .errors import IntegrityError, NoKeyError, SopsError
from .store import dumps, loads

DEFAULT_TIMEOUT = 60.0

#: sops exit codes (cmd/sops/codes) that mean the file failed authentication
_INTEGRITY_CODES = {
    24: "the MAC could not be decrypted",
    25: "a value failed to decrypt",
    51: "MAC mismatch",
    52: "the MAC is missing",
}
_NO_KEY_CODES = {128: "could not retrieve the data key"}


def find_sops() -> str | None:
    """The ``sops`` executable: on PATH, else next to the running Python (a venv's bin/)."""
    found = shutil.which("sops")
    if found:
        return found
    for name in ("sops", "sops.exe"):
        cand = Path(sys.executable).parent / name
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return None


def decrypt(
    data: Mapping[str, object],
    fmt: str,
    *,
    file: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Tree:
    """``sops --decrypt`` of ``data`` (written to a private temp file); the clear tree.

    Raises NoKeyError (binary missing or no key), IntegrityError, or SopsError. No text from
    sops's output or stderr ends up in an exception.
    """
    exe = find_sops()
    if exe is None:
        raise NoKeyError("the sops binary was not found (PATH, or next to the Python executable)", file=file)
    with tempfile.TemporaryDirectory(prefix="bifrost-sops-") as tmp:
        path = os.path.join(tmp, f"document.{'json' if fmt == 'json' else 'yaml'}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(dumps(dict(data), fmt))
        try:
            proc = subprocess.run(
                [exe, "--decrypt", path],
                capture_output=True,
                timeout=timeout,
                env=dict(os.environ if env is None else env),
                stdin=subprocess.DEVNULL,
                cwd=tmp,  # no .sops.yaml of the caller's cwd gets involved
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SopsError(f"sops --decrypt timed out after {timeout:g} s", file=file) from None
        except OSError as e:
            raise SopsError(f"could not run sops ({type(e).__name__})", file=file) from None
    code = proc.returncode
    if code == 0:
        try:
            return loads(proc.stdout, fmt, file=file)
        except SopsError:
            raise SopsError("could not parse the output of sops --decrypt", file=file) from None
    if code in _INTEGRITY_CODES:
        raise IntegrityError(f"{_INTEGRITY_CODES[code]} (reported by sops, exit {code})", file=file)
    if code in _NO_KEY_CODES or b"Failed to get the data key" in proc.stderr:
        raise NoKeyError(f"the sops binary could not open it either (exit {code})", file=file)
    raise SopsError(f"sops --decrypt failed (exit {code})", file=file)
