"""Control-stream state machines for both ends, sans-I/O.

No asyncio, sockets or clocks here: bytes come in through ``receive_data(data, now)``, time through
``handle_timer(now)``, and what must be sent waits in ``data_to_send()``. The asyncio adapter in
``shared.quic`` and the agent/relay tunnel modules drive these objects.

Agent                               Relay
  HELLO(device_id, version) ───────▶
                           ◀──────── CHALLENGE(nonce)           (after looking up the device key)
  AUTH(sign(nonce‖fp‖id)) ─────────▶
                           ◀──────── WELCOME(heartbeat)  or  ERROR(code) + close
  PING(seq) every heartbeat ───────▶
                           ◀──────── PONG(seq)
  INVENTORY(cameras) ──────────────▶
                           ◀──────── GOAWAY(retry_after)        (graceful relay exit)

Command plane and event spool (protocol version 2, after WELCOME; every message a bounded batch):

                           ◀──────── COMMANDS([id, kind, target, args, deadline])
  COMMAND_ACKS([id, state]) ───────▶                            (journalled before acting)
  COMMAND_RESULTS([id, outcome]) ──▶                            (re-sent until acknowledged)
                           ◀──────── RESULTS_ACK([id])          (results durably stored)
  EVENTS([seq, kind, …]) ──────────▶                            (spool, in seq order)
                           ◀──────── EVENTS_ACK(up_to)          (cumulative: all ≤ up_to stored)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from shared import models
from shared.tunnel.codes import TunnelCode
from shared.tunnel.errors import FrameError, ProtocolViolation
from shared.tunnel.frames import (
    MIN_PROTOCOL_VERSION,
    MIN_PROTOCOL_VERSION_FOR_COMMANDS,
    PROTOCOL_VERSION,
    Frame,
    FrameDecoder,
    FrameType,
    encode_frame,
)
from shared.tunnel.identity import NONCE_SIZE, verify_auth

# --- events handed to the I/O layer ------------------------------------------------------------


@dataclass(frozen=True)
class HelloReceived:
    """Relay: an agent claims ``device_id``; look up its key and call ``challenge``."""

    device_id: str
    agent_version: str
    protocol_version: int


@dataclass(frozen=True)
class ChallengeReceived:
    """Agent: the relay wants ``nonce`` signed; call ``answer_challenge``."""

    nonce: bytes


@dataclass(frozen=True)
class Authenticated:
    """Both ends: the device identity is proven and the session is open."""

    device_id: str
    heartbeat_interval_s: float


@dataclass(frozen=True)
class InventoryReceived:
    """Relay: the agent's current camera list."""

    inventory: models.Inventory


@dataclass(frozen=True)
class GoingAway:
    """Agent: the relay is leaving; reconnect after ``retry_after_s``."""

    retry_after_s: float
    reason: str


@dataclass(frozen=True)
class PeerError:
    """The peer sent a fatal ERROR, or we refused the peer; the connection must close."""

    code: int
    message: str
    sent_by_peer: bool


@dataclass(frozen=True)
class PeerSilent:
    """Nothing arrived from the peer for ``silent_for`` seconds: treat the connection as dead."""

    silent_for: float


@dataclass(frozen=True)
class CommandsReceived:
    """Agent: the relay asks for these commands (possibly again, after a reconnect)."""

    commands: tuple[models.Command, ...]


@dataclass(frozen=True)
class ResultsAcked:
    """Agent: the relay stored these results; they need not be sent again."""

    ids: tuple[str, ...]


@dataclass(frozen=True)
class EventsAcked:
    """Agent: the relay stored every event up to ``up_to``."""

    up_to: int


@dataclass(frozen=True)
class CommandAcksReceived:
    """Relay: the agent journalled these commands."""

    acks: tuple[models.CommandAck, ...]


@dataclass(frozen=True)
class CommandResultsReceived:
    """Relay: terminal outcomes from the agent; store them, then ``ack_results``."""

    results: tuple[models.CommandResult, ...]


@dataclass(frozen=True)
class EventsReceived:
    """Relay: spooled events; store them, then ``ack_events``."""

    events: tuple[models.Event, ...]


#: What the command plane and the event spool handle (the rest is the session's business).
PlaneEvent = (
    CommandsReceived
    | ResultsAcked
    | EventsAcked
    | CommandAcksReceived
    | CommandResultsReceived
    | EventsReceived
)

ControlEvent = (
    HelloReceived
    | ChallengeReceived
    | Authenticated
    | InventoryReceived
    | GoingAway
    | PeerError
    | PeerSilent
    | PlaneEvent
)


class State(Enum):
    """Where a control session stands; both ends use the subset that applies to them."""

    START = auto()
    AWAIT_CHALLENGE = auto()  # agent: HELLO sent
    AWAIT_KEY = auto()  # relay: HELLO received, key lookup pending
    AWAIT_AUTH = auto()  # relay: CHALLENGE sent
    AWAIT_WELCOME = auto()  # agent: AUTH sent
    OPEN = auto()
    CLOSED = auto()


# --- shared machinery ----------------------------------------------------------------------------


class _ControlBase:
    """Framing, liveness bookkeeping and error handling common to both ends."""

    def __init__(self, now: float, dead_after_s: float) -> None:
        self.state = State.START
        self._decoder = FrameDecoder()
        self._out = bytearray()
        self._last_heard = now
        self._dead_after_s = dead_after_s

    @property
    def closed(self) -> bool:
        """True once either end ended the session; nothing more is read."""
        return self.state is State.CLOSED

    def data_to_send(self) -> bytes:
        """Take the bytes queued for the control stream."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def receive_data(self, data: bytes, now: float) -> list[ControlEvent]:
        """Feed bytes from the control stream; return what happened."""
        if self.state is State.CLOSED:
            return []
        self._last_heard = now
        try:
            frames = self._decoder.feed(data)
        except FrameError as err:
            return [self._fail(TunnelCode.PROTOCOL_ERROR, str(err))]
        events: list[ControlEvent] = []
        for frame in frames:
            events.extend(self._dispatch(frame))
            if self.closed:
                break
        return events

    def receive_frame(self, frame: Frame, now: float) -> list[ControlEvent]:
        """Feed one frame already decoded by the I/O layer's stream reader."""
        if self.closed:
            return []
        self._last_heard = now
        return self._dispatch(frame)

    def handle_timer(self, now: float) -> list[ControlEvent]:
        """Advance time: report a silent peer once it is past the dead-after limit."""
        silent = now - self._last_heard
        if self.state is not State.CLOSED and silent >= self._dead_after_s:
            self.state = State.CLOSED
            return [PeerSilent(silent)]
        return []

    def next_deadline(self) -> float:
        """When ``handle_timer`` next has something to do."""
        return self._last_heard + self._dead_after_s

    def _dispatch(self, frame: Frame) -> list[ControlEvent]:
        """Route one frame to its handler, turning bad payloads into a protocol error."""
        try:
            if frame.type is FrameType.ERROR:
                # Parsed inside the try: a malformed ERROR must not escape as ValidationError.
                err = models.ErrorMessage.model_validate_json(frame.payload)
                self.state = State.CLOSED
                return [PeerError(err.code, err.message, sent_by_peer=True)]
            return self._handle(frame)
        except (ValidationError, ProtocolViolation, ValueError) as err:
            return [self._fail(TunnelCode.PROTOCOL_ERROR, f"{frame.type.name}: {err}")]

    def _handle(self, frame: Frame) -> list[ControlEvent]:
        raise NotImplementedError

    def _send(self, frame_type: FrameType, message: BaseModel) -> None:
        """Queue one JSON control frame."""
        self._out += encode_frame(frame_type, message.model_dump_json().encode())

    def _fail(self, code: int, message: str) -> PeerError:
        """Queue an ERROR for the peer and close the session."""
        # A validation error's text can exceed what the peer accepts: cut it to fit.
        text = message[: models.MESSAGE_LEN]
        self._send(FrameType.ERROR, models.ErrorMessage(code=code, message=text))
        self.state = State.CLOSED
        return PeerError(code, message, sent_by_peer=False)

    def _expect(self, frame: Frame, state: State) -> None:
        """Refuse a frame that is not allowed in the current state."""
        if self.state is not state:
            raise ProtocolViolation(f"{frame.type.name} not allowed in {self.state.name}")


# --- agent side ----------------------------------------------------------------------------------


class AgentControl(_ControlBase):
    """The agent's half: say hello, answer the challenge, keep the session alive."""

    def __init__(
        self,
        device_id: str,
        now: float,
        *,
        agent_version: str = "",
        heartbeat_interval_s: float = 10.0,
        dead_after_s: float = 15.0,
    ) -> None:
        super().__init__(now, dead_after_s)
        self.device_id = device_id
        self.heartbeat_interval_s = heartbeat_interval_s
        self._agent_version = agent_version
        self._ping_seq = 0
        self._next_ping = now

    def start(self, now: float) -> None:
        """Queue HELLO; the first frame on a fresh control stream."""
        self._send(
            FrameType.HELLO,
            models.Hello(
                device_id=self.device_id,
                protocol_version=PROTOCOL_VERSION,
                agent_version=self._agent_version,
            ),
        )
        self._last_heard = now
        self.state = State.AWAIT_CHALLENGE

    def answer_challenge(self, signature: bytes) -> None:
        """Queue AUTH with the signature the caller made over ``auth_message``."""
        self._send(FrameType.AUTH, models.Auth(signature=signature.hex()))
        self.state = State.AWAIT_WELCOME

    def send_inventory(self, inventory: models.Inventory) -> None:
        """Queue the full camera list (sent after WELCOME and whenever it changes)."""
        self._send(FrameType.INVENTORY, inventory)

    def ack_commands(self, acks: list[models.CommandAck]) -> None:
        """Queue COMMAND_ACKS, split into bounded batches."""
        for part in _batches(acks):
            self._send(FrameType.COMMAND_ACKS, models.CommandAcks(acks=part))

    def send_results(self, results: list[models.CommandResult]) -> None:
        """Queue COMMAND_RESULTS, split into batches that fit a control frame."""
        for part in _batches(results, max_bytes=RESULT_BATCH_BYTES):
            self._send(FrameType.COMMAND_RESULTS, models.CommandResults(results=part))

    def send_events(self, events: list[models.Event]) -> None:
        """Queue EVENTS (the caller keeps them spooled until EVENTS_ACK covers them)."""
        for part in _batches(events, max_bytes=RESULT_BATCH_BYTES):
            self._send(FrameType.EVENTS, models.Events(events=part))

    def handle_timer(self, now: float) -> list[ControlEvent]:
        """Send a PING when due, and notice a relay that went silent."""
        if self.state is State.OPEN and now >= self._next_ping:
            self._send(FrameType.PING, models.Ping(seq=self._ping_seq))
            self._ping_seq += 1
            self._next_ping = now + self.heartbeat_interval_s
        return super().handle_timer(now)

    def next_deadline(self) -> float:
        """The earlier of the next PING and the dead-relay limit."""
        if self.state is State.OPEN:
            return min(self._next_ping, super().next_deadline())
        return super().next_deadline()

    def _handle(self, frame: Frame) -> list[ControlEvent]:
        """Agent-side dispatch by frame type."""
        if frame.type in AGENT_PLANE_TYPES:
            self._expect(frame, State.OPEN)
            return [_plane_event(frame)]
        match frame.type:
            case FrameType.CHALLENGE:
                self._expect(frame, State.AWAIT_CHALLENGE)
                challenge = models.Challenge.model_validate_json(frame.payload)
                return [ChallengeReceived(bytes.fromhex(challenge.nonce))]
            case FrameType.WELCOME:
                self._expect(frame, State.AWAIT_WELCOME)
                welcome = models.Welcome.model_validate_json(frame.payload)
                self.heartbeat_interval_s = min(
                    self.heartbeat_interval_s, welcome.heartbeat_interval_s
                )
                self.state = State.OPEN
                return [Authenticated(self.device_id, self.heartbeat_interval_s)]
            case FrameType.PING:
                self._send(FrameType.PONG, models.Pong.model_validate_json(frame.payload))
                return []
            case FrameType.PONG:
                return []
            case FrameType.GOAWAY:
                away = models.GoAway.model_validate_json(frame.payload)
                self.state = State.CLOSED
                return [GoingAway(away.retry_after_s, away.reason)]
            case _:
                raise ProtocolViolation(f"agent does not accept {frame.type.name}")


# --- relay side ----------------------------------------------------------------------------------


class RelayControl(_ControlBase):
    """The relay's half: challenge the claimed device, verify, then serve the session."""

    def __init__(
        self,
        cert_fingerprint: bytes,
        now: float,
        *,
        relay_id: str = "",
        heartbeat_interval_s: float = 10.0,
        dead_after_s: float = 30.0,
    ) -> None:
        super().__init__(now, dead_after_s)
        self._fingerprint = cert_fingerprint
        self._relay_id = relay_id
        self._heartbeat = heartbeat_interval_s
        self._nonce = b""
        self._public_key = b""
        self.device_id = ""
        #: The agent's protocol version from HELLO (0 before it arrives).
        self.peer_version = 0

    @property
    def supports_commands(self) -> bool:
        """Whether the agent speaks the command plane and event spool frames."""
        return self.peer_version >= MIN_PROTOCOL_VERSION_FOR_COMMANDS

    def send_commands(self, commands: list[models.Command]) -> None:
        """Queue COMMANDS, split into batches that fit a control frame."""
        self._require_commands()
        for part in _batches(commands, max_bytes=RESULT_BATCH_BYTES):
            self._send(FrameType.COMMANDS, models.Commands(commands=part))

    def ack_results(self, ids: list[str]) -> None:
        """Queue RESULTS_ACK once the results are durably stored."""
        self._require_commands()
        for part in _batches(ids):
            self._send(FrameType.RESULTS_ACK, models.ResultsAck(ids=part))

    def ack_events(self, up_to: int) -> None:
        """Queue EVENTS_ACK once every event up to ``up_to`` is durably stored."""
        self._require_commands()
        self._send(FrameType.EVENTS_ACK, models.EventsAck(up_to=up_to))

    def _require_commands(self) -> None:
        """Never put a frame on the wire that the agent's version cannot decode."""
        if not self.supports_commands:
            raise ProtocolViolation(f"agent protocol version {self.peer_version} has no commands")

    def challenge(self, public_key: bytes | None, nonce: bytes) -> list[ControlEvent]:
        """Answer a HELLO once the device key is looked up (None: unknown device)."""
        if self.state is not State.AWAIT_KEY:
            return []
        if public_key is None:
            return [self._fail(TunnelCode.DEVICE_UNKNOWN, "device is not registered")]
        if len(nonce) != NONCE_SIZE:
            raise ValueError("nonce must be 32 random bytes")
        self._public_key, self._nonce = public_key, nonce
        self._send(
            FrameType.CHALLENGE, models.Challenge(nonce=nonce.hex(), relay_id=self._relay_id)
        )
        self.state = State.AWAIT_AUTH
        return []

    def go_away(self, retry_after_s: float, reason: str = "") -> None:
        """Queue GOAWAY before a graceful exit so agents come back without a timeout."""
        self._send(FrameType.GOAWAY, models.GoAway(retry_after_s=retry_after_s, reason=reason))
        self.state = State.CLOSED

    def _handle(self, frame: Frame) -> list[ControlEvent]:
        """Relay-side dispatch by frame type."""
        if frame.type in RELAY_PLANE_TYPES:
            self._expect(frame, State.OPEN)
            return [_plane_event(frame)]
        match frame.type:
            case FrameType.HELLO:
                return self._on_hello(frame)
            case FrameType.AUTH:
                return self._on_auth(frame)
            case FrameType.PING:
                self._expect(frame, State.OPEN)
                self._send(FrameType.PONG, models.Pong.model_validate_json(frame.payload))
                return []
            case FrameType.PONG:
                return []
            case FrameType.INVENTORY:
                self._expect(frame, State.OPEN)
                return [InventoryReceived(models.Inventory.model_validate_json(frame.payload))]
            case _:
                raise ProtocolViolation(f"relay does not accept {frame.type.name}")

    def _on_hello(self, frame: Frame) -> list[ControlEvent]:
        """Record the claim; the caller looks up the key asynchronously."""
        self._expect(frame, State.START)
        hello = models.Hello.model_validate_json(frame.payload)
        if hello.protocol_version < MIN_PROTOCOL_VERSION:
            return [self._fail(TunnelCode.VERSION_UNSUPPORTED, "protocol version too old")]
        self.device_id = hello.device_id
        self.peer_version = hello.protocol_version
        self.state = State.AWAIT_KEY
        return [HelloReceived(hello.device_id, hello.agent_version, hello.protocol_version)]

    def _on_auth(self, frame: Frame) -> list[ControlEvent]:
        """Verify the signature; open the session or refuse the device."""
        self._expect(frame, State.AWAIT_AUTH)
        auth = models.Auth.model_validate_json(frame.payload)
        signature = bytes.fromhex(auth.signature)
        if not verify_auth(
            self._public_key, signature, self._nonce, self._fingerprint, self.device_id
        ):
            return [self._fail(TunnelCode.DEVICE_AUTH_FAILED, "device key proof failed")]
        self._send(
            FrameType.WELCOME,
            models.Welcome(heartbeat_interval_s=self._heartbeat, relay_id=self._relay_id),
        )
        self.state = State.OPEN
        return [Authenticated(self.device_id, self._heartbeat)]


# --- command plane and event spool frames ---------------------------------------------------------

#: Plane frames the agent accepts, and those the relay accepts (each only once OPEN).
AGENT_PLANE_TYPES = frozenset({FrameType.COMMANDS, FrameType.RESULTS_ACK, FrameType.EVENTS_ACK})
RELAY_PLANE_TYPES = frozenset({FrameType.COMMAND_ACKS, FrameType.COMMAND_RESULTS, FrameType.EVENTS})


def _plane_event(frame: Frame) -> PlaneEvent:
    """Decode one plane frame into its event (a ValidationError becomes a protocol error)."""
    data = frame.payload
    match frame.type:
        case FrameType.COMMANDS:
            return CommandsReceived(tuple(models.Commands.model_validate_json(data).commands))
        case FrameType.RESULTS_ACK:
            return ResultsAcked(tuple(models.ResultsAck.model_validate_json(data).ids))
        case FrameType.EVENTS_ACK:
            return EventsAcked(models.EventsAck.model_validate_json(data).up_to)
        case FrameType.COMMAND_ACKS:
            return CommandAcksReceived(tuple(models.CommandAcks.model_validate_json(data).acks))
        case FrameType.COMMAND_RESULTS:
            results = models.CommandResults.model_validate_json(data).results
            return CommandResultsReceived(tuple(results))
        case _:
            return EventsReceived(tuple(models.Events.model_validate_json(data).events))


# --- batching ------------------------------------------------------------------------------------

#: Budget for one batched frame's items: well under MAX_CONTROL_PAYLOAD, leaving room for the
#: envelope, so any list of items that each fit alone splits into frames that all encode.
RESULT_BATCH_BYTES = 192 * 1024

_Item = TypeVar("_Item", bound=BaseModel | str)


def _batches(items: list[_Item], *, max_bytes: int = RESULT_BATCH_BYTES) -> list[list[_Item]]:
    """Split ``items`` into runs of at most ``models.MAX_BATCH`` items and ``max_bytes`` of JSON.

    An item bigger than ``max_bytes`` on its own travels alone (``encode_frame`` refuses it if
    it cannot fit a frame at all: the producer bounds its items, see ``MAX_RESULT_BYTES``).
    """
    out: list[list[_Item]] = []
    part: list[_Item] = []
    size = 0
    for item in items:
        n = len(item) + 2 if isinstance(item, str) else len(item.model_dump_json())
        if part and (len(part) >= models.MAX_BATCH or size + n > max_bytes):
            out.append(part)
            part, size = [], 0
        part.append(item)
        size += n + 1
    if part:
        out.append(part)
    return out
