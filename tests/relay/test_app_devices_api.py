"""Mobile app devices through the real app (USER-9, APP-2; manual 5.2.6): an app's login links
its device to the token it gets; the viewer lists their apps (name, platform, linked, last seen)
and removes one, which revokes that token at once (the next call is 401/50201) and nothing
else; ids of other accounts are 404; a login that ended (logout, timeout, password change) is no
longer a linked app. The session cascade is checked on PostgreSQL too."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from relay.auth import token_hash
from relay.settings import RelaySettings
from relay.store import Store
from relay.store.app_devices import AppDeviceStore, AppLink
from relay.store.rows import SessionRow
from tests.relay.conftest import OWNER, PASSWORD, Client, FakeClock, bearer, error_of
from tests.relay.org_kit import shared_user
from tests.relay.test_store_postgres import pg_socket, pg_store, pg_url

__all__ = ["pg_socket", "pg_store", "pg_url"]

DEVICES = "/api/v1/me/devices"
LOGIN = "/api/v1/auth/login"


async def _app_login(
    client: Client, name: str, platform: str, email: str = OWNER
) -> tuple[str, str]:
    """(token, device id) of an app logging in as ``email``."""
    body = {"email": email, "password": PASSWORD, "device": {"name": name, "platform": platform}}
    resp = await client.post(LOGIN, json=body)
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    return str(data["token"]), str(data["device_id"])


async def _devices(client: Client, token: str) -> list[dict[str, Any]]:
    resp = await client.get(DEVICES, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    devices: list[dict[str, Any]] = (await resp.json())["devices"]
    return devices


# spec: USER-9
async def test_an_app_login_links_its_device_and_the_list_shows_it(
    client: Client, clock: FakeClock, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    await sign_up()
    browser = await login()
    assert browser["device_id"] is None  # a portal login links nothing
    start = clock.now
    pixel, pixel_id = await _app_login(client, "Pixel 8", "android")
    clock.advance(120)
    iphone, iphone_id = await _app_login(client, "Anna's iPhone", "ios")
    listed = await _devices(client, browser["token"])
    assert [(d["id"], d["name"], d["platform"]) for d in listed] == [
        (iphone_id, "Anna's iPhone", "ios"),
        (pixel_id, "Pixel 8", "android"),
    ]
    assert not any(d["current"] for d in listed)
    linked = datetime.fromisoformat(listed[1]["created_at"])
    assert linked == datetime.fromisoformat(listed[1]["last_seen_at"]) == start
    clock.advance(120)  # past the session's touch interval: the Pixel's call moves last seen
    mine = await _devices(client, pixel)
    assert [d["current"] for d in mine] == [False, True]
    assert datetime.fromisoformat(mine[1]["last_seen_at"]) == clock.now
    assert datetime.fromisoformat(mine[1]["created_at"]) == linked
    assert iphone


# spec: USER-9
async def test_removing_a_device_revokes_its_token_at_once_and_nothing_else(
    client: Client, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    await sign_up()
    browser = str((await login())["token"])
    pixel, pixel_id = await _app_login(client, "Pixel 8", "android")
    tablet, tablet_id = await _app_login(client, "Tablet", "android")
    assert (await client.get("/api/v1/me", headers=bearer(pixel))).status == 200
    resp = await client.delete(f"{DEVICES}/{pixel_id}", headers=bearer(browser))
    assert resp.status == 204
    assert await error_of(await client.get("/api/v1/me", headers=bearer(pixel))) == (401, 50201)
    assert (await client.get("/api/v1/me", headers=bearer(tablet))).status == 200
    assert [d["id"] for d in await _devices(client, browser)] == [tablet_id]
    again = await client.delete(f"{DEVICES}/{pixel_id}", headers=bearer(browser))
    assert await error_of(again) == (404, 91007)
    # An app may unlink itself: its own token ends with it.
    resp = await client.delete(f"{DEVICES}/{tablet_id}", headers=bearer(tablet))
    assert resp.status == 204
    assert await error_of(await client.get(DEVICES, headers=bearer(tablet))) == (401, 50201)
    assert await _devices(client, browser) == []


# spec: USER-9
async def test_devices_are_per_account_and_shared_users_have_their_own(
    client: Client, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    await sign_up()
    owner = str((await login())["token"])
    _, guest = await shared_user(client, owner, login, 1, [])
    _, guest_phone = await _app_login(client, "Guest phone", "ios", "s1@example.com")
    owner_app, owner_phone = await _app_login(client, "Owner phone", "android")
    assert [d["name"] for d in await _devices(client, guest)] == ["Guest phone"]
    assert [d["name"] for d in await _devices(client, owner)] == ["Owner phone"]
    # The subscriber cannot remove (or confirm) the shared user's app, nor the other way round.
    resp = await client.delete(f"{DEVICES}/{guest_phone}", headers=bearer(owner))
    assert await error_of(resp) == (404, 91007)
    resp = await client.delete(f"{DEVICES}/{owner_phone}", headers=bearer(guest))
    assert await error_of(resp) == (404, 91007)
    assert (await client.get("/api/v1/me", headers=bearer(owner_app))).status == 200
    resp = await client.delete(f"{DEVICES}/{guest_phone}", headers=bearer(guest))
    assert resp.status == 204
    assert await error_of(await client.delete(f"{DEVICES}/x", headers=bearer(guest))) == (
        404,
        91007,
    )
    assert await error_of(await client.get(DEVICES)) == (401, 50201)


# spec: USER-9
async def test_an_ended_login_is_no_longer_a_linked_device(
    client: Client,
    clock: FakeClock,
    relay_settings: RelaySettings,
    sign_up: Callable[..., Any],
    login: Callable[..., Any],
) -> None:
    await sign_up()
    pixel, _ = await _app_login(client, "Pixel 8", "android")
    resp = await client.post("/api/v1/auth/logout", headers=bearer(pixel))
    assert resp.status == 204
    _, _ = await _app_login(client, "Idle phone", "ios")
    clock.advance(relay_settings.session_idle_timeout_s)
    browser = str((await login())["token"])
    assert await _devices(client, browser) == []  # logged out, and timed out
    _, _ = await _app_login(client, "Old password phone", "ios")
    new_password = "Other-pass2!"
    body = {"password": PASSWORD, "new_password": new_password}
    resp = await client.post("/api/v1/auth/password/change", json=body, headers=bearer(browser))
    assert resp.status == 204, await resp.text()
    assert await _devices(client, browser) == []  # 50205 for it now: not linked any more


# spec: USER-9
async def test_device_fields_are_checked(client: Client, sign_up: Callable[..., Any]) -> None:
    await sign_up()
    for device in (
        {"name": "x", "platform": "windows"},
        {"name": "", "platform": "ios"},
        {"name": "n" * 65, "platform": "ios"},
        {"platform": "ios"},
        "phone",
    ):
        body = {"email": OWNER, "password": PASSWORD, "device": device}
        assert await error_of(await client.post(LOGIN, json=body)) == (400, 91001), device
    body = {"email": OWNER, "password": "wrong", "device": {"name": "x", "platform": "web"}}
    assert await error_of(await client.post(LOGIN, json=body)) == (401, 400224)


# spec: USER-9, APP-3
async def test_app_device_routes_are_in_the_openapi_document(client: Client) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    expected = {(DEVICES, "get"), (f"{DEVICES}/{{device_id}}", "delete")}
    found = {(p, m) for p, ops in doc["paths"].items() for m in ops if p.startswith(DEVICES)}
    assert {(p, m) for p, m in found if m != "head"} == expected
    assert all(doc["paths"][p][m]["security"] for p, m in expected)
    login_in = doc["components"]["schemas"]["LoginIn"]
    assert "device" in login_in["properties"]
    assert doc["components"]["schemas"]["AppDeviceIn"]["required"] == ["name", "platform"]


# spec: USER-9
async def test_postgres_device_goes_with_its_session(pg_store: Store, clock: FakeClock) -> None:
    apps = AppDeviceStore(pg_store.engine, clock=pg_store.clock)
    owner = await pg_store.create_account("o@example.com", "O", "h")
    assert owner is not None
    now = clock.now
    sessions = [SessionRow(token_hash(f"t{i}"), owner.id, "c", now, now, 0) for i in range(3)]
    linked = [
        await apps.open_session(s, AppLink(f"phone {i}", "ios")) for i, s in enumerate(sessions)
    ]
    cutoffs = {"idle_before": now.replace(year=2000), "created_before": now.replace(year=2000)}
    assert len(await apps.list_for(owner.id, **cutoffs)) == 3
    await pg_store.delete_session(sessions[0].token_hash)  # logout: the device goes too
    assert await apps.remove(owner.id, linked[1].id) == sessions[1].token_hash
    assert await pg_store.session_with_account(sessions[1].token_hash) is None
    assert await apps.remove("someone-else", linked[2].id) is None
    assert [d.name for d in await apps.list_for(owner.id, **cutoffs)] == ["phone 2"]
