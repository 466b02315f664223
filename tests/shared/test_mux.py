"""The fallback multiplexer (shared/tunnel/mux.py): codec, streams, credit, hostile input.

Pure tier: two ``Multiplexer`` ends joined in memory, bytes cut at arbitrary points, hypothesis
for round trips and garbage. Nothing here may raise out of ``receive_data``.
"""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.tunnel import mux
from shared.tunnel.codes import TunnelCode
from shared.tunnel.errors import MuxError


def _pump(
    a: mux.Multiplexer,
    b: mux.Multiplexer,
    *,
    rng: random.Random | None = None,
    consume: bool = True,
) -> tuple[list[mux.MuxEvent], list[mux.MuxEvent]]:
    """Move bytes both ways until quiet; optionally chop them and let each end consume all."""
    a_events: list[mux.MuxEvent] = []
    b_events: list[mux.MuxEvent] = []
    for _ in range(10_000):
        moved = False
        for src, dst, sink in ((a, b, b_events), (b, a, a_events)):
            data = src.data_to_send()
            if not data:
                continue
            moved = True
            for piece in _chop(data, rng):
                events = dst.receive_data(piece)
                sink.extend(events)
                if consume:
                    for ev in events:
                        if isinstance(ev, mux.StreamDataReceived):
                            dst.stream_consumed(ev.stream_id, len(ev.data))
        if not moved:
            return a_events, b_events
    raise AssertionError("the two ends never went quiet")


def _chop(data: bytes, rng: random.Random | None) -> list[bytes]:
    """Cut ``data`` at random points (or not at all)."""
    if rng is None:
        return [data]
    pieces, i = [], 0
    while i < len(data):
        n = rng.randint(1, 64)
        pieces.append(data[i : i + n])
        i += n
    return pieces


def _received(events: list[mux.MuxEvent]) -> dict[int, tuple[bytes, bool]]:
    """Stream id -> (all bytes, saw FIN)."""
    out: dict[int, tuple[bytes, bool]] = {}
    for ev in events:
        if isinstance(ev, mux.StreamDataReceived):
            data, fin = out.get(ev.stream_id, (b"", False))
            assert not fin, "data after FIN"
            out[ev.stream_id] = (data + ev.data, ev.end_stream)
    return out


def _pair() -> tuple[mux.Multiplexer, mux.Multiplexer]:
    return mux.Multiplexer(is_client=True), mux.Multiplexer(is_client=False)


# codec


@given(
    kind=st.sampled_from([mux.MuxType.STREAM]),
    stream_id=st.integers(0, 2**32 - 1),
    payload=st.binary(max_size=2048),
    fin=st.booleans(),
    cuts=st.lists(st.integers(1, 50), max_size=40),
)
def test_stream_frames_round_trip_however_the_bytes_are_cut(
    kind: mux.MuxType, stream_id: int, payload: bytes, fin: bool, cuts: list[int]
) -> None:
    """Whatever the transport's message boundaries, the decoder yields the frames sent."""
    flags = mux.MuxFlags.FIN if fin else mux.NO_FLAGS
    wire = mux.encode(kind, stream_id, payload, flags) * 2
    decoder = mux.MuxDecoder()
    frames: list[mux.MuxFrame] = []
    i = 0
    for cut in [*cuts, len(wire)]:
        frames += decoder.feed(wire[i : i + cut])
        i += cut
    frames += decoder.feed(wire[i:])
    assert frames == [mux.MuxFrame(kind, flags, stream_id, payload)] * 2
    assert decoder.pending == 0


def test_an_oversize_stream_frame_is_refused_from_its_header() -> None:
    """The decoder never waits for (or buffers) a payload larger than the limit."""
    header = mux.HEADER.pack(mux.MuxType.STREAM, 0, 0, mux.MAX_STREAM_CHUNK + 1)
    with pytest.raises(MuxError):
        mux.MuxDecoder().feed(header)
    with pytest.raises(MuxError):
        mux.encode(mux.MuxType.STREAM, 0, bytes(mux.MAX_STREAM_CHUNK + 1))


@pytest.mark.parametrize(
    ("header", "payload"),
    [
        ((0x7F, 0, 0, 0), b""),  # unknown type
        ((mux.MuxType.RESET_STREAM, 1, 0, 4), b"\0" * 4),  # flags on a non-STREAM frame
        ((mux.MuxType.STREAM, 0x2, 0, 0), b""),  # unknown flag
        ((mux.MuxType.WINDOW_UPDATE, 0, 0, 3), b"\0" * 3),  # wrong fixed size
        ((mux.MuxType.CLOSE, 0, 0, 4 + mux.MAX_REASON + 1), b""),  # reason too long
        ((mux.MuxType.CLOSE, 0, 4, 4), b"\0" * 4),  # CLOSE on a stream
        ((mux.MuxType.STREAM, 0, 2, 1), b"x"),  # unidirectional stream id
        ((mux.MuxType.STREAM, 0, 1, 1), b"x"),  # a server-side id the server never opened
        ((mux.MuxType.WINDOW_UPDATE, 0, 4, 4), b"\0\0\0\1"),  # a control frame opening a stream
    ],
)
def test_malformed_input_closes_with_a_protocol_error(
    header: tuple[int, int, int, int], payload: bytes
) -> None:
    """Each kind of bad frame ends the connection with PROTOCOL_ERROR and a CLOSE to the peer."""
    server = mux.Multiplexer(is_client=False)
    events = server.receive_data(mux.HEADER.pack(*header) + payload)
    assert len(events) == 1
    assert isinstance(events[0], mux.ConnectionTerminated)
    assert events[0].error_code == TunnelCode.PROTOCOL_ERROR
    assert server.closed
    close = mux.MuxDecoder().feed(server.data_to_send())
    assert [f.type for f in close] == [mux.MuxType.CLOSE]
    assert struct.unpack("!I", close[0].payload[:4])[0] == TunnelCode.PROTOCOL_ERROR
    assert server.receive_data(b"more garbage after the close") == []


@settings(max_examples=300)
@given(st.binary(max_size=4096))
def test_garbage_never_raises(data: bytes) -> None:
    """Arbitrary bytes yield events or a protocol error, never an exception."""
    for is_client in (True, False):
        end = mux.Multiplexer(is_client=is_client)
        events = end.receive_data(data)
        assert all(isinstance(e, mux.MuxEvent) for e in events)
        if end.closed:
            assert isinstance(events[-1], mux.ConnectionTerminated)
        end.data_to_send()


# streams end to end


@settings(max_examples=60, deadline=None)
@given(
    bodies=st.lists(st.binary(max_size=40_000), min_size=1, max_size=5),
    seed=st.integers(0, 2**32),
)
def test_streams_round_trip_through_chopped_transport(bodies: list[bytes], seed: int) -> None:
    """Several streams each way arrive intact and in order, with FIN, however bytes are cut."""
    client, server = _pair()
    ids = []
    for body in bodies:
        sid = client.get_next_available_stream_id()
        client.send_stream_data(sid, body, end_stream=True)
        ids.append(sid)
    _, server_events = _pump(client, server, rng=random.Random(seed))
    got = _received(server_events)
    assert got == {sid: (body, True) for sid, body in zip(ids, bodies, strict=True)}
    for sid, body in zip(ids, bodies, strict=True):  # and the answers come back
        server.send_stream_data(sid, body[::-1], end_stream=True)
    client_events, _ = _pump(client, server, rng=random.Random(seed + 1))
    assert _received(client_events) == {
        sid: (body[::-1], True) for sid, body in zip(ids, bodies, strict=True)
    }
    assert client.open_streams == 0
    assert server.open_streams == 0


def test_a_reader_that_does_not_consume_stops_its_sender_at_the_window() -> None:
    """Credit follows consumption: unread bytes cap at one window; reading releases more."""
    client, server = _pair()
    sid = client.get_next_available_stream_id()
    body = bytes(3 * mux.STREAM_WINDOW)
    client.send_stream_data(sid, body)
    _, events = _pump(client, server, consume=False)
    assert sum(len(e.data) for e in events if isinstance(e, mux.StreamDataReceived)) == (
        mux.STREAM_WINDOW
    )
    assert client.get_send_buffer_size(sid) == len(body) - mux.STREAM_WINDOW

    server.stream_consumed(sid, mux.STREAM_WINDOW)
    _, more = _pump(client, server, consume=False)
    assert sum(len(e.data) for e in more if isinstance(e, mux.StreamDataReceived)) == (
        mux.STREAM_WINDOW
    )


def test_a_stalled_stream_does_not_hold_back_the_control_stream() -> None:
    """With a viewer stream out of credit and megabytes queued, control bytes still flow."""
    client, server = _pair()
    control = client.get_next_available_stream_id()
    viewer = server.get_next_available_stream_id()
    client.send_stream_data(control, b"hello")
    _pump(client, server)
    server.send_stream_data(viewer, bytes(4 * mux.STREAM_WINDOW))  # the client never reads it
    client_events, _ = _pump(client, server, consume=False)
    server.send_stream_data(control, b"ping")
    client_events, _ = _pump(client, server, consume=False)
    assert _received(client_events)[control] == (b"ping", False)


def test_control_bytes_queued_after_a_big_body_leave_in_the_first_message() -> None:
    """Round-robin scheduling: a small frame is not stuck behind 1 MB on another stream."""
    client, server = _pair()
    big = client.get_next_available_stream_id()
    small = client.get_next_available_stream_id()
    client.send_stream_data(big, bytes(1024 * 1024))
    client.send_stream_data(small, b"urgent")
    first = server.receive_data(client.data_to_send(limit=64 * 1024))
    assert _received(first)[small] == (b"urgent", False)


def test_window_violation_is_a_protocol_error() -> None:
    """A peer sending beyond the credit it was given is cut off."""
    server = mux.Multiplexer(is_client=False)
    chunk = mux.encode(mux.MuxType.STREAM, 0, bytes(mux.MAX_STREAM_CHUNK))
    events: list[mux.MuxEvent] = []
    for _ in range(mux.STREAM_WINDOW // mux.MAX_STREAM_CHUNK + 1):
        events += server.receive_data(chunk)
    assert isinstance(events[-1], mux.ConnectionTerminated)
    assert events[-1].error_code == TunnelCode.PROTOCOL_ERROR


def test_the_peer_cannot_open_unbounded_streams() -> None:
    """More than MAX_PEER_STREAMS open at once is a protocol error."""
    server = mux.Multiplexer(is_client=False)
    wire = b"".join(mux.encode(mux.MuxType.STREAM, 4 * i, b"x") for i in range(300))
    events = server.receive_data(wire)
    assert isinstance(events[-1], mux.ConnectionTerminated)
    opened = [e for e in events if isinstance(e, mux.StreamDataReceived)]
    assert len(opened) == mux.MAX_PEER_STREAMS


def test_stop_sending_is_answered_with_a_reset_and_late_bytes_are_dropped() -> None:
    """A closed viewer: STOP_SENDING makes the sender reset; what was in flight is ignored."""
    client, server = _pair()
    sid = server.get_next_available_stream_id()
    server.send_stream_data(sid, b"live video" * 100)
    client_events, _ = _pump(client, server)
    assert _received(client_events)[sid][0]
    client.reset_stream(sid, 0x1)
    client.stop_stream(sid, 0x1)
    server.send_stream_data(sid, b"late")  # crosses the STOP_SENDING on the wire
    client_events, server_events = _pump(client, server)
    assert any(isinstance(e, mux.StopSendingReceived) for e in server_events)
    assert any(isinstance(e, mux.StreamReset) for e in server_events)
    assert not any(isinstance(e, mux.StreamDataReceived) for e in client_events)
    assert client.open_streams == 0
    assert server.open_streams == 0
    with pytest.raises(MuxError):
        server.send_stream_data(sid, b"after the reset")


def test_close_reaches_the_peer_with_code_and_reason() -> None:
    """CLOSE carries the error code and reason, like QUIC's CONNECTION_CLOSE."""
    client, server = _pair()
    client.close(TunnelCode.DEVICE_AUTH_FAILED, "go away")
    _, server_events = _pump(client, server)
    assert server_events == [mux.ConnectionTerminated(TunnelCode.DEVICE_AUTH_FAILED, "go away")]
    assert server.closed
