"""Favorite groups through the real app (ORG-2, manual 5.5): 50 groups, the layouts and what
they hold, a camera once per group, rename / reorder / delete, the start page, and that only
cameras the viewer may see go in (a shared user's groups are their own)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relay.store import Store
from relay.store.organise import MAX_FAVORITES
from tests.relay.conftest import OWNER, Client, bearer, error_of
from tests.relay.org_kit import shared_user, site

FAVORITES = "/api/v1/favorites"


async def _owner(
    client: Client, sign_up: Callable[..., Any], login: Callable[..., Any], email: str = OWNER
) -> tuple[str, str]:
    account_id = await sign_up(email, "Owner")
    return account_id, str((await login(email))["token"])


async def _group(
    client: Client, token: str, name: str, layout: str = "4", cameras: list[Any] | None = None
) -> dict[str, Any]:
    body = {"name": name, "layout": layout, "cameras": cameras or []}
    resp = await client.post(FAVORITES, json=body, headers=bearer(token))
    assert resp.status == 201, await resp.text()
    group: dict[str, Any] = await resp.json()
    return group


async def _put(client: Client, token: str, group: str, cameras: list[Any]) -> Any:
    return await client.put(
        f"{FAVORITES}/{group}/cameras", json={"cameras": cameras}, headers=bearer(token)
    )


async def _listing(client: Client, token: str) -> dict[str, Any]:
    resp = await client.get(FAVORITES, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def _ids(cameras: list[str]) -> list[dict[str, str]]:
    return [{"camera_id": c} for c in cameras]


# spec: ORG-2
async def test_at_most_50_groups(
    client: Client, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    _, token = await _owner(client, sign_up, login)
    for n in range(MAX_FAVORITES):
        await _group(client, token, f"G{n}")
    resp = await client.post(FAVORITES, json={"name": "more", "layout": "4"}, headers=bearer(token))
    assert await error_of(resp) == (409, 91103)
    body = await _listing(client, token)
    assert (len(body["groups"]), body["limit"]) == (MAX_FAVORITES, MAX_FAVORITES)
    first = body["groups"][0]["id"]
    assert (await client.delete(f"{FAVORITES}/{first}", headers=bearer(token))).status == 204
    await _group(client, token, "room again")


# spec: ORG-2
async def test_a_camera_once_per_group_and_layout_capacities(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    owner_id, token = await _owner(client, sign_up, login)
    _, cams = await site(store, owner_id, "Site", cameras=5)
    resp = await client.post(
        FAVORITES,
        json={"name": "Dup", "layout": "4", "cameras": _ids([cams[0], cams[0]])},
        headers=bearer(token),
    )
    assert await error_of(resp) == (409, 91104)
    assert (await _listing(client, token))["groups"] == []  # nothing half-made
    group = await _group(client, token, "Four", "4", _ids(cams[:2]))
    assert [c["slot"] for c in group["cameras"]] == [0, 1]
    assert group["capacity"] == 4
    gid = group["id"]
    assert await error_of(await _put(client, token, gid, _ids([cams[1], cams[1]]))) == (409, 91104)
    assert await error_of(await _put(client, token, gid, _ids(cams))) == (400, 91105)
    resp = await _put(client, token, gid, [{"camera_id": cams[0], "slot": 4}])
    assert await error_of(resp) == (400, 91001)
    resp = await _put(client, token, gid, [{"camera_id": cams[0], "slot": 3}, *_ids(cams[1:3])])
    assert [(c["camera_id"], c["slot"]) for c in (await resp.json())["cameras"]] == [
        (cams[1], 0),
        (cams[2], 1),
        (cams[0], 3),
    ]
    for layout, expected in (("9", 200), ("custom", 200), ("4", 200)):
        resp = await client.patch(
            f"{FAVORITES}/{gid}", json={"layout": layout}, headers=bearer(token)
        )
        assert resp.status == expected, await resp.text()
    body = await resp.json()
    assert [c["slot"] for c in body["cameras"]] == [0, 1, 2]
    resp = await client.patch(f"{FAVORITES}/{gid}", json={"layout": "5"}, headers=bearer(token))
    assert await error_of(resp) == (400, 91001)
    nine = await _group(client, token, "Nine", "9", _ids(cams))
    resp = await client.patch(
        f"{FAVORITES}/{nine['id']}", json={"layout": "4"}, headers=bearer(token)
    )
    assert await error_of(resp) == (400, 91105)


# spec: ORG-2
async def test_custom_layout_places_and_sizes_tiles(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    owner_id, token = await _owner(client, sign_up, login)
    _, cams = await site(store, owner_id, "Site", cameras=2)
    tiles = [
        {"camera_id": cams[0], "x": 0, "y": 0, "w": 700, "h": 700},
        {"camera_id": cams[1], "x": 600, "y": 600, "w": 400, "h": 400},
    ]
    group = await _group(client, token, "Wall", "custom", tiles)
    assert [(c["x"], c["y"], c["w"], c["h"]) for c in group["cameras"]] == [
        (0, 0, 700, 700),
        (600, 600, 400, 400),
    ]
    for bad in (
        [{"camera_id": cams[0]}],
        [{"camera_id": cams[0], "x": 500, "y": 0, "w": 501, "h": 10}],
        [{"camera_id": cams[0], "x": 0, "y": 0, "w": 0, "h": 10}],
    ):
        assert await error_of(await _put(client, token, group["id"], bad)) == (400, 91001)


# spec: ORG-2
async def test_rename_reorder_delete_and_start_page(
    client: Client, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    _, token = await _owner(client, sign_up, login)
    a, b, c = [(await _group(client, token, name))["id"] for name in ("A", "B", "C")]
    resp = await client.patch(f"{FAVORITES}/{b}", json={"name": "Bee"}, headers=bearer(token))
    assert (await resp.json())["name"] == "Bee"
    resp = await client.patch(f"{FAVORITES}/{b}", json={"name": ""}, headers=bearer(token))
    assert await error_of(resp) == (400, 400249)
    resp = await client.post(
        f"{FAVORITES}/order", json={"groups": [c, a, b]}, headers=bearer(token)
    )
    assert [g["name"] for g in (await resp.json())["groups"]] == ["C", "A", "Bee"]
    for wrong in ([c, a], [c, a, b, b], [c, a, "nope"]):
        resp = await client.post(
            f"{FAVORITES}/order", json={"groups": wrong}, headers=bearer(token)
        )
        assert await error_of(resp) == (400, 91001)
    for target in (a, c):
        resp = await client.patch(
            f"{FAVORITES}/{target}", json={"start_page": True}, headers=bearer(token)
        )
        assert resp.status == 200
    body = await _listing(client, token)
    assert body["start_page"] == c
    assert [g["start_page"] for g in body["groups"]] == [True, False, False]  # one at a time
    assert (await client.delete(f"{FAVORITES}/{c}", headers=bearer(token))).status == 204
    body = await _listing(client, token)
    assert ([g["name"] for g in body["groups"]], body["start_page"]) == (["A", "Bee"], None)
    resp = await client.delete(f"{FAVORITES}/{c}", headers=bearer(token))
    assert await error_of(resp) == (404, 91007)


# spec: ORG-2
async def test_another_viewers_groups_and_cameras_are_not_found(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    owner_id, token = await _owner(client, sign_up, login)
    _, mine = await site(store, owner_id, "Mine")
    group = (await _group(client, token, "Mine", "4", _ids(mine)))["id"]
    other_id, other = await _owner(client, sign_up, login, "other@example.com")
    _, theirs = await site(store, other_id, "Theirs")
    h = bearer(other)
    for resp in (
        await client.get(f"{FAVORITES}/{group}", headers=h),
        await client.patch(f"{FAVORITES}/{group}", json={"name": "x"}, headers=h),
        await _put(client, other, group, _ids(theirs)),
        await client.delete(f"{FAVORITES}/{group}", headers=h),
    ):
        assert await error_of(resp) == (404, 91007)
    resp = await client.post(f"{FAVORITES}/order", json={"groups": [group]}, headers=h)
    assert await error_of(resp) == (400, 91001)  # not one of theirs: not their full list
    resp = await client.post(
        FAVORITES, json={"name": "x", "layout": "4", "cameras": _ids(mine)}, headers=h
    )
    assert await error_of(resp) == (404, 91007)
    assert (await _listing(client, other))["groups"] == []
    assert [c["camera_id"] for c in (await _listing(client, token))["groups"][0]["cameras"]] == mine


# spec: ORG-2, USER-7
async def test_shared_users_have_their_own_groups_of_shared_cameras_only(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    owner_id, token = await _owner(client, sign_up, login)
    _, cams = await site(store, owner_id, "Site", cameras=3)
    await _group(client, token, "Owner's", "4", _ids(cams))
    user_id, user = await shared_user(client, token, login, 1, cams[:2])
    assert (await _listing(client, user))["groups"] == []  # not the subscriber's groups
    resp = await client.post(
        FAVORITES, json={"name": "Mine", "layout": "4", "cameras": _ids(cams)}, headers=bearer(user)
    )
    assert await error_of(resp) == (404, 91007)  # cams[2] is not shared with them
    group = await _group(client, user, "Mine", "4", _ids(cams[:2]))
    assert await error_of(await _put(client, user, group["id"], _ids([cams[2]]))) == (404, 91007)
    # Revoking a share hides the camera from the group at once.
    resp = await client.put(
        f"/api/v1/users/{user_id}/shares", json={"cameras": [cams[0]]}, headers=bearer(token)
    )
    assert resp.status == 200
    [mine] = (await _listing(client, user))["groups"]
    assert [c["camera_id"] for c in mine["cameras"]] == [cams[0]]
    owner_groups = (await _listing(client, token))["groups"]
    assert [g["name"] for g in owner_groups] == ["Owner's"]
    resp = await client.get(f"{FAVORITES}/{owner_groups[0]['id']}", headers=bearer(user))
    assert await error_of(resp) == (404, 91007)


# spec: ORG-2, CAM-2
async def test_the_subscriber_shares_a_groups_cameras(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    owner_id, token = await _owner(client, sign_up, login)
    _, cams = await site(store, owner_id, "Site", cameras=3)
    group = (await _group(client, token, "Entrance", "4", _ids(cams[:2])))["id"]
    user_id, user = await shared_user(client, token, login, 1, [cams[2]])
    url = f"{FAVORITES}/{group}/share"
    resp = await client.post(url, json={"users": [user_id]}, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["users"] == {user_id: sorted(cams)}  # added, nothing removed
    resp = await client.get(f"/api/v1/users/{user_id}", headers=bearer(token))
    assert sorted((await resp.json())["cameras"]) == sorted(cams)
    own = await _group(client, user, "Mine", "4", _ids(cams[:2]))  # now they may add them
    resp = await client.post(
        f"{FAVORITES}/{own['id']}/share", json={"users": [user_id]}, headers=bearer(user)
    )
    assert await error_of(resp) == (403, 91006)  # subscriber only
    resp = await client.post(url, json={"users": ["nobody"]}, headers=bearer(token))
    assert await error_of(resp) == (404, 91007)
    other_id, other = await _owner(client, sign_up, login, "other@example.com")
    resp = await client.post(url, json={"users": [user_id]}, headers=bearer(other))
    assert await error_of(resp) == (404, 91007)
    assert other_id


# spec: ORG-1, ORG-2
async def test_every_organise_route_is_in_the_openapi_document(client: Client) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    expected = {
        ("/api/v1/folders", "get"),
        ("/api/v1/folders", "post"),
        ("/api/v1/folders", "delete"),
        ("/api/v1/folders/devices", "get"),
        ("/api/v1/folders/{folder_id}", "patch"),
        ("/api/v1/folders/{folder_id}", "delete"),
        ("/api/v1/folders/{folder_id}/move", "post"),
        ("/api/v1/folders/{folder_id}/devices/{device_id}", "put"),
        ("/api/v1/folders/{folder_id}/devices/{device_id}", "delete"),
        ("/api/v1/favorites", "get"),
        ("/api/v1/favorites", "post"),
        ("/api/v1/favorites/order", "post"),
        ("/api/v1/favorites/{group_id}", "get"),
        ("/api/v1/favorites/{group_id}", "patch"),
        ("/api/v1/favorites/{group_id}", "delete"),
        ("/api/v1/favorites/{group_id}/cameras", "put"),
        ("/api/v1/favorites/{group_id}/share", "post"),
    }
    found = {
        (p, m) for p, ops in doc["paths"].items() for m in ops if "/api/v1/f" in p and m != "head"
    }
    assert found == expected
    assert "unassigned" in doc["paths"]["/api/v1/folders/{folder_id}"]["delete"]["summary"]
    assert all(doc["paths"][p][m]["security"] for p, m in expected)
