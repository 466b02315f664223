"""A small fragmented-MP4 box writer: one init segment (ftyp+moov) and one moof+mdat per sample.

Why our own writer instead of FFmpeg's mp4 muxer: FFmpeg holds each fragment back until the next
packet arrives (one frame of latency, ~67 ms at 15 fps), and its ``moov`` can declare durations
(``mehd``) that make Chromium's MSE buffer before playing. Here the moov is empty (no duration
anywhere, no ``mehd``), every fragment uses ``default-base-is-moof`` and carries its own ``tfdt``,
and the bytes for a sample exist as soon as the sample does.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

VIDEO_TRACK_ID = 1
AUDIO_TRACK_ID = 2

SAMPLE_FLAGS_SYNC = 0x02000000  # sample_depends_on=2 (independent)
SAMPLE_FLAGS_NON_SYNC = 0x01010000  # sample_depends_on=1, sample_is_non_sync_sample=1

_TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
_TRUN_FLAGS = 0x000001 | 0x000100 | 0x000200 | 0x000400 | 0x000800  # offset,dur,size,flags,cto
_UNITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_LANGUAGE_UND = 0x55C4


def box(kind: bytes, *parts: bytes) -> bytes:
    """A plain box: 32-bit size, four-character type, payload."""
    payload = b"".join(parts)
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    """A box with the version byte and 24-bit flags."""
    return box(kind, struct.pack(">I", (version << 24) | flags), *parts)


@dataclass(frozen=True)
class VideoTrack:
    """What the init segment says about the video track."""

    timescale: int
    width: int
    height: int
    sample_entry: bytes  # avc1/hvc1 box, from ``avc1_entry``/``hvc1_entry``


@dataclass(frozen=True)
class AudioTrack:
    """What the init segment says about the audio track."""

    timescale: int
    sample_entry: bytes  # mp4a box, from ``mp4a_entry``


def avc1_entry(width: int, height: int, avcc: bytes) -> bytes:
    """``avc1`` VisualSampleEntry carrying the avcC record."""
    return _visual_entry(b"avc1", width, height, box(b"avcC", avcc))


def hvc1_entry(width: int, height: int, hvcc: bytes) -> bytes:
    """``hvc1`` VisualSampleEntry (parameter sets only in hvcC) carrying the hvcC record."""
    return _visual_entry(b"hvc1", width, height, box(b"hvcC", hvcc))


def _visual_entry(kind: bytes, width: int, height: int, config: bytes) -> bytes:
    """VisualSampleEntry fields shared by avc1 and hvc1."""
    return box(
        kind,
        bytes(6) + struct.pack(">H", 1),  # reserved, data_reference_index
        bytes(16),  # pre_defined, reserved
        struct.pack(">HHII", width, height, 0x00480000, 0x00480000),  # size, 72 dpi
        bytes(4) + struct.pack(">H", 1),  # reserved, frame_count
        bytes(32),  # compressorname
        struct.pack(">Hh", 0x0018, -1),  # depth, pre_defined
        config,
    )


def mp4a_entry(sample_rate: int, channels: int, asc: bytes) -> bytes:
    """``mp4a`` AudioSampleEntry with an esds carrying the AudioSpecificConfig."""
    return box(
        b"mp4a",
        bytes(6) + struct.pack(">H", 1),
        bytes(8),
        struct.pack(">HHHH", channels, 16, 0, 0),
        struct.pack(">I", (sample_rate & 0xFFFF) << 16),
        full_box(b"esds", 0, 0, _es_descriptor(asc)),
    )


def _descriptor(tag: int, payload: bytes) -> bytes:
    """An MPEG-4 descriptor with the 4-byte expandable size form."""
    size = len(payload)
    size_bytes = bytes([0x80 | ((size >> 21) & 0x7F), 0x80 | ((size >> 14) & 0x7F)])
    size_bytes += bytes([0x80 | ((size >> 7) & 0x7F), size & 0x7F])
    return bytes([tag]) + size_bytes + payload


def _es_descriptor(asc: bytes) -> bytes:
    """ES_Descriptor > DecoderConfigDescriptor (AAC, audio stream) > DecSpecificInfo + SLConfig."""
    decoder_config = _descriptor(
        0x04,
        bytes([0x40, 0x15]) + bytes(3) + struct.pack(">II", 0, 0) + _descriptor(0x05, asc),
    )
    return _descriptor(0x03, struct.pack(">HB", 0, 0) + decoder_config + _descriptor(0x06, b"\x02"))


def init_segment(video: VideoTrack, audio: AudioTrack | None = None) -> bytes:
    """ftyp + moov with no durations anywhere, so MSE treats the stream as live."""
    ftyp = box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso5iso6mp41")
    traks = [_video_trak(video)]
    trexs = [_trex(VIDEO_TRACK_ID)]
    if audio is not None:
        traks.append(_audio_trak(audio))
        trexs.append(_trex(AUDIO_TRACK_ID))
    moov = box(b"moov", _mvhd(len(traks) + 1), *traks, box(b"mvex", *trexs))
    return ftyp + moov


def _mvhd(next_track_id: int) -> bytes:
    """Movie header: timescale 1000, duration 0."""
    return full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, 1000, 0),  # creation, modification, timescale, duration
        struct.pack(">IH", 0x00010000, 0x0100) + bytes(10),  # rate, volume, reserved
        _UNITY_MATRIX,
        bytes(24),  # pre_defined
        struct.pack(">I", next_track_id),
    )


def _tkhd(track_id: int, volume: int, width: int, height: int) -> bytes:
    """Track header: enabled + in movie, duration 0."""
    return full_box(
        b"tkhd",
        0,
        0x000003,
        struct.pack(">IIII", 0, 0, track_id, 0),
        struct.pack(">I", 0) + bytes(8),  # duration, reserved
        struct.pack(">hhHH", 0, 0, volume, 0),  # layer, alternate_group, volume, reserved
        _UNITY_MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )


def _mdia(timescale: int, handler: bytes, name: bytes, media_header: bytes, entry: bytes) -> bytes:
    """Media box: mdhd, hdlr and a sample table with the one sample entry and no samples."""
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, 0, _LANGUAGE_UND, 0))
    hdlr = full_box(b"hdlr", 0, 0, bytes(4), handler, bytes(12), name + b"\x00")
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    stbl = box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), entry),
        full_box(b"stts", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    return box(b"mdia", mdhd, hdlr, box(b"minf", media_header, dinf, stbl))


def _video_trak(track: VideoTrack) -> bytes:
    """Video trak."""
    vmhd = full_box(b"vmhd", 0, 1, bytes(8))
    mdia = _mdia(track.timescale, b"vide", b"VideoHandler", vmhd, track.sample_entry)
    return box(b"trak", _tkhd(VIDEO_TRACK_ID, 0, track.width, track.height), mdia)


def _audio_trak(track: AudioTrack) -> bytes:
    """Audio trak."""
    smhd = full_box(b"smhd", 0, 0, bytes(4))
    mdia = _mdia(track.timescale, b"soun", b"SoundHandler", smhd, track.sample_entry)
    return box(b"trak", _tkhd(AUDIO_TRACK_ID, 0x0100, 0, 0), mdia)


def _trex(track_id: int) -> bytes:
    """Track defaults for fragments: sample description 1, everything else per sample."""
    return full_box(b"trex", 0, 0, struct.pack(">IIIII", track_id, 1, 0, 0, 0))


@dataclass(frozen=True)
class Sample:
    """One coded frame in MP4 framing, with times in the track's timescale."""

    data: bytes
    duration: int
    sync: bool
    composition_offset: int = 0


def fragment(sequence: int, track_id: int, base_time: int, samples: Iterable[Sample]) -> bytes:
    """moof + mdat for consecutive samples of one track (we write one sample per fragment)."""
    items = list(samples)
    trun_entries = b"".join(
        struct.pack(
            ">IIIi",
            s.duration,
            len(s.data),
            SAMPLE_FLAGS_SYNC if s.sync else SAMPLE_FLAGS_NON_SYNC,
            s.composition_offset,
        )
        for s in items
    )
    mfhd = full_box(b"mfhd", 0, 0, struct.pack(">I", sequence))
    tfhd = full_box(b"tfhd", 0, _TFHD_DEFAULT_BASE_IS_MOOF, struct.pack(">I", track_id))
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", base_time))
    # trun is last in moof, so the data offset is len(moof) + 8 (the mdat header).
    trun_size = 12 + 8 + len(trun_entries)
    moof_size = 8 + len(mfhd) + 8 + len(tfhd) + len(tfdt) + trun_size
    trun = full_box(
        b"trun", 1, _TRUN_FLAGS, struct.pack(">Ii", len(items), moof_size + 8), trun_entries
    )
    moof = box(b"moof", mfhd, box(b"traf", tfhd, tfdt, trun))
    return moof + box(b"mdat", *(s.data for s in items))
