"""The agent's command journal: every command id is written here *before* anything is done.

At-most-once comes from one rule: a command runs only in the call that inserted its row. A
duplicate (the relay re-sends after a cut, or after either side restarted) finds the row and is
answered from it — its result, or "in progress" — never run again. A row left ``running`` by a
process that died is a command whose outcome nobody knows: :meth:`CommandJournal.recover` ends it
as ``unknown_outcome`` at the next start (except an agent restart, whose running row is exactly
what a successful restart leaves behind). Results stay marked unreported until the relay says
it stored them.

Table ``command_journal``: id (text, primary key), kind, target, args (JSON), deadline (Unix
s), state (running or a terminal outcome), result (JSON), error, received_at, finished_at,
reported (0/1).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from shared import models

TERMINAL = frozenset({"done", "failed", "expired", "unknown_outcome"})
RUNNING = "running"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS command_journal (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    args TEXT NOT NULL,
    deadline REAL NOT NULL,
    state TEXT NOT NULL,
    result TEXT NOT NULL DEFAULT '{}',
    error TEXT NOT NULL DEFAULT '',
    received_at REAL NOT NULL,
    finished_at REAL,
    reported INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_command_journal_unreported
    ON command_journal (reported, state);
"""


@dataclass(frozen=True)
class JournalEntry:
    """One journalled command and, once it ended, its outcome."""

    id: str
    kind: str
    target: str
    args: dict[str, Any]
    deadline: float
    state: str
    received_at: float
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    finished_at: float | None = None
    reported: bool = False

    @property
    def terminal(self) -> bool:
        """True once the command ended (it will never run, or run again)."""
        return self.state in TERMINAL

    def command(self) -> models.Command:
        """The command as the relay sent it."""
        return models.Command(
            id=self.id, kind=self.kind, target=self.target, args=self.args, deadline=self.deadline
        )

    def to_result(self) -> models.CommandResult:
        """The wire result of a terminal entry."""
        return models.CommandResult(
            id=self.id,
            outcome=self.state,  # terminal: one of the outcomes (pydantic checks)
            result=self.result,
            error=self.error[: models.MAX_ERROR_TEXT],
            finished_at=self.finished_at or 0.0,
        )


@dataclass(frozen=True)
class Admission:
    """What :meth:`CommandJournal.admit` made of one received command."""

    entry: JournalEntry
    #: True only for the call that inserted the row: the caller runs it (when still running).
    new: bool


class CommandJournal:
    """Command ids and outcomes in the agent store (one SQLite transaction per call)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.db.conn.executescript(_SCHEMA)

    def admit(self, commands: Sequence[models.Command], now: float) -> list[Admission]:
        """Journal each new command (``expired`` at once if its deadline passed); look up the
        known ones. All in one transaction, committed before the caller acts on any of them."""
        out: list[Admission] = []
        with self.db.conn:
            for cmd in commands:
                state = RUNNING if cmd.deadline > now else "expired"
                finished = None if state == RUNNING else now
                cur = self.db.conn.execute(
                    "INSERT OR IGNORE INTO command_journal"
                    " (id, kind, target, args, deadline, state, received_at, finished_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (cmd.id, cmd.kind, cmd.target, json.dumps(cmd.args), cmd.deadline, state, now,
                     finished),
                )  # fmt: skip
                entry = self._get(cmd.id)
                assert entry is not None
                out.append(Admission(entry, new=cur.rowcount == 1))
        return out

    def finish(
        self, command_id: str, outcome: str, now: float, *, result: dict[str, Any], error: str = ""
    ) -> JournalEntry | None:
        """Record how a running command ended; None if it was not running (already ended)."""
        if outcome not in TERMINAL:
            raise ValueError(f"not a terminal outcome: {outcome}")
        with self.db.conn:
            cur = self.db.conn.execute(
                "UPDATE command_journal SET state = ?, result = ?, error = ?, finished_at = ?"
                " WHERE id = ? AND state = ?",
                (outcome, json.dumps(result), error, now, command_id, RUNNING),
            )
        return self._get(command_id) if cur.rowcount else None

    def get(self, command_id: str) -> JournalEntry | None:
        """The entry for ``command_id``."""
        return self._get(command_id)

    def unreported(self) -> list[JournalEntry]:
        """Terminal entries the relay has not acknowledged, oldest first."""
        rows = self.db.conn.execute(
            "SELECT * FROM command_journal WHERE reported = 0 AND state != ?"
            " ORDER BY finished_at, id",
            (RUNNING,),
        )
        return [_entry(row, rows.description) for row in rows.fetchall()]

    def mark_reported(self, ids: Iterable[str]) -> None:
        """The relay stored these results: stop sending them (the rows stay, for duplicates)."""
        with self.db.conn:
            self.db.conn.executemany(
                "UPDATE command_journal SET reported = 1 WHERE id = ? AND state != ?",
                [(i, RUNNING) for i in ids],
            )

    def recover(self, now: float, *, completed_by_restart: frozenset[str]) -> list[JournalEntry]:
        """At start-up: commands left running by a dead process end now, never re-run.

        ``completed_by_restart`` names (kind, target) keys as ``"kind:target"`` whose running row
        means success — the agent restarting itself dies mid-command by design.
        """
        rows = self.db.conn.execute("SELECT id, kind, target FROM command_journal WHERE state = ?",
                                    (RUNNING,)).fetchall()  # fmt: skip
        ended = []
        for command_id, kind, target in rows:
            if f"{kind}:{target}" in completed_by_restart:
                entry = self.finish(command_id, "done", now, result={"restarted": True})
            else:
                entry = self.finish(
                    command_id,
                    "unknown_outcome",
                    now,
                    result={},
                    error="the agent stopped while the command ran",
                )
            if entry is not None:
                ended.append(entry)
        return ended

    def prune(self, finished_before: float) -> int:
        """Forget reported entries that ended before ``finished_before`` (the relay holds their
        terminal state, so it will never send those ids again)."""
        with self.db.conn:
            cur = self.db.conn.execute(
                "DELETE FROM command_journal WHERE reported = 1 AND finished_at < ?",
                (finished_before,),
            )
        return int(cur.rowcount)

    def _get(self, command_id: str) -> JournalEntry | None:
        cur = self.db.conn.execute("SELECT * FROM command_journal WHERE id = ?", (command_id,))
        row = cur.fetchone()
        return _entry(row, cur.description) if row is not None else None


def _entry(row: Sequence[Any], description: Any) -> JournalEntry:
    """A row as a JournalEntry."""
    data = {col[0]: value for col, value in zip(description, row, strict=True)}
    return JournalEntry(
        id=data["id"],
        kind=data["kind"],
        target=data["target"],
        args=json.loads(data["args"]),
        deadline=data["deadline"],
        state=data["state"],
        received_at=data["received_at"],
        result=json.loads(data["result"]),
        error=data["error"],
        finished_at=data["finished_at"],
        reported=bool(data["reported"]),
    )
