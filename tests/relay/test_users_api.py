"""Shared users, shares and permission groups through the real app: limits, validation codes,
subscriber-only rights and the forced re-login when a user's rights change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from relay.store import Store
from relay.web.keys import AUTH_KEY
from shared.models import CameraInventory
from tests.relay.conftest import OWNER, PASSWORD, Client, add_site, bearer, error_of

USERS = "/api/v1/users"
GROUPS = "/api/v1/permission-groups"


async def _owner(client: Client, sign_up: Callable[..., Any], login: Callable[..., Any]) -> str:
    await sign_up()
    return str((await login())["token"])


async def _cameras(
    store: Store, owner_email: str = OWNER, count: int = 2, *, guarded: int = 0
) -> list[str]:
    """``count`` cameras on a new site; the last ``guarded`` have AI privacy guard applied."""
    owner = await store.get_account_by_email(owner_email)
    assert owner is not None
    inventory = [
        CameraInventory(
            local_id=f"c{i}", capabilities=["privacy_guard"] if i >= count - guarded else []
        )
        for i in range(count)
    ]
    _, ids = await add_site(store, owner.id, "site", inventory)
    return list(ids.values())


async def _user(client: Client, token: str, n: int, **extra: Any) -> str:
    body = {"email": f"u{n}@example.com", "name": f"User {n}", **extra}
    resp = await client.post(USERS, json=body, headers=bearer(token))
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


# spec: USER-6
@pytest.mark.parametrize("settings_overrides", [{"max_shared_users": 3}])
async def test_shared_user_limit_and_validation_codes(
    client: Client,
    sign_up: Callable[..., Any],
    login: Callable[..., Any],
    settings_overrides: dict[str, Any],
) -> None:
    token = await _owner(client, sign_up, login)
    for body, expected in (
        ({"email": "a@example.com", "name": ""}, (400, 400249)),
        ({"email": "a@example.com", "name": "n" * 33}, (400, 400250)),
        ({"email": OWNER, "name": "Me again"}, (409, 400229)),
        ({"email": "nope", "name": "N"}, (400, 91004)),
    ):
        assert (
            await error_of(await client.post(USERS, json=body, headers=bearer(token))) == expected
        )
    for n in range(3):
        await _user(client, token, n)
    resp = await client.post(
        USERS, json={"email": "x@example.com", "name": "X"}, headers=bearer(token)
    )
    assert await error_of(resp) == (409, 50303)
    resp = await client.post(
        USERS, json={"email": "u0@example.com", "name": "Dup"}, headers=bearer(token)
    )
    assert await error_of(resp) == (409, 400229)
    listing = await (await client.get(USERS, headers=bearer(token))).json()
    assert listing["limit"] == 3
    assert [u["cameras"] for u in listing["users"]] == [[], [], []]  # nothing shared at creation


# spec: CAM-2, USER-7
@pytest.mark.parametrize("settings_overrides", [{"max_users_per_camera": 2}])
async def test_shares_are_limited_per_camera_and_owned_cameras_only(
    client: Client,
    store: Store,
    sign_up: Callable[..., Any],
    login: Callable[..., Any],
    settings_overrides: dict[str, Any],
) -> None:
    token = await _owner(client, sign_up, login)
    mine = await _cameras(store)
    await sign_up("other@example.com", "Other")
    theirs = await _cameras(store, "other@example.com", 1)
    users = [await _user(client, token, n) for n in range(3)]
    for user in users[:2]:
        resp = await client.put(
            f"{USERS}/{user}/shares", json={"cameras": mine}, headers=bearer(token)
        )
        assert resp.status == 200
        assert sorted((await resp.json())["cameras"]) == sorted(mine)
    url = f"{USERS}/{users[2]}/shares"
    resp = await client.put(url, json={"cameras": mine[:1]}, headers=bearer(token))
    assert await error_of(resp) == (409, 91013)
    resp = await client.put(url, json={"cameras": theirs}, headers=bearer(token))
    assert await error_of(resp) == (404, 91007)
    other = str((await login("other@example.com"))["token"])
    resp = await client.put(url, json={"cameras": theirs}, headers=bearer(other))
    assert await error_of(resp) == (404, 91007)  # another subscriber's user
    assert await error_of(await client.get(f"{USERS}/{users[0]}", headers=bearer(other))) == (
        404,
        91007,
    )


# spec: USER-8
async def test_permission_groups_editable_but_never_subscriber_rights(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    token = await _owner(client, sign_up, login)
    groups = (await (await client.get(GROUPS, headers=bearer(token))).json())["groups"]
    assert [g["number"] for g in groups] == [1, 2, 3, 4]
    assert all("live" in g["permissions"] for g in groups)
    bad = [{**g, "permissions": [*g["permissions"], "device_management"]} for g in groups]
    resp = await client.put(GROUPS, json={"groups": bad}, headers=bearer(token))
    assert await error_of(resp) == (403, 91006)
    renamed = [{**g, "name": f"Team {g['number']}", "permissions": []} for g in groups]
    resp = await client.put(GROUPS, json={"groups": renamed}, headers=bearer(token))
    assert resp.status == 200
    saved = (await resp.json())["groups"]
    assert [(g["name"], g["permissions"]) for g in saved] == [
        (f"Team {n}", ["live"]) for n in range(1, 5)
    ]
    resp = await client.put(GROUPS, json={"groups": renamed[:3]}, headers=bearer(token))
    assert await error_of(resp) == (400, 91001)


# spec: USER-3, USER-8
async def test_rights_change_forces_the_shared_user_to_log_in_again(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    token = await _owner(client, sign_up, login)
    user_id = await _user(client, token, 1)
    auth = client.app[AUTH_KEY]
    await auth.accounts.set_password(user_id, await auth.hash_password(PASSWORD))
    session = str((await login("u1@example.com"))["token"])
    assert (await client.get("/api/v1/devices", headers=bearer(session))).status == 200
    resp = await client.patch(f"{USERS}/{user_id}", json={"name": "Renamed"}, headers=bearer(token))
    assert (await resp.json())["name"] == "Renamed"
    assert (await client.get("/api/v1/devices", headers=bearer(session))).status == 200
    resp = await client.patch(f"{USERS}/{user_id}", json={"group": 1}, headers=bearer(token))
    assert (await resp.json())["group"] == 1
    resp = await client.get("/api/v1/devices", headers=bearer(session))
    assert await error_of(resp) == (401, 50205)


async def _visible(client: Client, session: str) -> list[str]:
    listing = await (await client.get("/api/v1/devices", headers=bearer(session))).json()
    return sorted(c["id"] for d in listing["devices"] for c in d["cameras"])


# spec: USER-6
async def test_privacy_guard_flag_decides_which_cameras_a_user_can_be_shared(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    """Manual 4.3.2: a user with AI privacy guard ON may only be shared cameras with privacy
    guard applied, OFF only the others; flipping the flag drops the shares that no longer fit,
    and a favorite's share leaves the misfits out."""
    token = await _owner(client, sign_up, login)
    plain, guarded = await _cameras(store, count=2, guarded=1)
    on = await _user(client, token, 1, privacy_guard=True)
    off = await _user(client, token, 2)
    auth = client.app[AUTH_KEY]
    for user in (on, off):
        await auth.accounts.set_password(user, await auth.hash_password(PASSWORD))

    async def put(user: str, cams: list[str]) -> Any:
        url = f"{USERS}/{user}/shares"
        return await client.put(url, json={"cameras": cams}, headers=bearer(token))

    assert await error_of(await put(on, [plain, guarded])) == (409, 91016)
    assert await error_of(await put(off, [guarded])) == (409, 91016)
    assert (await put(on, [guarded])).status == 200
    assert (await put(off, [plain])).status == 200
    on_session = str((await login("u1@example.com"))["token"])
    assert await _visible(client, on_session) == [guarded]
    assert (await client.get(f"/api/v1/cameras/{plain}", headers=bearer(on_session))).status == 404
    # OFF now: the guarded share no longer fits and is gone; the user logs in again (50205)
    resp = await client.patch(f"{USERS}/{on}", json={"privacy_guard": False}, headers=bearer(token))
    assert (await resp.json())["cameras"] == []
    on_session = str((await login("u1@example.com"))["token"])
    assert await _visible(client, on_session) == []
    # a favorite of both cameras shared with both users: each gets only what fits
    resp = await client.patch(f"{USERS}/{on}", json={"privacy_guard": True}, headers=bearer(token))
    assert resp.status == 200
    body = {
        "name": "Both",
        "layout": "4",
        "cameras": [{"camera_id": plain}, {"camera_id": guarded}],
    }
    fav = await client.post("/api/v1/favorites", json=body, headers=bearer(token))
    assert fav.status == 201, await fav.text()
    group = (await fav.json())["id"]
    resp = await client.post(
        f"/api/v1/favorites/{group}/share", json={"users": [on, off]}, headers=bearer(token)
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["users"] == {on: [guarded], off: [plain]}
