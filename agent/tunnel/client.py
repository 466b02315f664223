"""The agent's end of the tunnel: connect out, prove the device key, stay connected.

One task owns the connection: QUIC when it connects, else the TLS/TCP fallback on the relay's
HTTPS port (``shared.tcp``; ``agent.tunnel.transport`` decides, and re-probes QUIC while on TCP).
It reconnects with full-jitter exponential backoff (tenacity) and
starts the backoff afresh after every session that got authenticated, so a relay restart costs
one quick retry rather than a long wait. Each stream the relay opens is one viewer request and is
handed to ``handle_request``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_exponential, wait_random_exponential

from agent.settings import AgentSettings
from agent.store import Identity
from agent.tunnel.transport import Transport, TransportPolicy
from shared import models, quic, tcp
from shared.tunnel import control as ctl
from shared.tunnel.errors import FrameError
from shared.tunnel.identity import certificate_fingerprint, sign_auth

if TYPE_CHECKING:
    from agent.plane import AgentPlane

log = logging.getLogger(__name__)

RequestHandler = Callable[[quic.TunnelStream], Awaitable[None]]

#: Failures that end a connection attempt and are worth retrying: the relay is down, restarting,
#: unreachable, or refused us for a reason that may pass (it may not know us yet after a restore).
RETRYABLE = (OSError, ConnectionError, TimeoutError, FrameError, quic.StreamReset)

#: A relay that died without a goodbye must be noticed within this long (DESIGN.md, Liveness).
LIVENESS_LIMIT_S = 15.0
#: The dead-after limit is this many heartbeats, so one late PONG is not taken for a dead relay.
SILENT_HEARTBEATS = 1.5
#: First window of the reconnect backoff; it doubles per failed attempt up to the settings' cap.
BACKOFF_FIRST_S = 0.5


def liveness(heartbeat_s: float) -> tuple[float, float]:
    """(ping every, dead after) for a heartbeat setting, keeping dead-after within 15 s.

    A heartbeat of 15 s with dead-after 15 s would declare a healthy relay dead whenever a PONG
    takes longer than no time at all, so the ping period shrinks to keep 1.5 heartbeats of slack.
    """
    dead_after = min(LIVENESS_LIMIT_S, heartbeat_s * SILENT_HEARTBEATS)
    return min(heartbeat_s, dead_after / SILENT_HEARTBEATS), dead_after


def goaway_delay(retry_after_s: float, rng: random.Random) -> float:
    """When to come back after GOAWAY: uniform over the relay's window, so a relay's agents
    spread their reconnects instead of all handshaking at once when the window ends."""
    return rng.uniform(0.0, max(0.0, retry_after_s))


class FullJitter(wait_random_exponential):
    """tenacity's full-jitter wait drawing from an injected RNG (tests record the windows)."""

    def __init__(self, rng: random.Random, *, multiplier: float, max_s: float) -> None:
        super().__init__(multiplier=multiplier, max=max_s)
        self.rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        """Uniform in [0, min(cap, first window x 2^(attempt-1))]."""
        return self.rng.uniform(self.min, wait_exponential.__call__(self, retry_state))


class SessionEnded(Exception):
    """A session that had been authenticated ended; reconnect with a fresh backoff."""

    def __init__(self, reason: str, retry_after_s: float = 0.0) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class Refused(ConnectionError):
    """The relay refused the device (unknown device, failed proof, old protocol)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"relay refused the device: {code} {message}")
        self.code = code


@dataclass
class TunnelStatus:
    """What ``rmon-agent status`` and the inventory report about the tunnel."""

    connected: bool = False
    since: float = 0.0
    last_error: str = ""
    core: str = ""
    #: "quic" or "tcp" (the TLS/TCP fallback) while connected, else "".
    transport: str = ""


@dataclass
class _Link:
    """One open connection, the transport it runs on and what closes it."""

    conn: quic.TunnelConnection
    transport: Transport
    stack: contextlib.AsyncExitStack


class TunnelClient:
    """Keeps one authenticated QUIC session to the relay open."""

    def __init__(
        self,
        settings: AgentSettings,
        identity: Identity,
        key: Ed25519PrivateKey,
        *,
        handle_request: RequestHandler,
        inventory: Callable[[], models.Inventory],
        agent_version: str = "",
        rng: random.Random | None = None,
        plane: AgentPlane | None = None,
    ) -> None:
        self._settings = settings
        #: The command runner and event spool; told when sessions open and close.
        self._plane = plane
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not a secret
        self._identity = identity
        self._key = key
        self._handle_request = handle_request
        self._inventory = inventory
        self._agent_version = agent_version
        self._control: ctl.AgentControl | None = None
        self._control_stream: quic.TunnelStream | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.status = TunnelStatus(core=settings.quic_core)
        self.connected = asyncio.Event()
        self.policy = TransportPolicy(
            reprobe_interval_s=settings.quic_reprobe_interval_s,
            max_holddown_s=settings.quic_reprobe_max_s,
            fallback_enabled=settings.tunnel_fallback,
        )
        self._transport = Transport.QUIC

    async def run_forever(self) -> None:
        """Connect, serve, reconnect; returns only when cancelled."""
        while True:
            try:
                await self._connect_with_backoff()
            except SessionEnded as ended:
                log.info("tunnel session ended: %s", ended)
                self.status.last_error = str(ended)
                if ended.retry_after_s:
                    await asyncio.sleep(goaway_delay(ended.retry_after_s, self._rng))

    async def _connect_with_backoff(self) -> None:
        """Retry connection attempts with full jitter until one session ends after auth."""
        retrying = AsyncRetrying(
            wait=FullJitter(
                self._rng,
                multiplier=BACKOFF_FIRST_S,
                max_s=self._settings.reconnect_max_backoff_s,
            ),
            retry=retry_if_exception_type(RETRYABLE),
            before_sleep=self._log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._session()

    def _log_retry(self, state: object) -> None:
        """Record why the last attempt failed (shown by ``status``)."""
        outcome = getattr(state, "outcome", None)
        err = outcome.exception() if outcome is not None else None
        self.status.last_error = f"{type(err).__name__}: {err}"
        log.warning("tunnel connect failed (%s); retrying", self.status.last_error)

    async def _session(self) -> None:
        """One connection: handshake, then serve until it ends; from TCP, move to QUIC."""
        link = await self._connect()
        while True:
            try:
                moved = await self._serve_link(link)
            finally:
                await link.stack.aclose()
            link = moved

    async def _connect(self) -> _Link:
        """Try the transports in the policy's order; raise the last failure if none connects."""
        loop = asyncio.get_running_loop()
        order = self.policy.attempt_order()
        failure: BaseException | None = None
        for transport in order:
            quick = transport is Transport.QUIC and len(order) > 1
            timeout = self._settings.quic_probe_timeout_s if quick else None
            try:
                return await self._open(transport, timeout)
            except RETRYABLE as err:
                self.policy.connect_failed(transport, loop.time())
                log.info("tunnel over %s did not connect: %s", transport.value, err or repr(err))
                failure = err
        assert failure is not None
        raise failure

    async def _open(self, transport: Transport, timeout: float | None = None) -> _Link:
        """Connect over one transport; the link's stack closes it."""
        stack = contextlib.AsyncExitStack()
        try:
            conn = await stack.enter_async_context(self._connection(transport, timeout))
        except BaseException:
            await stack.aclose()
            raise
        return _Link(conn, transport, stack)

    def _connection(
        self, transport: Transport, timeout: float | None
    ) -> contextlib.AbstractAsyncContextManager[quic.TunnelConnection]:
        """The context manager that opens ``transport`` to the enrolled relay."""
        url = urlsplit(self._identity.relay_url)
        host, port = url.hostname or "localhost", url.port or 443
        ca = self._identity.relay_ca
        limit = {"timeout": timeout} if timeout is not None else {}
        if transport is Transport.TCP:
            return tcp.connect(host, port, cafile=ca, server_name=host, **limit)
        return quic.connect(
            host, port, core=self._settings.quic_core, cafile=ca, server_name=host, **limit
        )

    async def _serve_link(self, link: _Link) -> _Link:
        """Serve one connection until it ends (raises) or a QUIC re-probe succeeds (returns it)."""
        self._transport = link.transport
        link.conn.on_stream = self._spawn_request
        authenticated = False
        try:
            if link.transport is Transport.TCP:
                return await self._serve_with_reprobe(link)
            await self._run_control(link.conn)
            raise SessionEnded("control loop returned")  # it only ends by raising
        except RETRYABLE as err:
            if self.status.connected:  # it had worked: start the backoff afresh
                raise SessionEnded(str(err) or type(err).__name__) from err
            raise
        finally:
            authenticated = self.status.connected
            self._mark_down()
            self._note_end(link.transport, authenticated)

    def _note_end(self, transport: Transport, authenticated: bool) -> None:
        """Tell the policy how a QUIC session ended (a pre-auth end counts as a QUIC failure)."""
        if transport is not Transport.QUIC:
            return
        now = asyncio.get_running_loop().time()
        if authenticated:
            self.policy.quic_session_ended(now)
        else:
            self.policy.connect_failed(Transport.QUIC, now)

    async def _serve_with_reprobe(self, link: _Link) -> _Link:
        """Run the TCP session with QUIC re-probes beside it; return a QUIC link that connected."""
        control = asyncio.ensure_future(self._run_control(link.conn))
        probe = asyncio.ensure_future(self._reprobe())
        try:
            await asyncio.wait({control, probe}, return_when=asyncio.FIRST_COMPLETED)
            if control.done():
                control.result()  # raises how the session ended
                raise SessionEnded("control loop returned")
            moved = probe.result()
            log.info("QUIC to the relay works again: moving the tunnel off TLS/TCP")
            link.conn.close(reason="moving to QUIC")
            return moved
        finally:
            await _cancel(control)
            await _cancel_probe(probe, control)

    async def _reprobe(self) -> _Link:
        """Once authenticated on TCP, try a QUIC handshake whenever the policy says it is due."""
        loop = asyncio.get_running_loop()
        await self.connected.wait()
        while True:
            await asyncio.sleep(self.policy.seconds_to_probe(loop.time()))
            if not self.policy.probe_due(loop.time()):
                self.policy.probe_failed(loop.time())  # not in fallback: look again later
                continue
            try:
                link = await self._open(Transport.QUIC, self._settings.quic_probe_timeout_s)
            except RETRYABLE as err:
                self.policy.probe_failed(loop.time())
                log.info("QUIC re-probe failed (%s); staying on TLS/TCP", err or repr(err))
                continue
            self.policy.probe_succeeded(loop.time())
            return link

    async def _run_control(self, conn: quic.TunnelConnection) -> None:
        """Drive the control state machine over the first stream until the session ends."""
        loop = asyncio.get_running_loop()
        fingerprint = certificate_fingerprint(conn.peer_certificate_der())
        ping_every, dead_after = liveness(self._settings.heartbeat_interval_s)
        control = ctl.AgentControl(
            self._identity.device_id,
            loop.time(),
            agent_version=self._agent_version,
            heartbeat_interval_s=ping_every,
            dead_after_s=dead_after,
        )
        stream = await conn.open_stream()
        self._control, self._control_stream = control, stream
        control.start(loop.time())
        reader = asyncio.ensure_future(stream.read_frame())
        try:
            while True:
                self._flush(stream, control)
                timeout = max(0.0, control.next_deadline() - loop.time())
                done, _ = await asyncio.wait({reader}, timeout=timeout)
                events = control.handle_timer(loop.time())
                if done:
                    frame = reader.result()
                    if frame is None:
                        raise SessionEnded("relay closed the control stream")
                    events += control.receive_frame(frame, loop.time())
                    reader = asyncio.ensure_future(stream.read_frame())
                for event in events:
                    self._on_event(event, control, fingerprint)
                if conn.closed:
                    raise SessionEnded(conn.close_reason or "connection closed")
        finally:
            reader.cancel()
            self._flush(stream, control)

    def _flush(self, stream: quic.TunnelStream, control: ctl.AgentControl) -> None:
        """Send whatever the state machine queued."""
        data = control.data_to_send()
        if data and not stream.is_reset:
            stream.send_bytes(data)

    def _on_event(self, event: ctl.ControlEvent, control: ctl.AgentControl, fp: bytes) -> None:
        """React to one control event."""
        match event:
            case ctl.ChallengeReceived(nonce=nonce):
                control.answer_challenge(sign_auth(self._key, nonce, fp, control.device_id))
            case ctl.Authenticated():
                self._mark_up()
                control.send_inventory(self._inventory())
                if self._plane is not None:
                    self._plane.opened(self.queue)
            case ctl.CommandsReceived() | ctl.ResultsAcked() | ctl.EventsAcked():
                if self._plane is not None:
                    self._plane.handle(event)
            case ctl.GoingAway(retry_after_s=after, reason=reason):
                raise SessionEnded(f"relay going away: {reason}", retry_after_s=after)
            case ctl.PeerError(code=code, message=message, sent_by_peer=True):
                raise Refused(code, message)
            case ctl.PeerError(code=code, message=message):
                raise ConnectionError(f"protocol error {code}: {message}")
            case ctl.PeerSilent(silent_for=silent):
                raise SessionEnded(f"relay silent for {silent:.1f} s")

    def queue(self, write: Callable[[ctl.AgentControl], None]) -> bool:
        """Let the command plane or the event spool put frames on the control stream now;
        False when no session is open (they keep what they wanted to send)."""
        control, stream = self._control, self._control_stream
        if control is None or stream is None or control.state is not ctl.State.OPEN:
            return False
        write(control)
        self._flush(stream, control)
        return True

    def inventory_changed(self) -> None:
        """Send the current inventory now if a session is open."""
        control, stream = self._control, self._control_stream
        if control is not None and stream is not None and control.state is ctl.State.OPEN:
            control.send_inventory(self._inventory())
            self._flush(stream, control)

    def _mark_up(self) -> None:
        """The session is authenticated."""
        log.info("tunnel up to %s over %s", self._identity.relay_url, self._transport.value)
        self.status.connected, self.status.since, self.status.last_error = True, time.time(), ""
        self.status.transport = self._transport.value
        self.policy.authenticated(self._transport, asyncio.get_running_loop().time())
        self.connected.set()

    def _mark_down(self) -> None:
        """The session is over: stop its request tasks."""
        self.status.connected = False
        self.status.transport = ""
        self.connected.clear()
        self._control = self._control_stream = None
        if self._plane is not None:
            self._plane.closed()
        for task in list(self._tasks):
            task.cancel()

    def _spawn_request(self, stream: quic.TunnelStream) -> None:
        """Serve a relay-opened stream in its own task, owned by this client."""
        task = asyncio.get_running_loop().create_task(self._serve_stream(stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_stream(self, stream: quic.TunnelStream) -> None:
        """Run the request handler; a reset or a bug ends only this stream."""
        try:
            await self._handle_request(stream)
        except quic.StreamReset:
            log.debug("stream %d reset by the relay", stream.stream_id)
        except Exception:
            log.exception("request on stream %d failed", stream.stream_id)
            stream.reset(quic.RESET_INTERNAL)

    async def close(self) -> None:
        """Cancel request tasks (the run task is cancelled by its owner)."""
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def _cancel(task: asyncio.Future[None]) -> None:
    """Cancel a helper task and wait for it (its outcome was already read, or is moot)."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _cancel_probe(probe: asyncio.Future[_Link], control: asyncio.Future[None]) -> None:
    """Stop a re-probe; close the QUIC link it made if the session ended first and left it."""
    probe.cancel()
    await asyncio.gather(probe, return_exceptions=True)
    if control.done() and probe.done() and not probe.cancelled() and probe.exception() is None:
        await probe.result().stack.aclose()
