"""An override-free onboarding repository against the real Bifrost: organizations created there
(Bifrost assigns their UUIDs), then integrations mapped to every one of them with an entity id
only. Shared by tests/real/test_real_batch.py and benchmarks/bench_batch.py."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx
import yaml

API = "apiVersion: bifrost-gitops/v1\n"


def create_orgs(url: str, token: str, names: list[str]) -> dict[str, str]:
    """Create one organization per name; name -> the UUID Bifrost gave it."""
    ids: dict[str, str] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        for name in names:
            r = http.post("/api/organizations", json={"name": name})
            assert r.status_code in (200, 201), r.text
            ids[name] = str(r.json()["id"])
    return ids


def write_repository(root: Path, orgs: dict[str, str], integrations: list[str]) -> Path:
    """A repository mapping every integration to every organization, entity id only."""

    def write(rel: str, doc: Mapping[str, object]) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(API + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")

    root.mkdir(parents=True, exist_ok=True)
    (root / "bifrost-gitops.yaml").write_text(API + "kind: Project\n", encoding="utf-8")
    write(
        "organizations.yaml",
        {"kind": "Organizations", "organizations": [{"name": n, "id": i} for n, i in orgs.items()]},
    )
    for name in integrations:
        write(f"integrations/{name}/integration.yaml", {"kind": "Integration", "name": name})
        for k, org in enumerate(orgs):
            mapping = {
                "kind": "Mapping",
                "integration": name,
                "organization": org,
                "entity_id": f"{name}-{k}",
            }
            write(f"integrations/{name}/mappings/{org}.yaml", mapping)
    return root


def clean_up(url: str, token: str, integrations: list[str], org_ids: list[str]) -> None:
    """Best effort: our integrations (soft-deleted, their mappings with them), then our organizations."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        listed = http.get("/api/integrations")
        items = listed.json().get("items", []) if listed.status_code == 200 else []
        for item in items:
            if item.get("name") in integrations:
                http.delete(f"/api/integrations/{item['id']}")
        for oid in org_ids:
            http.delete(f"/api/organizations/{oid}")
