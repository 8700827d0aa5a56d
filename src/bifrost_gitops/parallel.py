"""`--jobs`: the per-file stage (perfile.analyse) spread over worker processes.

Results come back in the order the files were given, identical to one job's: a worker returns
plain `FileResult` rows (marshal), and the documents are rebuilt from them here, exactly as
from a cache hit. Starting workers costs more than parsing a few hundred files, so smaller
batches (and any failure to start or run workers) are parsed in this process.
"""

from __future__ import annotations

import marshal
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from . import perfile
from .catalog import Parsed
from .model import AnyDocument
from .perfile import FileResult, analyse_rows, rebuild

#: fewer files than this are parsed in process: a worker pool costs more than it saves
PARALLEL_MIN = 400
#: chunks per worker: small enough to balance the load, big enough to keep the pipes cheap
CHUNKS_PER_JOB = 4
ENV_JOBS = "BIFROST_GITOPS_JOBS"

if TYPE_CHECKING:
    import multiprocessing.context

Analysed = tuple[FileResult, "Parsed[AnyDocument] | None"]


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if count is not None:
        return max(1, count() or 1)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def default_jobs() -> int:
    """--jobs when not given: BIFROST_GITOPS_JOBS, else the usable cores."""
    given = os.environ.get(ENV_JOBS, "")
    return max(1, int(given)) if given.isdigit() else usable_cores()


def _work(batch: list[tuple[str, bytes]]) -> bytes:
    return marshal.dumps([tuple(r) for r in analyse_rows(batch)])


def _context() -> multiprocessing.context.BaseContext | None:
    import multiprocessing

    # fork starts a worker without importing anything again; elsewhere the platform default
    return multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None


def analyse_all(batch: list[tuple[str, bytes]], jobs: int, pack: bool = True) -> Iterator[Analysed]:
    """(result, document) for every (path, bytes) of BATCH, in order, using up to JOBS processes
    (PACK: see `perfile.analyse`; results from workers always carry their positions)."""
    done = 0
    if jobs > 1 and len(batch) >= PARALLEL_MIN:
        # imported here: a warm run parses a few files in this process and needs no pool
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        size = max(1, -(-len(batch) // (jobs * CHUNKS_PER_JOB)))
        chunks = [batch[i : i + size] for i in range(0, len(batch), size)]
        try:
            with ProcessPoolExecutor(max_workers=jobs, mp_context=_context()) as pool:
                for blob in pool.map(_work, chunks):
                    for row in marshal.loads(blob):
                        result = FileResult(*row)
                        done += 1
                        yield result, rebuild(result)
        except (BrokenProcessPool, OSError):
            pass  # no workers (a sandbox, out of processes): the rest is parsed here
    for rel, content in batch[done:]:
        yield perfile.analyse(rel, content, pack)
