"""The relay's half of the command plane and the event spool.

The store is the truth (``relay.store.commands``); this object moves commands from the store
into agent sessions and the agent's acks, results and events back into the store, acknowledging
results and events only after their write committed. Sessions reach it through two calls —
``session_opened`` and ``handle`` — and it reaches sessions through the :class:`Outlet`
protocol, so the same code runs over real QUIC and in the in-memory state-machine test.

Commands created on another relay of the fleet are picked up by the periodic sweep, which also
expires what missed its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from relay.store.commands import CommandRow, CommandStore
from shared.tunnel import control as ctl

log = logging.getLogger(__name__)


class Outlet(Protocol):
    """An open agent session as the command plane sees it."""

    device_id: str

    @property
    def plane_open(self) -> bool:
        """True while the session is OPEN and the agent speaks the plane frames."""
        ...

    def queue(self, write: Callable[[ctl.RelayControl], None]) -> None:
        """Let ``write`` queue frames on the control machine, then send them."""
        ...


@dataclass(frozen=True)
class Retention:
    """How long device events and finished commands stay in the store, and how often the
    sweep deletes older ones (the store grows without bound otherwise)."""

    events: timedelta = timedelta(days=31)
    commands: timedelta = timedelta(days=31)
    every_s: float = 3600.0


class CommandPlane:
    """Dispatches commands to sessions and records what agents report."""

    def __init__(
        self,
        store: CommandStore,
        sessions: Callable[[str], Outlet | None],
        *,
        unknown_after: timedelta = timedelta(days=1),
        retention: Retention | None = None,
    ) -> None:
        self.store = store
        self._sessions = sessions
        self._unknown_after = unknown_after
        self._retention = retention or Retention()
        self._next_prune = 0.0  # loop time of the next retention sweep (0: at the first sweep)
        self._changed: dict[str, asyncio.Event] = {}

    # -- from the API ------------------------------------------------------------------------

    async def submit(
        self,
        device_id: str,
        kind: str,
        *,
        target: str = "",
        args: dict[str, Any] | None = None,
        deadline: datetime,
        created_by: str | None = None,
    ) -> CommandRow:
        """Persist the command, then send it at once if the device is connected here.

        Stored as ``sent`` before it goes out when a session is open (one transaction): if the
        relay dies in between, the next session re-sends it and the agent deduplicates.
        """
        outlet = self._sessions(device_id)
        sending = outlet is not None and outlet.plane_open
        row = await self.store.create(
            device_id,
            kind,
            target=target,
            args=args,
            deadline=deadline,
            created_by=created_by,
            state="sent" if sending else "pending",
        )
        if sending and outlet is not None:
            wire = [row.wire()]
            outlet.queue(lambda control: control.send_commands(wire))
        return row

    async def wait(self, command_id: str, timeout: float, poll_s: float = 1.0) -> CommandRow | None:
        """The command once terminal, or as it stands after ``timeout`` seconds.

        Woken by results arriving on this relay; re-reads the store every ``poll_s`` too, since
        the agent may report to another relay of the fleet.
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        try:
            while True:
                event = self._changed.setdefault(command_id, asyncio.Event())
                row = await self.store.get(command_id)
                left = end - loop.time()
                if row is None or row.terminal or left <= 0:
                    return row
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(left, poll_s)):
                        await event.wait()
        finally:
            self._changed.pop(command_id, None)

    # -- from sessions -----------------------------------------------------------------------

    async def session_opened(self, outlet: Outlet) -> None:
        """(Re)send every open command of the device: after a cut, nothing is left behind."""
        if outlet.plane_open:
            await self._dispatch(outlet, None)

    async def handle(self, outlet: Outlet, event: ctl.PlaneEvent) -> None:
        """Record one plane frame from the agent, acknowledging after the write."""
        device_id = outlet.device_id
        match event:
            case ctl.CommandAcksReceived(acks=acks):
                await self.store.acknowledge(device_id, [a.id for a in acks])
            case ctl.CommandResultsReceived(results=results):
                changed = await self.store.record_results(device_id, results)
                ids = [r.id for r in results]
                outlet.queue(lambda control: control.ack_results(ids))
                self._wake(changed)
            case ctl.EventsReceived(events=events):
                up_to = await self.store.store_events(device_id, events)
                outlet.queue(lambda control: control.ack_events(up_to))
            case _:
                pass  # agent-bound frames never reach the relay (the control machine refuses them)

    # -- housekeeping ------------------------------------------------------------------------

    async def sweep(self) -> None:
        """Expire what missed its deadline; send pending commands of devices connected here
        (they may have been created on another relay)."""
        self._wake(await self.store.expire_due(self._unknown_after))
        await self._prune_when_due()
        for device_id in await self.store.devices_with_pending():
            outlet = self._sessions(device_id)
            if outlet is not None and outlet.plane_open:
                await self._dispatch(outlet, None)

    async def _prune_when_due(self) -> None:
        """Delete what is past its retention, at most every ``Retention.every_s`` seconds."""
        loop_now = asyncio.get_running_loop().time()
        if loop_now < self._next_prune:
            return
        self._next_prune = loop_now + self._retention.every_s
        now = self.store.clock()
        events, commands = await self.store.prune(
            now - self._retention.events, now - self._retention.commands
        )
        if events or commands:
            log.info("retention: deleted %d events and %d finished commands", events, commands)

    async def run_sweeper(self, interval_s: float) -> None:
        """Sweep every ``interval_s`` seconds until cancelled; a failed sweep is logged."""
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("command sweep failed")
            await asyncio.sleep(interval_s)

    async def _dispatch(self, outlet: Outlet, ids: list[str] | None) -> None:
        """Claim and send commands; a claimed command that did not get out is re-sent on the
        next session (it is ``sent`` in the store, and the agent deduplicates)."""
        if not outlet.plane_open:
            return
        rows = await self.store.claim_for_sending(outlet.device_id, ids)
        if rows and outlet.plane_open:
            wire = [row.wire() for row in rows]
            outlet.queue(lambda control: control.send_commands(wire))

    def _wake(self, ids: list[str]) -> None:
        """Wake API waiters of these commands."""
        for command_id in ids:
            event = self._changed.pop(command_id, None)
            if event is not None:
                event.set()
