"""The command plane and event spool frames (0x0A-0x0F) in the sans-I/O control machines:
round trips over a chopping in-memory pipe, state and direction checks, the version gate,
batching within the frame bound, and hostile payloads."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import models
from shared.testing import ControlPair
from shared.tunnel import control as ctl
from shared.tunnel.codes import TunnelCode
from shared.tunnel.errors import ProtocolViolation
from shared.tunnel.frames import MAX_CONTROL_PAYLOAD, FrameType, encode_frame

PLANE_TYPES = sorted(ctl.AGENT_PLANE_TYPES | ctl.RELAY_PLANE_TYPES)


def _open(chop_seed: int | None = None) -> ControlPair:
    pair = ControlPair.create(chop_seed=chop_seed)
    assert pair.handshake(Ed25519PrivateKey.generate()).authenticated
    return pair


def _cmd(n: int, **args: object) -> models.Command:
    return models.Command(id=f"c{n}", kind="restart", args=dict(args), deadline=2e9)


@pytest.mark.parametrize("chop_seed", [None, 1, 2])
def test_every_plane_message_round_trips(chop_seed: int | None) -> None:
    pair = _open(chop_seed)
    commands = [_cmd(1), _cmd(2, camera="x")]
    pair.relay.send_commands(commands)
    agent_events, _ = pair.pump()
    assert agent_events == [ctl.CommandsReceived(tuple(commands))]

    acks = [models.CommandAck(id="c1"), models.CommandAck(id="c2", state="in_progress")]
    results = [models.CommandResult(id="c1", outcome="done", result={"cleared": 2})]
    events = [models.Event(seq=7, kind="motion", camera="x", at=1.5, payload={"zone": 1})]
    pair.agent.ack_commands(acks)
    pair.agent.send_results(results)
    pair.agent.send_events(events)
    _, relay_events = pair.pump()
    assert relay_events == [
        ctl.CommandAcksReceived(tuple(acks)),
        ctl.CommandResultsReceived(tuple(results)),
        ctl.EventsReceived(tuple(events)),
    ]

    pair.relay.ack_results(["c1"])
    pair.relay.ack_events(7)
    agent_events, _ = pair.pump()
    assert agent_events == [ctl.ResultsAcked(("c1",)), ctl.EventsAcked(7)]


def test_plane_frames_before_the_session_is_open_are_a_protocol_error() -> None:
    pair = ControlPair.create()
    pair.agent.start(pair.clock.now())
    pair.pump()  # HELLO arrived; no WELCOME yet
    events = [models.Event(seq=1, kind="motion", at=0)]
    [event] = pair.feed_relay(encode_frame(FrameType.EVENTS, models.Events(events=events)
                                           .model_dump_json().encode()))  # fmt: skip
    assert isinstance(event, ctl.PeerError)
    assert event.code == TunnelCode.PROTOCOL_ERROR
    assert pair.relay.closed


@pytest.mark.parametrize("frame_type", sorted(ctl.AGENT_PLANE_TYPES))
def test_the_relay_refuses_agent_bound_frames(frame_type: FrameType) -> None:
    """A peer sending the other direction's frames is broken or hostile."""
    pair = _open()
    [event] = pair.feed_relay(encode_frame(frame_type, b"{}"))
    assert isinstance(event, ctl.PeerError)
    assert event.code == TunnelCode.PROTOCOL_ERROR


def test_an_agent_too_old_for_commands_is_never_sent_them() -> None:
    pair = ControlPair.create()
    pair.relay.receive_data(
        encode_frame(
            FrameType.HELLO,
            models.Hello(device_id="old", protocol_version=1).model_dump_json().encode(),
        ),
        pair.clock.now(),
    )
    assert not pair.relay.supports_commands
    with pytest.raises(ProtocolViolation):
        pair.relay.send_commands([_cmd(1)])


def test_long_lists_are_split_into_bounded_frames() -> None:
    pair = _open()
    many = [_cmd(n) for n in range(models.MAX_BATCH * 2 + 5)]
    pair.relay.send_commands(many)
    big = [
        models.CommandResult(id=f"r{n}", outcome="done", result={"blob": "x" * 60_000})
        for n in range(10)
    ]
    pair.agent.send_results(big)
    agent_events, relay_events = pair.pump()
    received = [c for e in agent_events if isinstance(e, ctl.CommandsReceived) for c in e.commands]
    assert received == many
    result_frames = [e for e in relay_events if isinstance(e, ctl.CommandResultsReceived)]
    assert [r for e in result_frames for r in e.results] == big
    assert len(result_frames) > 1
    sent = pair.relay_sent + pair.agent_sent
    assert all(len(f.payload) <= MAX_CONTROL_PAYLOAD for f in sent)
    assert all(len(e.commands) <= models.MAX_BATCH for e in agent_events
               if isinstance(e, ctl.CommandsReceived))  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    frame_type=st.sampled_from(PLANE_TYPES),
    payload=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=5)
            | st.dictionaries(st.text(max_size=10), inner, max_size=5),
            max_leaves=20,
        ).map(lambda v: json.dumps({"events": v, "commands": v, "acks": v, "ids": v,
                                    "results": v, "up_to": v}).encode()),
    ),
    to_relay=st.booleans(),
)  # fmt: skip
def test_hostile_plane_payloads_never_raise(
    frame_type: FrameType, payload: bytes, to_relay: bool
) -> None:
    """Whatever arrives, each end answers with an event or a protocol error, never a crash."""
    pair = _open()
    feed = pair.feed_relay if to_relay else pair.feed_agent
    for event in feed(encode_frame(frame_type, payload)):
        if isinstance(event, ctl.PeerError):
            assert event.code == TunnelCode.PROTOCOL_ERROR
        else:
            assert isinstance(event, ctl.PlaneEvent)
