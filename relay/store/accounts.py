"""Store queries for issue 5: shared users, permission groups, camera shares, mailed links,
password-reset codes, session epochs and the per-camera access check.

Like :class:`relay.store.commands.CommandStore` it is a second query class over the same
engine (``AccountStore(store.engine, clock=store.clock)``), so the shared ``store.py`` stays
small. Limits that must hold across relays (200 shared users, 10 users per camera) are checked
inside the write transaction that changes them, after locking the subscriber's row (``SELECT …
FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises writers).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, case, delete, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from relay import permissions
from relay.permissions import Group, Permission
from relay.store.queries import Queries
from relay.store.rows import AccountRow, CameraRow, DeviceRow, DeviceWithCameras, LoginLock
from relay.store.schema import (
    accounts,
    camera_shares,
    cameras,
    devices,
    email_tokens,
    login_failures,
    password_resets,
    permission_groups,
    sessions,
)
from relay.store.store import _account

TokenPurpose = Literal["signup", "email_change"]


@dataclass(frozen=True)
class CameraAccess:
    """A camera a viewer may reach, and what they may do with it."""

    camera: CameraRow
    owner_id: str
    permissions: frozenset[Permission]


@dataclass(frozen=True)
class EmailToken:
    """A consumed mailed link: what it was for and what it carried."""

    purpose: TokenPurpose
    account_id: str | None
    email: str
    name: str
    password_hash: str


@dataclass(frozen=True)
class ResetAttempt:
    """A password-reset code as found while counting one attempt against it."""

    code_hash: str
    expires_at: datetime
    attempts: int


class AccountStore(Queries):
    """Queries over accounts' issue-5 state; each method one short transaction."""

    # -- login lockout (USER-3) ---------------------------------------------------------------

    async def count_login_attempt(self, key: str) -> LoginLock:
        """Count one login attempt for ``key`` BEFORE its password is checked, in ONE statement
        (atomic across relays sharing the store), and return the counter after it.

        A lock that has run out starts a fresh window: the count goes back to 1 and the lock is
        cleared in the same statement, so the first attempt after a lock is checked normally.
        """
        now = self.clock()
        f = login_failures.c
        expired = and_(f.locked_until.is_not(None), f.locked_until <= now)
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(login_failures).values(account_key=key, failures=1, locked_until=None)
        stmt = stmt.on_conflict_do_update(
            index_elements=[f.account_key],
            set_={
                "failures": case((expired, 1), else_=f.failures + 1),
                "locked_until": case((expired, None), else_=f.locked_until),
            },
        ).returning(f.failures, f.locked_until)
        async with self._write() as conn:
            row = (await conn.execute(stmt)).one()
        return LoginLock(int(row.failures), row.locked_until)

    # -- shared users (USER-6) ----------------------------------------------------------------

    async def create_shared_user(
        self,
        owner_id: str,
        *,
        email: str,
        name: str,
        password_hash: str,
        group_no: int,
        allow_device_settings: bool,
        privacy_guard: bool,
        limit: int,
    ) -> AccountRow | Literal["limit", "taken"]:
        """Add a shared user who must change the initial password; the limit is checked under
        the subscriber's row lock, so two relays cannot both create the 201st."""
        row = AccountRow(
            id=str(uuid.uuid4()),
            email=email,
            name=name,
            password_hash=password_hash,
            role="shared",
            owner_id=owner_id,
            created_at=self.clock(),
            must_change_password=True,
            group_no=group_no,
            allow_device_settings=allow_device_settings,
            privacy_guard=privacy_guard,
        )
        try:
            async with self._write() as conn:
                await _lock_account(conn, owner_id)
                count = await conn.scalar(
                    select(func.count())
                    .select_from(accounts)
                    .where(accounts.c.owner_id == owner_id)
                )
                if int(count or 0) >= limit:
                    return "limit"
                await conn.execute(insert(accounts).values(**row.__dict__))
        except IntegrityError:
            return "taken"
        return row

    async def shared_users(self, owner_id: str) -> list[tuple[AccountRow, list[str]]]:
        """The subscriber's shared users by name, each with the camera ids shared with them."""
        users_q = select(accounts).where(accounts.c.owner_id == owner_id).order_by(accounts.c.name)
        shares_q = (
            select(camera_shares.c.account_id, camera_shares.c.camera_id)
            .join(accounts, accounts.c.id == camera_shares.c.account_id)
            .where(accounts.c.owner_id == owner_id)
        )
        async with self._read() as conn:
            users = [_account(r) for r in (await conn.execute(users_q)).all()]
            shares = (await conn.execute(shares_q)).all()
        by_user: dict[str, list[str]] = {}
        for share in shares:
            by_user.setdefault(share.account_id, []).append(share.camera_id)
        return [(user, sorted(by_user.get(user.id, []))) for user in users]

    async def shared_user(self, owner_id: str, user_id: str) -> tuple[AccountRow, list[str]] | None:
        """One of the subscriber's shared users with their shares; None if not theirs."""
        async with self._read() as conn:
            row = (
                await conn.execute(
                    select(accounts).where(
                        accounts.c.id == user_id, accounts.c.owner_id == owner_id
                    )
                )
            ).first()
            if row is None:
                return None
            shared = (
                await conn.scalars(
                    select(camera_shares.c.camera_id).where(camera_shares.c.account_id == user_id)
                )
            ).all()
        return _account(row), sorted(shared)

    async def update_shared_user(self, owner_id: str, user_id: str, **values: Any) -> bool:
        """Change name, group or flags; a change of rights ends the user's sessions (50205).
        A new privacy-guard flag also drops the shares of cameras that no longer fit it."""
        rights = {"group_no", "allow_device_settings", "privacy_guard"} & set(values)
        if rights:
            values["session_epoch"] = accounts.c.session_epoch + 1
        async with self._write() as conn:
            result = await conn.execute(
                update(accounts)
                .where(accounts.c.id == user_id, accounts.c.owner_id == owner_id)
                .values(**values)
            )
            if result.rowcount and "privacy_guard" in values:
                await _drop_privacy_misfits(conn, user_id, bool(values["privacy_guard"]))
        return bool(result.rowcount)

    async def delete_account(self, account_id: str, *, owner_id: str | None = None) -> bool:
        """Delete an account and, by cascade, its sessions, shares, devices, cameras, groups
        and shared users (USER-10); with ``owner_id`` only that subscriber's shared user."""
        where = [accounts.c.id == account_id]
        if owner_id is not None:
            where.append(accounts.c.owner_id == owner_id)
        async with self._write() as conn:
            result = await conn.execute(delete(accounts).where(*where))
        return bool(result.rowcount)

    # -- shares (USER-7, CAM-2) ---------------------------------------------------------------

    async def set_shares(
        self,
        owner_id: str,
        user_id: str,
        camera_ids: Iterable[str],
        *,
        per_camera: int,
        skip_privacy_misfits: bool = False,
    ) -> Literal["ok", "not_found", "limit", "privacy"] | list[str]:
        """Replace the cameras shared with a user. Returns the camera ids removed (for ending
        their open streams), ``"not_found"`` for a user or camera not the subscriber's,
        ``"limit"`` when a camera would have more than ``per_camera`` users, or ``"privacy"``
        when a camera does not fit the user's privacy-guard flag — unless
        ``skip_privacy_misfits``, which leaves such cameras out instead."""
        wanted = set(camera_ids)
        async with self._write() as conn:
            await _lock_account(conn, owner_id)
            user = await conn.scalar(
                select(accounts.c.privacy_guard).where(
                    accounts.c.id == user_id, accounts.c.owner_id == owner_id
                )
            )
            owned = await _owned_cameras(conn, owner_id, wanted)
            if user is None or set(owned) != wanted:
                return "not_found"
            misfits = {c for c, caps in owned.items() if not permissions.privacy_fits(user, caps)}
            if misfits and not skip_privacy_misfits:
                return "privacy"
            wanted -= misfits
            current = set(
                (
                    await conn.scalars(
                        select(camera_shares.c.camera_id).where(
                            camera_shares.c.account_id == user_id
                        )
                    )
                ).all()
            )
            added, removed = wanted - current, current - wanted
            if added and await _over_limit(conn, added, per_camera):
                return "limit"
            if removed:
                await conn.execute(
                    delete(camera_shares).where(
                        camera_shares.c.account_id == user_id,
                        camera_shares.c.camera_id.in_(removed),
                    )
                )
            for camera_id in sorted(added):
                await conn.execute(
                    insert(camera_shares).values(camera_id=camera_id, account_id=user_id)
                )
        return sorted(removed)

    # -- permission groups (USER-8) -----------------------------------------------------------

    async def groups(self, owner_id: str) -> list[Group]:
        """The subscriber's four groups (the defaults for any never saved)."""
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    select(permission_groups).where(permission_groups.c.owner_id == owner_id)
                )
            ).all()
        saved = {
            r.group_no: Group(r.group_no, r.name, permissions.parse(json.loads(r.permissions)))
            for r in rows
        }
        return [saved.get(g.number, g) for g in permissions.DEFAULT_GROUPS]

    async def put_groups(self, owner_id: str, groups: Sequence[Group]) -> None:
        """Save all four groups; the shared users in them must log in again (50205)."""
        async with self._write() as conn:
            await conn.execute(
                delete(permission_groups).where(permission_groups.c.owner_id == owner_id)
            )
            for g in groups:
                await conn.execute(
                    insert(permission_groups).values(
                        owner_id=owner_id,
                        group_no=g.number,
                        name=g.name,
                        permissions=json.dumps(sorted(g.permissions)),
                    )
                )
            await conn.execute(
                update(accounts)
                .where(accounts.c.owner_id == owner_id)
                .values(session_epoch=accounts.c.session_epoch + 1)
            )

    # -- authorisation ------------------------------------------------------------------------

    async def camera_access(self, account: AccountRow, camera_id: str) -> CameraAccess | None:
        """What ``account`` may do with the camera, read from the store on every call: all of
        it for the owner; for a shared user, their group's permissions when the camera is
        shared with them; None otherwise (deny by default)."""
        async with self._read() as conn:
            row = (
                await conn.execute(
                    select(cameras, devices.c.account_id.label("owner_id"))
                    .join(devices, devices.c.id == cameras.c.device_id)
                    .where(cameras.c.id == camera_id)
                )
            ).first()
            if row is None:
                return None
            data = row._asdict()
            owner_id = data.pop("owner_id")
            camera = _camera_from(data)
            if account.role == "subscriber":
                return (
                    CameraAccess(camera, owner_id, permissions.ALL)
                    if owner_id == account.id
                    else None
                )
            if account.owner_id != owner_id or not await _is_shared(conn, camera_id, account.id):
                return None
            if not permissions.privacy_fits(account.privacy_guard, camera.capabilities):
                return None  # shared before the flag or the camera changed: hidden now
            group = await _group_permissions(conn, owner_id, account.group_no)
        granted = permissions.effective(group, allow_device_settings=account.allow_device_settings)
        return CameraAccess(camera, owner_id, granted)

    async def visible_devices(self, account: AccountRow) -> list[DeviceWithCameras]:
        """A shared user's view of the device list: only sites with a camera shared with
        them, and only those cameras."""
        query = (
            select(cameras, devices)
            .join(devices, devices.c.id == cameras.c.device_id)
            .join(camera_shares, camera_shares.c.camera_id == cameras.c.id)
            .where(
                camera_shares.c.account_id == account.id, devices.c.account_id == account.owner_id
            )
            .order_by(devices.c.name, cameras.c.name, cameras.c.local_id)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        found: dict[str, tuple[DeviceRow, list[CameraRow]]] = {}
        for row in rows:
            m = row._mapping
            camera = _camera_from({c.name: m[c] for c in cameras.c})
            if not permissions.privacy_fits(account.privacy_guard, camera.capabilities):
                continue
            device = _device_from(m)
            found.setdefault(device.id, (device, []))[1].append(camera)
        return [DeviceWithCameras(dev, tuple(cams)) for dev, cams in found.values()]

    # -- sessions and passwords ---------------------------------------------------------------

    async def set_password(
        self,
        account_id: str,
        password_hash: str,
        *,
        keep_session: str | None = None,
        must_change: bool = False,
    ) -> None:
        """New password hash; every other session of the account ends with 50205 (the one
        named by ``keep_session`` moves to the new epoch and stays)."""
        async with self._write() as conn:
            epoch = await conn.scalar(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(
                    password_hash=password_hash,
                    must_change_password=must_change,
                    session_epoch=accounts.c.session_epoch + 1,
                )
                .returning(accounts.c.session_epoch)
            )
            if keep_session is not None and epoch is not None:
                await conn.execute(
                    update(sessions)
                    .where(sessions.c.token_hash == keep_session)
                    .values(epoch=epoch)
                )
            await conn.execute(
                delete(password_resets).where(password_resets.c.account_id == account_id)
            )

    async def set_name(self, account_id: str, name: str) -> None:
        """USER-5: change the display name (no re-login needed)."""
        async with self._write() as conn:
            await conn.execute(
                update(accounts).where(accounts.c.id == account_id).values(name=name)
            )

    # -- mailed links (USER-1, USER-5) --------------------------------------------------------

    async def create_email_token(
        self,
        token_hash: str,
        purpose: TokenPurpose,
        *,
        email: str,
        expires_at: datetime,
        account_id: str | None = None,
        name: str = "",
        password_hash: str = "",
    ) -> None:
        """Store a link's hash and what it will do when used."""
        async with self._write() as conn:
            await conn.execute(
                insert(email_tokens).values(
                    token_hash=token_hash,
                    purpose=purpose,
                    account_id=account_id,
                    email=email,
                    name=name,
                    password_hash=password_hash,
                    expires_at=expires_at,
                )
            )

    async def confirm_signup(self, token_hash: str) -> AccountRow | Literal["invalid", "taken"]:
        """Spend a sign-up link: the account is created now, in the same transaction."""
        try:
            async with self._write() as conn:
                token = await _take_token(conn, token_hash, "signup", self.clock())
                if token is None:
                    return "invalid"
                row = AccountRow(
                    id=str(uuid.uuid4()),
                    email=token.email,
                    name=token.name,
                    password_hash=token.password_hash,
                    role="subscriber",
                    owner_id=None,
                    created_at=self.clock(),
                )
                await conn.execute(insert(accounts).values(**row.__dict__))
        except IntegrityError:
            return "taken"
        return row

    async def confirm_email_change(self, token_hash: str) -> str | Literal["invalid", "taken"]:
        """Spend an e-mail change link: the address changes and every session of the account
        ends (USER-5 "forces logout", 50205). Returns the account id."""
        try:
            async with self._write() as conn:
                token = await _take_token(conn, token_hash, "email_change", self.clock())
                if token is None or token.account_id is None:
                    return "invalid"
                await conn.execute(
                    update(accounts)
                    .where(accounts.c.id == token.account_id)
                    .values(email=token.email, session_epoch=accounts.c.session_epoch + 1)
                )
        except IntegrityError:
            return "taken"
        return token.account_id

    # -- password reset codes (USER-4) --------------------------------------------------------

    async def put_reset_code(self, account_id: str, code_hash: str, expires_at: datetime) -> None:
        """A new code replaces any earlier one (and its count of wrong tries)."""
        async with self._write() as conn:
            await conn.execute(
                delete(password_resets).where(password_resets.c.account_id == account_id)
            )
            await conn.execute(
                insert(password_resets).values(
                    account_id=account_id, code_hash=code_hash, expires_at=expires_at, attempts=0
                )
            )

    async def count_reset_attempt(self, account_id: str) -> ResetAttempt | None:
        """Count one try against the account's code in ONE statement (two relays cannot both
        get the last try) and return the code as it was; None when no code is pending."""
        r = password_resets.c
        async with self._write() as conn:
            row = (
                await conn.execute(
                    update(password_resets)
                    .where(r.account_id == account_id)
                    .values(attempts=r.attempts + 1)
                    .returning(r.code_hash, r.expires_at, r.attempts)
                )
            ).first()
        return ResetAttempt(row.code_hash, row.expires_at, row.attempts) if row else None


async def _lock_account(conn: AsyncConnection, account_id: str) -> None:
    """Serialise writers on one subscriber (a no-op lock clause on SQLite)."""
    await conn.execute(select(accounts.c.id).where(accounts.c.id == account_id).with_for_update())


async def _owned_cameras(
    conn: AsyncConnection, owner_id: str, ids: set[str]
) -> dict[str, tuple[str, ...]]:
    """Which of ``ids`` are cameras of the subscriber's devices, with their capabilities."""
    if not ids:
        return {}
    rows = await conn.execute(
        select(cameras.c.id, cameras.c.capabilities)
        .join(devices, devices.c.id == cameras.c.device_id)
        .where(devices.c.account_id == owner_id, cameras.c.id.in_(ids))
    )
    return {row.id: tuple(json.loads(row.capabilities)) for row in rows}


async def _drop_privacy_misfits(conn: AsyncConnection, user_id: str, privacy_guard: bool) -> None:
    """Delete the user's shares of cameras that do not fit their privacy-guard flag."""
    shared = await conn.execute(
        select(cameras.c.id, cameras.c.capabilities)
        .join(camera_shares, camera_shares.c.camera_id == cameras.c.id)
        .where(camera_shares.c.account_id == user_id)
    )
    misfits = [
        row.id
        for row in shared
        if not permissions.privacy_fits(privacy_guard, tuple(json.loads(row.capabilities)))
    ]
    if misfits:
        await conn.execute(
            delete(camera_shares).where(
                camera_shares.c.account_id == user_id, camera_shares.c.camera_id.in_(misfits)
            )
        )


async def _over_limit(conn: AsyncConnection, camera_ids: set[str], limit: int) -> bool:
    """Whether one more user on any of these cameras would exceed ``limit``."""
    query = (
        select(camera_shares.c.camera_id)
        .where(camera_shares.c.camera_id.in_(camera_ids))
        .group_by(camera_shares.c.camera_id)
        .having(func.count() >= limit)
    )
    return (await conn.execute(query)).first() is not None


async def _is_shared(conn: AsyncConnection, camera_id: str, account_id: str) -> bool:
    query = select(
        exists().where(
            and_(camera_shares.c.camera_id == camera_id, camera_shares.c.account_id == account_id)
        )
    )
    return bool(await conn.scalar(query))


async def _group_permissions(
    conn: AsyncConnection, owner_id: str, group_no: int | None
) -> frozenset[Permission] | None:
    """A group's permissions as saved, else its default; None for no group (live only)."""
    if group_no is None:
        return None
    saved = await conn.scalar(
        select(permission_groups.c.permissions).where(
            permission_groups.c.owner_id == owner_id, permission_groups.c.group_no == group_no
        )
    )
    if saved is not None:
        return permissions.parse(json.loads(saved))
    defaults = {g.number: g.permissions for g in permissions.DEFAULT_GROUPS}
    return defaults.get(group_no)


async def _take_token(
    conn: AsyncConnection, token_hash: str, purpose: TokenPurpose, now: datetime
) -> EmailToken | None:
    """Delete a link and return it if it was for ``purpose`` and still valid (single use)."""
    t = email_tokens.c
    row = (
        await conn.execute(
            delete(email_tokens)
            .where(t.token_hash == token_hash, t.purpose == purpose)
            .returning(t.account_id, t.email, t.name, t.password_hash, t.expires_at)
        )
    ).first()
    if row is None or row.expires_at <= now:
        return None
    return EmailToken(purpose, row.account_id, row.email, row.name, row.password_hash)


def _camera_from(data: dict[str, Any]) -> CameraRow:
    caps = json.loads(data.pop("capabilities") or "[]")
    return CameraRow(**data, capabilities=tuple(str(c) for c in caps))


def _device_from(m: Any) -> DeviceRow:
    return DeviceRow(**{c.name: m[c] for c in devices.c})
