"""Which agents hold a tunnel to this relay, and their online state in the store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from relay.store.store import UNRECORDED_END

if TYPE_CHECKING:
    from relay.store import Store
    from relay.tunnel.session import AgentSession

log = logging.getLogger(__name__)


class Registry:
    """device id → the live session; a newer session of the same device replaces the older."""

    def __init__(self, store: Store, relay_id: str) -> None:
        self._store = store
        self._relay_id = relay_id
        self._sessions: dict[str, AgentSession] = {}
        self._attached = asyncio.Event()  # replaced on every attach (see wait_attached)

    def get(self, device_id: str) -> AgentSession | None:
        """The device's live session on this relay, if any."""
        session = self._sessions.get(device_id)
        if session is not None and session.conn.closed:
            return None
        return session

    async def attach(self, session: AgentSession) -> None:
        """Record an authenticated session and mark the device online."""
        old = self._sessions.get(session.device_id)
        self._sessions[session.device_id] = session
        self._attached.set()
        self._attached = asyncio.Event()
        previous_ended, previous_address, previous_transport = UNRECORDED_END, "", ""
        if old is not None and old is not session:
            old.end_reason = previous_ended = "replaced by newer connection"
            previous_address, previous_transport = old.address, old.conn.transport
            old.conn.close(reason="replaced by a newer connection")
        await self._store.set_device_online(
            session.device_id,
            True,
            self._relay_id,
            reason="authenticated",
            address=session.address,
            transport=session.conn.transport,
            previous_ended=previous_ended,
            previous_address=previous_address,
            previous_transport=previous_transport,
        )
        log.info(
            "agent %s online from %s over %s",
            session.device_id,
            session.conn.remote_address(),
            session.conn.transport,
        )

    async def wait_attached(self, timeout: float) -> None:
        """Return at the next session attach (of any device) or after ``timeout`` s: the live
        hub re-opens a camera's stream as soon as its agent is back after a transport move."""
        attached = self._attached
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await attached.wait()

    async def detach(self, session: AgentSession) -> None:
        """Forget a session that ended, unless a newer one already replaced it."""
        if not session.device_id or self._sessions.get(session.device_id) is not session:
            return
        del self._sessions[session.device_id]
        await self._store.set_device_online(
            session.device_id,
            False,
            self._relay_id,
            reason=session.end_reason or "agent closed",
            address=session.address,
            transport=session.conn.transport,
        )
        log.info("agent %s offline", session.device_id)

    def sessions(self) -> list[AgentSession]:
        """Every live session (for graceful shutdown)."""
        return list(self._sessions.values())
