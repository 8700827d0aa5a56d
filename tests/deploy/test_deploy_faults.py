"""Retries, auth refresh, partial failure, and no token or secret in any output or exception."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from bifrost_gitops.deploy import DeployError
from bifrost_gitops.deploy.client import ApiError, Client, Credentials, load_credentials

from .deploy_support import Env, canary, no_leaks
from .fakebifrost import FakeBifrost


def _client(bf: FakeBifrost, **kw: object) -> tuple[Client, list[float]]:
    slept: list[float] = []
    creds = Credentials(bf.url, bf.tokens.access_token, bf.tokens.refresh_token)
    c = Client(creds, sleep=slept.append, **kw)  # type: ignore[arg-type]
    return c, slept


def test_retries_429_with_retry_after(bf: FakeBifrost) -> None:
    c, slept = _client(bf)
    bf.fail_next(2, 429, retry_after=0.5)
    with c:
        assert c.get("/api/organizations") == []
    assert c.requests == 3 and len(slept) == 2
    assert all(0.5 <= s < 0.6 for s in slept)


def test_retries_5xx_drop_and_timeout(bf: FakeBifrost) -> None:
    c, slept = _client(bf, timeout=0.5)
    bf.fail_next(1, 503)
    bf.fail_next(1, "drop")
    bf.fail_next(1, "slow", delay=1.5)
    with c:
        assert c.get("/api/integrations") == {"items": [], "total": 0}
    assert c.requests == 4 and len(slept) == 3
    bf.wait_idle()


def test_retries_are_bounded(bf: FakeBifrost) -> None:
    c, _slept = _client(bf, max_attempts=3)
    bf.fail_next(10, 500)
    with c, pytest.raises(ApiError) as info:
        c.get("/api/integrations")
    assert info.value.status == 500 and "internal_error" in info.value.message
    assert c.requests == 3
    bf.clear_faults()


def test_error_shapes_parsed(bf: FakeBifrost) -> None:
    c, _ = _client(bf)
    with c:
        with pytest.raises(ApiError) as info:
            c.get("/api/integrations/00000000-0000-4000-8000-000000000000")
        assert (info.value.status, info.value.message) == (404, "Integration not found")
        with pytest.raises(ApiError) as info:
            c.post(
                "/api/integrations", {"name": "X", "config_schema": [{"key": "bad key", "type": "string"}]}
            )
        assert info.value.status == 422 and info.value.message.startswith("validation_error: ")


def test_401_refresh_retry_and_rotated_token_persisted(bf: FakeBifrost, tmp_path: Path) -> None:
    creds_file = tmp_path / "creds.json"
    creds_file.write_text(json.dumps({"api_url": bf.url, **bf.tokens.__dict__}))
    old = bf.tokens
    bf.expire_access_tokens()
    creds = load_credentials(None, str(creds_file), {})
    warnings: list[str] = []
    with Client(creds, warn=warnings.append) as c:
        assert c.get("/api/organizations") == []
    assert bf.refresh_count == 1 and warnings == []
    saved = json.loads(creds_file.read_text())
    assert saved["refresh_token"] != old.refresh_token and saved["access_token"] != old.access_token
    assert stat.S_IMODE(os.stat(creds_file).st_mode) == 0o600
    # the stored refresh token is the live one: it works once more
    bf.expire_access_tokens()
    with Client(load_credentials(None, str(creds_file), {})) as c:
        assert c.get("/api/organizations") == []
    assert bf.refresh_count == 2


def test_env_tokens_rotated_warn_once_without_printing(bf: FakeBifrost) -> None:
    bf.expire_access_tokens()
    creds = load_credentials(None, None, bf.env())
    warnings: list[str] = []
    with Client(creds, warn=warnings.append, concurrency=4) as c:
        c.map(lambda _: c.get("/api/organizations"), range(8))
    assert bf.refresh_count == 1 and len(warnings) == 1
    assert "BIFROST_CREDENTIALS_FILE" in warnings[0]
    assert "fake-rt-" not in warnings[0] and "fake-at-" not in warnings[0]


def test_env_tokens_rotated_into_credentials_file(denv: Env, tmp_path: Path) -> None:
    e = denv
    store = tmp_path / "rotated.json"
    e.bf.expire_access_tokens()
    r = e.cli("plan", str(e.root), env=e.env(BIFROST_CREDENTIALS_FILE=str(store)))
    assert r.code == 0, r.output
    saved = json.loads(store.read_text())
    assert (
        saved["refresh_token"].startswith("fake-rt-") and saved["refresh_token"] != e.bf.tokens.refresh_token
    )
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    no_leaks(r.output, e)
    assert saved["refresh_token"] not in r.output


def test_refresh_refused_error_holds_no_token(bf: FakeBifrost) -> None:
    bf.expire_access_tokens()
    bf.revoke_refresh_tokens()
    c, _ = _client(bf)
    with c, pytest.raises(ApiError) as info:
        c.get("/api/organizations")
    text = str(info.value) + repr(info.value) + repr(c.creds)
    assert "fake-" not in text and "log in again" in text


def test_missing_credentials_are_usage_errors() -> None:
    with pytest.raises(DeployError, match="BIFROST_API_URL"):
        load_credentials(None, None, {})
    with pytest.raises(DeployError, match="BIFROST_ACCESS_TOKEN"):
        load_credentials("https://x", None, {})


def test_partial_failure_reports_and_rerun_finishes(denv: Env) -> None:
    e = denv

    def halo_defaults(method: str, path: str) -> bool:
        halo = e.bf.state.integration_by_name("HaloPSA")
        return method == "PUT" and halo is not None and path == f"/api/integrations/{halo.id}/config"

    e.bf.fail_next(100, 500, match=halo_defaults)
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 1, r.output
    assert "FAILED  ~ update defaults HaloPSA: PUT /api/integrations/" in r.stdout
    assert "skipped + create mapping HaloPSA/contoso" in r.stdout
    assert "ok      + create mapping Microsoft_Graph/contoso" in r.stdout
    assert "Run apply again" in r.stdout
    no_leaks(r.output, e)
    e.bf.clear_faults()
    r = e.cli("plan", str(e.root))
    assert "+ create integration HaloPSA" not in r.stdout and "+ create mapping HaloPSA/contoso" in r.stdout
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 0, r.output
    assert e.cli("plan", str(e.root), "--exit-code").code == 0


def test_apply_survives_transient_faults(denv: Env) -> None:
    e = denv
    e.bf.fail_next(1, 429, retry_after=0.1)
    e.bf.fail_next(1, "drop", match=lambda m, p: m == "GET")
    e.bf.fail_next(1, 502, match=lambda m, p: m == "POST" and p.endswith("/mappings"))
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 0, r.output
    assert e.cli("plan", str(e.root), "--exit-code").code == 0


def test_no_secret_in_any_output(denv: Env) -> None:
    e = denv
    outputs = []
    for args in (
        ("plan",),
        ("plan", "--format", "json"),
        ("apply", "--yes"),
        ("apply", "--yes", "--format", "json"),
        ("plan", "--rotate-oauth-secrets"),
    ):
        r = e.cli(*args, str(e.root))
        outputs.append(r.output)
    text = "\n".join(outputs)
    assert canary("default") not in text and canary("client") not in text
    no_leaks(text, e)


@pytest.mark.parametrize(
    "what",
    [
        pytest.param(lambda m, p: m == "POST" and p.endswith("/mappings"), id="mapping"),
        pytest.param(lambda m, p: m == "POST" and p == "/api/integrations", id="integration"),
        pytest.param(lambda m, p: m == "POST" and p == "/api/oauth/connections", id="oauth"),
    ],
)
def test_retried_create_that_landed_counts_ok(denv: Env, what: Any) -> None:
    """A create whose first attempt landed (response lost) gets 409 on the retry: state converged."""
    e = denv
    e.bf.fail_next(1, "drop_after", match=what)
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 0, r.output
    assert "0 failed, 0 skipped" in r.stdout
    assert "already applied by an earlier attempt" in r.stdout
    assert any(rec.fault == "drop_after" for rec in e.bf.requests), "the fault never fired"
    assert e.cli("plan", str(e.root), "--exit-code").code == 0
    no_leaks(r.output, e)


def test_retried_ledger_create_that_landed_counts_ok(denv: Env) -> None:
    e = denv
    seen: list[int] = []

    def ledger_post(method: str, path: str) -> bool:
        # the ledger is the last integration created: 2 declared, then the ledger
        if method == "POST" and path == "/api/integrations":
            seen.append(1)
            return len(seen) == 3
        return False

    e.bf.fail_next(1, "drop_after", match=ledger_post)
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 0, r.output
    assert len(seen) >= 3
    assert e.cli("plan", str(e.root), "--exit-code").code == 0


def test_conflict_on_a_first_attempt_still_fails(denv: Env) -> None:
    """Without a retry, a 409 means someone else got there: not silently accepted."""
    e = denv
    e.bf.fail_next(1, 409, match=lambda m, p: m == "POST" and p.endswith("/mappings"))
    r = e.cli("apply", str(e.root), "--yes")
    assert r.code == 1, r.output
    assert "FAILED  + create mapping" in r.stdout
    assert not any("/by-org/" in rec.path for rec in e.bf.requests)
