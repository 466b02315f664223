"""Camera-control API through the real app and store: validation, authorisation, renames, DEV-1.

No agent here: everything asserted is decided by the relay before a request enters a tunnel
(400s, 404s, renames) or when the site is offline. The PTZ round trip through a real agent and
ipycam is in ``tests/e2e/test_camera_control.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from relay.store import Store
from shared.models import CameraInventory
from tests.relay.conftest import PASSWORD, Client, bearer, error_of, public_key_hex

OTHER = "other@example.com"


async def _site_with_camera(client: Client, store: Store, email: str) -> tuple[str, str]:
    """Enroll a site for ``email`` with one camera; (device id, camera id)."""
    grant = await client.post("/api/v1/enroll/grant", json={"email": email, "password": PASSWORD})
    body = await grant.json()
    resp = await client.post(
        "/api/v1/enroll/device",
        json={"grant": body["grant"], "public_key": public_key_hex(), "name": "Shop"},
    )
    device_id = str((await resp.json())["device_id"])
    cam = CameraInventory(
        local_id="cam-1",
        model="VirtualCam-1",
        manufacturer="PythonCam",
        serial_number="SN1",
        capabilities=["snapshot", "live", "ptz", "presets", "home"],
    )
    await store.upsert_inventory(device_id, [cam])
    device = await store.get_device(device_id)
    assert device is not None
    devices = await store.list_devices_for(device.account_id)
    camera_id = next(c.id for d in devices for c in d.cameras if d.device.id == device_id)
    return device_id, camera_id


@pytest.fixture
async def owner(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> dict[str, str]:
    """A subscriber with one offline site and camera, logged in."""
    await sign_up()
    device_id, camera_id = await _site_with_camera(client, store, "owner@example.com")
    token = (await login())["token"]
    return {"device": device_id, "camera": camera_id, "token": token}


# spec: LIVE-5
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"action": "move", "pan": 1.5}, "pan"),
        ({"action": "move", "tilt": "up"}, "tilt"),
        ({"action": "spin"}, "action"),
        ({}, "action"),
        ({"action": "focus"}, "focus needs mode"),
        ({"action": "focus", "mode": "sideways"}, "mode"),
        ({"action": "area_zoom", "x": 0.2, "y": 0.2}, "w and h"),
        ({"action": "area_zoom", "x": 0.8, "y": 0.2, "w": 0.5, "h": 0.1}, "inside the image"),
        ({"action": "centre", "x": 1.2, "y": 0.5}, "x"),
    ],
)
async def test_ptz_input_is_validated_before_the_tunnel(
    client: Client, owner: dict[str, str], body: dict[str, Any], fragment: str
) -> None:
    """A bad PTZ body is 400/91001 naming the field; nothing is sent to the site."""
    resp = await client.post(
        f"/api/v1/cameras/{owner['camera']}/ptz", json=body, headers=bearer(owner["token"])
    )
    message = (await resp.json())["error"]["message"]
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == 91001
    assert fragment in message, message


# spec: LIVE-5
@pytest.mark.parametrize("n", ["0", "11", "x", "-1"])
async def test_preset_number_is_one_to_ten(client: Client, owner: dict[str, str], n: str) -> None:
    """Preset numbers outside 1-10 are refused with a clear 400."""
    resp = await client.post(
        f"/api/v1/cameras/{owner['camera']}/presets/{n}/goto", headers=bearer(owner["token"])
    )
    assert await error_of(resp) == (400, 91001)


async def test_preset_rename_needs_a_short_name(client: Client, owner: dict[str, str]) -> None:
    """PATCH without a name, or with one over 32 characters, is 400."""
    url = f"/api/v1/cameras/{owner['camera']}/presets/2"
    for body in ({}, {"name": "  "}, {"name": "x" * 33}):
        resp = await client.patch(url, json=body, headers=bearer(owner["token"]))
        assert await error_of(resp) == (400, 91001), body


# spec: CAM-3
@pytest.mark.parametrize(
    "body",
    [{}, [], {"brightness": "bright"}, {"brightness": True}, {"hue": 3}, {"ir_cut_filter": 1}],
)
async def test_imaging_patch_is_validated(client: Client, owner: dict[str, str], body: Any) -> None:
    """Unknown fields, wrong types and empty bodies are 400 before the camera is asked."""
    resp = await client.patch(
        f"/api/v1/cameras/{owner['camera']}/imaging", json=body, headers=bearer(owner["token"])
    )
    assert await error_of(resp) == (400, 91001)


async def test_another_subscribers_camera_is_not_found(
    client: Client,
    store: Store,
    owner: dict[str, str],
    sign_up: Callable[..., Any],
    login: Callable[..., Any],
) -> None:
    """Every control route answers 404 for a camera the viewer may not see (not 403)."""
    await sign_up(email=OTHER, name="Other")
    other = (await login(email=OTHER))["token"]
    cam = owner["camera"]
    calls = [
        ("GET", f"/api/v1/cameras/{cam}", None),
        ("POST", f"/api/v1/cameras/{cam}/ptz", {"action": "stop"}),
        ("GET", f"/api/v1/cameras/{cam}/presets", None),
        ("PUT", f"/api/v1/cameras/{cam}/presets/1", {}),
        ("POST", f"/api/v1/cameras/{cam}/presets/1/goto", None),
        ("GET", f"/api/v1/cameras/{cam}/imaging", None),
        ("PATCH", f"/api/v1/cameras/{cam}/imaging", {"brightness": 1}),
        ("GET", f"/api/v1/devices/{owner['device']}/information", None),
    ]
    for method, url, body in calls:
        resp = await client.request(method, url, json=body, headers=bearer(other))
        assert await error_of(resp) == (404, 91007), (method, url)


async def test_control_needs_a_session(client: Client, owner: dict[str, str]) -> None:
    """No session: 401/50201 before anything else is looked at."""
    resp = await client.post(f"/api/v1/cameras/{owner['camera']}/ptz", json={"action": "x"})
    assert await error_of(resp) == (401, 50201)


# spec: DEV-1
async def test_camera_detail_of_an_offline_site(client: Client, owner: dict[str, str]) -> None:
    """Stored facts and capabilities, status communication_error, no network facts."""
    resp = await client.get(f"/api/v1/cameras/{owner['camera']}", headers=bearer(owner["token"]))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["status"] == "communication_error"
    assert body["online"] is False
    assert body["site"] == {"id": owner["device"], "name": "Shop", "online": False}
    assert body["device"]["model"] == "VirtualCam-1"
    assert body["device"]["serial_number"] == "SN1"
    assert body["device"]["mac"] is None
    assert "ptz" in body["capabilities"]
    info = await client.get(
        f"/api/v1/devices/{owner['device']}/information", headers=bearer(owner["token"])
    )
    assert (await info.json())["status"] == "communication_error"


# spec: CAM-1
async def test_rename_sites_and_cameras_at_once(client: Client, owner: dict[str, str]) -> None:
    """One PATCH renames the site and its camera; the listing shows both new names."""
    body = [{"id": owner["device"], "name": "Warehouse"}, {"id": owner["camera"], "name": "Gate"}]
    resp = await client.patch("/api/v1/devices", json=body, headers=bearer(owner["token"]))
    assert resp.status == 200, await resp.text()
    assert (await resp.json()) == {"renamed": 2}
    listing = await (await client.get("/api/v1/devices", headers=bearer(owner["token"]))).json()
    (site,) = listing["devices"]
    assert (site["name"], site["cameras"][0]["name"]) == ("Warehouse", "Gate")


# spec: CAM-1
@pytest.mark.parametrize(
    "names",
    [["x" * 21], [""], ["   "]],
)
async def test_rename_refuses_bad_names_and_changes_nothing(
    client: Client, owner: dict[str, str], names: list[str]
) -> None:
    """Over 20 characters or empty: 400, and the other item of the batch is not renamed."""
    body = [{"id": owner["device"], "name": "Fine"}, {"id": owner["camera"], "name": names[0]}]
    resp = await client.patch("/api/v1/devices", json=body, headers=bearer(owner["token"]))
    assert await error_of(resp) == (400, 91001)
    listing = await (await client.get("/api/v1/devices", headers=bearer(owner["token"]))).json()
    assert listing["devices"][0]["name"] == "Shop"


async def test_rename_of_unknown_or_foreign_ids_is_404_and_atomic(
    client: Client, owner: dict[str, str]
) -> None:
    """One id that is not the viewer's and nothing is renamed."""
    body = [{"id": owner["device"], "name": "Fine"}, {"id": "nope", "name": "X"}]
    resp = await client.patch("/api/v1/devices", json=body, headers=bearer(owner["token"]))
    assert await error_of(resp) == (404, 91007)
    for bad in ({"id": owner["device"], "name": "x"}, [], "x", [{"name": "no id"}]):
        resp = await client.patch("/api/v1/devices", json=bad, headers=bearer(owner["token"]))
        assert await error_of(resp) == (400, 91001), bad
    listing = await (await client.get("/api/v1/devices", headers=bearer(owner["token"]))).json()
    assert listing["devices"][0]["name"] == "Shop"


async def test_new_routes_are_in_the_openapi_document(client: Client) -> None:
    """Every camera-control route is documented with its request and response models."""
    doc = await (await client.get("/api/v1/openapi.json")).json()
    paths = doc["paths"]
    assert "post" in paths["/api/v1/cameras/{camera_id}/ptz"]
    assert {"put", "patch"} <= set(paths["/api/v1/cameras/{camera_id}/presets/{n}"])
    assert {"get", "patch"} <= set(paths["/api/v1/cameras/{camera_id}/imaging"])
    assert {"get", "patch"} <= set(paths["/api/v1/devices"])
    assert "get" in paths["/api/v1/cameras/{camera_id}"]
    assert "PtzIn" in doc["components"]["schemas"]
    assert "RenameIn" in doc["components"]["schemas"]
