"""`--jobs`: the per-file stage (read, cache key, perfile.analyse) spread over processes.

With JOBS > 1 this process forks JOBS - 1 workers and parses files itself too. The files are cut
into chunks; every process takes the next chunk from one shared pipe of chunk numbers (a read of
four bytes from a pipe is atomic, so no lock is shared and a dying process blocks nobody), so all
of them parse until the chunks run out, whatever else runs on the machine. A worker reads its
files itself when the tree allows it (the work tree: `Source`), so nothing is read serially
first, and looks their keys up in the cache itself; when the chunks are gone it sends its rows
(marshal): a cache hit as its key alone (this process has that entry too), a miss as its
`FileResult`, from which the document is rebuilt here. Nothing is written to the cache here:
the caller (repo.py) puts the misses and makes the hits' documents.

Results come back in the order the files were given, identical to one job's. Starting workers
costs more than parsing a few hundred files, so smaller batches are parsed here, as is anything
a worker did not deliver (it could not be started, or it died), and everything where processes
cannot be forked.
"""

from __future__ import annotations

import marshal
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from . import perfile
from .catalog import Parsed
from .diagnostics import Diagnostic
from .model import AnyDocument
from .perfile import FileResult, Summary, rebuild

if TYPE_CHECKING:
    import multiprocessing.process
    from multiprocessing.connection import Connection

    from .cache import Cache

#: fewer files than this are parsed in process: a worker pool costs more than it saves
PARALLEL_MIN = 400
#: chunks per worker of secrets check (secretops.py)
CHUNKS_PER_JOB = 4
#: chunks per process of a load: small, so that all processes end together; still few messages
CHUNKS_PER_PROCESS = 32
#: at most this many chunks (their numbers must fit in one pipe's buffer, 64 KiB)
MAX_CHUNKS = 4096
ENV_JOBS = "BIFROST_GITOPS_JOBS"

Read = Callable[[str], "bytes | Diagnostic | None"]
#: a file to analyse: its path, and its bytes when this process already has them (None: read it)
Item = tuple[str, "bytes | None"]
#: what a worker sends back per file: the cache key (None: not cached), and the result as a
#: plain tuple (None: a cache hit under that key)
Row = tuple["bytes | None", "tuple[object, ...] | None"]


class Source(NamedTuple):
    """Where the files' bytes come from: READ (a tree's `content`), whether a worker process may
    call it itself (a work tree: yes; git objects come through this process's reader), and the
    ROOT the tree's cache is kept for."""

    read: Read
    shareable: bool
    root: str


class Analysed(NamedTuple):
    """One file's outcome, in the order given: its cache key (None: cache off, or unread), and
    its result and document when parsed, or the cache's summary under KEY (document None)."""

    path: str
    key: bytes | None
    result: FileResult | Summary
    document: Parsed[AnyDocument] | None


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


def analyse_files(source: Source, paths: list[str], jobs: int, store: Cache | None) -> Iterator[Analysed]:
    """Every file of PATHS analysed (read, looked up in STORE, parsed unless found there), in
    order, using up to JOBS processes."""
    if jobs < 2 or len(paths) < PARALLEL_MIN or not can_fork():
        for path in paths:
            yield _here(source.read, path, None, store)
        return
    items: list[Item] = [(p, None if source.shareable else _bytes(source.read, p)) for p in paths]
    count = min(jobs * CHUNKS_PER_PROCESS, MAX_CHUNKS)
    size = max(1, -(-len(items) // count))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    for chunk in _spread(source, chunks, jobs, store):
        yield from chunk


def can_fork() -> bool:
    """Whether worker processes can be forked here (they then inherit what this one loaded)."""
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _spread(source: Source, chunks: list[list[Item]], jobs: int, store: Cache | None) -> list[list[Analysed]]:
    """The chunks' outcomes, in order: shared between this process and JOBS - 1 forked workers
    (the first chunks are the workers', one each, so that every worker has work at once)."""
    read = source.read if source.shareable else None
    workers = min(jobs - 1, len(chunks))
    tickets = _Tickets(range(workers, len(chunks)))
    started: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    try:
        for first in range(workers):
            started.append(_start(read, store, chunks, first, tickets))
    except OSError:
        pass  # out of processes, or a sandbox: the chunks are all taken here
    done: dict[int, list[Analysed]] = {}
    finished = False
    try:
        while (i := tickets.take()) is not None:
            done[i] = [_here(source.read, p, b, store) for p, b in chunks[i]]
        for _, conn in started:
            for i, blob in _delivered(conn):
                done[i] = _received(source.read, chunks[i], blob, store)
        finished = True
    finally:
        tickets.close()
        for process, conn in started:
            conn.close()
            if not finished:  # an error or Ctrl-C here: the workers' work is not wanted
                process.terminate()
            process.join()
    return [
        done.get(i) or [_here(source.read, p, b, store) for p, b in chunk] for i, chunk in enumerate(chunks)
    ]


class _Tickets:
    """Chunk numbers in a pipe, taken four bytes at a time by any process that inherits it."""

    def __init__(self, numbers: range):
        self.fd, write = os.pipe()
        try:
            os.write(write, b"".join(n.to_bytes(4, "little") for n in numbers))  # < MAX_CHUNKS: fits
        finally:
            os.close(write)

    def take(self) -> int | None:
        got = os.read(self.fd, 4)
        return int.from_bytes(got, "little") if len(got) == 4 else None

    def close(self) -> None:
        os.close(self.fd)


def _start(
    read: Read | None, store: Cache | None, chunks: list[list[Item]], first: int, tickets: _Tickets
) -> tuple[multiprocessing.process.BaseProcess, Connection]:
    """A forked worker doing chunk FIRST and then what TICKETS give it; its pipe's reading end."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    try:
        process = ctx.Process(target=_serve, args=(read, store, chunks, first, tickets, send), daemon=True)
        process.start()
    except BaseException:
        receive.close()
        raise
    finally:
        send.close()  # the worker's copy is the only one: its exit is this end's EOF
    return process, receive


def _delivered(conn: Connection) -> Iterator[tuple[int, bytes]]:
    """(chunk number, rows) as a worker sent them, until it closed its pipe or died."""
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        yield int.from_bytes(message[:4], "little"), message[4:]


def _bytes(read: Read, path: str) -> bytes | None:
    """A file's bytes read here for a worker (None when unreadable: the worker is told to read
    it, and `_here` will report why)."""
    got = read(path)
    return got if isinstance(got, bytes) else None


def _here(read: Read, path: str, content: bytes | None, store: Cache | None, pack: bool = False) -> Analysed:
    """One file done in this process (reading it unless CONTENT is given). PACK: keep the
    positions in a result the cache will not store (a worker's: see `perfile.analyse`)."""
    if content is None:
        got = read(path)
        if not isinstance(got, bytes):  # unreadable, over the size limit unread, or gone
            return Analysed(path, None, perfile.unread(path, got), None)
        content = got
    if store is None:
        result, doc = perfile.analyse(path, content, pack)
        return Analysed(path, None, result, doc)
    key = store.key(path, content)
    hit = store.summary(key)
    if hit is not None:
        return Analysed(path, key, hit, None)
    result, doc = perfile.analyse(path, content, True)
    return Analysed(path, key, result, doc)


def _received(read: Read, chunk: list[Item], blob: bytes, store: Cache | None) -> list[Analysed]:
    """A worker's rows for CHUNK as this process's outcomes."""
    out = []
    for (path, content), (key, row) in zip(chunk, marshal.loads(blob), strict=True):
        hit = store.summary(key) if store is not None and key is not None and row is None else None
        if row is not None:
            result = FileResult(*row)
            out.append(Analysed(path, key, result, rebuild(result)))
        elif hit is not None:
            out.append(Analysed(path, key, hit, None))
        else:  # left to this process, or a hit gone since (another process rewrote the cache)
            out.append(_here(read, path, content, store))
    return out


# --- in a worker process ------------------------------------------------------------------------


def _serve(
    read: Read | None,
    store: Cache | None,
    chunks: list[list[Item]],
    first: int,
    tickets: _Tickets,
    send: Connection,
) -> None:
    """A worker's life: its first chunk, then the next ticket's until none is left; then every
    chunk's rows, sent at once (sending as it goes would wait on the main process, which is
    parsing too). A chunk that fails is left to the main process, which then fails as one job
    would. STORE is the main process's cache as forked: looked up here, written there."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    rows: list[tuple[int, bytes]] = []
    i: int | None = first
    try:
        while i is not None:
            rows.append((i, _work(read, store, chunks[i])))
            i = tickets.take()
    except Exception:  # the main process does that chunk again, and reports it as one job would
        pass
    with send:
        for n, blob in rows:
            try:
                send.send_bytes(n.to_bytes(4, "little") + blob)
            except OSError:  # the main process stopped listening (it failed, or was interrupted)
                return


def _work(read: Read | None, store: Cache | None, chunk: list[Item]) -> bytes:
    """A chunk's rows (see `Row`), marshalled. Files without bytes are read with READ; without
    READ either, (None, None) asks the main process to do that file itself."""
    rows: list[Row] = []
    for path, given in chunk:
        if given is None and read is None:
            rows.append((None, None))
            continue
        done = _here(read or _given_only, path, given, store, pack=True)
        rows.append((done.key, None if isinstance(done.result, Summary) else tuple(done.result)))
    return marshal.dumps(rows)


def _given_only(path: str) -> None:  # pragma: no cover - _work calls _here with the bytes then
    raise AssertionError(f"{path}: no reader, and no bytes given")
