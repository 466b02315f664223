"""Test doubles for the sans-I/O tunnel core: a fake clock and an in-memory control-stream pair.

Both are pure (no asyncio, sockets or real time) so the tier-one tests drive the protocol
deterministically: :class:`ControlPair` joins an :class:`AgentControl` to a :class:`RelayControl`,
moves bytes both ways until neither has anything left to say, and can cut every write into
random-size pieces (seeded) to prove that nothing depends on how the transport splits bytes.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.tunnel.control import (
    AgentControl,
    Authenticated,
    ChallengeReceived,
    ControlEvent,
    HelloReceived,
    RelayControl,
)
from shared.tunnel.frames import Frame, FrameDecoder
from shared.tunnel.identity import NONCE_SIZE, public_key_raw, sign_auth

#: A fixed stand-in for SHA-256 of the relay's leaf certificate.
TEST_FINGERPRINT = bytes(range(32))
#: Guard against two ends that answer each other forever.
MAX_PUMP_ROUNDS = 10_000


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start

    def now(self) -> float:
        """The current fake time in seconds."""
        return self._now

    def __call__(self) -> float:
        """Same as :meth:`now`, so the clock fits where a ``Callable[[], float]`` is expected."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (never backwards) and return the new time."""
        if seconds < 0:
            raise ValueError("a monotonic clock does not go back")
        self._now += seconds
        return self._now


class _KeyChoice(Enum):
    SAME = auto()


#: ``registered_key`` default of :meth:`ControlPair.handshake`: the relay knows the agent's key.
SAME_KEY = _KeyChoice.SAME


@dataclass
class Handshake:
    """What each end reported while :meth:`ControlPair.handshake` ran."""

    agent_events: list[ControlEvent]
    relay_events: list[ControlEvent]
    nonce: bytes = b""

    @property
    def authenticated(self) -> bool:
        """True when both ends reported :class:`Authenticated`."""
        return _has(self.agent_events, Authenticated) and _has(self.relay_events, Authenticated)


def _has(events: list[ControlEvent], kind: type[Any]) -> bool:
    """Whether any event is an instance of ``kind``."""
    return any(isinstance(event, kind) for event in events)


@dataclass
class ControlPair:
    """An agent and a relay control machine joined by an in-memory, optionally chopping, pipe.

    ``agent_events``/``relay_events`` keep every event each end produced; ``agent_sent`` and
    ``relay_sent`` every frame each end put on the wire (decoded from the bytes it queued), even
    while ``connected`` is False and the bytes are lost.
    """

    agent: AgentControl
    relay: RelayControl
    clock: FakeClock
    fingerprint: bytes = TEST_FINGERPRINT
    chop_seed: int | None = None
    #: False models a dead path (NAT expiry, cable pulled): queued bytes are lost, not delivered.
    connected: bool = True
    agent_events: list[ControlEvent] = field(default_factory=list, repr=False)
    relay_events: list[ControlEvent] = field(default_factory=list, repr=False)
    agent_sent: list[Frame] = field(default_factory=list, repr=False)
    relay_sent: list[Frame] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.chop_seed)  # noqa: S311 - test chopping, not crypto
        self._agent_tap = FrameDecoder()
        self._relay_tap = FrameDecoder()

    @classmethod
    def create(
        cls,
        device_id: str = "device-1",
        *,
        clock: FakeClock | None = None,
        fingerprint: bytes = TEST_FINGERPRINT,
        chop_seed: int | None = None,
        heartbeat_interval_s: float = 10.0,
        agent_dead_after_s: float = 15.0,
        relay_dead_after_s: float = 30.0,
    ) -> ControlPair:
        """Build both ends at the clock's current time with the given liveness settings."""
        clock = clock or FakeClock()
        agent = AgentControl(
            device_id,
            clock.now(),
            agent_version="test",
            heartbeat_interval_s=heartbeat_interval_s,
            dead_after_s=agent_dead_after_s,
        )
        relay = RelayControl(
            fingerprint,
            clock.now(),
            relay_id="relay-test",
            heartbeat_interval_s=heartbeat_interval_s,
            dead_after_s=relay_dead_after_s,
        )
        return cls(agent, relay, clock, fingerprint=fingerprint, chop_seed=chop_seed)

    # moving bytes

    def feed_agent(self, data: bytes) -> list[ControlEvent]:
        """Deliver raw bytes to the agent as if the relay had sent them."""
        events = self.agent.receive_data(data, self.clock.now())
        self.agent_events.extend(events)
        return events

    def feed_relay(self, data: bytes) -> list[ControlEvent]:
        """Deliver raw bytes to the relay as if the agent had sent them."""
        events = self.relay.receive_data(data, self.clock.now())
        self.relay_events.extend(events)
        return events

    def pump(self) -> tuple[list[ControlEvent], list[ControlEvent]]:
        """Move queued bytes both ways until both ends are quiet; return (agent, relay) events."""
        agent_new: list[ControlEvent] = []
        relay_new: list[ControlEvent] = []
        for _ in range(MAX_PUMP_ROUNDS):
            to_relay = self.agent.data_to_send()
            to_agent = self.relay.data_to_send()
            if not to_relay and not to_agent:
                return agent_new, relay_new
            self.agent_sent.extend(self._agent_tap.feed(to_relay))
            self.relay_sent.extend(self._relay_tap.feed(to_agent))
            if not self.connected:
                continue
            for piece in self._chop(to_relay):
                relay_new.extend(self.feed_relay(piece))
            for piece in self._chop(to_agent):
                agent_new.extend(self.feed_agent(piece))
        raise RuntimeError("control ends never went quiet")

    def _chop(self, data: bytes) -> Iterator[bytes]:
        """Split ``data`` into random-size pieces when chopping is on, else yield it whole."""
        if self.chop_seed is None:
            if data:
                yield data
            return
        start = 0
        while start < len(data):
            end = start + self._rng.randint(1, len(data) - start)
            yield data[start:end]
            start = end

    # time

    def advance(self, seconds: float) -> tuple[list[ControlEvent], list[ControlEvent]]:
        """Let ``seconds`` pass, waking each end at every deadline it asks for and pumping."""
        target = self.clock.now() + seconds
        agent_new, relay_new = self._fire_timers()
        while (due := self._next_deadline(target)) is not None:
            self.clock.advance(due - self.clock.now())
            self._collect(self._fire_timers(), agent_new, relay_new)
        self.clock.advance(max(0.0, target - self.clock.now()))
        self._collect(self._fire_timers(), agent_new, relay_new)
        return agent_new, relay_new

    def _next_deadline(self, target: float) -> float | None:
        """The earliest deadline of an open end strictly between now and ``target``."""
        now = self.clock.now()
        ends = (self.agent, self.relay)
        due = [d for e in ends if not e.closed and now < (d := e.next_deadline()) < target]
        return min(due, default=None)

    def _fire_timers(self) -> tuple[list[ControlEvent], list[ControlEvent]]:
        """Run both ends' timers at the current time, then pump what they queued."""
        now = self.clock.now()
        agent_new = self.agent.handle_timer(now)
        relay_new = self.relay.handle_timer(now)
        self.agent_events.extend(agent_new)
        self.relay_events.extend(relay_new)
        self._collect(self.pump(), agent_new, relay_new)
        return agent_new, relay_new

    @staticmethod
    def _collect(
        new: tuple[list[ControlEvent], list[ControlEvent]],
        agent_into: list[ControlEvent],
        relay_into: list[ControlEvent],
    ) -> None:
        """Append a (agent, relay) pair of event lists onto accumulators."""
        agent_into.extend(new[0])
        relay_into.extend(new[1])

    # the handshake

    def handshake(
        self,
        key: Ed25519PrivateKey,
        *,
        registered_key: bytes | _KeyChoice | None = SAME_KEY,
        nonce: bytes | None = None,
        signed_fingerprint: bytes | None = None,
    ) -> Handshake:
        """Run HELLO → CHALLENGE → AUTH → WELCOME with the agent holding ``key``.

        ``registered_key`` is what the relay's store returns for the claimed device id (the
        key's own public half by default, ``None`` for an unknown device); ``signed_fingerprint``
        lets the agent sign for a different relay certificate than the relay presents.
        """
        # spec: DEV-10 - the device proves its enrolled key bound to nonce, certificate and id.
        result = Handshake([], [])
        self.agent.start(self.clock.now())
        self._collect(self.pump(), result.agent_events, result.relay_events)
        if not _has(result.relay_events, HelloReceived):
            return result
        stored = public_key_raw(key) if registered_key is SAME_KEY else registered_key
        result.nonce = nonce if nonce is not None else os.urandom(NONCE_SIZE)
        challenge_events = self.relay.challenge(stored, result.nonce)
        self.relay_events.extend(challenge_events)
        result.relay_events.extend(challenge_events)
        self._collect(self.pump(), result.agent_events, result.relay_events)
        challenges = [e for e in result.agent_events if isinstance(e, ChallengeReceived)]
        if not challenges:
            return result
        fingerprint = signed_fingerprint if signed_fingerprint is not None else self.fingerprint
        self.agent.answer_challenge(
            sign_auth(key, challenges[-1].nonce, fingerprint, self.agent.device_id)
        )
        self._collect(self.pump(), result.agent_events, result.relay_events)
        return result
