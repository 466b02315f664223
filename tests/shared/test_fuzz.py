"""Tier one: hostile input into the decoder and both control machines.

The decoder may only raise the documented FrameError family; the control machines may raise
nothing at all — garbage becomes a local PeerError plus an ERROR frame for the peer. Run deeper
with ``RMON_FUZZ_EXAMPLES=20000``.
"""

from __future__ import annotations

import json
import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import models
from shared.testing import ControlPair
from shared.tunnel.codes import TunnelCode
from shared.tunnel.control import ControlEvent, PeerError, State, _ControlBase
from shared.tunnel.errors import FrameError
from shared.tunnel.frames import FRAME_VERSION, HEADER, Frame, FrameDecoder, FrameType, encode_frame
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
