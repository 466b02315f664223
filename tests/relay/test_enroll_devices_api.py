"""Enrollment (DEV-10) and the device listing through the real app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from relay.store import Store
from shared.models import CameraInventory
from tests.relay.conftest import (
    OWNER,
    PASSWORD,
    Client,
    FakeClock,
    bearer,
    error_of,
    public_key_hex,
)

GRANT = "/api/v1/enroll/grant"
DEVICE = "/api/v1/enroll/device"
DEVICES = "/api/v1/devices"


async def _grant(client: Client, email: str = OWNER, password: str = PASSWORD) -> dict[str, Any]:
    resp = await client.post(GRANT, json={"email": email, "password": password})
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def _enroll(client: Client, grant: str, key: str | None = None, name: str = "Shop") -> Any:
    return await client.post(
        DEVICE,
        json={
            "grant": grant,
            "public_key": public_key_hex() if key is None else key,
            "name": name,
            "agent_version": "0.1.0",
        },
    )


# spec: DEV-10
async def test_grant_then_device_registers_the_site(
    client: Client,
    sign_up: Callable[..., Any],
    login: Callable[..., Any],
    store: Store,
    clock: FakeClock,
) -> None:
    """The site appears in the account (offline until its tunnel comes up), key stored as hex."""
    await sign_up()
    grant = await _grant(client)
    expires = datetime.fromisoformat(grant["expires_at"])
    assert (expires - clock.now).total_seconds() == 300
    key = public_key_hex().upper()
    resp = await _enroll(client, grant["grant"], key)
    assert resp.status == 201
    device_id = (await resp.json())["device_id"]
    device = await store.get_device(device_id)
    assert device is not None
    assert device.public_key == key.lower()
    assert device.agent_version == "0.1.0"

    token = (await login())["token"]
    body = await (await client.get(DEVICES, headers=bearer(token))).json()
    assert body == {
        "devices": [
            {
                "id": device_id,
                "name": "Shop",
                "online": False,
                "agent_version": "0.1.0",
                "last_seen_at": None,
                "cameras": [],
            }
        ]
    }


# spec: DEV-10
async def test_grant_is_single_use(client: Client, sign_up: Callable[..., Any]) -> None:
    await sign_up()
    grant = (await _grant(client))["grant"]
    assert (await _enroll(client, grant)).status == 201
    assert await error_of(await _enroll(client, grant)) == (409, 91010)


# spec: DEV-10
async def test_grant_expires(client: Client, sign_up: Callable[..., Any], clock: FakeClock) -> None:
    await sign_up()
    grant = (await _grant(client))["grant"]
    clock.advance(300)
    assert await error_of(await _enroll(client, grant)) == (400, 91011)


async def test_unknown_grant(client: Client) -> None:
    assert await error_of(await _enroll(client, "no-such-grant")) == (400, 91009)


# spec: DEV-10
@pytest.mark.parametrize("key", ["zz" * 32, "ab" * 31, "ab" * 33, ""])
async def test_bad_public_key_is_refused_and_leaves_the_grant_usable(
    client: Client, sign_up: Callable[..., Any], key: str
) -> None:
    await sign_up()
    grant = (await _grant(client))["grant"]
    assert await error_of(await _enroll(client, grant, key)) == (400, 91012)
    assert (await _enroll(client, grant)).status == 201


# spec: DEV-10, USER-3
async def test_wrong_credentials_and_lockout_apply_to_grants(
    client: Client, sign_up: Callable[..., Any]
) -> None:
    await sign_up()
    codes = []
    for _ in range(5):
        resp = await client.post(GRANT, json={"email": OWNER, "password": "Wrong-pass1!"})
        codes.append(await error_of(resp))
    assert codes[0] == (401, 400224)
    assert codes[-1] == (429, 400225)
    resp = await client.post(GRANT, json={"email": OWNER, "password": PASSWORD})
    assert await error_of(resp) == (429, 400225)


async def test_devices_need_a_session(client: Client) -> None:
    assert await error_of(await client.get(DEVICES)) == (401, 50201)


# spec: DEV-10, LIVE-1
async def test_devices_lists_only_own_sites_with_cameras(
    client: Client,
    sign_up: Callable[..., Any],
    login: Callable[..., Any],
    store: Store,
) -> None:
    """Each subscriber sees their own sites; cameras carry their inventory facts."""
    await sign_up()
    await sign_up("other@example.com", "Other")
    mine = await (await _enroll(client, (await _grant(client))["grant"], name="Mine")).json()
    theirs_grant = (await _grant(client, "other@example.com"))["grant"]
    theirs = await (await _enroll(client, theirs_grant, name="Theirs")).json()
    await store.upsert_inventory(
        mine["device_id"],
        [
            CameraInventory(
                local_id="cam-1", manufacturer="Acme", model="X1", capabilities=["ptz", "audio"]
            ),
            CameraInventory(local_id="cam-2", name="Gate", online=False),
            CameraInventory(
                local_id="cam-3", name="Yard", online=False, status="authentication_error"
            ),
        ],
    )
    await store.upsert_inventory(theirs["device_id"], [CameraInventory(local_id="cam-1")])
    await store.set_device_online(mine["device_id"], True, "relay-1")

    token = (await login())["token"]
    [device] = (await (await client.get(DEVICES, headers=bearer(token))).json())["devices"]
    assert device["id"] == mine["device_id"]
    assert device["name"] == "Mine"
    assert device["online"] is True
    assert device["last_seen_at"] is not None
    cams = {cam["name"]: cam for cam in device["cameras"]}
    assert set(cams) == {"CAM001", "Gate", "Yard"}
    assert cams["CAM001"]["online"] is True
    assert cams["CAM001"]["capabilities"] == ["ptz", "audio"]
    assert cams["CAM001"]["manufacturer"] == "Acme"
    assert cams["CAM001"]["model"] == "X1"
    assert cams["Gate"]["online"] is False
    assert cams["CAM001"]["status"] == "normal"
    assert cams["Yard"]["status"] == "authentication_error"  # why it is not live, for the list

    other = (await login("other@example.com"))["token"]
    [device] = (await (await client.get(DEVICES, headers=bearer(other))).json())["devices"]
    assert device["id"] == theirs["device_id"]
    assert device["cameras"][0]["online"] is False  # its site is offline
    assert device["cameras"][0]["status"] == "communication_error"
