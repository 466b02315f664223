"""Alembic environment: async engine, run in its own event loop (we are in a worker thread)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from relay.store.engine import make_engine
from relay.store.schema import metadata


def _run(connection: Connection) -> None:
    """Run the migrations on one connection, in one transaction."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        transactional_ddl=True,  # true on SQLite too: relay.store.engine emits our own BEGIN
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    """Open an engine like the store's (same SQLite pragmas) and migrate."""
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def _main() -> None:
    """Offline mode (SQL scripts) is not supported: migrations run against a live database."""
    if context.is_offline_mode():
        raise RuntimeError("offline migrations are not supported")
    url = context.config.attributes.get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migrations")
    asyncio.run(_run_async(str(url)))


_main()
