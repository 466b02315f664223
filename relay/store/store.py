"""The relay store: thin, typed async queries over the schema; every method one short transaction.

Writes run in ``BEGIN IMMEDIATE`` transactions on SQLite (see :mod:`relay.store.engine`); a
check-and-set that must hold across relays is one statement (``ON CONFLICT … RETURNING``,
``UPDATE … WHERE … RETURNING``), never a read followed by a write.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.store import migrate
from relay.store.engine import make_engine
from relay.store.queries import Clock, Queries, utc_now
from relay.store.rows import (
    AccountRow,
    CameraRow,
    DeviceRow,
    DeviceWithCameras,
    GrantState,
    HistoryQuery,
    HistoryRow,
    LoginLock,
    Role,
    SessionRow,
)
from relay.store.schema import (
    HISTORY_REASON,
    accounts,
    cameras,
    connection_history,
    devices,
    enrollment_grants,
    login_failures,
    sessions,
)
from shared.models import CameraInventory

NAME_COLUMN = 64  # cameras.name
FACT_COLUMN = 128  # cameras.model, manufacturer, firmware_version, serial_number
ADDRESS_COLUMN = 64  # connection_history.address
TRANSPORT_COLUMN = 8  # connection_history.transport
#: History reason for a tunnel whose end nobody recorded (its relay was killed, say).
UNRECORDED_END = "connection lost (relay restarted or lost the tunnel)"


def default_camera_name(taken: set[str]) -> str:
    """The first free "CAM001", "CAM002", … name (SPEC CAM-1)."""
    number = 1
    while f"CAM{number:03d}" in taken:
        number += 1
    return f"CAM{number:03d}"


async def open_store(url: str, *, clock: Clock = utc_now) -> Store:
    """Migrate ``url`` to the newest schema (in a thread), then open the store on it."""
    await asyncio.to_thread(migrate.upgrade, url)
    return Store(make_engine(url), clock=clock)


class Store(Queries):
    """All durable relay state. ``clock`` gives every timestamp the store writes or compares."""

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    # -- accounts ---------------------------------------------------------------------------

    async def create_account(
        self,
        email: str,
        name: str,
        password_hash: str,
        *,
        role: Role = "subscriber",
        owner_id: str | None = None,
    ) -> AccountRow | None:
        """Insert an account; None when the (lowercased) e-mail is already registered."""
        row = AccountRow(
            id=str(uuid.uuid4()),
            email=email.strip().lower(),
            name=name,
            password_hash=password_hash,
            role=role,
            owner_id=owner_id,
            created_at=self.now(),
        )
        try:
            async with self._write() as conn:
                await conn.execute(insert(accounts).values(**row.__dict__))
        except IntegrityError:
            return None
        return row

    async def get_account(self, account_id: str) -> AccountRow | None:
        """The account with this id."""
        async with self._read() as conn:
            result = await conn.execute(select(accounts).where(accounts.c.id == account_id))
            row = result.first()
        return _account(row) if row is not None else None

    async def get_account_by_email(self, email: str) -> AccountRow | None:
        """The account with this e-mail (compared lowercased)."""
        key = email.strip().lower()
        async with self._read() as conn:
            result = await conn.execute(select(accounts).where(accounts.c.email == key))
            row = result.first()
        return _account(row) if row is not None else None

    async def set_password_hash(self, account_id: str, password_hash: str) -> None:
        """Replace an account's password hash (rehash on login, password change)."""
        async with self._write() as conn:
            await conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(password_hash=password_hash)
            )

    # -- login lockout ----------------------------------------------------------------------

    async def login_lock(self, key: str) -> LoginLock | None:
        """The failure counter for a login key, if any failure was recorded."""
        async with self._read() as conn:
            result = await conn.execute(
                select(login_failures.c.failures, login_failures.c.locked_until).where(
                    login_failures.c.account_key == key
                )
            )
            row = result.first()
        return LoginLock(row.failures, row.locked_until) if row is not None else None

    async def record_login_failure(self, key: str) -> int:
        """Count one failure and return the new count, in ONE statement (atomic across relays)."""
        stmt = self._upsert(login_failures, account_key=key, failures=1, locked_until=None)
        stmt = stmt.on_conflict_do_update(
            index_elements=[login_failures.c.account_key],
            set_={"failures": login_failures.c.failures + 1},
        ).returning(login_failures.c.failures)
        async with self._write() as conn:
            failures = (await conn.execute(stmt)).scalar_one()
        return int(failures)

    async def lock_login(self, key: str, until: datetime) -> None:
        """Lock a login key until ``until``; never shortens a longer lock already set."""
        col = login_failures.c.locked_until
        async with self._write() as conn:
            await conn.execute(
                update(login_failures)
                .where(login_failures.c.account_key == key, or_(col.is_(None), col < until))
                .values(locked_until=until)
            )

    async def clear_login_failures(self, key: str) -> None:
        """Forget the failures of a login key (after a successful login)."""
        async with self._write() as conn:
            await conn.execute(delete(login_failures).where(login_failures.c.account_key == key))

    def _upsert(self, table: Any, **values: Any) -> Any:
        """An INSERT that supports ``on_conflict_do_update`` on this engine's dialect."""
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(table).values(**values)
        return sqlite.insert(table).values(**values)

    # -- sessions ---------------------------------------------------------------------------

    async def create_session(
        self, token_hash: str, account_id: str, csrf_token: str, *, epoch: int = 0
    ) -> SessionRow:
        """Store a new session (by the hash of its token only) in the account's ``epoch``."""
        now = self.now()
        row = SessionRow(token_hash, account_id, csrf_token, now, now, epoch)
        async with self._write() as conn:
            await conn.execute(insert(sessions).values(**row.__dict__))
        return row

    async def session_with_account(self, token_hash: str) -> tuple[SessionRow, AccountRow] | None:
        """A session and its account, in one query."""
        query = (
            select(sessions, accounts)
            .join(accounts, accounts.c.id == sessions.c.account_id)
            .where(sessions.c.token_hash == token_hash)
        )
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        m = row._mapping
        session = SessionRow(
            token_hash=m[sessions.c.token_hash],
            account_id=m[sessions.c.account_id],
            csrf_token=m[sessions.c.csrf_token],
            created_at=m[sessions.c.created_at],
            last_seen_at=m[sessions.c.last_seen_at],
            epoch=m[sessions.c.epoch],
        )
        return session, _account_from_mapping(m)

    async def touch_session(self, token_hash: str, at: datetime) -> None:
        """Move a session's idle clock forward."""
        async with self._write() as conn:
            await conn.execute(
                update(sessions).where(sessions.c.token_hash == token_hash).values(last_seen_at=at)
            )

    async def delete_session(self, token_hash: str) -> None:
        """End one session."""
        async with self._write() as conn:
            await conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash))

    async def delete_sessions_for(self, account_id: str) -> None:
        """End every session of an account (password or e-mail change, USER-5)."""
        async with self._write() as conn:
            await conn.execute(delete(sessions).where(sessions.c.account_id == account_id))

    async def purge_sessions(self, idle_before: datetime, created_before: datetime) -> int:
        """Delete sessions idle since ``idle_before`` or created before ``created_before``."""
        async with self._write() as conn:
            result = await conn.execute(
                delete(sessions).where(
                    or_(
                        sessions.c.last_seen_at < idle_before,
                        sessions.c.created_at < created_before,
                    )
                )
            )
        return int(result.rowcount)

    # -- enrollment -------------------------------------------------------------------------

    async def create_grant(self, grant_hash: str, account_id: str, expires_at: datetime) -> None:
        """Store a single-use enrollment grant (its hash only)."""
        async with self._write() as conn:
            await conn.execute(
                insert(enrollment_grants).values(
                    grant_hash=grant_hash, account_id=account_id, expires_at=expires_at
                )
            )

    async def grant_state(self, grant_hash: str) -> GrantState | None:
        """A grant as stored, to explain why it could not be used."""
        g = enrollment_grants.c
        async with self._read() as conn:
            result = await conn.execute(
                select(g.account_id, g.expires_at, g.used_at).where(g.grant_hash == grant_hash)
            )
            row = result.first()
        return GrantState(row.account_id, row.expires_at, row.used_at) if row else None

    async def enroll_device(
        self, grant_hash: str, *, name: str, public_key: str, agent_version: str
    ) -> DeviceRow | None:
        """Consume an unused, unexpired grant and add a device to its account, atomically.

        None when the grant is unknown, used or expired (:meth:`grant_state` tells which).
        """
        now = self.now()
        g = enrollment_grants.c
        consume = (
            update(enrollment_grants)
            .where(g.grant_hash == grant_hash, g.used_at.is_(None), g.expires_at > now)
            .values(used_at=now)
            .returning(g.account_id)
        )
        async with self._write() as conn:
            account_id = (await conn.execute(consume)).scalar_one_or_none()
            if account_id is None:
                return None
            device = DeviceRow(
                id=str(uuid.uuid4()),
                account_id=account_id,
                name=name,
                public_key=public_key,
                agent_version=agent_version,
                created_at=now,
                last_seen_at=None,
                online=False,
                connected_relay=None,
            )
            await conn.execute(insert(devices).values(**device.__dict__))
        return device

    # -- devices and cameras (also used by the tunnel side) ---------------------------------

    async def get_device(self, device_id: str) -> DeviceRow | None:
        """A device with its public key, or None when not registered."""
        async with self._read() as conn:
            row = (await conn.execute(select(devices).where(devices.c.id == device_id))).first()
        return _device(row) if row is not None else None

    async def set_device_online(
        self,
        device_id: str,
        online: bool,
        relay_id: str | None,
        *,
        reason: str = "",
        address: str = "",
        transport: str = "",
        previous_ended: str = UNRECORDED_END,
        previous_address: str = "",
        previous_transport: str = "",
    ) -> None:
        """Record a tunnel coming up (on ``relay_id``) or going down, with a history row (DEV-7).

        Going offline with a ``relay_id`` only applies while that relay still holds the device,
        so a relay noticing a stale tunnel late cannot undo a newer connection on another relay.
        Coming up while the device is still marked online means the previous tunnel ended
        without a row (its relay was killed, or it was replaced): that end is written first,
        with ``previous_ended`` as its reason (and ``previous_address`` / ``previous_transport``
        when known), so every "connected" row has its "disconnected".
        """
        now = self.now()
        where = [devices.c.id == device_id]
        if not online and relay_id is not None:
            where.append(devices.c.connected_relay == relay_id)
        values = {"online": online, "connected_relay": relay_id if online else None}
        async with self._write() as conn:
            if online and await _marked_online(conn, device_id):
                await _history(
                    conn,
                    device_id,
                    "disconnected",
                    now,
                    previous_ended,
                    address=previous_address,
                    transport=previous_transport,
                )
            result = await conn.execute(
                update(devices).where(and_(*where)).values(**values, last_seen_at=now)
            )
            if result.rowcount:
                event = "connected" if online else "disconnected"
                await _history(
                    conn, device_id, event, now, reason, address=address, transport=transport
                )

    async def record_refusal(self, device_id: str, reason: str, address: str = "") -> None:
        """A registered device was turned away at the tunnel (failed key proof…): a flagged
        "disconnected" row, so the subscriber sees attempts made with the device's id.
        Unknown device ids leave no row (there is no account to show it to)."""
        now = self.now()
        async with self._write() as conn:
            exists = await conn.scalar(select(devices.c.id).where(devices.c.id == device_id))
            if exists is not None:
                await _history(
                    conn, device_id, "disconnected", now, reason, address=address, refused=True
                )

    async def connection_history(
        self, device_id: str, limit: int = 50
    ) -> list[tuple[str, datetime]]:
        """The newest connection events of a device (DEV-7), newest first."""
        h = connection_history.c
        query = (
            select(h.event, h.at)
            .where(h.device_id == device_id)
            .order_by(h.at.desc(), h.id.desc())
            .limit(limit)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [(row.event, row.at) for row in rows]

    async def connection_history_page(
        self, account_id: str, query: HistoryQuery
    ) -> tuple[list[HistoryRow], int]:
        """One page of the account's connection history, newest first, and the total count.

        ``query.device`` matches device names case-insensitively anywhere in the name (the
        manual's "fuzzy search", 4.2.7) or a device id exactly; times are inclusive.
        """
        h, d = connection_history.c, devices.c
        where = [d.account_id == account_id]
        if query.device:
            where.append(or_(d.name.icontains(query.device, autoescape=True), d.id == query.device))
        if query.since is not None:
            where.append(h.at >= query.since)
        if query.until is not None:
            where.append(h.at <= query.until)
        if query.event is not None:
            where.append(h.event == query.event)
        joined = connection_history.join(devices, d.id == h.device_id)
        rows_query = (
            select(
                h.id,
                h.device_id,
                d.name,
                h.event,
                h.at,
                h.reason,
                h.refused,
                h.address,
                h.transport,
            )
            .select_from(joined)
            .where(*where)
            .order_by(h.at.desc(), h.id.desc())
            .offset(query.offset)
            .limit(query.limit)
        )
        count_query = select(func.count()).select_from(joined).where(*where)
        async with self._read() as conn:
            rows = (await conn.execute(rows_query)).all()
            total = int(await conn.scalar(count_query) or 0)
        return [HistoryRow(*row) for row in rows], total

    async def upsert_inventory(self, device_id: str, inventory: Sequence[CameraInventory]) -> None:
        """Apply the agent's full camera list: add new, update known, mark missing offline.

        Cameras are never deleted (their ids are in shares and favorites). A new camera takes
        the agent's name or the first free "CAMnnn" (CAM-1); a known camera keeps its name, so
        a rename by the user is not undone by the next inventory.
        """
        async with self._write() as conn:
            rows = (
                await conn.execute(
                    select(cameras.c.id, cameras.c.local_id, cameras.c.name).where(
                        cameras.c.device_id == device_id
                    )
                )
            ).all()
            known = {row.local_id: row.id for row in rows}
            taken = {row.name for row in rows}
            for cam in inventory:
                if cam.local_id in known:
                    await _update_camera(conn, known[cam.local_id], cam)
                else:
                    name = cam.name.strip() or default_camera_name(taken)
                    taken.add(name)
                    known[cam.local_id] = await _insert_camera(conn, device_id, cam, name)
            missing = set(known) - {cam.local_id for cam in inventory}
            if missing:
                await conn.execute(
                    update(cameras)
                    .where(cameras.c.device_id == device_id, cameras.c.local_id.in_(missing))
                    .values(online=False)
                )

    async def camera_for_viewer(self, account_id: str, camera_id: str) -> CameraRow | None:
        """The camera if this account OWNS it (its subscriber's cameras only).

        Shared users' access, with their permission group, is
        :meth:`relay.store.accounts.AccountStore.camera_access`; this stays owner-only so that
        routes using it deny shared users by default.
        """
        query = (
            select(cameras)
            .join(devices, devices.c.id == cameras.c.device_id)
            .where(cameras.c.id == camera_id, devices.c.account_id == account_id)
        )
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        return _camera(row) if row is not None else None

    async def list_devices_for(self, account_id: str) -> list[DeviceWithCameras]:
        """The account's devices with their cameras, by name."""
        device_query = (
            select(devices)
            .where(devices.c.account_id == account_id)
            .order_by(devices.c.name, devices.c.created_at)
        )
        camera_query = (
            select(cameras)
            .join(devices, devices.c.id == cameras.c.device_id)
            .where(devices.c.account_id == account_id)
            .order_by(cameras.c.name, cameras.c.local_id)
        )
        async with self._read() as conn:
            device_rows = (await conn.execute(device_query)).all()
            camera_rows = (await conn.execute(camera_query)).all()
        by_device: dict[str, list[CameraRow]] = {}
        for row in camera_rows:
            cam = _camera(row)
            by_device.setdefault(cam.device_id, []).append(cam)
        return [
            DeviceWithCameras(dev, tuple(by_device.get(dev.id, [])))
            for dev in map(_device, device_rows)
        ]


async def _marked_online(conn: AsyncConnection, device_id: str) -> bool:
    """Whether the store still shows the device online (row locked until the write ends)."""
    query = select(devices.c.online).where(devices.c.id == device_id).with_for_update()
    return bool(await conn.scalar(query))


async def _history(
    conn: AsyncConnection,
    device_id: str,
    event: str,
    at: datetime,
    reason: str,
    *,
    address: str = "",
    refused: bool = False,
    transport: str = "",
) -> None:
    """Append one connection-history row, cutting texts to their column sizes."""
    await conn.execute(
        insert(connection_history).values(
            device_id=device_id,
            event=event,
            at=at,
            reason=reason[:HISTORY_REASON],
            refused=refused,
            address=address[:ADDRESS_COLUMN],
            transport=transport[:TRANSPORT_COLUMN],
        )
    )


async def _insert_camera(
    conn: AsyncConnection, device_id: str, cam: CameraInventory, name: str
) -> str:
    """Add a camera the device reports for the first time; returns its new id."""
    camera_id = str(uuid.uuid4())
    await conn.execute(
        insert(cameras).values(
            id=camera_id,
            device_id=device_id,
            local_id=cam.local_id,
            name=name[:NAME_COLUMN],
            **_camera_facts(cam),
        )
    )
    return camera_id


async def _update_camera(conn: AsyncConnection, camera_id: str, cam: CameraInventory) -> None:
    """Refresh a known camera's facts (not its name: that is the user's)."""
    await conn.execute(
        update(cameras).where(cameras.c.id == camera_id).values(**_camera_facts(cam))
    )


def _camera_facts(cam: CameraInventory) -> dict[str, Any]:
    """The columns an inventory refreshes on every report, cut to the column sizes."""
    return {
        "model": cam.model[:FACT_COLUMN],
        "manufacturer": cam.manufacturer[:FACT_COLUMN],
        "firmware_version": cam.firmware_version[:FACT_COLUMN],
        "serial_number": cam.serial_number[:FACT_COLUMN],
        "capabilities": json.dumps(list(cam.capabilities)),
        "online": cam.online,
        "status": cam.status,
    }


def _account(row: Row[Any]) -> AccountRow:
    return _account_from_mapping(row._mapping)


def _account_from_mapping(m: Any) -> AccountRow:
    return AccountRow(
        id=m[accounts.c.id],
        email=m[accounts.c.email],
        name=m[accounts.c.name],
        password_hash=m[accounts.c.password_hash],
        role=cast(Role, m[accounts.c.role]),
        owner_id=m[accounts.c.owner_id],
        created_at=m[accounts.c.created_at],
        session_epoch=m[accounts.c.session_epoch],
        must_change_password=bool(m[accounts.c.must_change_password]),
        group_no=m[accounts.c.group_no],
        allow_device_settings=bool(m[accounts.c.allow_device_settings]),
        privacy_guard=bool(m[accounts.c.privacy_guard]),
    )


def _device(row: Row[Any]) -> DeviceRow:
    return DeviceRow(**row._asdict())


def _camera(row: Row[Any]) -> CameraRow:
    data = row._asdict()
    caps = json.loads(data.pop("capabilities") or "[]")
    return CameraRow(**data, capabilities=tuple(str(c) for c in caps))
