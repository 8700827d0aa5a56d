"""Client-credentials tokens at runtime: minted from a loopback token server as Bifrost's ``get``
mints them, cached until shortly before expiry, never shown, failures named.

The example repository is copied and its Microsoft provider's token URL pointed at a token server
on 127.0.0.1 (its sops file MACs only the encrypted values, so plain fields can be edited).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from bifrost_gitops import bundle, repo, sops
from bifrost_gitops.runtime import Bundle, Integrations, TokenCache, TokenError, tokens
from support import LoopbackServer, QuietHandler, isolate

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "integrations"
KEY = EXAMPLE / "TEST-ONLY-age-key.txt"
CONTOSO_TENANT = "7c1a0f3e-5b2d-4e8a-9f61-3d4c2b1a0e9f"
SCOPE = "https://graph.microsoft.com/.default"
AUDIENCE = "api://bifrost-test"


class TokenServer:
    """A token endpoint on 127.0.0.1 that records each request's path and form."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.status = 200
        self.reply: dict[str, Any] = {"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600}
        outer = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                size = min(int(self.headers.get("Content-Length", "0")), 64 * 1024)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(size).decode()).items()}
                outer.requests.append((self.path, form))
                reply = dict(outer.reply)
                if outer.status == 200:
                    reply["access_token"] = f"tok-{len(outer.requests)}"
                self.send_json(outer.status, reply)

        self.loop = LoopbackServer(Handler)
        self.url = self.loop.url
        self.loop.start()

    def close(self) -> None:
        self.loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[TokenServer]:
    s = TokenServer()
    yield s
    s.close()


def _compile(base: Path, token_url: str, flow: str = "client_credentials") -> Path:
    """The example repository, its Microsoft provider pointed at TOKEN_URL, compiled plain."""
    root = base / "repo"
    shutil.copytree(EXAMPLE, root)
    provider = root / "oauth" / "microsoft.yaml"
    text = provider.read_text()
    text = text.replace("https://login.microsoftonline.com/{entity_id}/oauth2/v2.0/token", token_url)
    extra = "\nauthorization_url: http://127.0.0.1:9/authorize" if flow == "authorization_code" else ""
    text = text.replace("flow: client_credentials", f"flow: {flow}\naudience: {AUDIENCE}{extra}")
    provider.write_text(text)
    result = repo.load(str(root))
    assert not result.errors, result.errors
    out = base / "bundle"
    bundle.write(result.catalog, result.root, str(out), "plain", keyring=sops.default_keyring())
    return out


@pytest.fixture(scope="module")
def compiled(server: TokenServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("tokens")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        mp.setenv("SOPS_AGE_KEY_FILE", str(KEY))
        return _compile(base, server.url + "/{entity_id}/token")


@pytest.fixture(autouse=True)
def fresh(server: TokenServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.requests.clear()
    server.status = 200
    server.reply = {"access_token": "x", "token_type": "Bearer", "expires_in": 3600}
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(KEY))


def client_secret() -> str:
    tree: Any = sops.decrypt_file(
        str(EXAMPLE / "oauth" / "microsoft.yaml"), identities=sops.default_keyring()
    )
    secret = tree["secrets"]["client_secret"]
    assert isinstance(secret, str)
    return secret


def test_get_returns_a_token_minted_as_bifrost_does(compiled: Path, server: TokenServer) -> None:
    sdk = Integrations(Bundle(compiled))
    graph = sdk.get_sync("Microsoft_Graph", "contoso")
    assert graph is not None and graph.oauth is not None
    assert graph.oauth.access_token == "tok-1"
    assert graph.oauth.expires_at is not None and graph.oauth.refresh_token is None
    assert server.requests == [
        (
            f"/{CONTOSO_TENANT}/token",  # {entity_id} filled with contoso's tenant
            {
                "grant_type": "client_credentials",
                "client_id": "3b8e4a6c-2f1d-4c7e-9a0b-5d6e7f8a9b0c",
                "client_secret": client_secret(),
                "scope": SCOPE,
                "audience": AUDIENCE,
            },
        )
    ]
    shown = repr(graph) + str(graph.oauth) + repr(sdk.bundle.tokens)
    assert "tok-1" not in shown and client_secret() not in shown


def test_token_is_cached_per_org_and_integration(compiled: Path, server: TokenServer) -> None:
    import asyncio

    sdk = Integrations(Bundle(compiled))
    first = asyncio.run(sdk.get("Microsoft_Graph", "contoso"))
    second = asyncio.run(sdk.get("Microsoft_Graph", "contoso"))
    assert first is not None and second is not None and first.oauth and second.oauth
    assert first.oauth.access_token == second.oauth.access_token == "tok-1"
    assert len(server.requests) == 1
    other = sdk.get_sync("Microsoft_Graph", "fabrikam")  # another tenant: its own token
    assert other is not None and other.oauth and other.oauth.access_token == "tok-2"
    assert [p for p, _ in server.requests][1] != f"/{CONTOSO_TENANT}/token"


def test_token_is_fetched_again_shortly_before_expiry(compiled: Path, server: TokenServer) -> None:
    now = [1_000_000.0]
    server.reply = {"access_token": "x", "expires_in": 300}
    sdk = Integrations(Bundle(compiled, tokens=TokenCache(clock=lambda: now[0])))

    def token() -> str | None:
        data = sdk.get_sync("Microsoft_Graph", "contoso")
        assert data is not None and data.oauth is not None
        return data.oauth.access_token

    assert token() == "tok-1"
    now[0] += 300 - tokens.MARGIN - 1  # still fresh
    assert token() == "tok-1"
    now[0] += 2  # within the margin: fetched again
    assert token() == "tok-2"
    assert len(server.requests) == 2


def test_oauth_scope_override_is_sent_and_cached_apart(compiled: Path, server: TokenServer) -> None:
    sdk = Integrations(Bundle(compiled))
    graph = sdk.get_sync("Microsoft_Graph", "contoso")
    exchange = sdk.get_sync(
        "Microsoft_Graph", "contoso", oauth_scope="https://outlook.office365.com/.default"
    )
    assert graph and exchange and graph.oauth and exchange.oauth
    assert (graph.oauth.access_token, exchange.oauth.access_token) == ("tok-1", "tok-2")
    assert server.requests[1][1]["scope"] == "https://outlook.office365.com/.default"


def test_failing_token_endpoint_names_the_provider_never_the_secret(
    compiled: Path, server: TokenServer
) -> None:
    server.status = 401
    server.reply = {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret"}
    with pytest.raises(TokenError) as e:
        Integrations(Bundle(compiled)).get_sync("Microsoft_Graph", "contoso")
    msg = str(e.value)
    assert "Microsoft_Graph" in msg and "HTTP 401" in msg and "invalid_client" in msg
    assert f"{server.url}/{CONTOSO_TENANT}/token" in msg
    assert client_secret() not in msg


def test_reply_without_a_token_or_too_large_is_refused(compiled: Path, server: TokenServer) -> None:
    server.reply = {"token_type": "Bearer"}
    server.status = 299  # a 2xx whose body is what the handler sends untouched
    with pytest.raises(TokenError, match="holds no access_token"):
        Integrations(Bundle(compiled)).get_sync("Microsoft_Graph", "contoso")
    server.reply = {"padding": "x" * (tokens.MAX_REPLY + 1)}
    with pytest.raises(TokenError, match="larger than"):
        Integrations(Bundle(compiled)).get_sync("Microsoft_Graph", "contoso")


def test_plain_http_token_url_off_loopback_is_refused() -> None:
    req = tokens.TokenRequest("Example", "http://login.example.com/token", "id", "s3cret-value", "", None)
    with pytest.raises(TokenError, match="not https") as e:
        tokens.fetch(req)
    assert "s3cret-value" not in str(e.value) and "s3cret-value" not in repr(req)


def test_authorization_code_provider_gives_none_and_calls_nothing(
    server: TokenServer, tmp_path: Path
) -> None:
    out = _compile(tmp_path, server.url + "/{entity_id}/token", flow="authorization_code")
    graph = Integrations(Bundle(out)).get_sync("Microsoft_Graph", "contoso")
    assert graph is not None and graph.oauth is not None
    assert graph.oauth.access_token is None  # only Bifrost holds a consented user's token
    assert server.requests == []


@pytest.mark.parametrize("lifetime", [float("inf"), float("nan"), 1e300, -5, "soon"])
def test_a_lifetime_no_clock_can_hold_is_taken_as_unstated(
    compiled: Path, server: TokenServer, lifetime: object
) -> None:
    """A token server's expires_in is untrusted: infinity or 1e300 must not crash the workflow
    with an OverflowError, it counts as no lifetime given."""
    server.reply = {"access_token": "x", "expires_in": lifetime}
    data = Integrations(Bundle(compiled, tokens=TokenCache(clock=lambda: 1_000_000.0))).get_sync(
        "Microsoft_Graph", "contoso"
    )
    assert data is not None and data.oauth is not None and data.oauth.access_token == "tok-1"
    assert (
        data.oauth.expires_at == datetime.fromtimestamp(1_000_000 + tokens.DEFAULT_LIFETIME, UTC).isoformat()
    )


def test_a_slow_token_endpoint_holds_up_only_its_own_callers() -> None:
    """One provider that takes its time must not stall a workflow's other integrations, whose
    tokens are minted or cached meanwhile; the same key is still fetched only once."""
    import threading

    release, started = threading.Event(), threading.Event()
    fetched: list[str] = []

    def fetcher(req: tokens.TokenRequest, clock: Any) -> tokens.Token:
        fetched.append(req.provider)
        if req.provider == "slow":
            started.set()
            assert release.wait(10)
        return tokens.Token(f"tok-{req.provider}", clock() + 3600)

    cache = TokenCache(fetcher=fetcher)

    def request(provider: str) -> tokens.TokenRequest:
        return tokens.TokenRequest(provider, "https://t.example/token", "id", "secret", "", None)

    slow = [threading.Thread(target=cache.get, args=(("o", "slow", ""), request("slow"))) for _ in range(2)]
    for t in slow:
        t.start()
    assert started.wait(10)
    assert cache.get(("o", "fast", ""), request("fast")).access_token == "tok-fast"  # not held up
    release.set()
    for t in slow:
        t.join(10)
    assert sorted(fetched) == ["fast", "slow"]  # the two slow callers shared one fetch
