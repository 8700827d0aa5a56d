"""Example Bifrost workflow: read HaloPSA customers with the resolved integration.

`integrations.get("HaloPSA")` returns what this repository resolves for the organization the
workflow runs in: the defaults overlaid with that organization's mapping (`config`), its Halo
client id (`entity_id`) and, for OAuth integrations, the provider's credentials (`oauth`, None
here because HaloPSA is configured with an API key). The same call works in Bifrost and
against a compiled bifrost-gitops bundle, so the workflow does not care where config lives.
"""

from __future__ import annotations

from typing import Any

import httpx
from bifrost import integrations


async def halo_customers(include_inactive: bool = False) -> list[dict[str, Any]]:
    """The organization's own Halo client, or every client when the org has no entity id."""
    integration = await integrations.get("HaloPSA")
    if integration is None:
        raise RuntimeError("integration HaloPSA is not configured for this organization")

    config = integration.config
    headers = {"Accept": "application/json"}
    if integration.oauth is not None and integration.oauth.access_token:
        headers["Authorization"] = f"Bearer {integration.oauth.access_token}"
    else:
        headers["Authorization"] = f"Bearer {config['api_key']}"
    params: dict[str, Any] = {"pageinate": "true", "page_size": config.get("page_size", 50)}
    if config.get("tenant"):
        params["tenant"] = config["tenant"]
    if include_inactive:
        params["includeinactive"] = "true"

    async with httpx.AsyncClient(
        base_url=config["base_url"].rstrip("/") + "/api",
        headers=headers,
        verify=config.get("verify_ssl", True),
        timeout=30.0,
    ) as client:
        if integration.entity_id:  # mapped organization: just its own Halo client
            response = await client.get(f"/Client/{integration.entity_id}", params=params)
            response.raise_for_status()
            return [response.json()]
        customers: list[dict[str, Any]] = []
        page = 1
        while True:
            response = await client.get("/Client", params={**params, "page_no": page})
            response.raise_for_status()
            body = response.json()
            batch = body.get("clients", [])
            customers.extend(batch)
            if not batch or len(customers) >= body.get("record_count", 0):
                return customers
            page += 1


if __name__ == "__main__":  # pragma: no cover - manual run outside Bifrost
    import asyncio

    for customer in asyncio.run(halo_customers()):
        print(customer.get("id"), customer.get("name"))
