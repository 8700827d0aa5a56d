"""`login --refresh` and `login --export refresh-token`: how an unattended job keeps its Bifrost
login alive (refresh now) and hands the rotated single-use refresh token back to its CI secret
store through a pipe, never through a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess as sp
import sys
from pathlib import Path

import pytest

from bifrost_gitops.deploy.bifroststore import read_store, store_path
from bifrost_gitops.deploy.client import ApiError, Client, Credentials
from support import ROOT, Run, run_cli

from .fakebifrost import FakeBifrost

EXPORT = ("login", "--export", "refresh-token")


def _env(bf: FakeBifrost, **extra: str | None) -> dict[str, str | None]:
    return {**bf.env(), "BIFROST_CREDENTIALS_FILE": None, **extra}


def _alive(bf: FakeBifrost, refresh_token: str) -> bool:
    """Bifrost would still take this refresh token (single use: a spent one is gone)."""
    return refresh_token in bf.state.refresh_tokens


def _no_token(run: Run, *tokens: str) -> None:
    for token in tokens:
        assert token not in run.output
    assert "fake-rt-" not in run.stderr and "fake-at-" not in run.output.replace(run.stdout, "")


def test_export_reads_the_rotated_pair_over_the_spent_environment_token(
    bf: FakeBifrost, tmp_path: Path
) -> None:
    store = tmp_path / "bifrost.json"
    env = _env(bf, BIFROST_CREDENTIALS_FILE=str(store))  # one job: the same environment throughout
    spent = bf.tokens.refresh_token
    refreshed = run_cli("login", "--refresh", env=env)
    assert refreshed.code == 0, refreshed.output
    assert refreshed.stdout == "" and "refreshed the tokens" in refreshed.stderr
    assert [(q.method, q.path) for q in bf.requests] == [("POST", "/auth/refresh")]  # one request
    rotated = json.loads(store.read_text())["refresh_token"]
    assert rotated != spent and not _alive(bf, spent) and _alive(bf, rotated)
    _no_token(refreshed, spent, rotated)

    exported = run_cli(*EXPORT, env=env, subprocess=True)  # stdout is a pipe here
    assert exported.code == 0, exported.stderr
    assert exported.stdout == rotated  # exactly the token: no newline for the secret store
    assert exported.stderr == "" and len(bf.requests) == 1  # exporting sends nothing


def test_export_without_a_rotation_gives_the_environment_token(bf: FakeBifrost, tmp_path: Path) -> None:
    env = _env(bf, BIFROST_CREDENTIALS_FILE=str(tmp_path / "none-yet.json"))
    r = run_cli(*EXPORT, env=env)
    assert (r.code, r.stdout) == (0, bf.tokens.refresh_token)
    assert bf.requests == []


def _on_a_terminal(args: tuple[str, ...], env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal: (exit code, what the screen got)."""
    main, child = pty.openpty()
    proc = sp.Popen(
        [sys.executable, "-m", "bifrost_gitops", *args],
        stdin=sp.DEVNULL,
        stdout=child,
        stderr=child,
        env={**env, "PYTHONPATH": str(ROOT / "src")},
    )
    os.close(child)
    screen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(main)
    return proc.wait(timeout=30), screen.decode("utf-8", "replace")


@pytest.mark.parametrize("refresh", [False, True])
def test_a_terminal_is_refused_before_anything_happens(
    bf: FakeBifrost, tmp_path: Path, refresh: bool
) -> None:
    store = tmp_path / "bifrost.json"
    env = {k: v for k, v in {**os.environ, **_env(bf, BIFROST_CREDENTIALS_FILE=str(store))}.items() if v}
    args = ("login", "--refresh", *EXPORT[1:]) if refresh else EXPORT
    code, screen = _on_a_terminal(args, env)
    assert code == 2, screen
    assert "refusing to print the refresh token to a terminal" in screen
    assert "gh secret set BIFROST_REFRESH_TOKEN" in screen  # the hint: pipe it
    assert "fake-rt-" not in screen and "fake-at-" not in screen
    assert bf.requests == [] and not store.exists()  # nothing refreshed, nothing spent
    assert _alive(bf, bf.tokens.refresh_token)


def test_a_reader_that_went_away_is_an_error(bf: FakeBifrost) -> None:
    """`... | gh secret set` where gh died: the token did not arrive, and the job must fail."""
    read, write = os.pipe()
    os.close(read)  # nobody reads: the write fails with EPIPE
    env = {k: v for k, v in {**os.environ, **_env(bf), "PYTHONPATH": str(ROOT / "src")}.items() if v}
    proc = sp.run(
        [sys.executable, "-m", "bifrost_gitops", *EXPORT],
        stdout=write,
        stderr=sp.PIPE,
        stdin=sp.DEVNULL,
        env=env,
        text=True,
        timeout=30,
    )
    os.close(write)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        "bifrost-gitops: the refresh token was not handed over: cannot write to stdout (Broken pipe)"
    )


def test_client_refresh_needs_a_refresh_token(bf: FakeBifrost) -> None:
    with Client(Credentials(bf.url, bf.tokens.access_token, None)) as c, pytest.raises(ApiError) as info:
        c.refresh()
    assert "no refresh token" in str(info.value) and bf.requests == []


def test_refresh_and_export_in_one_pipe_without_a_store(bf: FakeBifrost) -> None:
    spent = bf.tokens.refresh_token
    r = run_cli("login", "--refresh", *EXPORT[1:], env=_env(bf))
    assert r.code == 0, r.output
    assert r.stdout.startswith("fake-rt-") and r.stdout != spent and _alive(bf, r.stdout)
    assert not _alive(bf, spent) and bf.refresh_count == 1
    assert "not stored (exported below)" in r.stderr and "warning" not in r.stderr
    _no_token(r, spent)
    assert r.stdout not in r.stderr


def test_refresh_whose_new_token_would_be_lost_is_refused(bf: FakeBifrost) -> None:
    r = run_cli("login", "--refresh", env=_env(bf))  # environment tokens, no file, no export
    assert r.code == 2 and "the rotated refresh token would be lost" in r.stderr
    assert "BIFROST_CREDENTIALS_FILE" in r.stderr
    assert bf.requests == [] and _alive(bf, bf.tokens.refresh_token)


def test_the_chain_outlives_each_token(bf: FakeBifrost, tmp_path: Path) -> None:
    """Weekly keepalives: each run spends the token the previous one left and leaves a new one."""
    creds = tmp_path / "creds.json"
    tokens = [bf.tokens.refresh_token]
    creds.write_text(
        json.dumps({"api_url": bf.url, "access_token": bf.tokens.access_token, "refresh_token": tokens[0]})
    )
    for _ in range(3):
        r = run_cli("login", "--refresh", "--credentials", str(creds), env={"BIFROST_API_URL": None})
        assert r.code == 0, r.output
        tokens.append(json.loads(creds.read_text())["refresh_token"])
        _no_token(r, *tokens)
    assert len(set(tokens)) == 4 and [_alive(bf, t) for t in tokens] == [False, False, False, True]
    assert (creds.stat().st_mode & 0o777) == 0o600
    assert run_cli(*EXPORT, "--credentials", str(creds)).stdout == tokens[-1]


def test_sources_in_the_deploy_commands_order(bf: FakeBifrost, tmp_path: Path) -> None:
    """--credentials, then the environment, then the official store: as plan and apply read them."""
    official = store_path()
    official.parent.mkdir(parents=True)
    entry = {"api_url": bf.url, "access_token": "o-at", "refresh_token": "official-rt", "expires_at": "x"}
    official.write_text(json.dumps({bf.url: entry}))
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"api_url": bf.url, "access_token": "f-at", "refresh_token": "file-rt"}))
    assert run_cli(*EXPORT, "--credentials", str(creds), env=_env(bf)).stdout == "file-rt"
    assert run_cli(*EXPORT, env=_env(bf)).stdout == bf.tokens.refresh_token
    assert run_cli(*EXPORT, env={"BIFROST_API_URL": bf.url}).stdout == "official-rt"


def test_refresh_keeps_the_official_store_current(bf: FakeBifrost) -> None:
    official = store_path()
    official.parent.mkdir(parents=True)
    first = bf.tokens.refresh_token
    entry = {"api_url": bf.url, "access_token": "o-at", "refresh_token": first, "expires_at": "x"}
    official.write_text(json.dumps({bf.url: entry, "https://other.example": {**entry, "api_url": "o"}}))
    r = run_cli("login", "--refresh", env={"BIFROST_API_URL": bf.url})
    assert r.code == 0, r.output
    entries = read_store(official)
    assert entries[bf.url]["refresh_token"] != first and _alive(bf, entries[bf.url]["refresh_token"])
    assert entries["https://other.example"]["refresh_token"] == first  # another URL's entry kept


def test_a_dead_refresh_token_says_log_in_again_and_prints_nothing(bf: FakeBifrost) -> None:
    spent = bf.tokens.refresh_token
    bf.revoke_refresh_tokens()
    r = run_cli("login", "--refresh", *EXPORT[1:], env=_env(bf))
    assert r.code == 2 and r.stdout == ""
    assert "POST /auth/refresh: 401" in r.stderr and "log in again" in r.stderr
    _no_token(r, spent)


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        (None, "no refresh token for"),
        ("two\nlines", "not one line of visible ASCII"),
        ("tok\x1b[2J", "not one line of visible ASCII"),
    ],
)
def test_nothing_exported_without_a_clean_token(tmp_path: Path, stored: str | None, message: str) -> None:
    creds = tmp_path / "creds.json"
    creds.write_text(
        json.dumps({"api_url": "https://bf.example", "access_token": "at", "refresh_token": stored})
    )
    r = run_cli(*EXPORT, "--credentials", str(creds))
    assert r.code == 2 and r.stdout == "" and message in r.stderr
    assert "lines" not in r.stderr and "\x1b" not in r.stderr


def test_credentials_option_only_with_refresh_or_export(tmp_path: Path) -> None:
    r = run_cli("login", "--credentials", str(tmp_path / "c.json"), "--url", "https://bf.example")
    assert r.code == 2 and "--credentials goes with --refresh or --export" in r.stderr


def test_no_credentials_anywhere(tmp_path: Path) -> None:
    r = run_cli(*EXPORT, env={"BIFROST_API_URL": "https://bf.example"})
    assert r.code == 2 and r.stdout == "" and "no access token" in r.stderr
