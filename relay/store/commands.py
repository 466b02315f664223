"""Command states and device events in the relay store (tables ``commands``, ``device_events``).

Every state change is one guarded statement (``UPDATE … WHERE state IN (…)``), so two relays, a
reconnecting agent and the expiry sweep can race without a command ever leaving a terminal
state or taking two of them::

    pending ──send──▶ sent ──ack──▶ acknowledged ──result──▶ done | failed | unknown_outcome
       │                │                                     (the agent's outcome, or expired
       └──deadline──▶ expired        sent/acknowledged ──long past the deadline──▶ unknown_outcome

A pending command is expired at its deadline only while it is still pending: once sent, the
agent decides (it refuses to start a command past its deadline and reports ``expired``). Events
are inserted with ``ON CONFLICT DO NOTHING`` on (device, seq), so a replay stores nothing twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Row, and_, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from relay.store.queries import Queries
from relay.store.schema import commands, devices
from relay.store.schema import device_events as events_table
from shared import models

TERMINAL = ("done", "failed", "expired", "unknown_outcome")
OPEN_STATES = ("pending", "sent", "acknowledged")
#: Longest error text stored from an agent (characters).
ERROR_MAX = models.MAX_ERROR_TEXT


@dataclass(frozen=True)
class CommandRow:
    """A command and where it stands."""

    id: str
    device_id: str
    kind: str
    target: str
    args: dict[str, Any]
    state: str
    deadline: datetime
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    result: dict[str, Any] | None
    error: str

    @property
    def terminal(self) -> bool:
        """True once the command reached its one final state."""
        return self.state in TERMINAL

    def wire(self) -> models.Command:
        """The command as sent to the agent."""
        return models.Command(
            id=self.id,
            kind=self.kind,
            target=self.target,
            args=self.args,
            deadline=self.deadline.timestamp(),
        )


@dataclass(frozen=True)
class EventRow:
    """One event of a device as stored."""

    seq: int
    kind: str
    camera: str
    at: datetime
    payload: dict[str, Any]
    received_at: datetime


class CommandStore(Queries):
    """Queries over ``commands`` and ``device_events``; each method one short transaction."""

    # -- commands ----------------------------------------------------------------------------

    async def create(
        self,
        device_id: str,
        kind: str,
        *,
        target: str = "",
        args: dict[str, Any] | None = None,
        deadline: datetime,
        created_by: str | None = None,
        state: Literal["pending", "sent"] = "pending",
    ) -> CommandRow:
        """A new command: ``pending``, or ``sent`` when the caller puts it on the wire now."""
        now = self.clock()
        row = CommandRow(
            id=str(uuid.uuid4()),
            device_id=device_id,
            kind=kind,
            target=target,
            args=dict(args or {}),
            state=state if deadline > now else "pending",
            deadline=deadline,
            created_by=created_by,
            created_at=now,
            updated_at=now,
            finished_at=None,
            result=None,
            error="",
        )
        values = {**row.__dict__, "args": json.dumps(row.args), "result": None}
        async with self._write() as conn:
            await conn.execute(insert(commands).values(**values))
        return row

    async def get(self, command_id: str) -> CommandRow | None:
        """One command by id."""
        async with self._read() as conn:
            row = (await conn.execute(select(commands).where(commands.c.id == command_id))).first()
        return _command(row) if row is not None else None

    async def get_for_account(self, account_id: str, command_id: str) -> CommandRow | None:
        """The command if it is for one of the account's devices (None otherwise)."""
        query = (
            select(commands)
            .join(devices, devices.c.id == commands.c.device_id)
            .where(commands.c.id == command_id, devices.c.account_id == account_id)
        )
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        return _command(row) if row is not None else None

    async def claim_for_sending(
        self, device_id: str, ids: Sequence[str] | None = None
    ) -> list[CommandRow]:
        """Mark the device's pending commands (still before their deadline) sent, and return
        every command to put on the wire now: those and the ones already sent or acknowledged
        (re-sent after a reconnect; the agent answers duplicates from its journal)."""
        now = self.clock()
        c = commands.c
        scope = [c.device_id == device_id]
        if ids is not None:
            scope.append(c.id.in_(list(ids)))
        async with self._write() as conn:
            await conn.execute(
                update(commands)
                .where(*scope, c.state == "pending", c.deadline > now)
                .values(state="sent", updated_at=now)
            )
            query = (
                select(commands)
                .where(*scope, c.state.in_(("sent", "acknowledged")))
                .order_by(c.created_at, c.id)
            )
            rows = (await conn.execute(query)).all()
        return [_command(row) for row in rows]

    async def acknowledge(self, device_id: str, ids: Sequence[str]) -> None:
        """The agent journalled these commands."""
        c = commands.c
        async with self._write() as conn:
            await conn.execute(
                update(commands)
                .where(
                    c.device_id == device_id,
                    c.id.in_(list(ids)),
                    c.state.in_(("pending", "sent")),
                )
                .values(state="acknowledged", updated_at=self.clock())
            )

    async def record_results(
        self, device_id: str, results: Sequence[models.CommandResult]
    ) -> list[str]:
        """Store the agent's outcomes on commands not yet terminal; return the ids whose state
        changed. Every result is durable when this returns (ack them all: the rest were terminal
        already, or are not this device's)."""
        now = self.clock()
        c = commands.c
        changed: list[str] = []
        async with self._write() as conn:
            for res in results:
                outcome = await conn.execute(
                    update(commands)
                    .where(c.id == res.id, c.device_id == device_id, c.state.in_(OPEN_STATES))
                    .values(
                        state=res.outcome,
                        result=json.dumps(res.result),
                        error=res.error[:ERROR_MAX],
                        finished_at=now,
                        updated_at=now,
                    )
                )
                if outcome.rowcount:
                    changed.append(res.id)
        return changed

    async def expire_due(self, unknown_after: timedelta) -> list[str]:
        """Pending commands past their deadline become ``expired``; sent or acknowledged ones
        ``unknown_after`` past it become ``unknown_outcome`` (the agent never reported back).
        Returns the ids that changed."""
        now = self.clock()
        c = commands.c
        async with self._write() as conn:
            expired = await conn.execute(
                update(commands)
                .where(c.state == "pending", c.deadline <= now)
                .values(state="expired", finished_at=now, updated_at=now,
                        error="not delivered before its deadline")
                .returning(c.id)
            )  # fmt: skip
            ids = list(expired.scalars())
            lost = await conn.execute(
                update(commands)
                .where(c.state.in_(("sent", "acknowledged")), c.deadline <= now - unknown_after)
                .values(state="unknown_outcome", finished_at=now, updated_at=now,
                        error="the site never reported an outcome")
                .returning(c.id)
            )  # fmt: skip
            ids += list(lost.scalars())
        return ids

    async def prune(self, events_before: datetime, commands_before: datetime) -> tuple[int, int]:
        """Delete device events raised before ``events_before`` (EVT-2 keeps a month) and
        commands that finished before ``commands_before``; returns how many of each.

        Open commands are never touched. An agent only replays events it has not had
        acknowledged, and its spool keeps them far shorter than a month, so a pruned (device,
        seq) cannot come back as a duplicate."""
        c = commands.c
        async with self._write() as conn:
            events = await conn.execute(
                delete(events_table).where(events_table.c.at < events_before)
            )
            done = await conn.execute(
                delete(commands).where(c.state.in_(TERMINAL), c.finished_at < commands_before)
            )
        return events.rowcount, done.rowcount

    async def devices_with_pending(self) -> list[str]:
        """Devices that have commands not yet sent (for the dispatch sweep)."""
        query = select(commands.c.device_id).where(commands.c.state == "pending").distinct()
        async with self._read() as conn:
            return list((await conn.execute(query)).scalars())

    async def latest_done(self, device_id: str, kind: str, **args: str) -> CommandRow | None:
        """The newest finished-ok command of ``kind`` whose args include ``args``."""
        c = commands.c
        query = (
            select(commands)
            .where(c.device_id == device_id, c.kind == kind, c.state == "done")
            .order_by(c.finished_at.desc(), c.id)
            .limit(50)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        for row in rows:
            cmd = _command(row)
            if all(cmd.args.get(k) == v for k, v in args.items()):
                return cmd
        return None

    # -- events ------------------------------------------------------------------------------

    async def store_events(self, device_id: str, batch: Sequence[models.Event]) -> int:
        """Insert a batch, ignoring (device, seq) already stored; returns the highest seq of the
        batch, which is now safe to acknowledge cumulatively (the agent sends in order)."""
        now = self.clock()
        rows = [
            {
                "device_id": device_id,
                "seq": ev.seq,
                "kind": ev.kind,
                "camera": ev.camera,
                "at": datetime.fromtimestamp(ev.at, UTC),
                "payload": json.dumps(ev.payload),
                "received_at": now,
            }
            for ev in batch
        ]
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(events_table).on_conflict_do_nothing(
            index_elements=[events_table.c.device_id, events_table.c.seq]
        )
        async with self._write() as conn:
            await conn.execute(stmt, rows)
        return max(ev.seq for ev in batch)

    async def list_events(
        self, device_id: str, *, after: int = 0, limit: int = 100
    ) -> list[EventRow]:
        """The device's events with ``seq > after``, in sequence order."""
        e = events_table.c
        query = (
            select(e.seq, e.kind, e.camera, e.at, e.payload, e.received_at)
            .where(and_(e.device_id == device_id, e.seq > after))
            .order_by(e.seq)
            .limit(limit)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            EventRow(r.seq, r.kind, r.camera, r.at, json.loads(r.payload), r.received_at)
            for r in rows
        ]


def _command(row: Row[Any]) -> CommandRow:
    """A ``commands`` row as a CommandRow."""
    data = row._asdict()
    data["args"] = json.loads(data["args"])
    data["result"] = json.loads(data["result"]) if data["result"] is not None else None
    return CommandRow(**data)
