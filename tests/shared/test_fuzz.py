"""Tier one: hostile input into the decoder and both control machines.

The decoder may only raise the documented FrameError family; the control machines may raise
nothing at all — garbage becomes a local PeerError plus an ERROR frame for the peer. Run deeper
with ``RMON_FUZZ_EXAMPLES=20000``.
"""

from __future__ import annotations

import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from shared import models
from shared.testing import ControlPair
from shared.tunnel.codes import TunnelCode
from shared.tunnel.control import (
    ControlEvent,
    InventoryReceived,
    PeerError,
    State,
    _ControlBase,
)
from shared.tunnel.errors import FrameError
from shared.tunnel.frames import (
    FRAME_VERSION,
    HEADER,
    MAX_INVENTORY_PAYLOAD,
    Frame,
    FrameDecoder,
    FrameType,
    encode_frame,
)
from shared.tunnel.identity import NONCE_SIZE, public_key_raw

FUZZ = settings(
    max_examples=int(os.environ.get("RMON_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
KEY = Ed25519PrivateKey.generate()

#: Field names of every control message, so fuzzed JSON reaches the validators' branches.
FIELD_NAMES = sorted(
    {
        name
        for model in (
            models.Hello, models.Challenge, models.Auth, models.Welcome, models.Ping,
            models.GoAway, models.ErrorMessage, models.Inventory, models.CameraInventory,
            models.ProfileInventory,
        )
        for name in model.model_fields
    }
)  # fmt: skip

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["00" * 16, "00" * 32, "ab" * 64, "zz" * 64, "x" * 65])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=6)
payloads = (
    json_objects.map(lambda d: json.dumps(d).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=64)
    | st.sampled_from([b"", b"{", b"[" * 5000, b'{"seq": 1e308}', b"\xff\xfe", b'{"seq": NaN}'])
)
frame_bytes = st.builds(encode_frame, st.sampled_from(list(FrameType)), payloads)
raw_headers = st.builds(
    HEADER.pack,
    st.sampled_from([FRAME_VERSION, FRAME_VERSION, 0, 2, 255]),
    st.integers(0, 255),
    st.sampled_from([0, 0, 0, 1, 0x8000]),
    st.integers(0, 2**32 - 1),
)
#: Streams of mostly well-formed frames, some garbage, then cut at random points.
streams = st.lists(frame_bytes | raw_headers | st.binary(max_size=32), max_size=8).map(b"".join)


def _chop(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


# --- decoder --------------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=4096) | streams, cuts=st.lists(st.integers(0, 4096), max_size=6))
def test_decoder_raises_only_frame_errors(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder()
    frames: list[Frame] = []
    try:
        for piece in _chop(data, cuts):
            frames += decoder.feed(piece)
    except FrameError:
        return
    assert sum(len(encode_frame(f.type, f.payload)) for f in frames) + decoder.pending == len(data)


# --- control machines -----------------------------------------------------------------------------


def _agent_in(state: str) -> tuple[ControlPair, _ControlBase]:
    pair = ControlPair.create()
    if state == "hello sent":
        pair.agent.start(pair.clock.now())
    elif state == "auth sent":
        pair.agent.start(pair.clock.now())
        pair.agent.answer_challenge(bytes(64))
    elif state == "open":
        pair.handshake(KEY)
    pair.agent.data_to_send()
    return pair, pair.agent


def _relay_in(state: str) -> tuple[ControlPair, _ControlBase]:
    pair = ControlPair.create()
    if state in {"awaiting key", "awaiting auth"}:
        pair.agent.start(pair.clock.now())
        pair.pump()
        if state == "awaiting auth":
            pair.relay.challenge(public_key_raw(KEY), bytes(NONCE_SIZE))
    elif state == "open":
        pair.handshake(KEY)
    pair.relay.data_to_send()
    return pair, pair.relay


AGENT_STATES = ["fresh", "hello sent", "auth sent", "open"]
RELAY_STATES = ["fresh", "awaiting key", "awaiting auth", "open"]
MACHINES = sorted([f"agent {s}" for s in AGENT_STATES] + [f"relay {s}" for s in RELAY_STATES])


def _machine(name: str) -> tuple[ControlPair, _ControlBase]:
    """A fresh machine of one side in one state, e.g. ``"relay awaiting auth"``."""
    side, state = name.split(" ", 1)
    return _agent_in(state) if side == "agent" else _relay_in(state)


def _check_events(machine: _ControlBase, events: list[ControlEvent], queued: bytes) -> None:
    """A local refusal closes the machine and leaves exactly one ERROR at the end of the queue."""
    local = [e for e in events if isinstance(e, PeerError) and not e.sent_by_peer]
    if not local:
        return
    assert machine.closed
    assert local[-1].code in {TunnelCode.PROTOCOL_ERROR, TunnelCode.VERSION_UNSUPPORTED}
    last = FrameDecoder().feed(queued)[-1]
    assert last.type is FrameType.ERROR
    assert models.ErrorMessage.model_validate_json(last.payload).code == local[-1].code


@FUZZ
@given(
    which=st.sampled_from(MACHINES),
    data=streams | st.binary(max_size=2048),
    cuts=st.lists(st.integers(0, 2048), max_size=4),
)
def test_control_machines_never_raise(which: str, data: bytes, cuts: list[int]) -> None:
    pair, machine = _machine(which)
    events: list[ControlEvent] = []
    for piece in _chop(data, cuts):
        events += machine.receive_data(piece, pair.clock.now())
        events += machine.handle_timer(pair.clock.now())
    _check_events(machine, events, machine.data_to_send())
    assert machine.closed or machine.state is not State.CLOSED


@FUZZ
@given(which=st.sampled_from(MACHINES), frames=st.lists(frame_bytes, max_size=4))
def test_control_machines_never_raise_on_decoded_frames(which: str, frames: list[bytes]) -> None:
    pair, machine = _machine(which)
    events: list[ControlEvent] = []
    for wire in frames:
        for frame in FrameDecoder().feed(wire):
            events += machine.receive_frame(frame, pair.clock.now())
    _check_events(machine, events, machine.data_to_send())


def test_machines_cover_every_starting_state() -> None:
    states = {name: _machine(name)[1].state for name in MACHINES}
    assert states["agent open"] is State.OPEN
    assert states["relay open"] is State.OPEN
    assert states["relay awaiting auth"] is State.AWAIT_AUTH
    assert states["agent auth sent"] is State.AWAIT_WELCOME


# --- bounds inside messages -------------------------------------------------------------------


def _max_camera(i: int) -> models.CameraInventory:
    """A camera with every field at its longest allowed (ASCII) value."""
    profile = models.ProfileInventory(
        token="t" * 64, name="n" * 64, encoding="e" * 16, width=65535, height=65535, fps=1000.0
    )
    return models.CameraInventory(
        local_id=f"{i:0128d}",
        name="c" * 64,
        manufacturer="m" * models.FACT_LEN,
        model="o" * models.FACT_LEN,
        firmware_version="f" * models.FACT_LEN,
        serial_number="s" * models.FACT_LEN,
        capabilities=["x" * models.CAPABILITY_LEN] * models.MAX_CAPABILITIES,
        profiles=[profile] * models.MAX_PROFILES,
    )


def _open_relay() -> ControlPair:
    pair = ControlPair.create()
    pair.handshake(KEY)
    assert pair.relay.state is State.OPEN
    return pair


def test_the_largest_allowed_inventory_fits_one_frame_and_is_accepted() -> None:
    """The bounds and the frame limit agree: an agent at every limit is still served."""
    inventory = models.Inventory(cameras=[_max_camera(i) for i in range(models.MAX_CAMERAS)])
    pair = _open_relay()
    pair.agent.send_inventory(inventory)
    _, relay_events = pair.pump()
    [received] = relay_events
    assert isinstance(received, InventoryReceived)
    assert len(received.inventory.cameras) == models.MAX_CAMERAS


def _inventory_json(cameras: int = 1, **camera: object) -> bytes:
    base = {"local_id": "cam", **camera}
    return json.dumps({"cameras": [base] * cameras}).encode()


OVER_THE_LIMIT = {
    "too many cameras": _inventory_json(models.MAX_CAMERAS + 1),
    "too many capabilities": _inventory_json(capabilities=["live"] * (models.MAX_CAPABILITIES + 1)),
    "capability too long": _inventory_json(capabilities=["x" * (models.CAPABILITY_LEN + 1)]),
    "model too long": _inventory_json(model="m" * (models.FACT_LEN + 1)),
    "too many profiles": _inventory_json(profiles=[{"token": "p"}] * (models.MAX_PROFILES + 1)),
    "absurd resolution": _inventory_json(profiles=[{"token": "p", "width": 10**9}]),
    "negative fps": _inventory_json(profiles=[{"token": "p", "fps": -1}]),
}


@pytest.mark.parametrize("payload", OVER_THE_LIMIT.values(), ids=OVER_THE_LIMIT.keys())
def test_an_inventory_over_a_limit_is_a_protocol_error(payload: bytes) -> None:
    """The relay refuses the session with PROTOCOL_ERROR and tells the agent why."""
    pair = _open_relay()
    events = pair.feed_relay(encode_frame(FrameType.INVENTORY, payload))
    [error] = events
    assert isinstance(error, PeerError)
    assert (error.code, error.sent_by_peer) == (TunnelCode.PROTOCOL_ERROR, False)
    assert pair.relay.closed
    agent_events, _ = pair.pump()
    assert [type(e) for e in agent_events] == [PeerError]


def test_a_long_refusal_text_is_cut_to_what_the_peer_accepts() -> None:
    """Validation messages can be long: the ERROR frame must still be one the peer accepts."""
    pair = _open_relay()
    pair.relay._fail(TunnelCode.PROTOCOL_ERROR, "x" * 10_000)
    agent_events, _ = pair.pump()
    [error] = agent_events
    assert isinstance(error, PeerError)
    assert error.sent_by_peer
    assert len(error.message) == models.MESSAGE_LEN


@FUZZ
@given(
    cameras=st.integers(0, models.MAX_CAMERAS + 2),
    caps=st.lists(
        st.text(max_size=models.CAPABILITY_LEN + 2), max_size=models.MAX_CAPABILITIES + 2
    ),
    model=st.text(max_size=models.FACT_LEN + 2),
    width=st.integers(-2, 70_000),
)
def test_inventories_near_the_limits_are_accepted_within_bounds_or_refused(
    cameras: int, caps: list[str], model: str, width: int
) -> None:
    """Either the relay gets an inventory obeying every bound, or a protocol error: no third
    outcome, and nothing raised."""
    payload = _inventory_json(
        cameras, capabilities=caps, model=model, profiles=[{"token": "p", "width": width}]
    )
    pair = _open_relay()
    if len(payload) > MAX_INVENTORY_PAYLOAD:
        return
    [event] = pair.feed_relay(encode_frame(FrameType.INVENTORY, payload))
    if isinstance(event, PeerError):
        assert event.code == TunnelCode.PROTOCOL_ERROR
        assert pair.relay.closed
        return
    assert isinstance(event, InventoryReceived)
    inventory = event.inventory
    assert len(inventory.cameras) <= models.MAX_CAMERAS
    for cam in inventory.cameras:
        assert len(cam.capabilities) <= models.MAX_CAPABILITIES
        assert all(len(c) <= models.CAPABILITY_LEN for c in cam.capabilities)
        assert len(cam.model) <= models.FACT_LEN
        assert all(0 <= p.width <= 65535 for p in cam.profiles)


# --- an open session under attack, as a state machine -------------------------------------------


class OpenSessionUnderAttack(RuleBasedStateMachine):
    """A handshaken agent/relay pair: time passes, the agent talks properly, and hostile frames
    are injected into either end. Invariants: nothing raises; an end that refuses input is
    closed and has told the peer with PROTOCOL_ERROR; an end that is open keeps answering."""

    def __init__(self) -> None:
        super().__init__()
        self.pair = _open_relay()
        self.refused: list[PeerError] = []

    def _note(self, events: list[ControlEvent]) -> None:
        self.refused += [e for e in events if isinstance(e, PeerError) and not e.sent_by_peer]

    @rule(seconds=st.floats(0.0, 20.0))
    def time_passes(self, seconds: float) -> None:
        agent_events, relay_events = self.pair.advance(seconds)
        self._note(agent_events + relay_events)

    @rule()
    def agent_reports_inventory(self) -> None:
        if self.pair.agent.state is State.OPEN:
            self.pair.agent.send_inventory(models.Inventory(cameras=[_max_camera(1)]))
            self._note([e for side in self.pair.pump() for e in side])

    @rule(data=streams | frame_bytes, to_relay=st.booleans())
    def hostile_bytes(self, data: bytes, to_relay: bool) -> None:
        feed = self.pair.feed_relay if to_relay else self.pair.feed_agent
        self._note(feed(data))
        self._note([e for side in self.pair.pump() for e in side])

    @invariant()
    def refusals_close_and_name_a_protocol_error(self) -> None:
        for error in self.refused:
            assert error.code in {TunnelCode.PROTOCOL_ERROR, TunnelCode.VERSION_UNSUPPORTED}
        if self.refused:
            assert self.pair.agent.closed or self.pair.relay.closed

    @invariant()
    def an_open_relay_still_answers_pings(self) -> None:
        relay = self.pair.relay
        # A partial frame left by hostile bytes swallows whatever comes next: only a relay
        # between frames can be asked to answer.
        if (
            relay.state is State.OPEN
            and self.pair.agent.state is State.OPEN
            and not (relay._decoder.pending)
        ):
            before = sum(f.type is FrameType.PONG for f in self.pair.relay_sent)
            self.pair.feed_relay(encode_frame(FrameType.PING, b'{"seq": 1}'))
            self.pair.pump()
            assert sum(f.type is FrameType.PONG for f in self.pair.relay_sent) == before + 1


TestOpenSessionUnderAttack = OpenSessionUnderAttack.TestCase
TestOpenSessionUnderAttack.settings = settings(
    max_examples=int(os.environ.get("RMON_FUZZ_EXAMPLES", "200")) // 4,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
