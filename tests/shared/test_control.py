"""Tier one: the control-stream state machines joined in memory, on a fake clock.

spec: DEV-10 — the device proves its enrolled Ed25519 key, bound to the relay's nonce, the relay
certificate fingerprint and the device id.
"""

from __future__ import annotations

import os
from typing import TypeVar

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from shared import models
from shared.testing import ControlPair, FakeClock
from shared.tunnel import control
from shared.tunnel.codes import TunnelCode
from shared.tunnel.control import (
    Authenticated,
    ChallengeReceived,
    ControlEvent,
    GoingAway,
    HelloReceived,
    InventoryReceived,
    PeerError,
    PeerSilent,
    State,
)
from shared.tunnel.frames import PROTOCOL_VERSION, Frame, FrameDecoder, FrameType, encode_frame
from shared.tunnel.identity import NONCE_SIZE, public_key_raw, sign_auth

HEARTBEAT = 10.0
AGENT_DEAD = 15.0
RELAY_DEAD = 30.0
CHOP_SEEDS = [None, 1, 2, 3]
T = TypeVar("T")


def _pair(chop_seed: int | None = None, device_id: str = "device-1") -> ControlPair:
    return ControlPair.create(
        device_id,
        chop_seed=chop_seed,
        heartbeat_interval_s=HEARTBEAT,
        agent_dead_after_s=AGENT_DEAD,
        relay_dead_after_s=RELAY_DEAD,
    )


def _frame(frame_type: FrameType, message: BaseModel) -> bytes:
    return encode_frame(frame_type, message.model_dump_json().encode())


def _of(events: list[ControlEvent], kind: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, kind)]


def _refused(events: list[ControlEvent], code: int) -> PeerError:
    """The single local refusal among ``events``, checked to carry ``code``."""
    errors = [e for e in events if isinstance(e, PeerError)]
    assert len(errors) == 1, events
    assert errors[0].code == code
    assert not errors[0].sent_by_peer
    return errors[0]


def _assert_error_delivered(pair: ControlPair, code: int, *, to_agent: bool = True) -> None:
    """The refusing end queued an ERROR the other end decodes as a PeerError from its peer."""
    sent = pair.relay_sent if to_agent else pair.agent_sent
    received = pair.agent_events if to_agent else pair.relay_events
    assert sent[-1].type is FrameType.ERROR
    assert models.ErrorMessage.model_validate_json(sent[-1].payload).code == code
    assert PeerError(code, _of(received, PeerError)[-1].message, sent_by_peer=True) in received
    assert pair.agent.closed
    assert pair.relay.closed


def _open(pair: ControlPair, key: Ed25519PrivateKey) -> None:
    assert pair.handshake(key).authenticated
    pair.advance(0)  # the first PING goes out at once and is answered


# --- handshake ----------------------------------------------------------------------------------


@pytest.mark.parametrize("chop_seed", CHOP_SEEDS)
def test_full_handshake_authenticates_both_ends(
    chop_seed: int | None, device_key: Ed25519PrivateKey
) -> None:
    pair = _pair(chop_seed)
    result = pair.handshake(device_key)
    assert result.authenticated
    assert result.relay_events[0] == HelloReceived("device-1", "test", PROTOCOL_VERSION)
    assert ChallengeReceived(result.nonce) in result.agent_events
    assert Authenticated("device-1", HEARTBEAT) in result.agent_events
    assert Authenticated("device-1", HEARTBEAT) in result.relay_events
    assert pair.agent.state is State.OPEN
    assert pair.relay.state is State.OPEN
    assert [f.type for f in pair.agent_sent] == [FrameType.HELLO, FrameType.AUTH]
    assert [f.type for f in pair.relay_sent] == [FrameType.CHALLENGE, FrameType.WELCOME]


@settings(deadline=None, max_examples=30)
@given(seed=st.integers(0, 2**32))
def test_chopping_never_changes_the_outcome(seed: int) -> None:
    key = Ed25519PrivateKey.generate()
    nonce = bytes(NONCE_SIZE)
    outcomes = []
    for chop in (None, seed):
        pair = _pair(chop)
        result = pair.handshake(key, nonce=nonce)
        pair.agent.send_inventory(models.Inventory(cameras=[models.CameraInventory(local_id="c")]))
        pair.advance(25)
        outcomes.append((result, pair.agent_events, pair.relay_events, pair.agent_sent))
    assert outcomes[0] == outcomes[1]


def test_agent_heartbeat_is_the_shorter_of_both_settings(device_key: Ed25519PrivateKey) -> None:
    clock = FakeClock()
    pair = ControlPair(
        control.AgentControl("device-1", clock.now(), heartbeat_interval_s=12.0),
        control.RelayControl(pair_fp := os.urandom(32), clock.now(), heartbeat_interval_s=5.0),
        clock,
        fingerprint=pair_fp,
    )
    assert Authenticated("device-1", 5.0) in pair.handshake(device_key).agent_events


def test_wrong_key_is_refused_with_device_auth_failed(
    device_key: Ed25519PrivateKey, other_key: Ed25519PrivateKey
) -> None:
    # The agent claims device-2's id but holds device-1's key.
    pair = _pair(device_id="device-2")
    result = pair.handshake(device_key, registered_key=public_key_raw(other_key))
    assert not result.authenticated
    _refused(result.relay_events, TunnelCode.DEVICE_AUTH_FAILED)
    _assert_error_delivered(pair, TunnelCode.DEVICE_AUTH_FAILED)
    assert not _of(result.agent_events, Authenticated)


def test_unknown_device_is_refused_with_device_unknown(device_key: Ed25519PrivateKey) -> None:
    pair = _pair()
    result = pair.handshake(device_key, registered_key=None)
    _refused(result.relay_events, TunnelCode.DEVICE_UNKNOWN)
    _assert_error_delivered(pair, TunnelCode.DEVICE_UNKNOWN)
    assert not _of(result.agent_events, ChallengeReceived)


def test_signature_is_bound_to_the_certificate_fingerprint(device_key: Ed25519PrivateKey) -> None:
    # A signature the agent made for another relay's certificate (a MITM's) does not verify.
    pair = _pair()
    result = pair.handshake(device_key, signed_fingerprint=os.urandom(32))
    _refused(result.relay_events, TunnelCode.DEVICE_AUTH_FAILED)
    _assert_error_delivered(pair, TunnelCode.DEVICE_AUTH_FAILED)


def test_signature_is_bound_to_the_device_id(device_key: Ed25519PrivateKey) -> None:
    # Even with the right key registered, a proof signed for another id does not verify.
    pair = _pair(device_id="device-2")
    pair.agent.start(pair.clock.now())
    pair.pump()
    nonce = os.urandom(NONCE_SIZE)
    pair.relay.challenge(public_key_raw(device_key), nonce)
    pair.pump()
    pair.agent.answer_challenge(sign_auth(device_key, nonce, pair.fingerprint, "device-1"))
    _, relay_events = pair.pump()
    _refused(relay_events, TunnelCode.DEVICE_AUTH_FAILED)


def _auth_frame_for(key: Ed25519PrivateKey, nonce: bytes) -> Frame:
    first = _pair()
    assert first.handshake(key, nonce=nonce).authenticated
    return next(f for f in first.agent_sent if f.type is FrameType.AUTH)


def _challenged(key: Ed25519PrivateKey, nonce: bytes) -> ControlPair:
    pair = _pair()
    pair.agent.start(pair.clock.now())
    pair.pump()
    pair.relay.challenge(public_key_raw(key), nonce)
    pair.pump()
    return pair


def test_signature_is_bound_to_the_nonce(device_key: Ed25519PrivateKey) -> None:
    old_nonce = os.urandom(NONCE_SIZE)
    recorded = _auth_frame_for(device_key, old_nonce)
    # Control: the recorded AUTH is valid for the nonce it answered...
    same = _challenged(device_key, old_nonce)
    assert _of(same.feed_relay(encode_frame(recorded.type, recorded.payload)), Authenticated)
    # ...but replayed to a fresh challenge it is refused.
    fresh = _challenged(device_key, os.urandom(NONCE_SIZE))
    events = fresh.feed_relay(encode_frame(recorded.type, recorded.payload))
    _refused(events, TunnelCode.DEVICE_AUTH_FAILED)


def test_malformed_signature_is_a_protocol_error(device_key: Ed25519PrivateKey) -> None:
    pair = _challenged(device_key, os.urandom(NONCE_SIZE))
    events = pair.feed_relay(_frame(FrameType.AUTH, models.Auth(signature="zz" * 64)))
    _refused(events, TunnelCode.PROTOCOL_ERROR)


def test_challenge_with_a_bad_nonce_is_a_caller_bug(device_key: Ed25519PrivateKey) -> None:
    pair = _pair()
    pair.agent.start(pair.clock.now())
    pair.pump()
    with pytest.raises(ValueError, match="nonce"):
        pair.relay.challenge(public_key_raw(device_key), b"short")


# --- frames out of order --------------------------------------------------------------------------

HELLO = models.Hello(device_id="device-1", protocol_version=PROTOCOL_VERSION)


def test_auth_before_hello_is_a_protocol_error() -> None:
    pair = _pair()
    events = pair.feed_relay(_frame(FrameType.AUTH, models.Auth(signature="00" * 64)))
    _refused(events, TunnelCode.PROTOCOL_ERROR)
    pair.pump()
    _assert_error_delivered(pair, TunnelCode.PROTOCOL_ERROR)


def test_inventory_before_welcome_is_a_protocol_error(device_key: Ed25519PrivateKey) -> None:
    pair = _challenged(device_key, os.urandom(NONCE_SIZE))
    pair.agent.send_inventory(models.Inventory())
    _, relay_events = pair.pump()
    _refused(relay_events, TunnelCode.PROTOCOL_ERROR)
    _assert_error_delivered(pair, TunnelCode.PROTOCOL_ERROR)


@pytest.mark.parametrize("when", ["awaiting key", "awaiting auth", "open"])
def test_second_hello_is_a_protocol_error(when: str, device_key: Ed25519PrivateKey) -> None:
    pair = _pair()
    if when == "open":
        _open(pair, device_key)
    else:
        pair.agent.start(pair.clock.now())
        pair.pump()
        if when == "awaiting auth":
            pair.relay.challenge(public_key_raw(device_key), os.urandom(NONCE_SIZE))
    _refused(pair.feed_relay(_frame(FrameType.HELLO, HELLO)), TunnelCode.PROTOCOL_ERROR)


def test_ping_before_auth_is_a_protocol_error() -> None:
    pair = _pair()
    pair.feed_relay(_frame(FrameType.HELLO, HELLO))
    events = pair.feed_relay(_frame(FrameType.PING, models.Ping(seq=0)))
    _refused(events, TunnelCode.PROTOCOL_ERROR)


@pytest.mark.parametrize(
    "frame",
    [
        _frame(FrameType.WELCOME, models.Welcome(heartbeat_interval_s=5)),
        _frame(FrameType.HELLO, HELLO),
        _frame(FrameType.INVENTORY, models.Inventory()),
        encode_frame(FrameType.DATA, b"body"),
    ],
    ids=["welcome-before-challenge", "hello", "inventory", "data"],
)
def test_agent_refuses_frames_out_of_order(frame: bytes) -> None:
    pair = _pair()
    pair.agent.start(pair.clock.now())
    _refused(pair.feed_agent(frame), TunnelCode.PROTOCOL_ERROR)
    pair.pump()
    _assert_error_delivered(pair, TunnelCode.PROTOCOL_ERROR, to_agent=False)


def test_second_challenge_is_a_protocol_error(device_key: Ed25519PrivateKey) -> None:
    pair = _challenged(device_key, os.urandom(NONCE_SIZE))
    again = _frame(FrameType.CHALLENGE, models.Challenge(nonce="00" * NONCE_SIZE))
    pair.agent.answer_challenge(bytes(64))
    _refused(pair.feed_agent(again), TunnelCode.PROTOCOL_ERROR)


def test_frames_after_close_are_ignored(device_key: Ed25519PrivateKey) -> None:
    pair = _pair()
    pair.handshake(device_key, registered_key=None)
    assert pair.relay.closed
    assert pair.feed_relay(_frame(FrameType.HELLO, HELLO)) == []
    assert pair.relay.data_to_send() == b""
    assert pair.relay.challenge(public_key_raw(device_key), os.urandom(NONCE_SIZE)) == []


# --- protocol versions ----------------------------------------------------------------------------


def test_old_protocol_version_is_refused(
    monkeypatch: pytest.MonkeyPatch, device_key: Ed25519PrivateKey
) -> None:
    # The day the relay drops version 1, a version-1 agent is told why, not just dropped.
    monkeypatch.setattr(control, "MIN_PROTOCOL_VERSION", PROTOCOL_VERSION + 1)
    pair = _pair()
    result = pair.handshake(device_key)
    _refused(result.relay_events, TunnelCode.VERSION_UNSUPPORTED)
    _assert_error_delivered(pair, TunnelCode.VERSION_UNSUPPORTED)
    assert not _of(result.relay_events, HelloReceived)


def test_version_zero_is_refused() -> None:
    # Version 0 never existed; the Hello model rejects it, so the code is PROTOCOL_ERROR.
    pair = _pair()
    payload = b'{"device_id": "device-1", "protocol_version": 0}'
    events = pair.feed_relay(encode_frame(FrameType.HELLO, payload))
    _refused(events, TunnelCode.PROTOCOL_ERROR)
    assert pair.relay.closed


def test_newer_agent_is_accepted(device_key: Ed25519PrivateKey) -> None:
    pair = _pair()
    hello = models.Hello(device_id="device-1", protocol_version=PROTOCOL_VERSION + 1)
    events = pair.feed_relay(_frame(FrameType.HELLO, hello))
    assert events == [HelloReceived("device-1", "", PROTOCOL_VERSION + 1)]


# --- heartbeat and liveness -----------------------------------------------------------------------


def _pings(frames: list[Frame]) -> list[int]:
    return [models.Ping.model_validate_json(f.payload).seq for f in _only(frames, FrameType.PING)]


def _pongs(frames: list[Frame]) -> list[int]:
    return [models.Pong.model_validate_json(f.payload).seq for f in _only(frames, FrameType.PONG)]


def _only(frames: list[Frame], frame_type: FrameType) -> list[Frame]:
    return [f for f in frames if f.type is frame_type]


def test_no_ping_before_the_session_is_open() -> None:
    pair = _pair()
    pair.agent.start(pair.clock.now())
    pair.advance(HEARTBEAT * 1.5)
    assert _pings(pair.agent_sent) == []


@pytest.mark.parametrize("chop_seed", [None, 7])
def test_agent_pings_every_interval_and_relay_pongs(
    chop_seed: int | None, device_key: Ed25519PrivateKey
) -> None:
    pair = _pair(chop_seed)
    assert pair.handshake(device_key).authenticated
    pair.advance(0)
    assert _pings(pair.agent_sent) == [0]
    pair.advance(HEARTBEAT - 0.5)
    assert _pings(pair.agent_sent) == [0], "no PING before the interval is up"
    pair.advance(0.5)
    assert _pings(pair.agent_sent) == [0, 1]
    pair.advance(HEARTBEAT * 3)
    assert _pings(pair.agent_sent) == [0, 1, 2, 3, 4]
    assert _pongs(pair.relay_sent) == [0, 1, 2, 3, 4]
    assert pair.agent.next_deadline() == pair.clock.now() + HEARTBEAT  # the next PING


def test_healthy_session_never_reports_silence(device_key: Ed25519PrivateKey) -> None:
    pair = _pair()
    _open(pair, device_key)
    agent_events, relay_events = pair.advance(RELAY_DEAD * 10)
    assert not _of(agent_events, PeerSilent)
    assert not _of(relay_events, PeerSilent)
    assert pair.agent.state is State.OPEN
    assert pair.relay.state is State.OPEN


def test_agent_reports_a_silent_relay_after_dead_after_and_not_before(
    device_key: Ed25519PrivateKey,
) -> None:
    pair = _pair()
    _open(pair, device_key)  # the last PONG arrives now
    pair.connected = False  # a NAT dropped the flow: nothing gets through any more
    agent_events, _ = pair.advance(AGENT_DEAD - 0.5)
    assert not _of(agent_events, PeerSilent)
    assert pair.agent.state is State.OPEN
    assert _pings(pair.agent_sent) == [0, 1], "the agent keeps pinging into the void"
    agent_events, _ = pair.advance(0.5)
    assert agent_events == [PeerSilent(AGENT_DEAD)]
    assert pair.agent.closed


def test_relay_reports_a_silent_agent_after_dead_after_and_not_before(
    device_key: Ed25519PrivateKey,
) -> None:
    pair = _pair()
    _open(pair, device_key)  # the last PING arrives now
    pair.connected = False
    _, relay_events = pair.advance(RELAY_DEAD - 0.5)
    assert not _of(relay_events, PeerSilent)
    assert pair.relay.state is State.OPEN
    _, relay_events = pair.advance(0.5)
    assert relay_events == [PeerSilent(RELAY_DEAD)]
    assert pair.relay.closed


def test_silence_is_noticed_during_the_handshake_too() -> None:
    pair = _pair()
    pair.agent.start(pair.clock.now())
    pair.connected = False
    agent_events, _ = pair.advance(AGENT_DEAD)
    assert agent_events == [PeerSilent(AGENT_DEAD)]


def test_relay_answers_and_ignores_pongs(device_key: Ed25519PrivateKey) -> None:
    pair = _pair()
    _open(pair, device_key)
    assert pair.feed_relay(_frame(FrameType.PONG, models.Pong(seq=9))) == []
    assert pair.feed_agent(_frame(FrameType.PING, models.Ping(seq=4))) == []
    assert _pongs([*FrameDecoder().feed(pair.agent.data_to_send())]) == [4]


# --- GOAWAY, inventory ----------------------------------------------------------------------------


def test_goaway_reaches_the_agent(device_key: Ed25519PrivateKey) -> None:
    pair = _pair(3)
    _open(pair, device_key)
    pair.relay.go_away(7.5, "relay upgrade")
    agent_events, _ = pair.pump()
    assert agent_events == [GoingAway(7.5, "relay upgrade")]
    assert pair.agent.closed
    assert pair.relay.closed
    assert pair.advance(RELAY_DEAD * 2) == ([], [])


def _inventory() -> models.Inventory:
    profile = models.ProfileInventory(
        token="main", name="Main", encoding="H264", width=1920, height=1080, fps=25.0
    )
    camera = models.CameraInventory(
        local_id="urn:uuid:cam-1",
        name="Gate",
        manufacturer="Acme",
        model="IPC-1",
        firmware_version="1.2.3",
        serial_number="SN1",
        capabilities=["ptz", "snapshot"],
        profiles=[profile],
    )
    return models.Inventory(cameras=[camera, models.CameraInventory(local_id="c2", online=False)])


@pytest.mark.parametrize("chop_seed", [None, 11])
def test_inventory_round_trip(chop_seed: int | None, device_key: Ed25519PrivateKey) -> None:
    pair = _pair(chop_seed)
    _open(pair, device_key)
    pair.agent.send_inventory(_inventory())
    _, relay_events = pair.pump()
    assert relay_events == [InventoryReceived(_inventory())]
    pair.agent.send_inventory(models.Inventory())
    _, relay_events = pair.pump()
    assert relay_events == [InventoryReceived(models.Inventory())]


def test_invalid_inventory_is_a_protocol_error(device_key: Ed25519PrivateKey) -> None:
    pair = _pair()
    _open(pair, device_key)
    events = pair.feed_relay(encode_frame(FrameType.INVENTORY, b'{"cameras": [{"name": 1}]}'))
    _refused(events, TunnelCode.PROTOCOL_ERROR)


def test_unknown_fields_are_ignored(device_key: Ed25519PrivateKey) -> None:
    pair = _pair()
    _open(pair, device_key)
    payload = b'{"cameras": [], "from_the_future": {"x": 1}}'
    assert pair.feed_relay(encode_frame(FrameType.INVENTORY, payload)) == [
        InventoryReceived(models.Inventory())
    ]


def test_error_from_peer_closes_without_answering(device_key: Ed25519PrivateKey) -> None:
    pair = _pair()
    _open(pair, device_key)
    error = models.ErrorMessage(code=TunnelCode.INTERNAL, message="bye")
    assert pair.feed_agent(_frame(FrameType.ERROR, error)) == [
        PeerError(TunnelCode.INTERNAL, "bye", sent_by_peer=True)
    ]
    assert pair.agent.closed
    assert pair.agent.data_to_send() == b""


@pytest.mark.parametrize("payload", [b"garbage", b"{}", b'{"code": "x"}', b"\xff"])
def test_malformed_error_frame_is_a_protocol_error(payload: bytes) -> None:
    # Regression: a malformed ERROR payload used to escape receive_data as ValidationError.
    pair = _pair()
    pair.agent.start(pair.clock.now())
    _refused(pair.feed_agent(encode_frame(FrameType.ERROR, payload)), TunnelCode.PROTOCOL_ERROR)
    assert pair.agent.closed
