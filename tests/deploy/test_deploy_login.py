"""`login` and the official Bifrost CLI's store (~/.bifrost/credentials.json, one entry per URL):
the device flow writes it, the deploy commands read it after --credentials and the environment,
and a refresh keeps it current without touching the other URLs' entries."""

from __future__ import annotations

import json
import os
import stat
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from bifrost_gitops.deploy import DeployError
from bifrost_gitops.deploy.bifroststore import read_store, store_path
from bifrost_gitops.deploy.credentials import load_credentials
from bifrost_gitops.deploy.devicelogin import login
from support import run_cli

from .deploy_support import Env, no_leaks

OTHER = {
    "api_url": "https://other.example",
    "access_token": "other-at",
    "refresh_token": "other-rt",
    "expires_at": "2030-01-01T00:00:00+00:00",
}


def _official(entries: dict[str, dict[str, str]]) -> Path:
    path = store_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries))
    return path


def _entry(url: str, at: str, rt: str) -> dict[str, str]:
    return {
        "api_url": url,
        "access_token": at,
        "refresh_token": rt,
        "expires_at": "2030-01-01T00:00:00+00:00",
    }


def _device_server(answers: list[dict[str, object] | int]) -> tuple[httpx.MockTransport, list[str]]:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/auth/device/code":
            return httpx.Response(
                200,
                json={
                    "device_code": "dev-secret",
                    "user_code": "ABCD-1234\x1b[2J",
                    "verification_url": "/device",
                    "expires_in": 600,
                    "interval": 5,
                },
            )
        assert json.loads(request.content) == {"device_code": "dev-secret"}
        answer = answers.pop(0)
        if isinstance(answer, int):
            return httpx.Response(answer, headers={"Retry-After": "7"})
        return httpx.Response(200, json=answer)

    return httpx.MockTransport(handle), seen


def test_device_login_stores_the_official_shape_and_keeps_other_urls() -> None:
    _official({"https://other.example": OTHER})
    transport, seen = _device_server(
        [
            {"error": "authorization_pending"},
            429,
            {"error": "slow_down"},
            {"access_token": "new-at", "refresh_token": "new-rt", "token_type": "bearer", "expires_in": 1800},
        ]
    )
    shown: list[str] = []
    slept: list[float] = []
    path = login("https://bf.example/", shown.append, sleep=slept.append, transport=transport)
    assert path == store_path()
    doc = json.loads(path.read_text())
    assert doc["https://other.example"] == OTHER
    mine = doc["https://bf.example"]
    assert set(mine) == {"api_url", "access_token", "refresh_token", "expires_at"}
    assert (mine["api_url"], mine["access_token"], mine["refresh_token"]) == (
        "https://bf.example",
        "new-at",
        "new-rt",
    )
    assert datetime.fromisoformat(mine["expires_at"]).tzinfo is not None
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert slept == [5, 5, 7, 5, 10]  # the interval, Retry-After, then slowed down by 5 s
    assert seen.count("/auth/device/token") == 4
    text = "\n".join(shown)
    assert "https://bf.example/device" in text and "ABCD-1234" in text and "\x1b" not in text
    assert "dev-secret" not in text and "new-" not in text


def test_a_broken_store_is_refused_not_overwritten() -> None:
    """Saving over a store that is not JSON would lose every other URL's login: refused."""
    path = _official({"https://other.example": OTHER})
    broken = path.read_text()[:-1]  # a truncated file, as an editor crash leaves it
    path.write_text(broken)
    transport, _ = _device_server(
        [{"access_token": "new-at", "refresh_token": "new-rt", "token_type": "bearer", "expires_in": 1800}]
    )
    with pytest.raises(DeployError, match="not a JSON credentials file"):
        login("https://bf.example/", lambda _: None, sleep=lambda _: None, transport=transport)
    assert path.read_text() == broken


@pytest.mark.parametrize(
    ("answer", "message"),
    [({"error": "access_denied"}, "denied"), ({"error": "expired_token"}, "expired"), (500, "500")],
)
def test_device_login_failures_store_nothing(answer: dict[str, object] | int, message: str) -> None:
    transport, _ = _device_server([answer])
    with pytest.raises(DeployError, match=message):
        login("https://bf.example", lambda _: None, sleep=lambda _: None, transport=transport)
    assert not store_path().exists()


def test_precedence_credentials_file_then_environment_then_official_store(tmp_path: Path) -> None:
    _official({"https://bf.example": _entry("https://bf.example", "store-at", "store-rt")})
    env = {"BIFROST_API_URL": "https://bf.example/"}
    creds = load_credentials(None, None, env)
    assert (creds.access_token, creds.refresh_token, creds.source) == ("store-at", "store-rt", "bifrost")
    assert creds.store == str(store_path()) and "store-" not in repr(creds)
    with_env = {**env, "BIFROST_ACCESS_TOKEN": "env-at", "BIFROST_REFRESH_TOKEN": "env-rt"}
    assert load_credentials(None, None, with_env).access_token == "env-at"
    file = tmp_path / "creds.json"
    file.write_text(json.dumps({"access_token": "file-at", "refresh_token": "file-rt"}))
    assert load_credentials(None, str(file), with_env).access_token == "file-at"


def test_official_store_without_a_url_needs_exactly_one_entry() -> None:
    _official({"https://bf.example": _entry("https://bf.example", "store-at", "store-rt")})
    assert load_credentials(None, None, {}).api_url == "https://bf.example"
    _official({"https://bf.example": _entry("https://bf.example", "a", "b"), "https://other.example": OTHER})
    with pytest.raises(DeployError, match="no Bifrost URL"):
        load_credentials(None, None, {})
    with pytest.raises(DeployError, match="bifrost-gitops login"):
        load_credentials("https://third.example", None, {})


def test_legacy_single_record_reads_as_its_url() -> None:
    _official(_entry("https://bf.example/", "legacy-at", "legacy-rt"))  # type: ignore[arg-type]
    assert read_store(store_path())["https://bf.example"]["access_token"] == "legacy-at"


def test_refresh_in_a_command_keeps_the_official_store_current(denv: Env) -> None:
    e = denv
    path = _official(
        {
            e.bf.url.rstrip("/"): _entry(e.bf.url, e.bf.tokens.access_token, e.bf.tokens.refresh_token),
            "https://other.example": OTHER,
        }
    )
    env = e.env(BIFROST_ACCESS_TOKEN=None, BIFROST_REFRESH_TOKEN=None)
    for n in (1, 2):  # the second run must use what the first stored (the first refresh token is spent)
        e.bf.expire_access_tokens()
        r = e.cli("plan", str(e.root), env=env)
        assert r.code == 0, r.output
        assert e.bf.refresh_count == n
        no_leaks(r.output, e)
        doc = json.loads(path.read_text())
        assert doc["https://other.example"] == OTHER
        mine = doc[e.bf.url.rstrip("/")]
        assert mine["refresh_token"] != e.bf.tokens.refresh_token and mine["refresh_token"] not in r.output
        assert mine["access_token"] not in r.output and datetime.fromisoformat(mine["expires_at"])
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_login_without_a_url_is_a_usage_error(denv: Env) -> None:
    r = denv.cli("login", env={"BIFROST_API_URL": None})
    assert r.code == 2 and "no Bifrost URL" in r.output


def test_login_command_stores_tokens_and_prints_none(monkeypatch: pytest.MonkeyPatch) -> None:
    transport, _ = _device_server([{"access_token": "cli-at", "refresh_token": "cli-rt", "expires_in": 1800}])
    real_client = httpx.Client

    def client(**kw: object) -> httpx.Client:
        return real_client(**{**kw, "transport": transport})  # type: ignore[arg-type]

    slept: list[float] = []
    monkeypatch.setattr(httpx, "Client", client)
    monkeypatch.setattr(time, "sleep", slept.append)
    r = run_cli("login", "--url", "https://bf.example")
    assert r.code == 0, r.output
    assert "https://bf.example/device" in r.output and "ABCD-1234" in r.output
    assert str(store_path()) in r.output and "cli-" not in r.output and "dev-secret" not in r.output
    assert read_store(store_path())["https://bf.example"]["refresh_token"] == "cli-rt"
    assert slept == [5]
