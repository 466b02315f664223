"""The same store on a real PostgreSQL (one schema, two engines): started here from Debian's
binaries on a private Unix socket; skipped when PostgreSQL or asyncpg is not installed."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from relay.store import HistoryQuery, Store, open_store
from relay.store.schema import metadata
from shared.models import CameraInventory
from tests.relay.conftest import FakeClock, public_key_hex

asyncpg = pytest.importorskip("asyncpg")


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture(scope="module")
def pg_socket() -> Iterator[Path]:
    """A throwaway cluster listening only on a Unix socket in a temporary directory.

    Not under pytest's tmp_path: that is private to root, and the server runs as postgres.
    """
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL server binaries not installed")
    base = Path(tempfile.mkdtemp(prefix="rmon-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
    data, sock = base / "data", base
    subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
        timeout=60,
    )
    options = f"-k {sock} -h '' -c fsync=off"
    start = [pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"]
    subprocess.run(_as_postgres(start), check=True, capture_output=True, timeout=60)
    try:
        yield sock
    finally:
        stop = [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_postgres(stop), check=False, capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
async def pg_url(pg_socket: Path) -> str:
    """A fresh, empty database for one test."""
    name = "t_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(host=str(pg_socket), user="postgres", database="postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://postgres@/{name}?host={pg_socket}"


@pytest.fixture
async def pg_store(pg_url: str, clock: FakeClock) -> AsyncIterator[Store]:
    store = await open_store(pg_url, clock=clock)
    yield store
    await store.close()


def _diffs(conn: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(conn), metadata))


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_postgres_migrations_match_the_schema(pg_store: Store) -> None:
    async with pg_store.engine.connect() as conn:
        assert await conn.run_sync(_diffs) == []
        assert "cameras" in await conn.run_sync(_tables)


# spec: USER-3
async def test_postgres_login_failure_counter_is_exact(pg_store: Store) -> None:
    counts = await asyncio.gather(*(pg_store.record_login_failure("k") for _ in range(50)))
    assert sorted(counts) == list(range(1, 51))


# spec: DEV-10, CAM-1
async def test_postgres_enrollment_and_inventory(pg_store: Store, clock: FakeClock) -> None:
    account = await pg_store.create_account("O@example.com", "Owner", "hash")
    assert account is not None
    assert await pg_store.create_account("o@example.com", "Again", "hash") is None
    await pg_store.create_grant("g", account.id, clock.now.replace(year=2031))
    device = await pg_store.enroll_device(
        "g", name="Site", public_key=public_key_hex(), agent_version="1"
    )
    assert device is not None
    again = await pg_store.enroll_device(
        "g", name="Site", public_key=public_key_hex(), agent_version="1"
    )
    assert again is None
    state = await pg_store.grant_state("g")
    assert state is not None
    assert state.used_at == clock.now  # aware UTC datetimes round-trip
    await pg_store.upsert_inventory(
        device.id, [CameraInventory(local_id="a"), CameraInventory(local_id="b")]
    )
    await pg_store.upsert_inventory(device.id, [CameraInventory(local_id="b")])
    await pg_store.set_device_online(device.id, True, "relay-1")
    [listing] = await pg_store.list_devices_for(account.id)
    assert listing.device.online
    assert {(c.name, c.online) for c in listing.cameras} == {("CAM001", False), ("CAM002", True)}
    camera = await pg_store.camera_for_viewer(account.id, listing.cameras[0].id)
    assert camera is not None


# spec: DEV-7
async def test_postgres_connection_history_page(pg_store: Store, clock: FakeClock) -> None:
    """ILIKE (not SQLite's lower() LIKE), escaped wildcards, the row lock and booleans on PG."""
    account = await pg_store.create_account("h@example.com", "Owner", "hash")
    assert account is not None
    await pg_store.create_grant("g", account.id, clock.now.replace(year=2031))
    device = await pg_store.enroll_device(
        "g", name="Berlin_Shop", public_key=public_key_hex(), agent_version="1"
    )
    assert device is not None
    await pg_store.record_refusal(device.id, "refused: key proof failed", "192.0.2.1:1")
    clock.advance(1)
    await pg_store.set_device_online(device.id, True, "relay-a", reason="authenticated")
    clock.advance(1)
    await pg_store.set_device_online(device.id, True, "relay-b", reason="authenticated")
    rows, total = await pg_store.connection_history_page(account.id, HistoryQuery(device="N_s"))
    assert total == 4
    assert [(r.event, r.refused) for r in reversed(rows)] == [
        ("disconnected", True),
        ("connected", False),
        ("disconnected", False),
        ("connected", False),
    ]
    assert rows[0].at == clock.now
    _, none = await pg_store.connection_history_page(account.id, HistoryQuery(device="n%s"))
    assert none == 0
    window = HistoryQuery(since=clock.now, until=clock.now, event="connected")
    [row], _ = await pg_store.connection_history_page(account.id, window)
    assert row.reason == "authenticated"
