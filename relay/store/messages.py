"""Store queries for MSG-1: the relay operator's announcements and each viewer's read markers.

Every account sees every message (the audience is "all accounts"); what differs per viewer —
subscriber or shared user alike — is which ones they have read, kept as one row per (message,
account) in ``message_reads``. Marking read is an insert that ignores an existing marker, so two
tabs or two relays marking the same message at once both succeed.

Messages sort newest first by publication time, then by id: the id is an integer that grows
with every post, so messages published in the same instant still have a stable order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, and_, exists, func, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.store.queries import Queries
from relay.store.schema import MESSAGE_KINDS, message_reads, messages

Kind = Literal["firmware_available", "maintenance", "other"]
KINDS: tuple[Kind, ...] = cast(tuple[Kind, ...], MESSAGE_KINDS)


@dataclass(frozen=True)
class MessageRow:
    """One announcement as a viewer sees it: ``read`` is that viewer's own read state."""

    id: int
    kind: Kind
    title: str
    body: str
    published_at: datetime
    starts_at: datetime | None
    ends_at: datetime | None
    read: bool = False


@dataclass(frozen=True)
class MessagePage:
    """A page of messages (newest first) and how many match in all."""

    rows: list[MessageRow]
    total: int


class MessageStore(Queries):
    """Announcements and read markers; each method one short transaction."""

    async def post(
        self,
        kind: Kind,
        title: str,
        body: str,
        *,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
    ) -> MessageRow:
        """Publish a message to every account, now."""
        published = self.now()
        values = {"kind": kind, "title": title, "body": body, "published_at": published}
        async with self._write() as conn:
            result = await conn.execute(
                insert(messages).values(**values, starts_at=starts_at, ends_at=ends_at)
            )
            key = result.inserted_primary_key
            assert key is not None  # an INSERT of one row always has one
            new_id = int(key[0])
        return MessageRow(new_id, kind, title, body, published, starts_at, ends_at)

    async def page(
        self, account_id: str, kinds: Sequence[Kind], *, offset: int, limit: int
    ) -> MessagePage:
        """Messages of ``kinds`` (empty: all) newest first, with this viewer's read state."""
        where = [messages.c.kind.in_(list(kinds))] if kinds else []
        query = _viewed(account_id).where(*where).offset(offset).limit(limit)
        count = select(func.count()).select_from(messages).where(*where)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
            total = int(await conn.scalar(count) or 0)
        return MessagePage([_row(r) for r in rows], total)

    async def summary(self, account_id: str, limit: int) -> tuple[int, list[MessageRow]]:
        """(how many this viewer has not read, the newest ``limit`` messages)."""
        async with self._read() as conn:
            unread = int(await conn.scalar(_unread_count(account_id)) or 0)
            rows = (await conn.execute(_viewed(account_id).limit(limit))).all()
        return unread, [_row(r) for r in rows]

    async def get(self, account_id: str, message_id: int) -> MessageRow | None:
        """One message with this viewer's read state, or None."""
        async with self._read() as conn:
            row = (
                await conn.execute(_viewed(account_id).where(messages.c.id == message_id))
            ).first()
        return None if row is None else _row(row)

    async def mark_read(self, account_id: str, message_id: int) -> bool:
        """Mark one message read for this viewer (again is fine); False when there is no such
        message."""
        async with self._write() as conn:
            found = await conn.scalar(select(messages.c.id).where(messages.c.id == message_id))
            if found is None:
                return False
            stmt = self._insert_ignore().values(
                message_id=message_id, account_id=account_id, read_at=self.now()
            )
            await conn.execute(stmt)
        return True

    async def mark_all_read(self, account_id: str) -> int:
        """Mark every message read for this viewer; returns how many were unread."""
        async with self._write() as conn:
            return await _mark_unread(conn, self._insert_ignore(), account_id, self.now())

    def _insert_ignore(self) -> Any:
        """An INSERT into ``message_reads`` that skips a marker that is already there."""
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(message_reads).on_conflict_do_nothing()
        return sqlite.insert(message_reads).on_conflict_do_nothing()


def _is_read(account_id: str) -> ColumnElement[bool]:
    """True for a message this account has a read marker for."""
    return exists().where(
        and_(
            message_reads.c.message_id == messages.c.id,
            message_reads.c.account_id == account_id,
        )
    )


def _viewed(account_id: str) -> Any:
    """SELECT messages with the viewer's read flag, newest first."""
    m = messages.c
    return select(
        m.id,
        m.kind,
        m.title,
        m.body,
        m.published_at,
        m.starts_at,
        m.ends_at,
        _is_read(account_id).label("read"),
    ).order_by(m.published_at.desc(), m.id.desc())


def _unread_count(account_id: str) -> Any:
    """SELECT how many messages this account has no read marker for."""
    return select(func.count()).select_from(messages).where(~_is_read(account_id))


async def _mark_unread(conn: AsyncConnection, stmt: Any, account_id: str, at: datetime) -> int:
    """Insert a marker for every message still unread, in one INSERT … SELECT."""
    unread = select(messages.c.id, literal(account_id), literal(at, messages.c.published_at.type))
    unread = unread.where(~_is_read(account_id))
    result = await conn.execute(stmt.from_select(["message_id", "account_id", "read_at"], unread))
    return int(result.rowcount)


def _row(row: Any) -> MessageRow:
    """A MessageRow from a ``_viewed`` result row."""
    return MessageRow(
        id=int(row.id),
        kind=cast(Kind, row.kind),
        title=row.title,
        body=row.body,
        published_at=row.published_at,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        read=bool(row.read),
    )
