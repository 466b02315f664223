"""The relay's QUIC listener for agents: accepts connections and runs one session each."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from relay.settings import RelaySettings
from relay.store.commands import CommandStore
from relay.tls import TlsFiles, leaf_der
from relay.tunnel.commands import CommandPlane, Retention
from relay.tunnel.registry import Registry
from relay.tunnel.session import AgentSession
from shared import quic
from shared.tunnel.identity import certificate_fingerprint

if TYPE_CHECKING:
    from relay.store import Store

log = logging.getLogger(__name__)

#: How long a graceful stop waits for agents to read GOAWAY and hang up (seconds).
GOAWAY_LINGER_S = 1.0


class TunnelListener:
    """Owns the QUIC server, the registry and every agent session task."""

    def __init__(self, settings: RelaySettings, store: Store, tls: TlsFiles) -> None:
        self.settings = settings
        self.store = store
        self.tls = tls
        self.relay_id = uuid.uuid4().hex[:12]
        self.cert_fingerprint = certificate_fingerprint(leaf_der(tls.cert))
        self.registry = Registry(store, self.relay_id)
        self.commands = CommandPlane(
            CommandStore(store.engine, clock=store.clock),
            self.registry.get,
            unknown_after=timedelta(seconds=settings.command_unknown_after_s),
            retention=Retention(
                events=timedelta(days=settings.event_retention_days),
                commands=timedelta(days=settings.command_retention_days),
                every_s=settings.retention_sweep_interval_s,
            ),
        )
        self._server: quic.QuicServerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> None:
        """Bind UDP ``host:port`` (the HTTPS port number)."""
        self._server = await quic.serve(
            host,
            port,
            certfile=self.tls.cert,
            keyfile=self.tls.key,
            on_connection=self._on_connection,
            core=self.settings.quic_core,
        )
        self._sweeper = asyncio.get_running_loop().create_task(
            self.commands.run_sweeper(self.settings.command_sweep_interval_s)
        )

    def accept(self, conn: quic.TunnelConnection) -> None:
        """A connection from another transport (the TLS/TCP fallback): serve it the same way."""
        log.info("tunnel connection from %s over %s", conn.remote_address(), conn.transport)
        self._on_connection(conn)

    def _on_connection(self, conn: quic.TunnelConnection) -> None:
        """A TLS handshake finished: start the session task (it owns the connection)."""
        session = AgentSession(self, conn)
        task = asyncio.get_running_loop().create_task(self._run(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, session: AgentSession) -> None:
        """Run a session to its end and take it out of the registry."""
        try:
            await session.run()
        except TimeoutError:
            log.info("agent from %s did not finish its handshake", session.conn.remote_address())
        except Exception:
            log.exception("agent session failed")
        finally:
            with contextlib.suppress(Exception):
                await self.registry.detach(session)

    async def stop(self) -> None:
        """Say GOAWAY to every agent, close the listener and end every session."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self._say_goaway(self.registry.sessions())
        if self._server is not None:
            self._server.close()
        # Sessions whose connection just closed end by themselves and record their end in the
        # store; cancelling them now would cut that write off. Only stragglers are cancelled.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=GOAWAY_LINGER_S)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _say_goaway(self, sessions: list[AgentSession]) -> None:
        """GOAWAY to each agent, then close what the agents did not close themselves.

        Closing at once would lose the GOAWAY: a QUIC CONNECTION_CLOSE supersedes stream data not
        yet sent, and the agents would take the close for a crash and come back without the
        relay's spreading window. Agents hang up as soon as they read the GOAWAY.
        """
        for session in sessions:
            session.go_away(self.settings.goaway_retry_after_s)
            session.conn.flush_now()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(GOAWAY_LINGER_S):
                await asyncio.gather(*(s.conn.wait_closed() for s in sessions))
        for session in sessions:
            session.conn.close(reason="relay stopping")
            session.conn.flush_now()  # the CLOSE leaves before the socket closes
