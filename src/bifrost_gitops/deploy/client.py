"""The Bifrost REST client: auth (bearer + single-use refresh), retries, bounded concurrency.

- Base URL and tokens: :mod:`.credentials`. Tokens are never on argv, never printed, never in
  an exception text: every message that leaves this module goes through :meth:`Client.scrub`.
- On 401: ``POST /auth/refresh`` with the refresh token, retry once. The refresh goes through
  the same bounded retries (Bifrost rate-limits it: 10 a minute per IP, then 429 with
  Retry-After), and only a 401/403 answer means the refresh token is dead. The rotated one
  is persisted where it came from (the credentials file, rewritten atomically with mode 0600;
  for env tokens the file named by ``BIFROST_CREDENTIALS_FILE``, else a one-time warning).
- Retries with exponential backoff and full jitter on 429 (Retry-After honoured, capped), 5xx,
  timeouts and dropped connections, a bounded number of attempts (``BIFROST_MAX_ATTEMPTS``).
- Every attempt has a total deadline (``BIFROST_TIMEOUT``: connect, send and the whole reply),
  every reply a size cap (``BIFROST_MAX_REPLY_SIZE``): see :mod:`.limits`.
- Server text (error messages) has every secret cut out in any encoding, or is not shown when
  that is uncertain (:mod:`.scrub`), and is escaped for the terminal before it is shown.
- Concurrency: :meth:`Client.map` runs calls on a fixed-size thread pool; results keep the
  input order, so output stays deterministic.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import httpx

from .. import escape
from ..errors import BifrostGitopsError
from . import DeployError
from .credentials import Credentials as Credentials  # re-exported: the client's import path
from .credentials import load_credentials as load_credentials
from .credentials import write_credentials
from .limits import ENV_ATTEMPTS, ENV_REPLY, ENV_TIMEOUT, Limits, deadline, enforce_deadlines, size_text
from .scrub import Scrubber
from .spec import Json

CONTRACT_VERSION = 1
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REFRESH_PATH = "/auth/refresh"
T = TypeVar("T")
R = TypeVar("R")


class ApiError(BifrostGitopsError):
    """A request Bifrost answered with an error (or that never got an answer: status 0).

    The message comes from either error shape (``{"detail"}`` or ``{"error","message"}``);
    request bodies are never echoed (they hold secrets).
    """

    def __init__(
        self, status: int, message: str, method: str = "", path: str = "", *, retried: bool = False
    ) -> None:
        self.status, self.message, self.method, self.path = status, message, method, path
        #: an earlier attempt of this request got no answer (timeout, dropped connection) or a 5xx:
        #: it may have been applied, so a conflict now can be that attempt's own work
        self.retried = retried
        where = f"{method} {request_name(path)}: " if method else ""
        super().__init__(f"{where}{status or 'no response'}: {message}" if status else f"{where}{message}")


def request_name(path: str) -> str:
    """PATH as an error message shows it: no query string (it may carry a token), escaped."""
    return escape.term(path.split("?", 1)[0].split("#", 1)[0])


#: shown instead of a server's message that may still hold a secret value
WITHHELD = "(the server's message is not shown: it may quote a secret value)"
#: server text is cut to this many characters in a message
MAX_SHOWN = 500


@dataclass(frozen=True)
class Reply:
    """A whole reply, read within the deadline and the size cap."""

    status_code: int
    reason_phrase: str
    headers: httpx.Headers
    content: bytes

    def json(self) -> Json:
        data: Json = json.loads(self.content)
        return data


class _TooLarge(Exception):
    """The reply is over the size cap."""


class _Undecodable(Exception):
    """The reply's content encoding is broken or unknown."""


def error_message(response: Reply) -> str:
    """One line from either Bifrost error shape, else the reason phrase (server text: unsafe)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list):  # FastAPI's own 422 shape, in case
            parts = [str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail]
            return "; ".join(parts)
        msg = body.get("message")
        if isinstance(msg, str):
            err = body.get("error")
            return f"{err}: {msg}" if isinstance(err, str) and err else msg
    return response.reason_phrase or f"HTTP {response.status_code}"


# --- the client -----------------------------------------------------------------------------


def _retry_after(response: Reply) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Client:
    """Synchronous httpx client; thread-safe; counts every HTTP request it sends."""

    def __init__(
        self,
        creds: Credentials,
        *,
        concurrency: int = 8,
        max_attempts: int | None = None,
        backoff: float = 0.25,
        max_backoff: float = 8.0,
        max_retry_after: float = 30.0,
        timeout: float | None = None,
        max_reply_bytes: int | None = None,
        environ: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        warn: Callable[[str], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Limits left None come from ENVIRON (default: the process's; DeployError if malformed)."""
        env = Limits.from_env(os.environ if environ is None else environ)
        self.limits = Limits(
            timeout=env.timeout if timeout is None else timeout,
            max_attempts=max(1, env.max_attempts if max_attempts is None else max_attempts),
            max_reply_bytes=env.max_reply_bytes if max_reply_bytes is None else max_reply_bytes,
        )
        self.creds = creds
        self.concurrency = max(1, concurrency)
        self.max_attempts = self.limits.max_attempts
        self.backoff, self.max_backoff, self.max_retry_after = backoff, max_backoff, max_retry_after
        self.sleep = sleep
        self.warn = warn or (lambda m: print(f"bifrost-gitops: warning: {escape.term(m)}", file=sys.stderr))
        self.rng = rng or random.Random()
        self.requests = 0  # HTTP requests sent (retries and refreshes included)
        self.retries = 0
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._warned = False
        self._scrubber = Scrubber()
        self._scrubber.add([creds.access_token, creds.refresh_token])
        self.http = httpx.Client(
            base_url=creds.api_url.rstrip("/"),
            timeout=self.limits.timeout,
            verify=True,  # TLS verification is never turned off (SSL_CERT_FILE adds a CA)
            transport=transport,
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
            headers={"Accept": "application/json", "Accept-Encoding": "gzip", "User-Agent": "bifrost-gitops"},
        )
        enforce_deadlines(self.http)
        self._pool: ThreadPoolExecutor | None = None

    # -- secrets hygiene --

    def add_sensitive(self, values: Iterable[object]) -> None:
        """Values to cut out of any message this client lets out (secret values, tokens)."""
        self._scrubber.add(values)

    def scrub(self, text: str) -> str:
        """TEXT with every secret value and token cut out, in any form a server may quote it."""
        return self._scrubber.scrub(text)

    def server_text(self, text: str) -> str:
        """Text a server wrote, fit for a message: secrets cut out (or all of it withheld when
        that is uncertain), terminal escapes and workflow commands neutralised, cut short."""
        cleaned = self._scrubber.clean(text)
        if cleaned is None:
            return WITHHELD
        shown = escape.term(cleaned)
        return shown if len(shown) <= MAX_SHOWN else shown[:MAX_SHOWN] + "..."

    # -- lifecycle --

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests --

    def _count(self, retry: bool = False) -> None:
        with self._lock:
            self.requests += 1
            if retry:
                self.retries += 1

    def _attempt(self, method: str, path: str, body: object, headers: dict[str, str]) -> Reply:
        """Send once and read the whole reply within the deadline and the size cap.

        Raises httpx.TimeoutException past the deadline, httpx.TransportError, _TooLarge,
        _Undecodable."""
        with deadline(self.limits.timeout) as end:
            request = self.http.build_request(method, path, json=body, headers=headers)
            response = self.http.send(request, stream=True)
            try:
                content = self._read(response, end)
            finally:
                response.close()
        return Reply(response.status_code, response.reason_phrase, response.headers, content)

    def _read(self, response: httpx.Response, end: float) -> bytes:
        """The body, decompressed, refused past the cap before more than a chunk over it is held."""
        cap = self.limits.max_reply_bytes
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > cap:
            raise _TooLarge
        content = bytearray()
        for chunk in _decoded(response.iter_raw(), response.headers.get("content-encoding", "")):
            content += chunk
            if len(content) > cap:
                raise _TooLarge
            if time.monotonic() > end:  # also where the socket-level deadline cannot reach
                raise httpx.ReadTimeout("the deadline passed")
        return bytes(content)

    def _send_once(self, method: str, path: str, body: object, token: str | None) -> tuple[Reply, bool]:
        """One request with retries for transient failures: the final reply, and whether an
        earlier attempt may have been applied (no answer, or a 5xx) before it. No TOKEN: no
        Authorization header (the refresh call)."""
        delay = self.backoff
        uncertain = False
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        for attempt in range(1, self.max_attempts + 1):
            self._count(retry=attempt > 1)
            try:
                response = self._attempt(method, path, body, headers)
            except httpx.TimeoutException:
                failure: str | Reply = f"no complete answer within {self.limits.timeout:g} s ({ENV_TIMEOUT})"
            except httpx.TransportError as e:
                failure = f"connection failed ({type(e).__name__})"
            except _TooLarge:
                raise ApiError(0, self._too_large(), method, path, retried=uncertain) from None
            except _Undecodable:
                raise ApiError(0, _UNDECODABLE, method, path, retried=uncertain) from None
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response, uncertain
                failure = response
            if attempt == self.max_attempts:
                if isinstance(failure, Reply):
                    return failure, uncertain
                message = f"{failure}, {attempt} attempt{'s' if attempt > 1 else ''} ({ENV_ATTEMPTS})"
                raise ApiError(0, message, method, path, retried=True)
            if not isinstance(failure, Reply) or failure.status_code != 429:
                uncertain = True  # 429 was refused unprocessed; anything else may have landed
            wait = self.rng.uniform(0, min(self.max_backoff, delay))  # full jitter
            if isinstance(failure, Reply) and failure.status_code == 429:
                after = _retry_after(failure)
                if after is not None:
                    wait = min(after, self.max_retry_after) + self.rng.uniform(0, 0.05)
            delay *= 2
            self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _too_large(self) -> str:
        cap = size_text(self.limits.max_reply_bytes)
        return f"the answer is larger than {cap} ({ENV_REPLY}); it was not read further"

    def request(self, method: str, path: str, body: object = None) -> Json:
        """Send METHOD PATH (JSON BODY); the parsed JSON answer, None for 204. Raises ApiError."""
        token = self.creds.access_token
        try:
            response, uncertain = self._send_once(method, path, body, token)
            if response.status_code == 401 and self.creds.refresh_token is not None:
                self._refresh(token)
                response, again = self._send_once(method, path, body, self.creds.access_token)
                uncertain = uncertain or again
        except httpx.HTTPError as e:  # anything else httpx raises: no URL, no token, no body
            raise ApiError(0, f"request failed ({type(e).__name__})", method, path) from None
        if response.status_code >= 400:
            raise ApiError(
                response.status_code,
                self.server_text(error_message(response)),
                method,
                path,
                retried=uncertain,
            )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(response.status_code, "the answer is not JSON", method, path) from None

    def refresh(self) -> None:
        """Trade the refresh token now, as a 401 would (rotated and stored the same way): what
        keeps an unattended login alive past the refresh token's lifetime."""
        if self.creds.refresh_token is None:
            raise ApiError(0, "no refresh token to refresh with", "POST", REFRESH_PATH)
        self._refresh(self.creds.access_token)

    def _refresh(self, failed_token: str) -> None:
        """Trade the refresh token for a new pair, once for all threads that saw the 401."""
        with self._refresh_lock:
            if self.creds.access_token != failed_token:
                return  # another thread refreshed already
            try:
                response, uncertain = self._send_once(
                    "POST", REFRESH_PATH, {"refresh_token": self.creds.refresh_token}, None
                )
            except httpx.HTTPError as e:  # what _send_once does not turn into an ApiError
                raise ApiError(
                    0, f"token refresh failed ({type(e).__name__})", "POST", REFRESH_PATH
                ) from None
            if response.status_code != 200:
                raise self._refresh_error(response, uncertain)
            try:
                data = response.json()
            except ValueError:
                data = None
            access = data.get("access_token") if isinstance(data, dict) else None
            if not isinstance(data, dict) or not isinstance(access, str):
                raise ApiError(200, "token refresh answered without an access token", "POST", REFRESH_PATH)
            new_refresh = data.get("refresh_token")
            self._scrubber.add([access, new_refresh])
            with self._lock:
                self.creds.access_token = access
                if isinstance(new_refresh, str) and new_refresh:
                    self.creds.refresh_token = new_refresh
            self._persist()

    def _refresh_error(self, response: Reply, uncertain: bool) -> ApiError:
        """Why the refresh failed: only 401/403 mean a dead refresh token; anything else (a 429
        that outlasted the retries, a 5xx) is said as it is, since the token may still work."""
        status = response.status_code
        if status in (401, 403):
            message = "token refresh refused (the refresh token is expired or was used already): log in again"
            if uncertain:
                message += " (an earlier attempt failed midway and may have used it)"
        elif status == 429:
            tries = f"{self.max_attempts} attempt{'s' if self.max_attempts > 1 else ''} ({ENV_ATTEMPTS})"
            message = (
                f"token refresh still rate-limited after {tries}; Bifrost allows 10 refreshes a minute "
                "per address: the refresh token was not used, run again in a minute"
            )
        else:
            message = f"token refresh failed: {self.server_text(error_message(response))}"
        return ApiError(status, message, "POST", REFRESH_PATH, retried=uncertain)

    def _persist(self) -> None:
        if self.creds.store:
            try:
                write_credentials(self.creds.store, self.creds)
            except OSError as e:
                self.warn(
                    f"{self.creds.store}: cannot store the rotated refresh token ({e.strerror}); "
                    "the old one no longer works"
                )
        elif not self._warned:
            self._warned = True
            self.warn(
                "the access token was refreshed and the refresh token rotated (single use): the one in "
                "BIFROST_REFRESH_TOKEN no longer works; set BIFROST_CREDENTIALS_FILE or use --credentials "
                "so the new one is stored"
            )

    def get(self, path: str) -> Json:
        return self.request("GET", path)

    def post(self, path: str, body: object = None) -> Json:
        return self.request("POST", path, body)

    def put(self, path: str, body: object = None) -> Json:
        return self.request("PUT", path, body)

    def delete(self, path: str) -> Json:
        return self.request("DELETE", path)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """FN over ITEMS with at most ``concurrency`` requests in flight; results in input order."""
        items = list(items)
        if self.concurrency == 1 or len(items) <= 1:
            return [fn(x) for x in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="bifrost")
        return list(self._pool.map(fn, items))

    def check_version(self) -> dict[str, Json]:
        """Gate on ``GET /api/version``: contract_version must be the one this tool speaks."""
        try:
            info = self.get("/api/version")
        except ApiError as e:
            raise DeployError(f"cannot reach Bifrost at {self.creds.shown_url}: {e}") from None
        version = info.get("contract_version") if isinstance(info, dict) else None
        if not isinstance(info, dict) or version != CONTRACT_VERSION or isinstance(version, bool):
            shown = self.server_text(repr(version))
            raise DeployError(
                f"Bifrost at {self.creds.shown_url} speaks contract_version {shown}; this bifrost-gitops "
                f"speaks {CONTRACT_VERSION}: upgrade whichever is older"
            )
        return dict(info)


_UNDECODABLE = "the answer's content encoding is broken or not one this tool reads (gzip, deflate)"


def _decoded(chunks: Iterator[bytes], encoding: str) -> Iterator[bytes]:
    """CHUNKS decompressed by at most 64 KiB a step, so a small bomb never expands at once."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        yield from chunks
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise _Undecodable
    inflate = zlib.decompressobj(47)  # gzip or zlib header, detected
    try:
        for chunk in chunks:
            data = chunk
            while data and not inflate.eof:
                yield inflate.decompress(data, 65536)
                data = inflate.unconsumed_tail
        yield inflate.flush()
    except zlib.error:
        raise _Undecodable from None
