"""Help's service version and version history through the real app (MSG-2)."""

from __future__ import annotations

from relay.versions import HISTORY, service_version
from tests.relay.conftest import Client


# spec: MSG-2
async def test_about_gives_version_and_history_without_sign_in(client: Client) -> None:
    resp = await client.get("/api/v1/about")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["version"] == service_version()
    assert body["history"][0]["version"] == HISTORY[0].version
    assert all(set(r) == {"version", "date", "notes"} for r in body["history"])
    doc = await (await client.get("/api/v1/openapi.json")).json()
    assert "get" in doc["paths"]["/api/v1/about"]
