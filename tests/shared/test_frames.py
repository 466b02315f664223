"""Tier one: the frame codec — round trips, chopping, prefixes, refused headers, limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.tunnel.errors import FrameError, FrameTooLarge, NeedMoreData
from shared.tunnel.frames import (
    FRAME_VERSION,
    HEADER,
    HEADER_SIZE,
    MAX_CONTROL_PAYLOAD,
    MAX_DATA_PAYLOAD,
    Frame,
    FrameDecoder,
    FrameType,
    decode_frame,
    encode_frame,
    max_payload,
)

frame_types = st.sampled_from(list(FrameType))
frames = st.builds(Frame, frame_types, st.binary(max_size=300))
frame_lists = st.lists(frames, max_size=12)
UNKNOWN_TYPES = sorted(set(range(256)) - {int(t) for t in FrameType})


def _wire(items: list[Frame]) -> bytes:
    return b"".join(encode_frame(f.type, f.payload) for f in items)


def _header(
    *, version: int = FRAME_VERSION, type_code: int = 1, flags: int = 0, length: int = 0
) -> bytes:
    return HEADER.pack(version, type_code, flags, length)


@pytest.mark.parametrize("frame_type", list(FrameType), ids=lambda t: t.name)
@settings(deadline=None, max_examples=30)
@given(payload=st.binary(max_size=2048), trailer=st.binary(max_size=16))
def test_round_trip_every_type(frame_type: FrameType, payload: bytes, trailer: bytes) -> None:
    wire = encode_frame(frame_type, payload)
    assert len(wire) == HEADER_SIZE + len(payload)
    frame, used = decode_frame(wire + trailer)
    assert frame == Frame(frame_type, payload)
    assert used == len(wire)


@settings(deadline=None)
@given(items=frame_lists)
def test_stream_fed_byte_by_byte_decodes_identically(items: list[Frame]) -> None:
    wire = _wire(items)
    decoder = FrameDecoder()
    got: list[Frame] = []
    for i in range(len(wire)):
        got += decoder.feed(wire[i : i + 1])
    assert got == items
    assert decoder.pending == 0


@settings(deadline=None)
@given(items=frame_lists, data=st.data())
def test_stream_fed_in_random_chops_decodes_identically(
    items: list[Frame], data: st.DataObject
) -> None:
    wire = _wire(items)
    cuts = data.draw(st.lists(st.integers(0, len(wire)), unique=True).map(sorted))
    decoder = FrameDecoder()
    got: list[Frame] = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        got += decoder.feed(wire[start:end])
    assert got == items
    assert decoder.pending == 0


@settings(deadline=None)
@given(frame=frames)
def test_every_strict_prefix_needs_more_data(frame: Frame) -> None:
    wire = encode_frame(frame.type, frame.payload)
    for n in range(len(wire)):
        with pytest.raises(NeedMoreData):
            decode_frame(wire[:n])


@pytest.mark.parametrize("version", [0, FRAME_VERSION + 1, 255])
def test_bad_version_is_refused(version: int) -> None:
    with pytest.raises(FrameError, match="version"):
        decode_frame(_header(version=version))


def test_every_unknown_type_is_refused() -> None:
    for code in UNKNOWN_TYPES:
        with pytest.raises(FrameError, match="unknown frame type"):
            decode_frame(_header(type_code=code))


@given(flags=st.integers(1, 0xFFFF), frame_type=frame_types)
def test_reserved_flags_are_refused(flags: int, frame_type: FrameType) -> None:
    with pytest.raises(FrameError, match="reserved flags"):
        decode_frame(_header(type_code=frame_type, flags=flags))


@pytest.mark.parametrize("frame_type", list(FrameType), ids=lambda t: t.name)
def test_oversize_length_is_refused_from_the_header_alone(frame_type: FrameType) -> None:
    limit = max_payload(frame_type)
    # At the limit the header is fine and the decoder waits for the payload...
    with pytest.raises(NeedMoreData):
        decode_frame(_header(type_code=frame_type, length=limit))
    # ...one byte over, it refuses before a single payload byte has arrived.
    for length in (limit + 1, 0xFFFFFFFF):
        with pytest.raises(FrameTooLarge):
            decode_frame(_header(type_code=frame_type, length=length))
        with pytest.raises(FrameTooLarge):
            FrameDecoder().feed(_header(type_code=frame_type, length=length))


def test_bad_header_is_refused_as_soon_as_it_is_complete() -> None:
    bad = _header(type_code=FrameType.PING, flags=0x8000, length=4)
    decoder = FrameDecoder()
    assert decoder.feed(bad[:-1]) == []
    assert decoder.pending == HEADER_SIZE - 1
    with pytest.raises(FrameError, match="reserved flags"):
        decoder.feed(bad[-1:])


def test_encode_refuses_oversize_payloads() -> None:
    assert len(encode_frame(FrameType.HELLO, bytes(MAX_CONTROL_PAYLOAD))) == (
        HEADER_SIZE + MAX_CONTROL_PAYLOAD
    )
    with pytest.raises(FrameTooLarge):
        encode_frame(FrameType.HELLO, bytes(MAX_CONTROL_PAYLOAD + 1))
    # DATA frames may be larger than control frames, up to their own limit.
    encode_frame(FrameType.DATA, bytes(MAX_CONTROL_PAYLOAD + 1))
    encode_frame(FrameType.DATA, bytes(MAX_DATA_PAYLOAD))
    with pytest.raises(FrameTooLarge):
        encode_frame(FrameType.DATA, bytes(MAX_DATA_PAYLOAD + 1))


@settings(deadline=None)
@given(items=st.lists(frames, min_size=1, max_size=6), data=st.data())
def test_pending_reports_a_truncated_end(items: list[Frame], data: st.DataObject) -> None:
    wire = _wire(items)
    cut = data.draw(st.integers(1, len(encode_frame(items[-1].type, items[-1].payload))))
    decoder = FrameDecoder()
    got = decoder.feed(wire[:-cut])
    assert got == items[:-1]
    assert decoder.pending == len(encode_frame(items[-1].type, items[-1].payload)) - cut
    assert decoder.feed(wire[-cut:]) == items[-1:]
    assert decoder.pending == 0
