"""The agent's event spool: events wait here, numbered, until the relay stored them.

``seq`` is an ``AUTOINCREMENT`` key, so numbers only ever rise, across restarts and after rows
are deleted — the relay deduplicates on (device, seq) and would silently drop a reused number.
The spool is bounded by age and by bytes (settings ``event_spool_max_age_s`` and
``event_spool_max_bytes``; defaults 7 days and 100 MB): when either is exceeded the oldest events
go first, and a ``spool_overflow`` event records how many went and which numbers they had, so the
loss is visible at the relay instead of silent.

Table ``spool_events``: seq, kind, camera, at (Unix s), payload (JSON), size (bytes counted
against the bound).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlite_utils

from shared import models

#: Largest JSON payload of one event (bytes): an event always fits a control frame.
MAX_EVENT_PAYLOAD = 16 * 1024
#: Bytes counted per row on top of its texts (keys, numbers, index entries).
ROW_OVERHEAD = 64
#: How often the age bound is enforced (seconds); the size bound is checked on every append.
AGE_CHECK_INTERVAL_S = 60.0
OVERFLOW_KIND = "spool_overflow"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    camera TEXT NOT NULL,
    at REAL NOT NULL,
    payload TEXT NOT NULL,
    size INTEGER NOT NULL
);
"""


class EventTooLarge(ValueError):
    """An event's payload exceeds :data:`MAX_EVENT_PAYLOAD` (a caller bug: events are small)."""


class EventSpool:
    """Append, read in order, and delete up to an acknowledged sequence number."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        *,
        max_age_s: float,
        max_bytes: int,
        clock: Callable[[], float],
    ) -> None:
        self.db = db
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self._clock = clock
        self.db.conn.executescript(_SCHEMA)
        self._bytes = int(self.db.conn.execute("SELECT COALESCE(SUM(size), 0) FROM spool_events")
                          .fetchone()[0])  # fmt: skip
        self._next_age_check = 0.0
        #: Events dropped by the bounds since this process started (for status and tests).
        self.dropped_total = 0

    @property
    def bytes(self) -> int:
        """Bytes counted against ``max_bytes``."""
        return self._bytes

    def __len__(self) -> int:
        return int(self.db.conn.execute("SELECT COUNT(*) FROM spool_events").fetchone()[0])

    def append(self, kind: str, camera: str, payload: dict[str, Any]) -> int:
        """Spool one event (durably, before returning its ``seq``), then enforce the bounds."""
        data = json.dumps(payload, separators=(",", ":"))
        if len(data) > MAX_EVENT_PAYLOAD:
            raise EventTooLarge(f"{kind} payload of {len(data)} bytes")
        models.Event(seq=1, kind=kind, camera=camera, at=0, payload={})  # validate the fields
        seq = self._insert(kind, camera, data)
        self._enforce_bounds()
        return seq

    def batch(self, *, after: int = 0, limit: int = models.MAX_BATCH) -> list[models.Event]:
        """The oldest spooled events with ``seq > after``, in order."""
        rows = self.db.conn.execute(
            "SELECT seq, kind, camera, at, payload FROM spool_events WHERE seq > ?"
            " ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [
            models.Event(seq=seq, kind=kind, camera=camera, at=at, payload=json.loads(payload))
            for seq, kind, camera, at, payload in rows
        ]

    def ack(self, up_to: int) -> int:
        """The relay stored every event up to ``up_to``: delete them; returns how many."""
        with self.db.conn:
            freed = self.db.conn.execute(
                "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM spool_events WHERE seq <= ?",
                (up_to,),
            ).fetchone()
            self.db.conn.execute("DELETE FROM spool_events WHERE seq <= ?", (up_to,))
        self._bytes -= int(freed[0])
        return int(freed[1])

    def _insert(self, kind: str, camera: str, data: str) -> int:
        """One row, committed; returns its seq."""
        size = len(data) + len(kind) + len(camera) + ROW_OVERHEAD
        with self.db.conn:
            cur = self.db.conn.execute(
                "INSERT INTO spool_events (kind, camera, at, payload, size) VALUES (?, ?, ?, ?, ?)",
                (kind, camera, self._clock(), data, size),
            )
        self._bytes += size
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    def _enforce_bounds(self) -> None:
        """Drop the oldest events beyond the age or size bound; spool one overflow event.

        An overflow event that is itself dropped has its count folded into the new one, so the
        overflow events still spooled always add up to every event lost.
        """
        now = self._clock()
        victims: list[_Row] = []
        if now >= self._next_age_check:
            self._next_age_check = now + AGE_CHECK_INTERVAL_S
            victims += self._delete(self._rows("WHERE at < ?", (now - self.max_age_s,)))
        if self._bytes > self.max_bytes:
            victims += self._drop_for_size()
        if victims:
            lost = [_lost(row) for row in victims]
            self.dropped_total += sum(n for n, _, _ in lost)
            payload = {
                "dropped": sum(n for n, _, _ in lost),
                "first_seq": min(first for _, first, _ in lost),
                "last_seq": max(last for _, _, last in lost),
                "dropped_total": self.dropped_total,
            }
            self._insert(OVERFLOW_KIND, "", json.dumps(payload))

    def _drop_for_size(self) -> list[_Row]:
        """Oldest rows until the spool is back under ``max_bytes`` (with room for the overflow
        event itself)."""
        excess = self._bytes - self.max_bytes + ROW_OVERHEAD * 4
        victims: list[_Row] = []
        for row in self.db.conn.execute(f"{_SELECT} ORDER BY seq"):
            if excess <= 0:
                break
            victims.append(row)
            excess -= row[1]
        return self._delete(victims)

    def _rows(self, where: str, params: tuple[Any, ...]) -> list[_Row]:
        return list(self.db.conn.execute(f"{_SELECT} {where} ORDER BY seq", params))

    def _delete(self, victims: list[_Row]) -> list[_Row]:
        """Delete these rows in one transaction."""
        if victims:
            with self.db.conn:
                self.db.conn.executemany(
                    "DELETE FROM spool_events WHERE seq = ?", [(row[0],) for row in victims]
                )
            self._bytes -= sum(row[1] for row in victims)
        return victims


#: (seq, size, kind, payload) of a spooled row.
_Row = tuple[int, int, str, str]
_SELECT = "SELECT seq, size, kind, payload FROM spool_events"


def _lost(row: _Row) -> tuple[int, int, int]:
    """(events lost, first seq, last seq) that dropping ``row`` stands for."""
    seq, _, kind, payload = row
    if kind != OVERFLOW_KIND:
        return 1, seq, seq
    earlier = json.loads(payload)
    return int(earlier["dropped"]), int(earlier["first_seq"]), int(earlier["last_seq"])
