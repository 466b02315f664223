"""An agent and a relay joined in memory for command-plane tests: the real sans-I/O control
machines (``shared.testing.ControlPair``), the real relay store (SQLite in a tmp dir) under the
real :class:`CommandPlane`, and the real agent store under the real :class:`CommandRunner`.

Only the transport is replaced: bytes move when the test says ``deliver`` and can be lost
(``cut``). Either end can be restarted from its files, as a crashed process would be. One
virtual clock drives both ends.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.commands import CommandRunner, Handler
from agent.events import AgentEvents
from agent.plane import AgentPlane
from agent.store import AgentStore
from agent.store.journal import CommandJournal
from agent.store.spool import EventSpool
from relay.store import Store, open_store
from relay.store.commands import CommandStore
from relay.tunnel.commands import CommandPlane
from shared.testing import ControlPair, FakeClock
from shared.tunnel import control as ctl

EPOCH = datetime(2030, 1, 1, tzinfo=UTC)


class VirtualTime:
    """One clock for both ends: a float for the agent, a UTC datetime for the relay store."""

    def __init__(self) -> None:
        self.fake = FakeClock(EPOCH.timestamp())

    def unix(self) -> float:
        """Agent time (Unix seconds)."""
        return self.fake.now()

    def utc(self) -> datetime:
        """Relay time."""
        return datetime.fromtimestamp(self.fake.now(), UTC)

    def advance(self, seconds: float) -> None:
        """Move both ends' time forward."""
        self.fake.advance(seconds)


class RelayOutlet:
    """The relay end of an in-memory session, as the command plane sees it."""

    def __init__(self, device_id: str, pair: ControlPair) -> None:
        self.device_id = device_id
        self.pair = pair

    @property
    def plane_open(self) -> bool:
        """Open while the control machine is."""
        return self.pair.relay.state is ctl.State.OPEN and self.pair.relay.supports_commands

    def queue(self, write: Callable[[ctl.RelayControl], None]) -> None:
        """Queue frames; they move when the harness delivers."""
        if self.plane_open:
            write(self.pair.relay)


class PlaneHarness:
    """Relay and agent of one device over an in-memory link that the test controls."""

    def __init__(self, tmp: Path, handlers: dict[str, Handler]) -> None:
        self.tmp = tmp
        self.handlers = handlers
        self.device_id = ""
        self.time = VirtualTime()
        self.key = Ed25519PrivateKey.generate()
        self.pair: ControlPair | None = None
        self.outlet: RelayOutlet | None = None
        self.relay_store: Store | None = None
        self.commands: CommandStore | None = None
        self.relay: CommandPlane | None = None
        self.agent_store: AgentStore | None = None
        self.runner: CommandRunner | None = None
        self.events: AgentEvents | None = None
        self.agent: AgentPlane | None = None

    @property
    def db_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.tmp / 'relay' / 'relay.db'}"

    # -- processes -----------------------------------------------------------------------

    async def start_relay(self) -> CommandPlane:
        """Open the relay store and its command plane (a relay process starting)."""
        self.relay_store = await open_store(self.db_url, clock=self.time.utc)
        self.commands = CommandStore(self.relay_store.engine, clock=self.time.utc)
        self.relay = CommandPlane(self.commands, self._lookup)
        if not self.device_id:
            self.device_id = await add_device(self.relay_store)
        return self.relay

    async def stop_relay(self) -> None:
        """The relay process dies: the link goes with it."""
        self.cut()
        assert self.relay_store is not None
        await self.relay_store.close()
        self.relay_store = self.commands = self.relay = None

    def start_agent(self, **spool: Any) -> AgentPlane:
        """Open the agent store, recover the journal and build the plane (an agent starting)."""
        self.agent_store = AgentStore(self.tmp / "agent")
        # Faster commits, as durable as FULL against what this harness models: process
        # crashes (SQLite WAL). The agent itself keeps FULL, for power cuts too.
        self.agent_store.db.execute("PRAGMA synchronous=NORMAL")
        journal = CommandJournal(self.agent_store.db)
        self.runner = CommandRunner(journal, self.handlers, clock=self.time.unix)
        self.runner.recover()
        limits = {"max_age_s": 7 * 86400.0, "max_bytes": 100 * 1024 * 1024, **spool}
        self.events = AgentEvents(EventSpool(self.agent_store.db, clock=self.time.unix, **limits))
        self.agent = AgentPlane(self.runner, self.events)
        return self.agent

    async def stop_agent(self) -> None:
        """The agent process dies: running commands stop where they are."""
        self.cut()
        assert self.runner is not None
        assert self.agent_store is not None
        await self.runner.close()
        self.agent_store.db.close()
        self.agent_store = self.runner = self.events = self.agent = None

    # -- the link ------------------------------------------------------------------------

    def _lookup(self, device_id: str) -> RelayOutlet | None:
        if self.outlet is not None and device_id == self.outlet.device_id:
            return self.outlet
        return None

    async def connect(self) -> None:
        """Handshake a fresh session and tell both planes it is open."""
        assert self.relay is not None
        assert self.agent is not None
        pair = ControlPair.create(self.device_id, clock=self.time.fake)
        assert pair.handshake(self.key).authenticated
        self.pair, self.outlet = pair, RelayOutlet(self.device_id, pair)
        self.agent.opened(self._agent_queue)
        await self.relay.session_opened(self.outlet)

    def _agent_queue(self, write: Callable[[ctl.AgentControl], None]) -> bool:
        pair = self.pair
        if pair is None or pair.agent.state is not ctl.State.OPEN:
            return False
        write(pair.agent)
        return True

    def cut(self) -> None:
        """The path dies: whatever is queued is lost; both ends notice."""
        if self.pair is None:
            return
        self.pair.connected = False
        self.pair.pump()
        self.pair = self.outlet = None
        if self.agent is not None:
            self.agent.closed()

    @property
    def up(self) -> bool:
        return self.pair is not None

    async def deliver(self, rounds: int = 1000) -> None:
        """Move frames both ways, letting each end react, until both are quiet."""
        for _ in range(rounds):
            await asyncio.sleep(0)  # let command tasks that finished report
            if self.pair is None:
                return
            agent_events, relay_events = self.pair.pump()
            if not agent_events and not relay_events:
                return
            for event in agent_events:
                if isinstance(event, ctl.PlaneEvent):
                    assert self.agent is not None
                    self.agent.handle(event)
            for event in relay_events:
                if isinstance(event, ctl.PlaneEvent):
                    assert self.relay is not None
                    assert self.outlet is not None
                    await self.relay.handle(self.outlet, event)
        raise AssertionError("the link never went quiet")

    async def submit(self, kind: str, seconds: float = 60.0, **args: Any) -> str:
        """A command through the relay, as the API creates it."""
        assert self.relay is not None
        row = await self.relay.submit(
            self.device_id, kind, args=args, deadline=self.time.utc() + timedelta(seconds=seconds)
        )
        return row.id


async def add_device(store: Store, email: str = "owner@example.com") -> str:
    """An account with one enrolled device (the commands table refers to devices)."""
    account = await store.get_account_by_email(email)
    if account is None:
        account = await store.create_account(email, "Owner", "not-a-real-hash")
    assert account is not None
    grant = f"grant-{uuid.uuid4()}"
    await store.create_grant(grant, account.id, store.now() + timedelta(minutes=5))
    device = await store.enroll_device(grant, name="site", public_key="00" * 32, agent_version="")
    assert device is not None
    return device.id
