"""The client against hostile servers on loopback: slow, huge, and echoing secrets in any encoding.

Each server is a real socket on 127.0.0.1 (port 0) in a thread; every loop in it is bounded in
count, and it stops when the test leaves it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import secrets as rnd
import socket
import threading
import tracemalloc
import urllib.parse
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bifrost_gitops.deploy import DeployError
from bifrost_gitops.deploy.client import WITHHELD, ApiError, Client, Credentials
from bifrost_gitops.deploy.limits import Limits, MiB
from bifrost_gitops.deploy.scrub import Scrubber

from .deploy_support import Env

TOKEN = rnd.token_hex(8).upper()
#: a secret holding a quote, a backslash, a newline and non-ASCII text (BMP and beyond)
SECRET = f'q"uo\\te\nnl-é€😀-{TOKEN}'
ACCESS = f"at-{rnd.token_hex(12)}"


@dataclass
class Request:
    method: str
    path: str
    body: bytes


class Loopback:
    """An HTTP server on 127.0.0.1:<free port>; each connection's request goes to HANDLER."""

    def __init__(self, handler: Callable[[Loopback, socket.socket, Request], None]) -> None:
        self.handler = handler
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.stop = threading.Event()
        self.connections = 0
        self.sent = 0  # body bytes the handlers sent
        self.requests: list[Request] = []
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __enter__(self) -> Loopback:
        t = threading.Thread(target=self._serve, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in list(self._threads):
            t.join(timeout=10)
        self.sock.close()

    def _serve(self) -> None:
        for _ in range(2000):  # 100 s at most
            if self.stop.is_set():
                return
            try:
                conn, _addr = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            t = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                request = _read_request(conn)
                self.requests.append(request)
                self.handler(self, conn, request)
            except OSError:
                pass  # the client hung up: what these servers wait for

    def pause(self, seconds: float) -> bool:
        """Sleep; False when the test is over (stop now)."""
        return not self.stop.wait(seconds)


def _read_request(conn: socket.socket) -> Request:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path = lines[0].split(" ")[:2]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return Request(method, path, body)


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _client(url: str, **kw: Any) -> Client:
    creds = Credentials(url, ACCESS, None)
    kw.setdefault("environ", {})
    return Client(creds, sleep=lambda _s: None, **kw)


# --- a total deadline per attempt -----------------------------------------------------------


def trickle_body(srv: Loopback, conn: socket.socket, req: Request) -> None:
    """A whole head, then a body of 400 bytes, one every 20 ms: every read is quick, the whole slow."""
    conn.sendall(_head("200 OK", {"Content-Type": "application/json", "Content-Length": "400"}))
    for _ in range(400):
        if not srv.pause(0.02):
            return
        conn.sendall(b" ")
        srv.sent += 1


def trickle_head(srv: Loopback, conn: socket.socket, req: Request) -> None:
    """A header line that never ends, one byte every 20 ms."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: ")
    for _ in range(400):
        if not srv.pause(0.02):
            return
        conn.sendall(b"a")


@pytest.mark.parametrize("handler", [trickle_body, trickle_head], ids=["body", "headers"])
def test_a_trickling_server_meets_the_deadline_then_the_retry_limit(
    handler: Callable[[Loopback, socket.socket, Request], None],
) -> None:
    with Loopback(handler) as srv, _client(srv.url, timeout=0.5, max_attempts=2) as c:
        with pytest.raises(ApiError) as info:
            c.get("/api/organizations?token=QUERYSECRET")
        assert srv.connections == 2 and c.requests == 2
    text = str(info.value)
    # without a total deadline the body would complete (8 s later, as "not JSON"): a per-read
    # timeout of 0.5 s never fires on a byte every 20 ms
    assert text == (
        "GET /api/organizations: no complete answer within 0.5 s (BIFROST_TIMEOUT), "
        "2 attempts (BIFROST_MAX_ATTEMPTS)"
    )
    assert info.value.retried


def test_plan_on_a_trickling_server_exits_2_naming_the_request(denv: Env) -> None:
    e = denv
    with Loopback(trickle_body) as srv:
        r = e.cli(
            "plan",
            str(e.root),
            env=e.env(BIFROST_API_URL=srv.url, BIFROST_TIMEOUT="0.5", BIFROST_MAX_ATTEMPTS="1"),
        )
    assert r.code == 2, r.output
    assert "GET /api/version: no complete answer within 0.5 s (BIFROST_TIMEOUT), 1 attempt" in r.stderr
    assert "Traceback" not in r.output and srv.connections == 1


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("BIFROST_TIMEOUT", "soon", "BIFROST_TIMEOUT: expected a number of seconds"),
        ("BIFROST_TIMEOUT", "0", "BIFROST_TIMEOUT: expected a number of seconds"),
        ("BIFROST_MAX_ATTEMPTS", "2.5", "BIFROST_MAX_ATTEMPTS: expected a whole number from 1 to 20"),
        ("BIFROST_MAX_REPLY_SIZE", "lots", "BIFROST_MAX_REPLY_SIZE: expected a size"),
    ],
)
def test_malformed_limits_are_usage_errors(denv: Env, name: str, value: str, needle: str) -> None:
    e = denv
    r = e.cli("plan", str(e.root), env=e.env(**{name: value}))
    assert r.code == 2 and needle in r.stderr, r.output
    assert not e.bf.requests  # refused before any request


def test_limits_from_the_environment() -> None:
    assert Limits.from_env({}) == Limits(30.0, 5, 64 * MiB)
    got = Limits.from_env(
        {"BIFROST_TIMEOUT": "2.5", "BIFROST_MAX_ATTEMPTS": "1", "BIFROST_MAX_REPLY_SIZE": "1g"}
    )
    assert got == Limits(2.5, 1, 1024 * MiB)
    sizes = {"2048": 2048, "8K": 8192, "16MiB": 16 * MiB, "3 MB": 3 * MiB}
    for raw, n in sizes.items():
        assert Limits.from_env({"BIFROST_MAX_REPLY_SIZE": raw}).max_reply_bytes == n
    with pytest.raises(DeployError, match="at least 1K"):
        Limits.from_env({"BIFROST_MAX_REPLY_SIZE": "100"})


# --- a size cap on every reply --------------------------------------------------------------

CHUNK = b"0," * 32768  # 64 KiB


def endless(srv: Loopback, conn: socket.socket, req: Request) -> None:
    """A 200 without a length, then up to 50 MiB of a JSON array, made as it is sent."""
    conn.sendall(_head("200 OK", {"Content-Type": "application/json", "Connection": "close"}) + b"[")
    for _ in range(50 * MiB // len(CHUNK)):
        if srv.stop.is_set():
            return
        conn.sendall(CHUNK)
        srv.sent += len(CHUNK)


def declared_huge(srv: Loopback, conn: socket.socket, req: Request) -> None:
    """A 200 announcing 1.5 GiB, and then nothing until the test ends."""
    conn.sendall(_head("200 OK", {"Content-Type": "application/json", "Content-Length": str(3 * 512 * MiB)}))
    srv.pause(5)


def gzip_bomb(srv: Loopback, conn: socket.socket, req: Request) -> None:
    """About 50 KiB of gzip that inflates to 50 MiB."""
    pack = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * MiB
    body = b"".join(pack.compress(zeros) for _ in range(50)) + pack.flush()
    head = {"Content-Type": "application/json", "Content-Encoding": "gzip", "Content-Length": str(len(body))}
    conn.sendall(_head("200 OK", head) + body)
    srv.sent += len(body)
    srv.pause(5)


@pytest.mark.parametrize("handler", [endless, declared_huge, gzip_bomb], ids=["endless", "declared", "gzip"])
def test_a_huge_reply_is_refused_near_the_cap_without_holding_it(
    handler: Callable[[Loopback, socket.socket, Request], None],
) -> None:
    with Loopback(handler) as srv, _client(srv.url, max_reply_bytes=MiB, max_attempts=3, timeout=20) as c:
        tracemalloc.start()
        try:
            with pytest.raises(ApiError) as info:
                c.get("/api/integrations")
            _now, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        srv.stop.set()  # let the server see the hang-up or its end
    assert str(info.value) == (
        "GET /api/integrations: the answer is larger than 1 MiB (BIFROST_MAX_REPLY_SIZE); "
        "it was not read further"
    )
    assert srv.connections == 1  # a reply too large is not asked for again
    assert peak < 8 * MiB, f"the client held {peak} bytes"
    # the client hung up near the cap: the server could not push the 50 MiB into it
    assert srv.sent < 24 * MiB


def test_plan_on_a_huge_reply_exits_2_naming_the_request(denv: Env) -> None:
    e = denv

    def serve(srv: Loopback, conn: socket.socket, req: Request) -> None:
        if req.path == "/api/version":
            body = json.dumps({"version": "x", "contract_version": 1}).encode()
            conn.sendall(_head("200 OK", {"Content-Length": str(len(body))}) + body)
        else:
            endless(srv, conn, req)

    with Loopback(serve) as srv:
        env = e.env(BIFROST_API_URL=srv.url, BIFROST_MAX_REPLY_SIZE="1M", BIFROST_TIMEOUT="20")
        r = e.cli("plan", str(e.root), env=env)
        srv.stop.set()
    assert r.code == 2, r.output
    assert "the answer is larger than 1 MiB (BIFROST_MAX_REPLY_SIZE); it was not read further" in r.stderr
    assert re.search(r"GET /api/\w+: the answer is larger", r.stderr)
    assert "Traceback" not in r.output and srv.sent < 24 * MiB


def test_a_reply_under_the_cap_is_read_whole() -> None:
    items = [{"id": str(i), "name": f"org {i}"} for i in range(20000)]  # about 0.6 MiB

    def serve(srv: Loopback, conn: socket.socket, req: Request) -> None:
        body = zlib.compress(json.dumps(items).encode())
        head = {"Content-Type": "application/json", "Content-Encoding": "deflate"}
        conn.sendall(_head("200 OK", {**head, "Content-Length": str(len(body))}) + body)

    with Loopback(serve) as srv, _client(srv.url, max_reply_bytes=MiB) as c:
        assert c.get("/api/organizations") == items


# --- server text: secrets cut out in any encoding, escapes neutralised ----------------------


def _echo(form: Callable[[Request], str]) -> Callable[[Loopback, socket.socket, Request], None]:
    """A server refusing every request with a 422 whose detail quotes the request body."""

    def serve(srv: Loopback, conn: socket.socket, req: Request) -> None:
        text = json.dumps({"detail": f"rejected: {form(req)} (check the value)"})
        body = text.encode()
        conn.sendall(_head("422 Unprocessable Entity", {"Content-Length": str(len(body))}) + body)

    return serve


def _value(req: Request) -> str:
    return str(json.loads(req.body)["config"]["api_key"])


ECHOES: dict[str, Callable[[Request], str]] = {
    "raw": _value,
    "body": lambda r: r.body.decode(),  # as httpx sent it: JSON, non-ASCII kept
    "json-ascii": lambda r: json.dumps(json.loads(r.body), ensure_ascii=True),
    "json-utf8": lambda r: json.dumps(json.loads(r.body), ensure_ascii=False, indent=1),
    "json-twice": lambda r: json.dumps(json.dumps(json.loads(r.body))),
    "quote": lambda r: urllib.parse.quote(_value(r), safe=""),
    "quote-body": lambda r: urllib.parse.quote(r.body.decode()),
    "quote_plus": lambda r: urllib.parse.quote_plus(r.body.decode()),
    "repr": lambda r: repr(json.loads(r.body)),
    "ascii": lambda r: ascii(json.loads(r.body)),
    "repr-bytes": lambda r: repr(r.body),
    "base64": lambda r: base64.b64encode(r.body).decode(),
    "base64-value": lambda r: base64.b64encode(_value(r).encode()).decode(),
}
ECHOES["all"] = lambda r: " | ".join(f(r) for name, f in ECHOES.items() if name != "all")


def _base64_decodings(text: str) -> list[bytes]:
    """Every run of base64 characters in TEXT decoded, from each of the 4 offsets."""
    found = []
    for run in re.findall(r"[A-Za-z0-9+/_-]{8,}", text):
        for start in range(4):
            part = run[start:]
            part = part[: len(part) // 4 * 4]
            for alt in (part, part.replace("-", "+").replace("_", "/")):
                with contextlib.suppress(binascii.Error, ValueError):
                    found.append(base64.b64decode(alt, validate=True))
    return found


def assert_no_secret(text: str, secret: str, marker: str) -> None:
    """Neither SECRET nor MARKER (a random part of it that every text encoding keeps as is)."""
    assert marker not in text and secret not in text
    for low in (text.lower(), urllib.parse.unquote(text).lower()):
        assert marker.lower() not in low
    for decoded in _base64_decodings(text):
        assert marker.encode() not in decoded


@pytest.mark.parametrize("form", list(ECHOES), ids=list(ECHOES))
def test_a_secret_echoed_in_any_encoding_never_reaches_the_error(form: str) -> None:
    with Loopback(_echo(ECHOES[form])) as srv, _client(srv.url) as c:
        c.add_sensitive([SECRET])
        with pytest.raises(ApiError) as info:
            c.put("/api/integrations/abc/config?sig=QUERYSECRET", {"config": {"api_key": SECRET}})
    text = str(info.value) + repr(info.value) + info.value.message
    assert_no_secret(text, SECRET, TOKEN)
    assert "QUERYSECRET" not in text
    assert str(info.value).startswith("PUT /api/integrations/abc/config: 422: ")
    # each whole value is cut out: the server's message is kept around it
    assert info.value.message.startswith("rejected: ") and "<redacted>" in info.value.message
    assert "\n" not in text and "\x1b" not in text


def test_a_secret_cut_short_by_the_server_withholds_its_message() -> None:
    secret = f'{TOKEN}-tail"\\é\n'

    def truncated(req: Request) -> str:
        return _value(req)[:12] + "..."

    with Loopback(_echo(truncated)) as srv, _client(srv.url) as c:
        c.add_sensitive([secret])
        with pytest.raises(ApiError) as info:
            c.post("/api/integrations/abc/mappings", {"config": {"api_key": secret}})
    assert str(info.value) == f"POST /api/integrations/abc/mappings: 422: {WITHHELD}"
    assert TOKEN[:8] not in str(info.value)


def test_a_short_secret_in_the_reply_withholds_the_message() -> None:
    with Loopback(_echo(_value)) as srv, _client(srv.url) as c:
        c.add_sensitive(['p"1\\'])
        with pytest.raises(ApiError) as info:
            c.put("/api/integrations/abc/config", {"config": {"api_key": 'p"1\\'}})
    assert info.value.status == 422 and info.value.message == WITHHELD


def test_server_text_cannot_write_terminal_escapes_or_workflow_commands() -> None:
    hostile = "bad \x1b[31mred\x1b[0m\n::add-mask::x\r\n##[error]y \u202eevil\x07 " + "z" * 2000

    with Loopback(_echo(lambda r: hostile)) as srv, _client(srv.url) as c, pytest.raises(ApiError) as info:
        c.get("/api/integrations")
    text = str(info.value)
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u202e]", text)
    assert not any(line.lstrip().startswith("::") for line in text.splitlines()) and "##[" not in text
    assert "\\x0a::add-mask::x" in text  # visible, but never at the start of a line
    assert "\\x1b[31mred" in text and len(text) < 700  # shown escaped, and cut short


# --- the scrubber itself: every encoder, and one inside another -----------------------------

ENCODERS: dict[str, Callable[[str], str]] = {
    "json-ascii": lambda s: json.dumps(s),
    "json-utf8": lambda s: json.dumps(s, ensure_ascii=False),
    "quote": lambda s: urllib.parse.quote(s, safe=""),
    "quote-lower": lambda s: re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), urllib.parse.quote(s)),
    "quote_plus": urllib.parse.quote_plus,
    "repr": repr,
    "ascii": ascii,
    "repr-bytes": lambda s: repr(s.encode()),
    "json-in-json": lambda s: json.dumps(json.dumps({"v": s})),
    "repr-of-json": lambda s: repr(json.dumps({"v": s})),
    "quote-of-json": lambda s: urllib.parse.quote_plus(json.dumps({"v": s})),
}


@pytest.mark.parametrize("name", list(ENCODERS))
@pytest.mark.parametrize(
    "secret", [SECRET, f'it\'s "{TOKEN}"', f"tab\there/{TOKEN}\\x"], ids=["quotes", "apostrophe", "tab"]
)
def test_scrubber_cuts_every_encoding(name: str, secret: str) -> None:
    s = Scrubber()
    s.add([secret, 12345678, True])
    text = f"before {ENCODERS[name](secret)} after"
    cleaned = s.clean(text)
    assert cleaned is not None and cleaned.startswith("before ") and cleaned.endswith(" after")
    assert_no_secret(cleaned, secret, TOKEN)
    assert s.scrub("id 12345678 and True") == "id <redacted> and True"
    assert TOKEN not in repr(s)


def test_request_bodies_and_tokens_stay_out_of_a_timeout() -> None:
    """A deadline error names the request only: no body, no token, no query."""
    with (
        Loopback(trickle_head) as srv,
        _client(srv.url, timeout=0.3, max_attempts=1) as c,
        pytest.raises(ApiError) as info,
    ):
        c.post("/api/oauth/connections?code=QUERYSECRET", {"client_secret": SECRET})
    text = str(info.value) + repr(info.value)
    assert_no_secret(text, SECRET, TOKEN)
    assert ACCESS not in text and "QUERYSECRET" not in text


def test_a_url_with_credentials_is_never_shown() -> None:
    """A user:password@ or a ?token= in the Bifrost URL stays out of messages and reprs."""
    with socket.socket() as s:  # a port nothing listens on: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://admin:hunter2-canary@127.0.0.1:{port}/base?token=tok-canary"
    with _client(url, environ={"BIFROST_MAX_ATTEMPTS": "1"}) as c, pytest.raises(DeployError) as info:
        c.check_version()
    text = str(info.value) + repr(c.creds)
    assert f"cannot reach Bifrost at http://127.0.0.1:{port}/base:" in text
    assert "canary" not in text and "admin" not in text
