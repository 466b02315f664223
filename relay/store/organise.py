"""Store queries for ORG-1 (a subscriber's folder tree and device links) and ORG-2 (each
viewer's favorite groups).

A third query class over the same engine, like :class:`relay.store.accounts.AccountStore`.
The limits (3 levels, 100 sub-folders per folder, 50 favorite groups) must hold with two relays
writing at once, so each is checked inside the write transaction that could break it, after
locking the owning account's row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN
IMMEDIATE`` already serialises writers). The depth is also a CHECK constraint in the schema.

Every query names the owner: a folder, device or favorite group of another account is "not
found", never "forbidden", so ids of other subscribers are not confirmed.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, cast

from sqlalchemy import ColumnElement, and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.permissions import privacy_fits
from relay.store.queries import Queries
from relay.store.rows import AccountRow, DeviceRow
from relay.store.schema import (
    accounts,
    camera_shares,
    cameras,
    devices,
    favorite_cameras,
    favorite_groups,
    folder_devices,
    folders,
)

MAX_DEPTH = 3  # ORG-1 / manual 4.4: folders up to 3 levels deep
MAX_CHILDREN = 100  # ORG-1 / manual 4.4: up to 100 folders linked to one folder (or the account)
MAX_FAVORITES = 50  # ORG-2 / manual 5.5.1: up to 50 favorite groups per viewer
#: ORG-2 layouts and how many cameras each holds. "custom" is free position and size; its cap
#: is the live screen's 40 cameras (manual 5.3.2).
LAYOUTS: dict[str, int] = {"4": 4, "9": 9, "12": 12, "16": 16, "30": 30, "custom": 40}
CANVAS = 1000  # custom tiles are placed in thousandths of the canvas

Layout = Literal["4", "9", "12", "16", "30", "custom"]
FolderRefusal = Literal["not_found", "depth", "limit", "cycle"]


@dataclass(frozen=True)
class FolderRow:
    """One folder of a subscriber's tree, with the devices linked to it (by device id)."""

    id: str
    parent_id: str | None
    name: str
    depth: int
    position: int
    devices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tile:
    """A camera in a favorite group: its split-layout slot, or a custom tile's place and size."""

    camera_id: str
    slot: int
    x: int | None = None
    y: int | None = None
    w: int | None = None
    h: int | None = None


@dataclass(frozen=True)
class FavoriteGroup:
    """A favorite group with the cameras in it that its viewer may still see, by slot."""

    id: str
    name: str
    layout: Layout
    position: int
    start_page: bool
    tiles: tuple[Tile, ...]


class OrganiseStore(Queries):
    """Folders and favorites; each method one short transaction."""

    # -- folders (ORG-1) ----------------------------------------------------------------------

    async def folder_tree(self, owner_id: str) -> list[FolderRow]:
        """The subscriber's folders depth first (each folder followed by its sub-folders, siblings
        by position), each with its linked devices by name."""
        f, fd = folders.c, folder_devices.c
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    select(f.id, f.parent_id, f.name, f.depth, f.position)
                    .where(f.owner_id == owner_id)
                    .order_by(f.position, f.name, f.id)
                )
            ).all()
            links = (
                await conn.execute(
                    select(fd.folder_id, fd.device_id)
                    .join(devices, devices.c.id == fd.device_id)
                    .where(devices.c.account_id == owner_id)
                    .order_by(func.lower(devices.c.name), devices.c.id)
                )
            ).all()
        linked: dict[str, list[str]] = {}
        for link in links:
            linked.setdefault(link.folder_id, []).append(link.device_id)
        children: dict[str | None, list[FolderRow]] = {}
        for r in rows:
            row = FolderRow(r.id, r.parent_id, r.name, r.depth, r.position)
            children.setdefault(r.parent_id, []).append(row)
        out: list[FolderRow] = []

        def walk(parent: str | None) -> None:
            for row in children.get(parent, []):
                out.append(replace(row, devices=tuple(linked.get(row.id, []))))
                walk(row.id)

        walk(None)
        return out

    async def create_folder(
        self, owner_id: str, name: str, parent_id: str | None
    ) -> FolderRow | FolderRefusal:
        """Add a folder as the last child of ``parent_id`` (None: top level)."""
        async with self._write() as conn:
            await _lock_account(conn, owner_id)
            depth = 1
            if parent_id is not None:
                parent = await _folder_depth(conn, owner_id, parent_id)
                if parent is None:
                    return "not_found"
                depth = parent + 1
            if depth > MAX_DEPTH:
                return "depth"
            siblings = await _child_count(conn, owner_id, parent_id)
            if siblings >= MAX_CHILDREN:
                return "limit"
            last = await conn.scalar(
                select(func.max(folders.c.position)).where(_siblings(owner_id, parent_id))
            )
            position = 0 if last is None else int(last) + 1
            row = FolderRow(str(uuid.uuid4()), parent_id, name, depth, position)
            await conn.execute(
                insert(folders).values(
                    id=row.id,
                    owner_id=owner_id,
                    parent_id=parent_id,
                    name=name,
                    depth=depth,
                    position=row.position,
                )
            )
        return row

    async def rename_folder(self, owner_id: str, folder_id: str, name: str) -> bool:
        """Rename; False when the folder is not the subscriber's."""
        async with self._write() as conn:
            result = await conn.execute(
                update(folders)
                .where(folders.c.id == folder_id, folders.c.owner_id == owner_id)
                .values(name=name)
            )
        return bool(result.rowcount)

    async def move_folder(
        self, owner_id: str, folder_id: str, parent_id: str | None, position: int | None
    ) -> Literal["ok"] | FolderRefusal:
        """Move a folder (and its sub-tree) under ``parent_id`` at ``position`` among its new
        siblings (None or past the end: last); the siblings are renumbered 0…n-1. Refused when
        the sub-tree would go deeper than 3 levels, into itself, or into a full folder."""
        async with self._write() as conn:
            await _lock_account(conn, owner_id)
            depth = await _folder_depth(conn, owner_id, folder_id)
            if depth is None:
                return "not_found"
            levels = await _subtree(conn, folder_id)  # [[folder], [children], [grandchildren]]
            new_depth = 1
            if parent_id is not None:
                parent_depth = await _folder_depth(conn, owner_id, parent_id)
                if parent_depth is None:
                    return "not_found"
                if any(parent_id in level for level in levels):
                    return "cycle"
                new_depth = parent_depth + 1
            if new_depth + len(levels) - 1 > MAX_DEPTH:
                return "depth"
            current_parent = await conn.scalar(
                select(folders.c.parent_id).where(folders.c.id == folder_id)
            )
            siblings = list(
                (
                    await conn.scalars(
                        select(folders.c.id)
                        .where(_siblings(owner_id, parent_id), folders.c.id != folder_id)
                        .order_by(folders.c.position, folders.c.name, folders.c.id)
                    )
                ).all()
            )
            if current_parent != parent_id and len(siblings) >= MAX_CHILDREN:
                return "limit"
            at = len(siblings) if position is None else max(0, min(position, len(siblings)))
            siblings.insert(at, folder_id)
            shift = new_depth - depth
            if shift:
                for offset, level in enumerate(levels):
                    await conn.execute(
                        update(folders)
                        .where(folders.c.id.in_(level))
                        .values(depth=depth + offset + shift)
                    )
            await conn.execute(
                update(folders).where(folders.c.id == folder_id).values(parent_id=parent_id)
            )
            for index, sibling in enumerate(siblings):
                await conn.execute(
                    update(folders).where(folders.c.id == sibling).values(position=index)
                )
        return "ok"

    async def delete_folder(self, owner_id: str, folder_id: str | None) -> list[str] | None:
        """Delete one folder with its sub-folders, or every folder (``folder_id`` None: the
        manual's "delete all folders"). Their devices become unassigned, never deleted;
        returns those device ids, or None when the folder is not the subscriber's."""
        async with self._write() as conn:
            if folder_id is None:
                gone = set(
                    (
                        await conn.scalars(
                            select(folders.c.id).where(folders.c.owner_id == owner_id)
                        )
                    ).all()
                )
            else:
                if await _folder_depth(conn, owner_id, folder_id) is None:
                    return None
                gone = {fid for level in await _subtree(conn, folder_id) for fid in level}
            unassigned = sorted(
                (
                    await conn.scalars(
                        select(folder_devices.c.device_id).where(
                            folder_devices.c.folder_id.in_(gone)
                        )
                    )
                ).all()
            )
            # The foreign keys cascade too; explicit, so the unassigning does not hang on them.
            await conn.execute(delete(folder_devices).where(folder_devices.c.folder_id.in_(gone)))
            await conn.execute(delete(folders).where(folders.c.id.in_(gone)))
        return unassigned

    async def link_device(self, owner_id: str, folder_id: str, device_id: str) -> bool:
        """Put a device in a folder, moving it out of any other (a device is in at most one
        folder); False when the folder or the device is not the subscriber's."""
        async with self._write() as conn:
            if await _folder_depth(conn, owner_id, folder_id) is None:
                return False
            if not await _owns_device(conn, owner_id, device_id):
                return False
            await conn.execute(
                delete(folder_devices).where(folder_devices.c.device_id == device_id)
            )
            await conn.execute(
                insert(folder_devices).values(device_id=device_id, folder_id=folder_id)
            )
        return True

    async def unlink_device(self, owner_id: str, folder_id: str, device_id: str) -> bool:
        """Take a device out of this folder; False when it is not in it (or not theirs)."""
        async with self._write() as conn:
            if await _folder_depth(conn, owner_id, folder_id) is None:
                return False
            result = await conn.execute(
                delete(folder_devices).where(
                    folder_devices.c.device_id == device_id,
                    folder_devices.c.folder_id == folder_id,
                )
            )
        return bool(result.rowcount)

    async def folder_devices(
        self,
        owner_id: str,
        *,
        search: str = "",
        unassigned: bool = False,
        only: set[str] | None = None,
    ) -> list[tuple[DeviceRow, str | None]]:
        """The subscriber's devices by name (case-insensitive, the same order on SQLite and
        PostgreSQL), each with its folder (None: unassigned).

        ``search`` matches device names case-insensitively anywhere in the name (wildcards are
        literal); ``unassigned`` keeps devices in no folder (manual 4.4 ⑥); ``only`` limits the
        list to these device ids (a shared user's view)."""
        d = devices.c
        query = (
            select(devices, folder_devices.c.folder_id)
            .outerjoin(folder_devices, folder_devices.c.device_id == d.id)
            .where(d.account_id == owner_id)
            .order_by(func.lower(d.name), d.id)
        )
        if search:
            query = query.where(d.name.icontains(search, autoescape=True))
        if unassigned:
            query = query.where(folder_devices.c.folder_id.is_(None))
        if only is not None:
            query = query.where(d.id.in_(only))
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        out = []
        for row in rows:
            data = row._asdict()
            folder_id = data.pop("folder_id")
            out.append((DeviceRow(**data), folder_id))
        return out

    # -- favorites (ORG-2) --------------------------------------------------------------------

    async def favorites(self, viewer: AccountRow) -> list[FavoriteGroup]:
        """The viewer's groups by position, each with the cameras they may still see (a camera
        whose share was revoked stays stored but is not shown, so re-sharing brings it back)."""
        g = favorite_groups.c
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    select(g.id, g.name, g.layout, g.position, g.start_page)
                    .where(g.account_id == viewer.id)
                    .order_by(g.position, g.name, g.id)
                )
            ).all()
            tiles = await _visible_tiles(conn, viewer, [r.id for r in rows])
        return [
            FavoriteGroup(
                r.id, r.name, r.layout, r.position, bool(r.start_page), tiles.get(r.id, ())
            )
            for r in rows
        ]

    async def favorite(self, viewer: AccountRow, group_id: str) -> FavoriteGroup | None:
        """One of the viewer's groups; None when it is not theirs."""
        for group in await self.favorites(viewer):
            if group.id == group_id:
                return group
        return None

    async def create_favorite(
        self, account_id: str, name: str, layout: Layout
    ) -> str | Literal["limit"]:
        """A new, empty group at the end of the viewer's list; its id, or "limit" at 50."""
        g = favorite_groups.c
        group_id = str(uuid.uuid4())
        async with self._write() as conn:
            await _lock_account(conn, account_id)
            count = await conn.scalar(
                select(func.count()).select_from(favorite_groups).where(g.account_id == account_id)
            )
            if int(count or 0) >= MAX_FAVORITES:
                return "limit"
            last = await conn.scalar(select(func.max(g.position)).where(g.account_id == account_id))
            await conn.execute(
                insert(favorite_groups).values(
                    id=group_id,
                    account_id=account_id,
                    name=name,
                    layout=layout,
                    position=0 if last is None else int(last) + 1,
                    start_page=False,
                )
            )
        return group_id

    async def update_favorite(
        self,
        account_id: str,
        group_id: str,
        *,
        name: str | None = None,
        layout: Layout | None = None,
        start_page: bool | None = None,
    ) -> Literal["ok", "not_found", "full"]:
        """Rename, change the layout or set/clear the start-page flag (one group per viewer:
        setting it clears it on the others). A split layout smaller than the group's cameras
        is "full" (manual 5.5.5: change to a bigger layout instead); changing the layout
        renumbers the tiles in their order, giving a custom layout a grid to start from."""
        g = favorite_groups.c
        async with self._write() as conn:
            current = await conn.scalar(
                select(g.layout).where(g.id == group_id, g.account_id == account_id)
            )
            if current is None:
                return "not_found"
            values: dict[str, object] = {}
            if name is not None:
                values["name"] = name
            if layout is not None and layout != current:
                stored = await _stored_tiles(conn, group_id)
                if len(stored) > LAYOUTS[layout]:
                    return "full"
                await _replace_tiles(conn, group_id, _relayout(stored, layout))
                values["layout"] = layout
            if start_page is not None:
                if start_page:
                    await conn.execute(
                        update(favorite_groups)
                        .where(g.account_id == account_id, g.id != group_id)
                        .values(start_page=False)
                    )
                values["start_page"] = start_page
            if values:
                await conn.execute(update(favorite_groups).where(g.id == group_id).values(**values))
        return "ok"

    async def set_favorite_tiles(
        self, account_id: str, group_id: str, tiles: Sequence[Tile]
    ) -> Literal["ok", "not_found"]:
        """Replace the group's cameras with ``tiles`` (already checked by the caller: visible
        to the viewer, each once, fitting the layout)."""
        async with self._write() as conn:
            owned = await conn.scalar(
                select(favorite_groups.c.id).where(
                    favorite_groups.c.id == group_id, favorite_groups.c.account_id == account_id
                )
            )
            if owned is None:
                return "not_found"
            await _replace_tiles(conn, group_id, tiles)
        return "ok"

    async def favorite_layout(self, account_id: str, group_id: str) -> Layout | None:
        """The group's layout; None when it is not the viewer's."""
        async with self._read() as conn:
            layout = await conn.scalar(
                select(favorite_groups.c.layout).where(
                    favorite_groups.c.id == group_id, favorite_groups.c.account_id == account_id
                )
            )
        return None if layout is None else cast(Layout, layout)

    async def reorder_favorites(self, account_id: str, group_ids: Sequence[str]) -> bool:
        """Give the viewer's groups the order of ``group_ids``, which must name each of them
        exactly once (False otherwise, nothing changed)."""
        g = favorite_groups.c
        async with self._write() as conn:
            await _lock_account(conn, account_id)
            mine = set((await conn.scalars(select(g.id).where(g.account_id == account_id))).all())
            if len(group_ids) != len(mine) or set(group_ids) != mine:
                return False
            for index, group_id in enumerate(group_ids):
                await conn.execute(
                    update(favorite_groups).where(g.id == group_id).values(position=index)
                )
        return True

    async def delete_favorite(self, account_id: str, group_id: str) -> bool:
        """Delete a group (its camera list with it; the cameras themselves stay)."""
        async with self._write() as conn:
            result = await conn.execute(
                delete(favorite_groups).where(
                    favorite_groups.c.id == group_id, favorite_groups.c.account_id == account_id
                )
            )
        return bool(result.rowcount)


def _siblings(owner_id: str, parent_id: str | None) -> ColumnElement[bool]:
    """The WHERE clause for the children of ``parent_id`` (None: the top level)."""
    parent = (
        folders.c.parent_id.is_(None) if parent_id is None else folders.c.parent_id == parent_id
    )
    return and_(folders.c.owner_id == owner_id, parent)


async def _lock_account(conn: AsyncConnection, account_id: str) -> None:
    """Serialise limit checks on one account (a no-op lock clause on SQLite)."""
    await conn.execute(select(accounts.c.id).where(accounts.c.id == account_id).with_for_update())


async def _folder_depth(conn: AsyncConnection, owner_id: str, folder_id: str) -> int | None:
    """The folder's depth if it is the subscriber's."""
    depth = await conn.scalar(
        select(folders.c.depth).where(folders.c.id == folder_id, folders.c.owner_id == owner_id)
    )
    return None if depth is None else int(depth)


async def _child_count(conn: AsyncConnection, owner_id: str, parent_id: str | None) -> int:
    count = await conn.scalar(
        select(func.count()).select_from(folders).where(_siblings(owner_id, parent_id))
    )
    return int(count or 0)


async def _subtree(conn: AsyncConnection, folder_id: str) -> list[list[str]]:
    """The folder and its descendants level by level (at most three levels exist)."""
    levels = [[folder_id]]
    while True:
        below = list(
            (
                await conn.scalars(select(folders.c.id).where(folders.c.parent_id.in_(levels[-1])))
            ).all()
        )
        if not below:
            return levels
        levels.append(below)


async def _owns_device(conn: AsyncConnection, owner_id: str, device_id: str) -> bool:
    found = await conn.scalar(
        select(devices.c.id).where(devices.c.id == device_id, devices.c.account_id == owner_id)
    )
    return found is not None


async def _stored_tiles(conn: AsyncConnection, group_id: str) -> list[Tile]:
    fc = favorite_cameras.c
    rows = (
        await conn.execute(
            select(fc.camera_id, fc.slot, fc.x, fc.y, fc.w, fc.h)
            .where(fc.group_id == group_id)
            .order_by(fc.slot, fc.camera_id)
        )
    ).all()
    return [Tile(*row) for row in rows]


async def _replace_tiles(conn: AsyncConnection, group_id: str, tiles: Sequence[Tile]) -> None:
    await conn.execute(delete(favorite_cameras).where(favorite_cameras.c.group_id == group_id))
    for tile in tiles:
        await conn.execute(
            insert(favorite_cameras).values(
                group_id=group_id,
                camera_id=tile.camera_id,
                slot=tile.slot,
                x=tile.x,
                y=tile.y,
                w=tile.w,
                h=tile.h,
            )
        )


def _relayout(tiles: list[Tile], layout: Layout) -> list[Tile]:
    """Tiles renumbered 0…n-1 in their order; for "custom", placed on a square grid."""
    if layout != "custom":
        return [Tile(t.camera_id, index) for index, t in enumerate(tiles)]
    side = max(1, math.ceil(math.sqrt(len(tiles))))
    size = CANVAS // side
    return [
        Tile(t.camera_id, i, (i % side) * size, (i // side) * size, size, size)
        for i, t in enumerate(tiles)
    ]


async def _visible_tiles(
    conn: AsyncConnection, viewer: AccountRow, group_ids: list[str]
) -> dict[str, tuple[Tile, ...]]:
    """The groups' tiles whose camera the viewer may see now: the subscriber's own cameras, or
    for a shared user those shared with them by their subscriber that fit their privacy-guard
    flag (deny by default)."""
    if not group_ids:
        return {}
    fc = favorite_cameras.c
    query = (
        select(fc.group_id, fc.camera_id, fc.slot, fc.x, fc.y, fc.w, fc.h, cameras.c.capabilities)
        .join(cameras, cameras.c.id == fc.camera_id)
        .join(devices, devices.c.id == cameras.c.device_id)
        .where(fc.group_id.in_(group_ids))
        .order_by(fc.slot, fc.camera_id)
    )
    if viewer.role == "subscriber":
        query = query.where(devices.c.account_id == viewer.id)
    else:
        query = query.join(
            camera_shares,
            and_(
                camera_shares.c.camera_id == fc.camera_id,
                camera_shares.c.account_id == viewer.id,
            ),
        ).where(devices.c.account_id == viewer.owner_id)
    out: dict[str, list[Tile]] = {}
    for row in (await conn.execute(query)).all():
        caps = tuple(json.loads(row.capabilities))
        if viewer.role != "subscriber" and not privacy_fits(viewer.privacy_guard, caps):
            continue
        out.setdefault(row.group_id, []).append(Tile(*row[1:-1]))
    return {group_id: tuple(tiles) for group_id, tiles in out.items()}


__all__ = [
    "CANVAS",
    "LAYOUTS",
    "MAX_CHILDREN",
    "MAX_DEPTH",
    "MAX_FAVORITES",
    "FavoriteGroup",
    "FolderRow",
    "Layout",
    "OrganiseStore",
    "Tile",
]
