"""What the keepalive recipes rely on, against the real Bifrost: `login --refresh` rotates the
single-use refresh token (Bifrost then refuses the spent one), and `login --export refresh-token`
hands over the rotated one from the same credentials the deploy commands read."""

from __future__ import annotations

import json

import httpx

from support import run_cli

from .conftest import RealBifrost


def test_refresh_rotates_and_export_hands_over_the_new_token(real_bifrost: RealBifrost) -> None:
    creds = real_bifrost.credentials  # the session's: a rotation is written back for later tests
    spent = json.loads(creds.read_text())["refresh_token"]
    r = run_cli("login", "--refresh", "--credentials", str(creds), timeout=300)
    assert r.code == 0, r.output
    rotated = json.loads(creds.read_text())["refresh_token"]
    assert rotated != spent and spent not in r.output and rotated not in r.output

    exported = run_cli("login", "--export", "refresh-token", "--credentials", str(creds), subprocess=True)
    assert (exported.code, exported.stdout) == (0, rotated)

    # single use: Bifrost refuses the token the refresh spent (a 401, nothing else revoked)
    again = httpx.post(f"{real_bifrost.url}/auth/refresh", json={"refresh_token": spent}, timeout=30)
    assert again.status_code == 401, again.text
    orgs = httpx.get(
        f"{real_bifrost.url}/api/organizations",
        headers={"Authorization": f"Bearer {json.loads(creds.read_text())['access_token']}"},
        timeout=30,
    )
    assert orgs.status_code == 200  # the new access token works
