"""Store queries for USER-9: the mobile app devices linked to an account.

An app device exists only together with the session its login opened (``app_devices.token_hash``
refers to ``sessions`` with ON DELETE CASCADE): the two rows are written in one transaction, and
removing a device deletes its session in the same transaction, so the token stops working at the
commit the device leaves the list — on every relay, since every request is checked against the
store. Logging out of the app, or any other end of the session, unlinks the device the same way.

Sessions that can no longer be used (timed out, or older than the account's session epoch) are
deleted lazily, when presented or purged; the listing leaves them out so it shows only apps that
could still make a call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import delete, insert, select

from relay.store.queries import Queries
from relay.store.rows import SessionRow
from relay.store.schema import accounts, app_devices, sessions

Platform = Literal["android", "ios", "web"]


@dataclass(frozen=True)
class AppLink:
    """What an app says about itself when it logs in (USER-9)."""

    name: str
    platform: Platform


@dataclass(frozen=True)
class AppDeviceRow:
    """A linked app: what it called itself, when it was linked and last made a call."""

    id: str
    name: str
    platform: Platform
    created_at: datetime
    last_seen_at: datetime
    token_hash: str


class AppDeviceStore(Queries):
    """App devices and their sessions; each method one short transaction."""

    async def open_session(self, session: SessionRow, app: AppLink) -> AppDeviceRow:
        """Store a new session and the app device bound to it, both or neither."""
        row = AppDeviceRow(
            id=str(uuid.uuid4()),
            name=app.name,
            platform=app.platform,
            created_at=session.created_at,
            last_seen_at=session.last_seen_at,
            token_hash=session.token_hash,
        )
        async with self._write() as conn:
            await conn.execute(insert(sessions).values(**session.__dict__))
            await conn.execute(
                insert(app_devices).values(
                    id=row.id,
                    account_id=session.account_id,
                    token_hash=session.token_hash,
                    name=app.name,
                    platform=app.platform,
                    created_at=row.created_at,
                )
            )
        return row

    async def list_for(
        self, account_id: str, *, idle_before: datetime, created_before: datetime
    ) -> list[AppDeviceRow]:
        """The account's apps whose sessions are still usable, newest link first."""
        d, s, a = app_devices.c, sessions.c, accounts.c
        query = (
            select(d.id, d.name, d.platform, d.created_at, s.last_seen_at, d.token_hash)
            .join(sessions, s.token_hash == d.token_hash)
            .join(accounts, a.id == d.account_id)
            .where(
                d.account_id == account_id,
                s.epoch >= a.session_epoch,
                s.last_seen_at > idle_before,
                s.created_at > created_before,
            )
            .order_by(d.created_at.desc(), d.id)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_device(r) for r in rows]

    async def remove(self, account_id: str, device_id: str) -> str | None:
        """Unlink one of the account's apps by deleting its session (the device row goes with
        it); returns the revoked token hash, or None when the device is not the account's."""
        owned = select(app_devices.c.token_hash).where(
            app_devices.c.id == device_id, app_devices.c.account_id == account_id
        )
        async with self._write() as conn:
            token = await conn.scalar(owned)
            if token is None:
                return None
            await conn.execute(delete(sessions).where(sessions.c.token_hash == token))
        return str(token)


def _device(row: Any) -> AppDeviceRow:
    """An AppDeviceRow from a ``list_for`` result row."""
    return AppDeviceRow(
        id=row.id,
        name=row.name,
        platform=cast(Platform, row.platform),
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        token_hash=row.token_hash,
    )
