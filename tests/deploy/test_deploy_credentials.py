"""Credentials that last a whole CI job: a rate-limited refresh is waited out, and env tokens
rotated into BIFROST_CREDENTIALS_FILE are what the next command of the job uses."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from bifrost_gitops.deploy import DeployError
from bifrost_gitops.deploy.client import ApiError, Client, Credentials, load_credentials
from bifrost_gitops.deploy.credentials import origin_of

from .deploy_support import Env, no_leaks
from .fakebifrost import FakeBifrost


def _refresh(method: str, path: str) -> bool:
    return (method, path) == ("POST", "/auth/refresh")


def _expired_client(bf: FakeBifrost, **kw: object) -> tuple[Client, list[float]]:
    """A client whose access token gets 401, so its first request refreshes."""
    bf.expire_access_tokens()
    slept: list[float] = []
    creds = Credentials(bf.url, bf.tokens.access_token, bf.tokens.refresh_token)
    return Client(creds, sleep=slept.append, warn=lambda _: None, **kw), slept  # type: ignore[arg-type]


def test_rate_limited_refresh_is_waited_out(bf: FakeBifrost) -> None:
    c, slept = _expired_client(bf)
    bf.fail_next(2, 429, retry_after=0.01, match=_refresh)
    with c:
        assert c.get("/api/organizations") == []
    assert bf.refresh_count == 1
    assert len(slept) == 2 and all(0.01 <= s < 0.1 for s in slept)
    assert bf.count("POST", path="/auth/refresh") == 3


def test_refresh_retry_after_is_capped(bf: FakeBifrost) -> None:
    c, slept = _expired_client(bf)
    bf.fail_next(1, 429, retry_after=57, match=_refresh)  # what the real Bifrost sends
    with c:
        assert c.get("/api/organizations") == []
    assert len(slept) == 1 and 30 <= slept[0] < 30.1


def test_refresh_rate_limit_outlasting_retries_is_not_a_dead_token(bf: FakeBifrost) -> None:
    c, _ = _expired_client(bf, max_attempts=3)
    bf.fail_next(10, 429, retry_after=0.01, match=_refresh)
    with c, pytest.raises(ApiError) as info:
        c.get("/api/organizations")
    text = str(info.value)
    assert info.value.status == 429 and "rate-limited after 3 attempts" in text
    assert "log in again" not in text and "fake-" not in text
    bf.clear_faults()
    # the refresh token was not used: the same one works once the limit lifts
    with Client(
        Credentials(bf.url, bf.tokens.access_token, bf.tokens.refresh_token), warn=lambda _: None
    ) as c2:
        assert c2.get("/api/organizations") == []
    assert bf.refresh_count == 1


def test_refresh_5xx_is_retried(bf: FakeBifrost) -> None:
    c, slept = _expired_client(bf)
    bf.fail_next(1, 503, match=_refresh)
    with c:
        assert c.get("/api/organizations") == []
    assert bf.refresh_count == 1 and len(slept) == 1


def test_refresh_applied_then_dropped_says_the_token_may_be_used(bf: FakeBifrost) -> None:
    c, _ = _expired_client(bf)
    bf.fail_next(1, "drop_after", match=_refresh)  # rotated on the server, answer lost
    with c, pytest.raises(ApiError) as info:
        c.get("/api/organizations")
    assert info.value.status == 401
    assert "log in again" in str(info.value) and "may have used it" in str(info.value)


def test_two_commands_of_a_job_share_the_rotated_token(denv: Env, tmp_path: Path) -> None:
    e = denv
    store = tmp_path / "bifrost.json"
    env = e.env(BIFROST_CREDENTIALS_FILE=str(store))  # the same environment for both commands
    e.bf.expire_access_tokens()
    first = e.cli("plan", str(e.root), env=env)
    assert first.code == 0, first.output
    assert e.bf.refresh_count == 1
    saved = json.loads(store.read_text())
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    # the env's refresh token is spent now; the second command must use the stored pair
    e.bf.expire_access_tokens()
    second = e.cli("plan", str(e.root), env=env)
    assert second.code == 0, second.output
    assert e.bf.refresh_count == 2
    again = json.loads(store.read_text())
    assert again["refresh_token"] != saved["refresh_token"] and again["origin"] == saved["origin"]
    for r in (first, second):
        no_leaks(r.output, e)
        assert saved["refresh_token"] not in r.output and again["refresh_token"] not in r.output
    assert e.bf.tokens.refresh_token not in store.read_text()  # a digest of it, not the token


def test_rate_limited_refresh_in_a_command_succeeds(denv: Env) -> None:
    e = denv
    e.bf.expire_access_tokens()
    e.bf.fail_next(1, 429, retry_after=0, match=_refresh)
    r = e.cli("plan", str(e.root))
    assert r.code == 0, r.output
    assert e.bf.refresh_count == 1


def _stored(path: Path, api_url: str, origin: str | None) -> None:
    doc = {"api_url": api_url, "access_token": "stored-at", "refresh_token": "stored-rt"}
    path.write_text(json.dumps({**doc, "origin": origin} if origin else doc))


@pytest.mark.parametrize(
    ("api_url", "origin", "wins"),
    [
        ("https://bf.example/", "env-rt", True),  # the same URL, spelled with a slash
        ("https://bf.example", "another-rt", False),  # rotated from another login's token
        ("https://other.example", "env-rt", False),  # another instance
        ("https://bf.example", None, False),  # written without the environment's token
    ],
)
def test_stored_pair_wins_only_for_the_same_url_and_login(
    tmp_path: Path, api_url: str, origin: str | None, wins: bool
) -> None:
    store = tmp_path / "bifrost.json"
    _stored(store, api_url, origin_of(origin) if origin else None)
    env = {
        "BIFROST_API_URL": "https://bf.example",
        "BIFROST_ACCESS_TOKEN": "env-at",
        "BIFROST_REFRESH_TOKEN": "env-rt",
        "BIFROST_CREDENTIALS_FILE": str(store),
    }
    creds = load_credentials(None, None, env)
    assert (creds.access_token, creds.refresh_token) == (
        ("stored-at", "stored-rt") if wins else ("env-at", "env-rt")
    )
    assert creds.store == str(store) and creds.origin == origin_of("env-rt")
    assert creds.source == ("stored" if wins else "env")
    assert "-at" not in repr(creds) and "-rt" not in repr(creds)


@pytest.mark.parametrize("made", [False, True])
def test_missing_or_empty_store_uses_the_environment(tmp_path: Path, made: bool) -> None:
    if made:
        (tmp_path / "not-yet.json").touch()  # as `mktemp` leaves it
    env = {
        "BIFROST_API_URL": "https://bf.example",
        "BIFROST_ACCESS_TOKEN": "env-at",
        "BIFROST_REFRESH_TOKEN": "env-rt",
        "BIFROST_CREDENTIALS_FILE": str(tmp_path / "not-yet.json"),
    }
    creds = load_credentials(None, None, env)
    assert (creds.access_token, creds.source) == ("env-at", "env")


def test_broken_store_is_an_error_not_skipped(tmp_path: Path) -> None:
    store = tmp_path / "bifrost.json"
    store.write_text("{not json")
    env = {
        "BIFROST_API_URL": "https://bf.example",
        "BIFROST_ACCESS_TOKEN": "env-at",
        "BIFROST_REFRESH_TOKEN": "env-rt",
        "BIFROST_CREDENTIALS_FILE": str(store),
    }
    with pytest.raises(DeployError, match="not a JSON credentials file"):
        load_credentials(None, None, env)
