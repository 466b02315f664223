"""The store on a real SQLite file: migrations, lockout counter, devices and inventories."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from relay.settings import RelaySettings
from relay.store import Store, default_camera_name, open_store
from relay.store.migrate import downgrade, upgrade
from relay.store.schema import metadata
from shared.models import CameraInventory
from tests.relay.conftest import FakeClock, public_key_hex

TABLES = {
    "accounts",
    "sessions",
    "login_failures",
    "enrollment_grants",
    "devices",
    "cameras",
    "connection_history",
    "commands",
    "device_events",
    "permission_groups",
    "camera_shares",
    "email_tokens",
    "password_resets",
    "folders",
    "folder_devices",
    "favorite_groups",
    "favorite_cameras",
    "messages",
    "message_reads",
    "app_devices",
}


def _sync_url(path: Path) -> str:
    return f"sqlite:///{path}"


def test_migrations_from_empty_to_head_match_the_schema(tmp_path: Path) -> None:
    """An empty file migrates to head; the result is exactly schema.py; down and up again work."""
    db = tmp_path / "fresh" / "relay.db"
    url = f"sqlite+aiosqlite:///{db}"
    upgrade(url)
    engine = create_engine(_sync_url(db))
    try:
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diffs == []
        downgrade(url, "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        upgrade(url)
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


async def test_open_store_is_idempotent_and_uses_wal(relay_settings: RelaySettings) -> None:
    """Opening twice (relay restart) migrates nothing new; the SQLite file runs in WAL mode."""
    for _ in range(2):
        store = await open_store(relay_settings.db_url)
        await store.close()
    db = relay_settings.data_dir / "relay.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# spec: USER-3
async def test_login_failure_counter_is_exact_under_concurrency(store: Store) -> None:
    """50 concurrent increments return exactly 1..50: one statement, no lost update."""
    counts = await asyncio.gather(*(store.record_login_failure("x@example.com") for _ in range(50)))
    assert sorted(counts) == list(range(1, 51))
    lock = await store.login_lock("x@example.com")
    assert lock is not None
    assert lock.failures == 50


async def test_lock_never_shortens(store: Store, clock: FakeClock) -> None:
    await store.record_login_failure("k")
    later, sooner = clock.now.replace(hour=14), clock.now.replace(hour=13)
    await store.lock_login("k", later)
    await store.lock_login("k", sooner)
    lock = await store.login_lock("k")
    assert lock is not None
    assert lock.locked_until == later


async def _device(store: Store, clock: FakeClock, email: str = "o@example.com") -> str:
    """A registered device (through a grant, as enrollment makes them); returns its id."""
    account = await store.create_account(email, "Owner", "hash")
    assert account is not None
    await store.create_grant("g-" + email, account.id, clock.now.replace(year=2031))
    device = await store.enroll_device(
        "g-" + email, name="Site", public_key=public_key_hex(), agent_version="1"
    )
    assert device is not None
    return device.id


def _cam(local_id: str, name: str = "", online: bool = True, **kw: Any) -> CameraInventory:
    return CameraInventory(local_id=local_id, name=name, online=online, **kw)


# spec: CAM-1, DEV-10
async def test_upsert_inventory_adds_updates_and_marks_missing_offline(
    store: Store, clock: FakeClock
) -> None:
    """New cameras get CAM001…, known ones keep their name, missing go offline, none deleted."""
    device_id = await _device(store, clock)
    await store.upsert_inventory(
        device_id, [_cam("a", model="M1"), _cam("b", name="Door"), _cam("c")]
    )
    device = await store.get_device(device_id)
    assert device is not None
    [listing] = await store.list_devices_for(device.account_id)
    names = {cam.local_id: cam.name for cam in listing.cameras}
    assert names == {"a": "CAM001", "b": "Door", "c": "CAM002"}
    first_ids = {cam.local_id: cam.id for cam in listing.cameras}

    await store.upsert_inventory(
        device_id, [_cam("a", name="Renamed by agent", model="M2"), _cam("d"), _cam("b")]
    )
    [listing] = await store.list_devices_for(listing.device.account_id)
    by_local = {cam.local_id: cam for cam in listing.cameras}
    assert set(by_local) == {"a", "b", "c", "d"}
    assert by_local["a"].name == "CAM001"  # a name, once given, is the user's to change
    assert by_local["a"].model == "M2"
    assert by_local["d"].name == "CAM003"
    assert not by_local["c"].online
    assert by_local["a"].online
    assert by_local["b"].online
    assert all(by_local[k].id == first_ids[k] for k in first_ids)

    await store.upsert_inventory(device_id, [_cam("c", capabilities=["ptz"])])  # back again
    [listing] = await store.list_devices_for(listing.device.account_id)
    by_local = {cam.local_id: cam for cam in listing.cameras}
    assert by_local["c"].online
    assert by_local["c"].capabilities == ("ptz",)
    assert not by_local["a"].online


def test_default_camera_names_fill_gaps() -> None:
    assert default_camera_name(set()) == "CAM001"
    assert default_camera_name({"CAM001", "CAM003"}) == "CAM002"


async def test_device_online_state_and_history(store: Store, clock: FakeClock) -> None:
    """Online on a relay, offline again; a stale relay cannot mark a reconnected device offline."""
    device_id = await _device(store, clock)
    await store.set_device_online(device_id, True, "relay-a")
    clock.advance(5)
    await store.set_device_online(device_id, True, "relay-b")  # reconnected elsewhere
    await store.set_device_online(device_id, False, "relay-a")  # relay A notices late
    device = await store.get_device(device_id)
    assert device is not None
    assert device.online
    assert device.connected_relay == "relay-b"
    clock.advance(5)
    await store.set_device_online(device_id, False, None)
    device = await store.get_device(device_id)
    assert device is not None
    assert not device.online
    assert device.connected_relay is None
    assert device.last_seen_at == clock.now
    history = await store.connection_history(device_id)
    # Relay B's connect closes relay A's unrecorded tunnel first: every "connected" has its end.
    assert [event for event, _ in history] == [
        "disconnected",
        "connected",
        "disconnected",
        "connected",
    ]


async def test_camera_for_viewer_only_for_the_owner(store: Store, clock: FakeClock) -> None:
    mine = await _device(store, clock, "me@example.com")
    await _device(store, clock, "other@example.com")
    await store.upsert_inventory(mine, [_cam("a")])
    me = await store.get_account_by_email("ME@example.com")
    other = await store.get_account_by_email("other@example.com")
    assert me is not None
    assert other is not None
    [listing] = await store.list_devices_for(me.id)
    camera_id = listing.cameras[0].id
    camera = await store.camera_for_viewer(me.id, camera_id)
    assert camera is not None
    assert camera.local_id == "a"
    assert camera.device_id == mine
    assert await store.camera_for_viewer(other.id, camera_id) is None
    assert await store.camera_for_viewer(me.id, "no-such-camera") is None


async def test_deleting_a_device_deletes_its_cameras(store: Store, clock: FakeClock) -> None:
    """Foreign keys are on in SQLite: cameras cascade with their device (DEV-6)."""
    device_id = await _device(store, clock)
    await store.upsert_inventory(device_id, [_cam("a")])
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql("DELETE FROM devices")
        count = (await conn.exec_driver_sql("SELECT COUNT(*) FROM cameras")).scalar_one()
    assert count == 0
