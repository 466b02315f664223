"""Creating the async engine: SQLite gets WAL, a busy timeout and explicit transactions.

SQLite quirks handled here (SQLAlchemy docs, "Transactions with SQLite and the sqlite3 driver"):
the sqlite3 driver's legacy mode never BEGINs before a SELECT or DDL, so we switch it off and
emit BEGIN ourselves. Transactions that will write start with ``BEGIN IMMEDIATE`` (execution
option :data:`WRITE`): a deferred transaction that reads and then writes gets SQLITE_BUSY at
once in WAL mode when another connection committed in between, whatever the busy timeout, while
an immediate one waits its turn for the write lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

#: Execution option marking a transaction that writes (``BEGIN IMMEDIATE`` on SQLite).
WRITE = "rmon_write"

#: How long a SQLite writer waits for the write lock before failing (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 10_000


def make_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``; SQLite files get their directory created."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise ValueError("the relay store needs a SQLite file (migrations use their own engine)")
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, pool_size=8, max_overflow=16)
    _sqlite_hooks(engine)
    return engine


def _sqlite_hooks(engine: AsyncEngine) -> None:
    """Per-connection pragmas and our own BEGIN."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across app crashes in WAL mode
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        writes = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")
