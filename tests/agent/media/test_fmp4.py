"""Box writer, codec strings and muxer without a camera; output checked by PyAV reading it back."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import pytest

from agent.media import bitstream as bs
from agent.media import fmp4
from agent.media.errors import UnsupportedStream
from agent.media.muxer import (
    AudioSource,
    Fragment,
    InitSegment,
    LiveMuxer,
    MuxEvent,
    Packet,
    VideoSource,
)

from .boxes import fragments, iter_boxes, walk
from .conftest import EncodedFrame, encode_aac, encode_video, read_back

# SPS/PPS that GStreamer's x264enc (baseline, 640x360) put in the SDP on this machine.
GST_H264_SPS = bytes.fromhex("6742c016da0280bfe5c05a8303035280000003008000000f478b1750")
TB_15 = Fraction(1, 15)


def mux(frames: list[EncodedFrame], codec: str = "h264", **kw: object) -> list[MuxEvent]:
    """Push encoded frames through a fresh muxer; all events in order."""
    muxer = LiveMuxer(VideoSource(codec, b"", TB_15), **kw)  # type: ignore[arg-type]
    events: list[MuxEvent] = []
    for f in frames:
        events += muxer.push(Packet(True, f.data, f.pts, f.pts, f.keyframe))
    return events


def joined(events: list[MuxEvent]) -> bytes:
    """The byte stream a viewer from the start would get."""
    return b"".join(e.data for e in events)


def ffmpeg_config_box(codec: str, kind: bytes) -> bytes:
    """avcC/hvcC payload as FFmpeg's own mp4 muxer writes it for the same stream."""
    name = "libx264" if codec == "h264" else "libx265"
    raw = b"".join(f.data for f in encode_video(name, frames=3))
    out = io.BytesIO()
    with (
        av.open(io.BytesIO(raw), "r", format=codec) as src,
        av.open(out, "w", format="mp4") as dst,
    ):
        stream = dst.add_stream_from_template(src.streams.video[0])
        packets = [p for p in src.demux(src.streams.video[0]) if p.size]
        for i, pkt in enumerate(packets):  # the raw demuxer gives no timestamps
            pkt.stream, pkt.pts, pkt.dts, pkt.time_base = stream, i, i, TB_15
            pkt.duration = 1
            dst.mux(pkt)
    return dict(walk(out.getvalue()))[kind]


# bitstream


def test_annexb_split_handles_3_and_4_byte_start_codes() -> None:
    data = b"\x00\x00\x00\x01\x67\xaa\x00\x00\x01\x68\xbb\x00\x00\x00\x01\x65\xcc\xdd"
    assert bs.split_annexb(data) == [b"\x67\xaa", b"\x68\xbb", b"\x65\xcc\xdd"]
    prefixed = bs.length_prefixed([b"\x67\xaa", b"\x65"])
    assert prefixed == b"\x00\x00\x00\x02\x67\xaa\x00\x00\x00\x01\x65"
    assert bs.split_nals(prefixed) == [b"\x67\xaa", b"\x65"]


def test_emulation_prevention_bytes_are_removed() -> None:
    assert bs.unescape_rbsp(b"\x00\x00\x03\x01\x00\x00\x03\x00") == b"\x00\x00\x01\x00\x00\x00"


def test_exp_golomb() -> None:
    r = bs.BitReader(bytes([0b1_010_011_0, 0b0100_0010, 0b1000_0000]))
    assert [r.ue(), r.ue(), r.ue(), r.ue(), r.se()] == [0, 1, 2, 3, -2]


def test_h264_codec_string_and_size_from_a_camera_sps() -> None:
    assert bs.avc1_codec_string(GST_H264_SPS) == "avc1.42C016"
    sps = bs.parse_h264_sps(GST_H264_SPS)
    assert (sps.profile_idc, sps.level_idc, sps.width, sps.height) == (66, 22, 640, 360)


@pytest.mark.parametrize(("width", "height"), [(320, 180), (640, 360), (1280, 720)])
def test_sps_sizes_match_encoder(width: int, height: int) -> None:
    for name, parse in (("libx264", bs.parse_h264_sps), ("libx265", bs.parse_hevc_sps)):
        frame = encode_video(name, frames=1, width=width, height=height)[0]
        codec = "hevc" if name == "libx265" else "h264"
        sps_type = bs.HEVC_SPS if codec == "hevc" else bs.H264_SPS
        (sps,) = [n for n in bs.split_annexb(frame.data) if bs.nal_type(codec, n) == sps_type]
        info = parse(sps)
        assert (info.width, info.height) == (width, height), name


def test_avcc_matches_ffmpeg() -> None:
    frame = encode_video("libx264", frames=1)[0]
    nals = bs.split_annexb(frame.data)
    sps = [n for n in nals if bs.nal_type("h264", n) == bs.H264_SPS]
    pps = [n for n in nals if bs.nal_type("h264", n) == bs.H264_PPS]
    ours = bs.avcc_record(sps, pps)
    theirs = ffmpeg_config_box("h264", b"avcC")
    assert ours == theirs[: len(ours)]  # FFmpeg appends High-profile chroma fields
    assert bs.parse_avcc_record(ours) == (sps, pps)


def test_hvcc_matches_ffmpeg_and_codec_string() -> None:
    frame = encode_video("libx265", frames=1)[0]
    nals = bs.split_annexb(frame.data)
    by_type = {t: [n for n in nals if bs.nal_type("hevc", n) == t] for t in (32, 33, 34)}
    ours = bs.hvcc_record(by_type[32], by_type[33], by_type[34])
    theirs = ffmpeg_config_box("hevc", b"hvcC")
    assert ours[:13] == theirs[:13]  # profile space/tier/idc, compatibility, constraints, level
    assert ours[16:19] == theirs[16:19]  # chroma format, bit depths
    assert bs.parse_hvcc_record(ours) == bs.parse_hvcc_record(theirs)
    codec = bs.hvc1_codec_string(by_type[33][0])
    assert codec.startswith("hvc1.1.6.L")  # Main profile, compatible with Main (flags 0x6)


def test_aac_config_and_adts() -> None:
    asc, _ = encode_aac(0.1)
    config = bs.parse_aac_config(asc)
    assert (config.object_type, config.sample_rate, config.channels) == (2, 48000, 1)
    assert bs.mp4a_codec_string(config) == "mp4a.40.2"
    adts = bytes([0xFF, 0xF1, 0x4C, 0x40, 0x20, 0x1F, 0xFC])  # AAC LC, 48 kHz, mono
    assert bs.adts_header_length(adts) == 7
    assert bs.asc_from_adts(adts) == asc[:2]


# box writer and muxer


def test_init_segment_declares_no_duration_and_fragments_base_on_moof() -> None:
    events = mux(encode_video(frames=12))
    init = events[0]
    assert isinstance(init, InitSegment)
    assert [k for k, _ in iter_boxes(init.data)] == [b"ftyp", b"moov"]
    boxes = dict(walk(init.data))
    assert b"mehd" not in boxes
    assert boxes[b"mvhd"][16:20] == bytes(4)  # duration
    assert boxes[b"tkhd"][20:24] == bytes(4)
    assert boxes[b"mdhd"][16:20] == bytes(4)
    frags = [f for e in events[1:] for f in fragments(e.data)]
    assert all(f.tfhd_flags & 0x020000 for f in frags)  # default-base-is-moof
    assert [f.sequence for f in frags] == list(range(1, len(frags) + 1))
    assert [f.base_time for f in frags] == [i * 6000 for i in range(len(frags))]


def test_every_packet_gives_its_fragment_at_once() -> None:
    frames = encode_video(frames=12)
    muxer = LiveMuxer(VideoSource("h264", b"", TB_15))
    for i, f in enumerate(frames):
        events = muxer.push(Packet(True, f.data, f.pts, f.pts, f.keyframe))
        assert isinstance(events[-1], Fragment), i
        assert len(events) == (2 if i == 0 else 1)


def test_h264_output_decodes_with_pyav() -> None:
    frames = encode_video(frames=30, gop=10)
    events = mux(frames)
    init = events[0]
    assert isinstance(init, InitSegment)
    assert init.info.mime.startswith('video/mp4; codecs="avc1.')
    assert (init.info.width, init.info.height, init.info.video_codec) == (320, 180, "h264")
    assert read_back(joined(events)) == {"video": 30, "audio": 0}
    keys = [e.keyframe for e in events if isinstance(e, Fragment)]
    assert keys == [i % 10 == 0 for i in range(30)]


def test_h265_output_decodes_with_pyav() -> None:
    events = mux(encode_video("libx265", frames=20), codec="hevc")
    init = events[0]
    assert isinstance(init, InitSegment)
    assert init.info.mime.startswith('video/mp4; codecs="hvc1.1.6.L')
    assert dict(walk(init.data)).keys() >= {b"hvc1", b"hvcC"}
    assert read_back(joined(events))["video"] == 20


def test_video_with_aac_decodes_and_starts_together() -> None:
    frames = encode_video(frames=15)
    asc, aac = encode_aac(1.0)
    muxer = LiveMuxer(VideoSource("h264", b"", TB_15), AudioSource(asc, Fraction(1, 48000)))
    events: list[MuxEvent] = []
    audio_pts = 0
    for f in frames:  # interleave as the camera would: audio of each 1/15 s after its frame
        events += muxer.push(Packet(True, f.data, f.pts * 6000, f.pts * 6000, f.keyframe))
        while audio_pts < (f.pts + 1) * 3200 and aac:
            events += muxer.push(Packet(False, aac.pop(0), audio_pts, audio_pts, True))
            audio_pts += 1024
    init = events[0]
    assert isinstance(init, InitSegment)
    assert init.info.mime == 'video/mp4; codecs="avc1.42C00C, mp4a.40.2"'
    counts = read_back(joined(events))
    assert counts["video"] == 15
    assert counts["audio"] >= 40
    audio = [f for e in events[1:] for f in fragments(e.data) if f.track_id == 2]
    assert audio[0].base_time == 0
    assert [a.base_time for a in audio[:3]] == [0, 1024, 2048]


def test_waits_for_keyframe_and_skips_empty_or_untimed_packets() -> None:
    frames = encode_video(frames=25, gop=10)
    muxer = LiveMuxer(VideoSource("h264", b"", TB_15))
    assert muxer.push(Packet(True, frames[0].data, None, None, True)) == []
    assert muxer.push(Packet(True, b"", 1, 1, False)) == []
    events = [
        e for f in frames[1:] for e in muxer.push(Packet(True, f.data, f.pts, f.pts, f.keyframe))
    ]
    assert isinstance(events[0], InitSegment)
    first = events[1]
    assert isinstance(first, Fragment)
    assert first.keyframe
    assert fragments(first.data)[0].base_time == 0  # rebased to 0 at the first keyframe
    assert read_back(joined(events))["video"] == 15


def test_timestamps_never_go_back() -> None:
    frames = encode_video(frames=20)
    muxer = LiveMuxer(VideoSource("h264", b"", TB_15))
    events: list[MuxEvent] = []
    for f in frames:
        dts = f.pts if f.pts < 10 else f.pts - 1000  # the camera's clock jumps back
        events += muxer.push(Packet(True, f.data, dts, dts, f.keyframe))
    times = [f.base_time for e in events for f in fragments(e.data)]
    assert times == sorted(times)
    assert len(set(times)) == len(times)
    assert times[10] - times[9] == 6000


def test_resolution_change_sends_a_new_init_segment() -> None:
    small = encode_video(frames=10, width=320, height=180)
    big = encode_video(frames=10, width=640, height=360, start=10)
    events = mux(small + big)
    inits = [e for e in events if isinstance(e, InitSegment)]
    assert [(i.info.width, i.info.height) for i in inits] == [(320, 180), (640, 360)]
    second = events.index(inits[1])
    assert read_back(inits[1].data + joined(events[second + 1 :]))["video"] == 10


def test_snapshot_source_decodes_alone() -> None:
    events = mux(encode_video(frames=3))
    key = next(e for e in events if isinstance(e, Fragment) and e.keyframe)
    assert key.snapshot_source is not None
    decoder = av.CodecContext.create("h264", "r")
    frames = [*decoder.decode(av.Packet(key.snapshot_source)), *decoder.decode(None)]
    assert len(frames) == 1


def test_unsupported_codec_is_refused() -> None:
    with pytest.raises(UnsupportedStream):
        LiveMuxer(VideoSource("mjpeg", b"", TB_15))


def test_fragment_data_offset_points_at_mdat_payload() -> None:
    sample = fmp4.Sample(b"\x00\x00\x00\x01\x65", 3000, True)
    frag = fmp4.fragment(7, 1, 90000, [sample])
    moof_size = int.from_bytes(frag[:4], "big")
    trun = dict(walk(frag))[b"trun"]
    offset = int.from_bytes(trun[8:12], "big", signed=True)
    assert offset == moof_size + 8
    assert frag[offset:] == sample.data


def test_malformed_packets_are_dropped_not_raised() -> None:
    frames = encode_video(frames=3)
    muxer = LiveMuxer(VideoSource("h264", b"", TB_15))
    assert len(muxer.push(Packet(True, frames[0].data, 0, 0, True))) == 2
    assert muxer.push(Packet(True, b"\x00\x00\x10\x00\x41", 1, 1, False)) == []  # length too big
    assert len(muxer.push(Packet(True, frames[1].data, 2, 2, False))) == 1
