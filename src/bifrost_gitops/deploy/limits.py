"""Bounds on every request to Bifrost: a total deadline per attempt, attempts, a reply size cap.

httpx's own timeouts bound each socket operation, so a server that sends one byte a second
never trips them. Here every attempt gets a deadline (connect, TLS, send, headers and the whole
body): the socket operations under it get only the time left, through a wrapper around
httpcore's network backend, and the body loop checks the clock as well (so the deadline holds
even on a transport the wrapper cannot reach). Replies are read in chunks and refused past the
size cap, before the cap is held in memory.

Settings (environment, like the connection's): ``BIFROST_TIMEOUT`` (seconds per attempt),
``BIFROST_MAX_ATTEMPTS`` (attempts per request, the first included) and
``BIFROST_MAX_REPLY_SIZE`` (bytes, or with a ``K``/``M``/``G`` suffix: KiB, MiB, GiB).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from . import DeployError

#: httpcore's socket option shape
SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]

ENV_TIMEOUT = "BIFROST_TIMEOUT"
ENV_ATTEMPTS = "BIFROST_MAX_ATTEMPTS"
ENV_REPLY = "BIFROST_MAX_REPLY_SIZE"
MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    #: seconds for one attempt of a request, from connecting to the last byte of the reply
    timeout: float = 30.0
    #: attempts per request (the first one included) on timeouts, dropped connections, 429, 5xx
    max_attempts: int = 5
    #: bytes of a reply body (after decompression) at most
    max_reply_bytes: int = 64 * MiB

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Limits:
        """The limits the environment sets, the defaults otherwise; DeployError when malformed."""
        d = cls()
        return cls(
            timeout=_number(environ, ENV_TIMEOUT, d.timeout, 0.001, 3600.0, float),
            max_attempts=int(_number(environ, ENV_ATTEMPTS, d.max_attempts, 1, 20, int)),
            max_reply_bytes=_size(environ, ENV_REPLY, d.max_reply_bytes),
        )


def _number(
    environ: Mapping[str, str], name: str, default: float, low: float, high: float, kind: type
) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        what = "a whole number" if kind is int else "a number of seconds"
        raise DeployError(f"{name}: expected {what} from {low:g} to {high:g}")
    return float(value)


_SIZE = re.compile(r"(\d+)\s*([kmg]?)(?:i?b)?", re.IGNORECASE)


def _size(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    m = _SIZE.fullmatch(raw)
    value = int(m.group(1)) * 1024 ** " kmg".index(m.group(2).lower() or " ") if m else 0
    if value < 1024:
        raise DeployError(f"{name}: expected a size of at least 1K, in bytes or with K, M or G (e.g. 64M)")
    return value


def size_text(n: int) -> str:
    """A byte count as people read it: 64 MiB, 1.5 GiB, 800 bytes."""
    for unit, size in (("GiB", 1024**3), ("MiB", MiB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"


# --- the deadline ---------------------------------------------------------------------------

_local = threading.local()


@contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Bound the socket operations this thread makes inside the block; yields the end time."""
    end = time.monotonic() + seconds
    previous = getattr(_local, "end", None)
    _local.end = end
    try:
        yield end
    finally:
        _local.end = previous


def _left(timeout: float | None, exc: type[Exception]) -> float | None:
    """TIMEOUT cut down to what the current deadline leaves; EXC when nothing is left."""
    end: float | None = getattr(_local, "end", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise exc("the deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A connection whose reads and writes never outlast the deadline of the thread using it."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # in slices, so a server that reads slowly meets the deadline between them
        for i in range(0, max(len(buffer), 1), 65536):
            self._inner.write(buffer[i : i + 65536], _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """httpcore's network backend, its connections wrapped in :class:`_Stream`."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_tcp(host, port, left, local_address, socket_options))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:  # pragma: no cover - Bifrost is reached over TCP
        left = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, left, socket_options))

    def sleep(self, seconds: float) -> None:  # pragma: no cover - httpcore's retries are off
        self._inner.sleep(seconds)


def enforce_deadlines(client: httpx.Client) -> None:
    """Put the deadline wrapper under CLIENT's transports (the default one and any proxy's).

    httpx has no public hook for a network backend, so this reaches for httpcore's pool; on a
    transport it cannot reach (a test's mock, a future httpx) the body loop's check remains.
    """
    transports: list[object] = [getattr(client, "_transport", None)]
    transports += list(getattr(client, "_mounts", {}).values())
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(pool, httpcore.ConnectionPool) and backend and not isinstance(backend, _Backend):
            pool._network_backend = _Backend(backend)


__all__ = ["Limits", "deadline", "enforce_deadlines", "size_text"]
