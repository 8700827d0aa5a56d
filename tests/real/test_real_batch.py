"""Bulk onboarding against the real Bifrost: an override-free repository (100 organizations x 10
integrations, the issue's onboarding size) is applied through ``POST /api/integrations/{id}/mappings/batch``, one request per
integration instead of one per mapping, and plans clean afterwards. Names carry a random suffix:
other people may use the same server."""

from __future__ import annotations

import json
import secrets as rnd
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from support import Run, run_cli

from .conftest import RealBifrost
from .onboarding import clean_up, create_orgs, write_repository

SFX = rnd.token_hex(4)
ORGS = [f"rtb-{k:03d}-{SFX}" for k in range(100)]
INTEGRATIONS = [f"RtBatch{k}_{SFX}" for k in range(10)]


class Repo(NamedTuple):
    root: Path
    bf: RealBifrost
    org_ids: dict[str, str]

    def cli(self, *args: str) -> Run:
        return run_cli(*args, "--credentials", str(self.bf.credentials), timeout=180)

    def token(self) -> str:
        return str(json.loads(self.bf.credentials.read_text(encoding="utf-8"))["access_token"])


@pytest.fixture(scope="module")
def repo(real_bifrost: RealBifrost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    token = json.loads(real_bifrost.credentials.read_text(encoding="utf-8"))["access_token"]
    ids = create_orgs(real_bifrost.url, token, ORGS)
    r = Repo(write_repository(tmp_path_factory.mktemp("batchrepo"), ids, INTEGRATIONS), real_bifrost, ids)
    yield r
    clean_up(real_bifrost.url, r.token(), INTEGRATIONS, list(ids.values()))


def test_an_override_free_repository_is_applied_in_batches_and_plans_clean(repo: Repo) -> None:
    plan = repo.cli("plan", str(repo.root), "--format", "json")
    assert plan.code == 0, plan.output
    summary = json.loads(plan.stdout)["summary"]
    assert (summary["create"], summary["batches"]) == (1010, 10)
    # 10 integrations, 10 batches and the ledger (1 or 2), instead of 1,010 and the ledger
    assert summary["apply_requests"] <= 22

    applied = repo.cli("apply", str(repo.root), "-y", "--format", "json")
    assert applied.code == 0, applied.output
    doc = json.loads(applied.stdout)
    assert doc["summary"]["failed"] == 0 and doc["summary"]["skipped"] == 0
    mappings = [r for r in doc["results"] if r["resource"] == "mapping"]
    assert len(mappings) == 1000 and {r["status"] for r in mappings} == {"ok"}
    # the reads of plan (version, organizations, the list, the ledger) and at most 22 writes
    assert doc["summary"]["requests"] <= 4 + 22

    with httpx.Client(
        base_url=repo.bf.url, headers={"Authorization": f"Bearer {repo.token()}"}, timeout=60
    ) as http:
        listed = {i["name"]: i["id"] for i in http.get("/api/integrations").json()["items"]}
        for k, name in enumerate(INTEGRATIONS):
            got = http.get(f"/api/integrations/{listed[name]}/mappings").json()["items"]
            by_org = {m["organization_id"]: m["entity_id"] for m in got}
            assert by_org == {repo.org_ids[o]: f"{name}-{n}" for n, o in enumerate(ORGS)}, k

    again = repo.cli("plan", str(repo.root), "--exit-code")
    assert again.code == 0, again.output
