"""One agent's authenticated tunnel on this relay, driven by the sans-I/O ``RelayControl``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared import quic
from shared.tunnel import control as ctl
from shared.tunnel.codes import TunnelCode
from shared.tunnel.errors import FrameError

if TYPE_CHECKING:
    from relay.tunnel.listener import TunnelListener

log = logging.getLogger(__name__)

#: An agent must send HELLO and AUTH within this time or is dropped (seconds).
HANDSHAKE_TIMEOUT_S = 10.0

#: After refusing an agent, how long the relay waits for it to read the ERROR frame and close
#: (seconds). Closing at once would discard the queued frame: a QUIC CONNECTION_CLOSE supersedes
#: unsent stream data, and the agent would see a bare reset instead of the reason.
REFUSAL_LINGER_S = 2.0

#: Longest reason text kept for the connection history.
REASON_MAX = 128
#: History reasons of refusals, by the code the agent was refused with.
REFUSAL_REASONS: dict[int, str] = {
    TunnelCode.DEVICE_AUTH_FAILED: "refused: key proof failed",
    TunnelCode.VERSION_UNSUPPORTED: "refused: protocol version too old",
    TunnelCode.PROTOCOL_ERROR: "refused: protocol error",
}


class AgentSession:
    """Serves the control stream of one agent connection and opens request streams on it."""

    def __init__(self, listener: TunnelListener, conn: quic.TunnelConnection) -> None:
        self.listener = listener
        self.conn = conn
        self.device_id = ""
        #: Why the session ended, for the connection history (DEV-7); set where it is known.
        self.end_reason = ""
        #: QUIC application error code of our CONNECTION_CLOSE: 0, or the TunnelCode we failed
        #: the agent with, so even an agent that never read our ERROR frame learns why.
        self.close_code = 0
        self._refused = False
        self._control: ctl.RelayControl | None = None
        self._stream: quic.TunnelStream | None = None
        self._first_stream: asyncio.Future[quic.TunnelStream] = (
            asyncio.get_running_loop().create_future()
        )
        conn.on_stream = self._on_stream

    def _on_stream(self, stream: quic.TunnelStream) -> None:
        """The agent's first stream is the control stream; agents open no others (yet)."""
        if not self._first_stream.done():
            self._first_stream.set_result(stream)
        else:
            stream.reset(quic.RESET_CANCELLED)

    async def run(self) -> None:
        """Handshake, then serve the control stream until the connection ends."""
        settings = self.listener.settings
        loop = asyncio.get_running_loop()
        self._control = control = ctl.RelayControl(
            self.listener.cert_fingerprint,
            loop.time(),
            relay_id=self.listener.relay_id,
            heartbeat_interval_s=settings.heartbeat_interval_s,
            dead_after_s=settings.agent_dead_after_s,
        )
        async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
            self._stream = stream = await self._first_stream
        try:
            await self._serve(stream, control)
            if self._refused:
                await self._linger(stream)
        finally:
            self._flush()
            self.conn.close(self.close_code, self.end_reason or "session over")

    async def _linger(self, stream: quic.TunnelStream) -> None:
        """Deliver the ERROR frame, end the stream and let the refused agent hang up first."""
        self._flush()
        stream.end()
        self.conn.flush_now()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REFUSAL_LINGER_S):
                await self.conn.wait_closed()

    async def _serve(self, stream: quic.TunnelStream, control: ctl.RelayControl) -> None:
        """Read frames and timers into the state machine; act on its events."""
        loop = asyncio.get_running_loop()
        reader = asyncio.ensure_future(stream.read_frame())
        try:
            while not control.closed:
                timeout = max(0.0, control.next_deadline() - loop.time())
                if control.state is not ctl.State.OPEN:
                    timeout = min(timeout, HANDSHAKE_TIMEOUT_S)
                done, _ = await asyncio.wait({reader}, timeout=timeout)
                events = control.handle_timer(loop.time())
                if done:
                    frame = reader.result()
                    if frame is None:
                        return
                    events += control.receive_frame(frame, loop.time())
                    reader = asyncio.ensure_future(stream.read_frame())
                elif not events and control.state is not ctl.State.OPEN:
                    await self._refusal(control, "refused: handshake timed out")
                    return
                for event in events:
                    await self._on_event(event, control)
                self._flush()
        except (quic.StreamReset, FrameError) as err:
            log.info("agent %s control stream ended: %s", self.device_id or "?", err)
            if isinstance(err, FrameError):
                self.close_code = self.close_code or TunnelCode.PROTOCOL_ERROR
                self._ended(f"protocol error: {err}"[:REASON_MAX])
        finally:
            reader.cancel()
            self._ended(_closed_reason(self.conn))

    async def _on_event(self, event: ctl.ControlEvent, control: ctl.RelayControl) -> None:
        """Look up keys, register the session, store inventories."""
        store = self.listener.store
        match event:
            case ctl.HelloReceived(device_id=device_id):
                device = await store.get_device(device_id)
                key = bytes.fromhex(device.public_key) if device is not None else None
                control.challenge(key, os.urandom(32))
            case ctl.Authenticated(device_id=device_id):
                self.device_id = device_id
                await self.listener.registry.attach(self)
                await self.listener.commands.session_opened(self)
            case ctl.InventoryReceived(inventory=inventory):
                await store.upsert_inventory(self.device_id, list(inventory.cameras))
            case ctl.PeerError(code=code, message=message, sent_by_peer=by_peer):
                who = "agent" if by_peer else "relay"
                self._refused = self._refused or not by_peer
                await self._on_error(control, code, message, by_peer=by_peer)
                log.warning(
                    "tunnel from %s refused by %s: %d %s",
                    control.device_id or "?",
                    who,
                    code,
                    message,
                )
            case ctl.CommandAcksReceived() | ctl.CommandResultsReceived() | ctl.EventsReceived():
                await self.listener.commands.handle(self, event)
            case ctl.PeerSilent(silent_for=silent):
                log.info("agent %s silent for %.1f s: dropping", self.device_id, silent)
                self._ended("heartbeat timeout")
            case _:
                pass

    def _flush(self) -> None:
        """Send what the state machine queued."""
        if self._control is None or self._stream is None:
            return
        data = self._control.data_to_send()
        if data and not self._stream.is_reset and not self.conn.closed:
            self._stream.send_bytes(data)

    def go_away(self, retry_after_s: float) -> None:
        """Tell the agent we are leaving, so it reconnects at once instead of timing out."""
        if self._control is not None and self._control.state is ctl.State.OPEN:
            self._control.go_away(retry_after_s, "relay shutting down")
            self._ended("relay shutting down")
            self._flush()

    @property
    def plane_open(self) -> bool:
        """Whether commands and event acks can go out now (the command plane's ``Outlet``)."""
        control = self._control
        return (
            control is not None
            and control.state is ctl.State.OPEN
            and control.supports_commands
            and not self.conn.closed
        )

    def queue(self, write: Callable[[ctl.RelayControl], None]) -> None:
        """Let the command plane put frames on the control stream, and send them now."""
        if self._control is not None and self.plane_open:
            write(self._control)
            self._flush()

    async def open_request_stream(self) -> quic.TunnelStream:
        """A new stream to the agent for one viewer request."""
        return await self.conn.open_stream()

    def _ended(self, reason: str) -> None:
        """Keep the first reason given: later ones are consequences of it."""
        self.end_reason = self.end_reason or reason

    @property
    def address(self) -> str:
        """The agent's address as "host:port" (for history and logs)."""
        host, port = self.conn.remote_address()
        return f"{host}:{port}" if host else ""

    async def _on_error(
        self, control: ctl.RelayControl, code: int, message: str, *, by_peer: bool
    ) -> None:
        """Name the end of the session; a refusal before OPEN is a flagged history row."""
        if not by_peer:
            self.close_code = self.close_code or code
        if by_peer:
            self._ended(f"agent error {code}: {message}"[:REASON_MAX])
        elif control.device_id and not self.device_id:  # refused before authentication
            await self._refusal(control, REFUSAL_REASONS.get(code, f"refused: {message}"))
        else:
            self._ended(f"protocol error: {message}"[:REASON_MAX])

    async def _refusal(self, control: ctl.RelayControl, reason: str) -> None:
        """Record an agent turned away while claiming a registered device id."""
        if control.device_id and not self.device_id:
            await self.listener.store.record_refusal(control.device_id, reason, self.address)


def _closed_reason(conn: quic.TunnelConnection) -> str:
    """Why the connection ended when nothing more specific was seen: the agent went away."""
    if "idle" in conn.close_reason.lower():
        return "connection timed out"
    return "agent closed"
