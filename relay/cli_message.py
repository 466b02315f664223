"""``rmon-relay message post|list``: the operator publishes announcements (MSG-1).

Messages are the operator's voice to every account, so they are posted from the relay host
with the store's own URL, never through the viewer API. Times are ISO 8601 with a time zone:
a maintenance window given in the operator's local time without a zone would be read wrongly
by viewers elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from relay.settings import RelaySettings
from relay.store import open_store
from relay.store.messages import KINDS, Kind, MessageRow, MessageStore
from relay.store.schema import MESSAGE_TITLE

BODY_MAX = 10_000  # characters: an announcement, not a manual


class MessageInputError(ValueError):
    """The operator's input cannot be posted; the text says why."""


@dataclass(frozen=True)
class NewMessage:
    """A checked announcement, ready to store."""

    kind: Kind
    title: str
    body: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None


def parse_time(text: str | None, name: str) -> datetime | None:
    """An ISO 8601 date-time with a zone (``2030-01-31T02:00:00+09:00``), or None if absent."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise MessageInputError(f"--{name}: not an ISO 8601 date-time: {text!r}") from None
    if value.tzinfo is None:
        raise MessageInputError(f"--{name}: add a time zone (Z or +hh:mm) to {text!r}")
    return value


def check_message(
    kind: str, title: str, body: str, starts: str | None = None, ends: str | None = None
) -> NewMessage:
    """Validate the operator's input; MessageInputError says what is wrong."""
    found = next((k for k in KINDS if k == kind), None)
    if found is None:
        raise MessageInputError(f"--kind: one of {', '.join(KINDS)}")
    title, body = title.strip(), body.strip()
    if not title or len(title) > MESSAGE_TITLE:
        raise MessageInputError(f"--title: 1 to {MESSAGE_TITLE} characters")
    if not body or len(body) > BODY_MAX:
        raise MessageInputError(f"--body: 1 to {BODY_MAX} characters")
    starts_at, ends_at = parse_time(starts, "starts"), parse_time(ends, "ends")
    if (starts_at or ends_at) and found != "maintenance":
        raise MessageInputError("--starts/--ends: only a maintenance message has a window")
    if starts_at and ends_at and ends_at <= starts_at:
        raise MessageInputError("--ends: must be after --starts")
    return NewMessage(found, title, body, starts_at, ends_at)


async def post_message(settings: RelaySettings, message: NewMessage) -> MessageRow:
    """Publish ``message`` to every account now."""
    store = await open_store(settings.db_url)
    try:
        return await MessageStore(store.engine, clock=store.clock).post(
            message.kind,
            message.title,
            message.body,
            starts_at=message.starts_at,
            ends_at=message.ends_at,
        )
    finally:
        await store.close()


async def list_messages(settings: RelaySettings, kind: str | None = None) -> list[MessageRow]:
    """Every message (or those of ``kind``), newest first."""
    kinds = [check_message(kind, "t", "b").kind] if kind else []
    store = await open_store(settings.db_url)
    try:
        messages = MessageStore(store.engine, clock=store.clock)
        return (await messages.page("", kinds, offset=0, limit=1_000_000)).rows
    finally:
        await store.close()


def format_row(row: MessageRow) -> str:
    """One line per message for the operator's terminal."""
    window = ""
    if row.starts_at or row.ends_at:
        start = row.starts_at.isoformat() if row.starts_at else "?"
        end = row.ends_at.isoformat() if row.ends_at else "?"
        window = f" [{start} to {end}]"
    return f"{row.id}\t{row.published_at.isoformat()}\t{row.kind}\t{row.title}{window}"
