"""The issue-5 store queries on a real PostgreSQL (fleet mode): the pre-check login counter's
upsert with CASE, single-use links (DELETE … RETURNING), the row-locked limits and the per-camera
access check. Uses the throwaway cluster of test_store_postgres.py; skipped without it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from relay.permissions import Group, Permission
from relay.store import Store
from relay.store.accounts import AccountStore
from shared.models import CameraInventory
from tests.relay.conftest import FakeClock
from tests.relay.test_store_postgres import pg_socket, pg_store, pg_url

__all__ = ["pg_socket", "pg_store", "pg_url"]


# spec: USER-3
async def test_postgres_attempt_counter_is_atomic_and_windows_restart(
    pg_store: Store, clock: FakeClock
) -> None:
    accounts = AccountStore(pg_store.engine, clock=pg_store.clock)
    locks = await asyncio.gather(*(accounts.count_login_attempt("k") for _ in range(50)))
    assert sorted(lock.failures for lock in locks) == list(range(1, 51))
    await pg_store.lock_login("k", clock.now + timedelta(seconds=60))
    assert (await accounts.count_login_attempt("k")).locked_until is not None
    clock.advance(61)
    fresh = await accounts.count_login_attempt("k")
    assert (fresh.failures, fresh.locked_until) == (1, None)


# spec: USER-1, USER-6, USER-7, USER-8
async def test_postgres_links_limits_shares_and_access(pg_store: Store, clock: FakeClock) -> None:
    accounts = AccountStore(pg_store.engine, clock=pg_store.clock)
    await accounts.create_email_token(
        "t",
        "signup",
        email="o@example.com",
        name="O",
        password_hash="h",
        expires_at=clock.now + timedelta(hours=24),
    )
    owner = await accounts.confirm_signup("t")
    assert not isinstance(owner, str)
    assert await accounts.confirm_signup("t") == "invalid"
    made = [
        await accounts.create_shared_user(
            owner.id,
            email=f"u{n}@example.com",
            name="U",
            password_hash="h",
            group_no=3,
            allow_device_settings=False,
            privacy_guard=False,
            limit=2,
        )
        for n in range(3)
    ]
    assert made[2] == "limit"
    user = made[0]
    assert not isinstance(user, str)
    await pg_store.create_grant("g", owner.id, clock.now + timedelta(minutes=5))
    device = await pg_store.enroll_device("g", name="s", public_key="00" * 32, agent_version="t")
    assert device is not None
    await pg_store.upsert_inventory(device.id, [CameraInventory(local_id="c1")])
    camera = (await pg_store.list_devices_for(owner.id))[0].cameras[0].id
    assert await accounts.camera_access(user, camera) is None
    assert await accounts.set_shares(owner.id, user.id, [camera], per_camera=1) == []
    access = await accounts.camera_access(user, camera)
    assert access is not None
    assert access.permissions == {Permission.LIVE, Permission.PLAYBACK}  # default group 3
    other = made[1]
    assert not isinstance(other, str)
    assert await accounts.set_shares(owner.id, other.id, [camera], per_camera=1) == "limit"
    groups = [Group(n, f"G{n}", frozenset({Permission.LIVE})) for n in (1, 2, 3, 4)]
    await accounts.put_groups(owner.id, groups)
    access = await accounts.camera_access(user, camera)
    assert access is not None
    assert access.permissions == {Permission.LIVE}
