"""The agent's device logs (DEV-8): error, access, operation and network entries, each category
bounded to its newest N rows (1000/500/500/100, the manual's numbers).

Entries arrive already redacted (``agent.logs``): nothing here ever sees a secret. Each keeps
its UTC time and the agent's UTC offset at that moment, so the relay can show it in the
device's local time even across a daylight-saving change.

Table ``device_logs``: id, category, at (Unix s), utc_offset_s, level, logger, message.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

LogCategory = Literal["error", "access", "operation", "network"]
CATEGORIES: tuple[LogCategory, ...] = get_args(LogCategory)
#: Newest entries kept per category (manual, DEV-8).
LIMITS: dict[LogCategory, int] = {"error": 1000, "access": 500, "operation": 500, "network": 100}
#: Longest message kept (characters); a traceback is cut here.
MAX_MESSAGE = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS device_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    category TEXT NOT NULL,
    at REAL NOT NULL,
    utc_offset_s INTEGER NOT NULL,
    level TEXT NOT NULL,
    logger TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_device_logs_category_id ON device_logs (category, id);
"""


@dataclass(frozen=True)
class LogEntry:
    """One log line as stored and as sent to the relay."""

    at: float
    utc_offset_s: int
    level: str
    logger: str
    message: str


class LogBook:
    """Bounded per-category log storage with its own connection.

    Log records come from any thread (``asyncio.to_thread`` workers, the media threads), so the
    book owns a connection opened with ``check_same_thread=False`` and serialises its use.
    """

    def __init__(self, db_path: Path) -> None:
        self._conn = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.execute("PRAGMA journal_mode=WAL")  # as AgentStore: readers never block
        # A log line must not cost an fsync: WAL with NORMAL survives a process crash, and a
        # power cut losing the last lines of a log is acceptable (the journal stays FULL).
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def add(self, category: LogCategory, entry: LogEntry) -> None:
        """Store one entry and trim its category to its limit."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT INTO device_logs (category, at, utc_offset_s, level, logger, message)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (category, entry.at, entry.utc_offset_s, entry.level, entry.logger,
                     entry.message[:MAX_MESSAGE]),
                )  # fmt: skip
                self._conn.execute(
                    "DELETE FROM device_logs WHERE category = ? AND id <= (SELECT id FROM"
                    " device_logs WHERE category = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (category, category, LIMITS[category]),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def newest(self, category: LogCategory, limit: int | None = None) -> list[LogEntry]:
        """The category's entries, newest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT at, utc_offset_s, level, logger, message FROM device_logs"
                " WHERE category = ? ORDER BY id DESC LIMIT ?",
                (category, limit if limit is not None else LIMITS[category]),
            ).fetchall()
        return [LogEntry(*row) for row in rows]

    def close(self) -> None:
        """Close the book's connection."""
        with self._lock:
            self._conn.close()
