"""The ORG-1/ORG-2 store queries on a real PostgreSQL (fleet mode): the row-locked limits under
concurrent writers, the depth CHECK, the self-referencing cascade that unassigns sites, the
case-insensitive search with literal wildcards, and the share-filtered favorite listing. Uses the
throwaway cluster of test_store_postgres.py; skipped without it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from relay.store import Store
from relay.store.accounts import AccountStore
from relay.store.organise import MAX_CHILDREN, MAX_FAVORITES, FolderRow, OrganiseStore, Tile
from relay.store.schema import folders
from shared.models import CameraInventory
from tests.relay.conftest import FakeClock
from tests.relay.test_store_postgres import pg_socket, pg_store, pg_url

__all__ = ["pg_socket", "pg_store", "pg_url"]


async def _site(store: Store, owner_id: str, name: str, cameras: int, clock: FakeClock) -> str:
    grant = f"g-{uuid.uuid4()}"
    await store.create_grant(grant, owner_id, clock.now.replace(year=2031))
    device = await store.enroll_device(grant, name=name, public_key="00" * 32, agent_version="t")
    assert device is not None
    await store.upsert_inventory(
        device.id, [CameraInventory(local_id=f"c{i}") for i in range(cameras)]
    )
    return device.id


# spec: ORG-1
async def test_postgres_folder_limits_moves_and_deletes(pg_store: Store, clock: FakeClock) -> None:
    org = OrganiseStore(pg_store.engine, clock=pg_store.clock)
    owner = await pg_store.create_account("o@example.com", "O", "h")
    assert owner is not None
    top = await org.create_folder(owner.id, "Top", None)
    assert isinstance(top, FolderRow)
    # 120 concurrent creations under one parent: the row lock lets exactly 100 through.
    made = await asyncio.gather(
        *(org.create_folder(owner.id, f"F{n:03d}", top.id) for n in range(MAX_CHILDREN + 20))
    )
    assert sum(isinstance(m, FolderRow) for m in made) == MAX_CHILDREN
    assert sum(m == "limit" for m in made) == 20
    children = [m for m in made if isinstance(m, FolderRow)]
    assert sorted(c.position for c in children) == list(range(MAX_CHILDREN))
    mid = children[0]
    leaf = await org.create_folder(owner.id, "Leaf", mid.id)
    assert isinstance(leaf, FolderRow)
    assert leaf.depth == 3
    assert await org.create_folder(owner.id, "Deep", leaf.id) == "depth"
    async with pg_store.engine.begin() as conn:  # the CHECK backs the code up
        with pytest.raises(IntegrityError):
            await conn.execute(
                insert(folders).values(
                    id=str(uuid.uuid4()),
                    owner_id=owner.id,
                    parent_id=leaf.id,
                    name="x",
                    depth=4,
                    position=0,
                )
            )
    assert await org.move_folder(owner.id, top.id, leaf.id, None) == "cycle"
    assert await org.move_folder(owner.id, mid.id, None, 0) == "ok"  # mid and leaf rise a level
    tree = {f.name: f for f in await org.folder_tree(owner.id)}
    assert (tree[mid.name].depth, tree["Leaf"].depth, tree[mid.name].position) == (1, 2, 0)
    berlin = await _site(pg_store, owner.id, "Berlin_Shop", 1, clock)
    paris = await _site(pg_store, owner.id, "paris", 1, clock)
    assert await org.link_device(owner.id, leaf.id, berlin)
    assert await org.link_device(owner.id, mid.id, paris)
    found = await org.folder_devices(owner.id, search="N_S")
    assert [(d.name, f) for d, f in found] == [("Berlin_Shop", leaf.id)]
    assert await org.folder_devices(owner.id, search="n%s") == []
    # Deleting mid deletes Leaf (cascade on parent_id) and unassigns both sites.
    assert sorted(await org.delete_folder(owner.id, mid.id) or []) == sorted([berlin, paris])
    assert [d.name for d, _ in await org.folder_devices(owner.id, unassigned=True)] == [
        "Berlin_Shop",
        "paris",
    ]
    assert "Leaf" not in {f.name for f in await org.folder_tree(owner.id)}
    other = await pg_store.create_account("x@example.com", "X", "h")
    assert other is not None
    assert await org.delete_folder(other.id, top.id) is None
    assert not await org.link_device(other.id, top.id, berlin)


# spec: ORG-2
async def test_postgres_favorites_limit_tiles_and_visibility(
    pg_store: Store, clock: FakeClock
) -> None:
    org = OrganiseStore(pg_store.engine, clock=pg_store.clock)
    accounts = AccountStore(pg_store.engine, clock=pg_store.clock)
    owner = await pg_store.create_account("o@example.com", "O", "h")
    assert owner is not None
    made = await asyncio.gather(
        *(org.create_favorite(owner.id, f"G{n}", "4") for n in range(MAX_FAVORITES + 5))
    )
    assert made.count("limit") == 5
    groups = await org.favorites(owner)
    assert sorted(g.position for g in groups) == list(range(MAX_FAVORITES))
    await _site(pg_store, owner.id, "s", 3, clock)
    cams = [c.id for c in (await pg_store.list_devices_for(owner.id))[0].cameras]
    group = groups[0].id
    tiles = [Tile(c, i) for i, c in enumerate(cams)]
    assert await org.set_favorite_tiles(owner.id, group, tiles) == "ok"
    assert await org.update_favorite(owner.id, group, layout="custom") == "ok"
    placed = await org.favorite(owner, group)
    assert placed is not None
    assert [(t.x, t.y, t.w) for t in placed.tiles] == [(0, 0, 500), (500, 0, 500), (0, 500, 500)]
    assert await org.update_favorite(owner.id, group, start_page=True) == "ok"
    assert await org.update_favorite(owner.id, groups[1].id, start_page=True) == "ok"
    assert [g.id for g in await org.favorites(owner) if g.start_page] == [groups[1].id]
    ids = [g.id for g in groups]
    assert await org.reorder_favorites(owner.id, ids[::-1])
    assert not await org.reorder_favorites(owner.id, ids[1:])
    assert (await org.favorites(owner))[0].id == ids[-1]
    user = await accounts.create_shared_user(
        owner.id,
        email="u@example.com",
        name="U",
        password_hash="h",
        group_no=4,
        allow_device_settings=False,
        privacy_guard=False,
        limit=10,
    )
    assert not isinstance(user, str)
    assert await accounts.set_shares(owner.id, user.id, cams[:2], per_camera=10) == []
    mine = await org.create_favorite(user.id, "U's", "9")
    assert mine != "limit"
    assert await org.set_favorite_tiles(user.id, mine, tiles) == "ok"  # the API checks access
    assert await org.set_favorite_tiles(user.id, group, tiles) == "not_found"
    assert await org.favorite(user, group) is None
    shown = await org.favorite(user, mine)
    assert shown is not None
    assert [t.camera_id for t in shown.tiles] == cams[:2]  # cams[2] is not shared: hidden
    assert await org.delete_favorite(owner.id, mine) is False
    assert await org.delete_favorite(user.id, mine) is True
