"""The folder tree through the real app (ORG-1, manual 4.4): 3 levels, 100 sub-folders per
folder, device links (a site in at most one folder), the unassigned filter, name search,
reordering and moving, what deleting does to the sites, and who may see and change what."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relay.store import Store
from relay.store.organise import MAX_CHILDREN
from tests.relay.conftest import OWNER, Client, bearer, error_of
from tests.relay.org_kit import shared_user, site

FOLDERS = "/api/v1/folders"


async def _owner(
    client: Client, sign_up: Callable[..., Any], login: Callable[..., Any], email: str = OWNER
) -> tuple[str, str]:
    """(account id, token) of a fresh subscriber."""
    account_id = await sign_up(email, "Owner")
    return account_id, str((await login(email))["token"])


async def _folder(client: Client, token: str, name: str, parent: str | None = None) -> str:
    resp = await client.post(
        FOLDERS, json={"name": name, "parent_id": parent}, headers=bearer(token)
    )
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def _tree(client: Client, token: str) -> list[dict[str, Any]]:
    resp = await client.get(FOLDERS, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    folders: list[dict[str, Any]] = (await resp.json())["folders"]
    return folders


async def _devices(client: Client, token: str, query: str = "") -> list[str]:
    resp = await client.get(f"{FOLDERS}/devices{query}", headers=bearer(token))
    assert resp.status == 200, await resp.text()
    return [d["name"] for d in (await resp.json())["devices"]]


async def _link(client: Client, token: str, folder: str, device: str) -> int:
    resp = await client.put(f"{FOLDERS}/{folder}/devices/{device}", headers=bearer(token))
    return resp.status


async def _move(client: Client, token: str, folder: str, **body: Any) -> Any:
    return await client.post(f"{FOLDERS}/{folder}/move", json=body, headers=bearer(token))


# spec: ORG-1
async def test_three_levels_deep_counting_moved_subtrees(
    client: Client, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    _, token = await _owner(client, sign_up, login)
    a = await _folder(client, token, "A")
    b = await _folder(client, token, "B", a)
    c = await _folder(client, token, "C", b)
    resp = await client.post(FOLDERS, json={"name": "D", "parent_id": c}, headers=bearer(token))
    assert await error_of(resp) == (400, 91101)
    x = await _folder(client, token, "X")
    await _folder(client, token, "Y", x)  # X is two levels tall
    assert await error_of(await _move(client, token, x, parent_id=b)) == (400, 91101)
    assert await error_of(await _move(client, token, a, parent_id=c)) == (400, 91001)  # cycle
    assert (await _move(client, token, x, parent_id=a)).status == 200
    tree = await _tree(client, token)
    assert [(f["name"], f["depth"]) for f in tree] == [
        ("A", 1),
        ("B", 2),
        ("C", 3),
        ("X", 2),
        ("Y", 3),
    ]
    for body, code in (({"name": ""}, 400249), ({"name": "n" * 33}, 400250)):
        resp = await client.post(FOLDERS, json=body, headers=bearer(token))
        assert await error_of(resp) == (400, code)


# spec: ORG-1
async def test_at_most_100_sub_folders_per_folder(
    client: Client, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    _, token = await _owner(client, sign_up, login)
    full = await _folder(client, token, "Full")
    children = [await _folder(client, token, f"F{n:03d}", full) for n in range(MAX_CHILDREN)]
    resp = await client.post(
        FOLDERS, json={"name": "one more", "parent_id": full}, headers=bearer(token)
    )
    assert await error_of(resp) == (409, 91102)
    outsider = await _folder(client, token, "Outsider")
    assert await error_of(await _move(client, token, outsider, parent_id=full)) == (409, 91102)
    # Reordering inside the full folder is not adding to it.
    resp = await _move(client, token, children[-1], parent_id=full, position=0)
    assert resp.status == 200, await resp.text()
    names = [f["name"] for f in await _tree(client, token) if f["parent_id"] == full]
    assert names[:2] == [f"F{MAX_CHILDREN - 1:03d}", "F000"]
    assert len(names) == MAX_CHILDREN


# spec: ORG-1
async def test_reorder_and_rename(
    client: Client, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    _, token = await _owner(client, sign_up, login)
    a, b, c = [await _folder(client, token, name) for name in "ABC"]
    assert (await _move(client, token, c, parent_id=None, position=0)).status == 200
    assert [(f["name"], f["position"]) for f in await _tree(client, token)] == [
        ("C", 0),
        ("A", 1),
        ("B", 2),
    ]
    assert (await _move(client, token, c, parent_id=None, position=99)).status == 200
    assert [f["name"] for f in await _tree(client, token)] == ["A", "B", "C"]
    resp = await client.patch(f"{FOLDERS}/{a}", json={"name": "Alpha"}, headers=bearer(token))
    assert (await resp.json())["name"] == "Alpha"
    assert [f["name"] for f in await _tree(client, token)] == ["Alpha", "B", "C"]
    assert b != c


# spec: ORG-1
async def test_links_unassigned_filter_and_search(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    owner_id, token = await _owner(client, sign_up, login)
    shop, _ = await site(store, owner_id, "Berlin Shop")
    depot, _ = await site(store, owner_id, "berlin depot")
    await site(store, owner_id, "Paris 100%")
    one, two = await _folder(client, token, "One"), await _folder(client, token, "Two")
    assert await _link(client, token, one, shop) == 200
    assert await _devices(client, token, "?unassigned=true") == ["berlin depot", "Paris 100%"]
    assert await _devices(client, token, "?q=BERLIN") == ["berlin depot", "Berlin Shop"]
    assert await _devices(client, token, "?q=berlin&unassigned=true") == ["berlin depot"]
    assert await _devices(client, token, "?q=0%25") == ["Paris 100%"]  # % is literal
    assert await _devices(client, token, "?q=_") == []
    # A site is in at most one folder: linking it elsewhere moves it.
    assert await _link(client, token, two, shop) == 200
    tree = {f["name"]: f["devices"] for f in await _tree(client, token)}
    assert tree == {"One": [], "Two": [shop]}
    resp = await client.delete(f"{FOLDERS}/{one}/devices/{shop}", headers=bearer(token))
    assert await error_of(resp) == (404, 91007)  # not in that folder
    resp = await client.delete(f"{FOLDERS}/{two}/devices/{shop}", headers=bearer(token))
    assert resp.status == 204
    assert await _devices(client, token, "?unassigned=1") == [
        "berlin depot",
        "Berlin Shop",
        "Paris 100%",
    ]
    resp = await client.get(f"{FOLDERS}/devices?unassigned=maybe", headers=bearer(token))
    assert await error_of(resp) == (400, 91001)
    assert depot


# spec: ORG-1
async def test_deleting_a_folder_unassigns_its_sites_and_deletes_its_sub_folders(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    owner_id, token = await _owner(client, sign_up, login)
    d1, _ = await site(store, owner_id, "S1")
    d2, _ = await site(store, owner_id, "S2")
    d3, _ = await site(store, owner_id, "S3")
    top = await _folder(client, token, "Top")
    sub = await _folder(client, token, "Sub", top)
    keep = await _folder(client, token, "Keep")
    for folder, device in ((top, d1), (sub, d2), (keep, d3)):
        assert await _link(client, token, folder, device) == 200
    resp = await client.delete(f"{FOLDERS}/{top}", headers=bearer(token))
    assert resp.status == 200
    assert sorted((await resp.json())["unassigned"]) == sorted([d1, d2])
    assert [f["name"] for f in await _tree(client, token)] == ["Keep"]
    assert await _devices(client, token, "?unassigned=true") == ["S1", "S2"]
    assert len(await store.list_devices_for(owner_id)) == 3  # sites are never deleted
    resp = await client.delete(f"{FOLDERS}/{sub}", headers=bearer(token))
    assert await error_of(resp) == (404, 91007)
    resp = await client.delete(FOLDERS, headers=bearer(token))  # delete all (manual 4.4.4)
    assert (await resp.json())["unassigned"] == [d3]
    assert await _tree(client, token) == []
    assert await _devices(client, token, "?unassigned=true") == ["S1", "S2", "S3"]


# spec: ORG-1
async def test_another_subscribers_folders_and_sites_are_not_found(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    owner_id, token = await _owner(client, sign_up, login)
    mine = await _folder(client, token, "Mine")
    my_site, _ = await site(store, owner_id, "My site")
    assert await _link(client, token, mine, my_site) == 200
    other_id, other = await _owner(client, sign_up, login, "other@example.com")
    theirs = await _folder(client, other, "Theirs")
    their_site, _ = await site(store, other_id, "Their site")
    h = bearer(other)
    for resp in (
        await client.patch(f"{FOLDERS}/{mine}", json={"name": "x"}, headers=h),
        await _move(client, other, mine, parent_id=None),
        await _move(client, other, theirs, parent_id=mine),
        await client.post(FOLDERS, json={"name": "x", "parent_id": mine}, headers=h),
        await client.delete(f"{FOLDERS}/{mine}", headers=h),
        await client.put(f"{FOLDERS}/{mine}/devices/{their_site}", headers=h),
        await client.put(f"{FOLDERS}/{theirs}/devices/{my_site}", headers=h),
        await client.delete(f"{FOLDERS}/{mine}/devices/{my_site}", headers=h),
    ):
        assert await error_of(resp) == (404, 91007)
    assert [f["name"] for f in await _tree(client, other)] == ["Theirs"]
    assert await _devices(client, other) == ["Their site"]
    assert await client.delete(FOLDERS, headers=h) is not None
    assert [f["devices"] for f in await _tree(client, token)] == [[my_site]]  # untouched


# spec: ORG-1
async def test_shared_users_read_a_pruned_tree_and_cannot_change_it(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    owner_id, token = await _owner(client, sign_up, login)
    seen, seen_cameras = await site(store, owner_id, "Seen")
    hidden, _ = await site(store, owner_id, "Hidden")
    top = await _folder(client, token, "Top")
    sub = await _folder(client, token, "Sub", top)
    other_top = await _folder(client, token, "Other")
    assert await _link(client, token, sub, seen) == 200
    assert await _link(client, token, top, hidden) == 200
    assert await _link(client, token, other_top, hidden) == 200  # hidden moves to Other
    _, user = await shared_user(client, token, login, 1, seen_cameras)
    resp = await client.get(FOLDERS, headers=bearer(user))
    body = await resp.json()
    assert body["editable"] is False
    assert [(f["name"], f["devices"]) for f in body["folders"]] == [("Top", []), ("Sub", [seen])]
    assert await _devices(client, user) == ["Seen"]
    assert await _devices(client, user, "?unassigned=true") == []
    h = bearer(user)
    for resp in (
        await client.post(FOLDERS, json={"name": "x"}, headers=h),
        await client.patch(f"{FOLDERS}/{top}", json={"name": "x"}, headers=h),
        await _move(client, user, sub, parent_id=None),
        await client.delete(f"{FOLDERS}/{top}", headers=h),
        await client.delete(FOLDERS, headers=h),
        await client.put(f"{FOLDERS}/{top}/devices/{seen}", headers=h),
        await client.delete(f"{FOLDERS}/{sub}/devices/{seen}", headers=h),
    ):
        assert await error_of(resp) == (403, 91006)
    assert len(await _tree(client, token)) == 3
