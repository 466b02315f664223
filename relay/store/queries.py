"""The base every group of store queries shares: one engine, an injectable clock, and the two
kinds of transaction (write: BEGIN IMMEDIATE on SQLite so writers queue instead of failing; read).

The store is split by area (``Store`` for devices and sessions, ``AccountStore``,
``CommandStore``, ``OrganiseStore`` …) so each file stays readable; they all sit on one engine
and must agree on how a transaction starts, which is why this lives in one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.store.engine import WRITE

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock (tests pass a fake one)."""
    return datetime.now(UTC)


class Queries:
    """One short transaction per method, on a shared engine, timed by ``clock``."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.clock = clock
        self._writer = engine.execution_options(**{WRITE: True})

    def now(self) -> datetime:
        """The store's idea of now (injectable for tests)."""
        return self.clock()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite), committed on success."""
        async with self._writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only connection."""
        async with self.engine.connect() as conn:
            yield conn
