"""Renaming sites and cameras, several at once (CAM-1), in one transaction.

Its own module (not ``Store``) so the rename stays one reviewable unit beside the accounts work
in ``relay/store/store.py``; it uses the same engine and the same write transactions.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.store.engine import WRITE
from relay.store.schema import cameras, devices


async def rename_owned(engine: AsyncEngine, account_id: str, names: Mapping[str, str]) -> list[str]:
    """Give each id (a site or a camera of ``account_id``) its new name, all or nothing.

    Returns the ids that are neither (then nothing is renamed): a viewer cannot rename, nor
    learn the existence of, what is not theirs.
    """
    ids = list(names)
    writer = engine.execution_options(**{WRITE: True})
    async with writer.begin() as conn:
        own_devices = set(
            await conn.scalars(
                select(devices.c.id).where(
                    devices.c.account_id == account_id, devices.c.id.in_(ids)
                )
            )
        )
        own_cameras = set(
            await conn.scalars(
                select(cameras.c.id)
                .join(devices, devices.c.id == cameras.c.device_id)
                .where(devices.c.account_id == account_id, cameras.c.id.in_(ids))
            )
        )
        missing = [i for i in ids if i not in own_devices | own_cameras]
        if missing:
            return missing
        for device_id in own_devices:
            await conn.execute(
                update(devices).where(devices.c.id == device_id).values(name=names[device_id])
            )
        for camera_id in own_cameras:
            await conn.execute(
                update(cameras).where(cameras.c.id == camera_id).values(name=names[camera_id])
            )
    return []
