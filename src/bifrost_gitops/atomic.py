"""Replacing one file whole: a reader (or a crash) sees the old bytes or the new, never a mix.

Every single file the tool rewrites in place goes through :func:`write_atomic` (credentials,
encrypted secret files, imported and scaffolded files, the publish history). A bundle is a
folder and is swapped in as one (bifrost_gitops.bundle); that is not this.
"""

from __future__ import annotations

import os
import tempfile


def new_file_mode(mode: int) -> int:
    """MODE as a newly created file gets it under this process's umask (mkstemp makes 0600;
    files meant to be shared, such as scaffolds, are written with what open() would give)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mode & ~mask


def write_atomic(
    path: str,
    data: bytes,
    *,
    mode: int,
    prefix: str,
    suffix: str = "",
    sync_folder: bool = False,
    durable: bool = True,
) -> None:
    """Write DATA to PATH with file MODE: a temporary file (PREFIX...SUFFIX) in PATH's folder,
    flushed to disk, then renamed over PATH. SYNC_FOLDER also makes the rename itself durable.
    DURABLE False skips the fsync, for a file that may be lost in a crash but must never be
    seen half-written by a reader (the parse cache: it checks its files and rebuilds).

    The temporary file is 0600 until it is complete (mkstemp), so a file meant to be private is
    never readable by others, even half-written; on any error it is removed and PATH is unchanged.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    if sync_folder:
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
