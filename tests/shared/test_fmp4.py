"""The relay's fMP4 splitter (shared/fmp4.py) against the agent's own fMP4 writer: whole init
segments and fragments come out however the bytes are chopped, with the right keyframes."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.media import fmp4 as writer
from shared import fmp4

AVCC = b"\x01\x42\xe0\x1e\xff\xe1\x00\x04gB\xe0\x1e\x01\x00\x02h\xce"
VIDEO = writer.VideoTrack(90000, 640, 360, writer.avc1_entry(640, 360, AVCC))
AUDIO = writer.AudioTrack(48000, writer.mp4a_entry(48000, 2, b"\x11\x90"))


def _stream(frames: int = 30, gop: int = 10) -> tuple[bytes, list[tuple[bytes, bool]]]:
    """An init segment with video and audio, then video and audio fragments interleaved;
    (init, [(fragment, keyframe)])."""
    init = writer.init_segment(VIDEO, AUDIO)
    frags: list[tuple[bytes, bool]] = []
    seq = 1
    for i in range(frames):
        sync = i % gop == 0
        sample = writer.Sample(bytes([i % 256]) * (100 + i), 3600, sync)
        frags.append((writer.fragment(seq, writer.VIDEO_TRACK_ID, i * 3600, [sample]), sync))
        seq += 1
        audio = writer.Sample(b"\xaa" * 20, 1024, True)  # every audio sample is a sync sample
        frags.append((writer.fragment(seq, writer.AUDIO_TRACK_ID, i * 1024, [audio]), False))
        seq += 1
    return init, frags


def _split(data: bytes, cuts: list[int]) -> list[fmp4.Segment]:
    """Feed ``data`` cut at ``cuts`` (positions); every segment out, in order."""
    splitter = fmp4.Fmp4Splitter()
    out: list[fmp4.Segment] = []
    last = 0
    for cut in [*sorted(cuts), len(data)]:
        out += splitter.feed(data[last:cut])
        last = cut
    assert splitter.buffered == 0
    return out


def test_whole_stream_gives_init_then_fragments_with_video_keyframes_only() -> None:
    init, frags = _stream()
    out = _split(init + b"".join(f for f, _ in frags), [])
    assert out[0] == fmp4.InitSegment(init, writer.VIDEO_TRACK_ID)
    got = [(s.data, s.keyframe) for s in out[1:] if isinstance(s, fmp4.MediaFragment)]
    assert got == frags
    assert [s.sequence for s in out[1:] if isinstance(s, fmp4.MediaFragment)] == list(
        range(1, len(frags) + 1)
    )


@given(st.lists(st.integers(min_value=0, max_value=20000), max_size=60))
def test_any_chopping_gives_the_same_segments(cuts: list[int]) -> None:
    init, frags = _stream()
    data = init + b"".join(f for f, _ in frags)
    cuts = [c % (len(data) + 1) for c in cuts]
    assert _split(data, cuts) == _split(data, [])


def test_byte_at_a_time() -> None:
    init, frags = _stream(frames=5)
    data = init + b"".join(f for f, _ in frags)
    assert _split(data, list(range(len(data)))) == _split(data, [])


def test_a_second_init_mid_stream_is_reported() -> None:
    init, frags = _stream(frames=3)
    data = init + frags[0][0] + init + frags[2][0]
    kinds = [type(s).__name__ for s in _split(data, [])]
    assert kinds == ["InitSegment", "MediaFragment", "InitSegment", "MediaFragment"]


def test_without_an_init_any_sync_first_sample_is_a_keyframe() -> None:
    _, frags = _stream(frames=2, gop=2)
    out = _split(b"".join(f for f, _ in frags), [])
    assert [isinstance(s, fmp4.MediaFragment) and s.keyframe for s in out] == [
        True,
        True,  # the audio fragment: no video track known, its sample is a sync sample
        False,
        True,
    ]


def test_default_sample_flags_in_tfhd() -> None:
    """A muxer that puts the flags in tfhd (FFmpeg does) instead of trun."""
    mfhd = writer.full_box(b"mfhd", 0, 0, struct.pack(">I", 7))
    tfhd = writer.full_box(b"tfhd", 0, 0x020020, struct.pack(">II", 1, 0x01010000))
    trun = writer.full_box(b"trun", 0, 0x000004, struct.pack(">II", 1, 0x02000000))
    key = writer.box(b"moof", mfhd, writer.box(b"traf", tfhd, trun))
    trun_plain = writer.full_box(b"trun", 0, 0, struct.pack(">I", 1))
    delta = writer.box(b"moof", mfhd, writer.box(b"traf", tfhd, trun_plain))
    assert fmp4.moof_info(key, 1) == (7, True)
    assert fmp4.moof_info(delta, 1) == (7, False)


def test_largesize_box() -> None:
    init, frags = _stream(frames=1)
    payload = b"x" * 10
    big_mdat = struct.pack(">I4sQ", 1, b"mdat", 16 + len(payload)) + payload
    moof = frags[0][0][: int.from_bytes(frags[0][0][:4], "big")]
    out = _split(init + moof + big_mdat, [3, 100])
    assert isinstance(out[1], fmp4.MediaFragment)
    assert out[1].keyframe
    assert out[1].data == moof + big_mdat


@pytest.mark.parametrize(
    "data",
    [
        struct.pack(">I4s", 4, b"moof"),  # smaller than its header
        struct.pack(">I4s", 0, b"mdat"),  # "to the end of the file": not in a live stream
        struct.pack(">I4s", 16, b"mdat") + bytes(8),  # mdat with no moof before it
        struct.pack(">I4s", 2**31, b"mdat"),  # over the bound
    ],
)
def test_invalid_input_raises(data: bytes) -> None:
    with pytest.raises(fmp4.Fmp4Error):
        fmp4.Fmp4Splitter().feed(data)


@given(st.binary(max_size=400))
def test_garbage_raises_fmp4error_or_waits(data: bytes) -> None:
    splitter = fmp4.Fmp4Splitter(max_box_bytes=1 << 20)
    with contextlib.suppress(fmp4.Fmp4Error):
        splitter.feed(data)


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_hostile_moof_and_moov_contents_raise_only_fmp4error(traf: bytes, trak: bytes) -> None:
    moof = writer.box(b"moof", writer.box(b"traf", traf))
    moov = writer.box(b"moov", writer.box(b"trak", trak))
    for parse in (lambda: fmp4.moof_info(moof, 1), lambda: fmp4.video_track_id(moov)):
        with contextlib.suppress(fmp4.Fmp4Error):
            parse()
