"""Helpers for the folder and favorite tests (ORG-1, ORG-2): sites with cameras made the way an
agent makes them (grant, enrollment, inventory), and shared users who can log in."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from relay.auth import token_hash
from relay.store import Store
from relay.web.keys import AUTH_KEY
from shared.models import CameraInventory
from tests.relay.conftest import PASSWORD, Client, bearer


async def site(store: Store, owner_id: str, name: str, cameras: int = 1) -> tuple[str, list[str]]:
    """A site (device) named ``name`` of ``owner_id`` with ``cameras`` cameras: (id, camera ids)."""
    grant = f"g-{uuid.uuid4()}"
    await store.create_grant(token_hash(grant), owner_id, store.now().replace(year=2099))
    device = await store.enroll_device(
        token_hash(grant), name=name, public_key="00" * 32, agent_version="t"
    )
    assert device is not None
    await store.upsert_inventory(
        device.id, [CameraInventory(local_id=f"c{i}") for i in range(cameras)]
    )
    items = await store.list_devices_for(owner_id)
    [item] = [i for i in items if i.device.id == device.id]
    return device.id, [c.id for c in item.cameras]


async def shared_user(
    client: Client, owner_token: str, login: Callable[..., Any], n: int, cameras: list[str]
) -> tuple[str, str]:
    """A shared user of the owner, with ``cameras`` shared and the initial password replaced;
    (user id, their session token)."""
    body = {"email": f"s{n}@example.com", "name": f"Shared {n}"}
    resp = await client.post("/api/v1/users", json=body, headers=bearer(owner_token))
    assert resp.status == 201, await resp.text()
    user_id = str((await resp.json())["id"])
    resp = await client.put(
        f"/api/v1/users/{user_id}/shares", json={"cameras": cameras}, headers=bearer(owner_token)
    )
    assert resp.status == 200, await resp.text()
    auth = client.app[AUTH_KEY]
    await auth.accounts.set_password(user_id, await auth.hash_password(PASSWORD))
    return user_id, str((await login(f"s{n}@example.com"))["token"])
