"""The agent's end of the tunnel: connect out, prove the device key, stay connected.

One task owns the connection. It reconnects with full-jitter exponential backoff (tenacity) and
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
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_exponential, wait_random_exponential

from agent.settings import AgentSettings
from agent.store import Identity
from shared import models, quic
from shared.tunnel import control as ctl
from shared.tunnel.errors import FrameError
from shared.tunnel.identity import certificate_fingerprint, sign_auth

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
    ) -> None:
        self._settings = settings
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
        """One connection: handshake, then serve until it ends."""
        url = urlsplit(self._identity.relay_url)
        host, port = url.hostname or "localhost", url.port or 443
        ca = self._identity.relay_ca
        async with quic.connect(
            host, port, core=self._settings.quic_core, cafile=ca, server_name=host
        ) as conn:
            conn.on_stream = self._spawn_request
            try:
                await self._run_control(conn)
            except RETRYABLE as err:
                if self.status.connected:  # it had worked: start the backoff afresh
                    raise SessionEnded(str(err) or type(err).__name__) from err
                raise
            finally:
                self._mark_down()

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
            stream.conn._send(stream.stream_id, data)

    def _on_event(self, event: ctl.ControlEvent, control: ctl.AgentControl, fp: bytes) -> None:
        """React to one control event."""
        match event:
            case ctl.ChallengeReceived(nonce=nonce):
                control.answer_challenge(sign_auth(self._key, nonce, fp, control.device_id))
            case ctl.Authenticated():
                self._mark_up()
                control.send_inventory(self._inventory())
            case ctl.GoingAway(retry_after_s=after, reason=reason):
                raise SessionEnded(f"relay going away: {reason}", retry_after_s=after)
            case ctl.PeerError(code=code, message=message, sent_by_peer=True):
                raise Refused(code, message)
            case ctl.PeerError(code=code, message=message):
                raise ConnectionError(f"protocol error {code}: {message}")
            case ctl.PeerSilent(silent_for=silent):
                raise SessionEnded(f"relay silent for {silent:.1f} s")

    def inventory_changed(self) -> None:
        """Send the current inventory now if a session is open."""
        control, stream = self._control, self._control_stream
        if control is not None and stream is not None and control.state is ctl.State.OPEN:
            control.send_inventory(self._inventory())
            self._flush(stream, control)

    def _mark_up(self) -> None:
        """The session is authenticated."""
        log.info("tunnel up to %s", self._identity.relay_url)
        self.status.connected, self.status.since, self.status.last_error = True, time.time(), ""
        self.connected.set()

    def _mark_down(self) -> None:
        """The session is over: stop its request tasks."""
        self.status.connected = False
        self.connected.clear()
        self._control = self._control_stream = None
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
