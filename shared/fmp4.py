"""A sans-I/O splitter for a live fragmented-MP4 byte stream: init segments and fragments.

Why: the relay fans one agent stream out to many viewers, so it must know where a viewer may
start (an init segment, then a fragment whose video sample is a sync sample) and where it may cut
(box boundaries). The agent writes one moof+mdat per frame (``agent/media/fmp4.py``) but sends
them through ``send_data``, which cuts chunks into DATA frames of a fixed size and sends the cached
GOP as one chunk: a DATA frame can hold part of a fragment or several. So bytes go in as they
arrive and whole segments come out, with no I/O and no clock here.

    feed(bytes) -> [InitSegment | MediaFragment, ...]

- ``InitSegment``: ``ftyp`` (and anything else before it) up to and including ``moov``; the video
  track id is read from ``moov/trak`` (``hdlr`` = ``vide``, ``tkhd`` track id).
- ``MediaFragment``: ``styp``/``sidx``/``prft``… up to and including the ``mdat`` after a
  ``moof``; ``keyframe`` when a ``traf`` of the video track has a first sample that is a sync
  sample (ISO/IEC 14496-12 §8.8.3.1 sample flags: ``sample_is_non_sync_sample`` bit 16 clear),
  taken from ``trun`` first-sample flags, per-sample flags, or ``tfhd`` default flags.

Errors: :class:`Fmp4Error` for bytes that cannot be fMP4 (a box smaller than its header, larger
than the bound, a size-0 "to end of file" box, a fragment without its ``moof``); incomplete input
is not an error, it just waits for more bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

MAX_BOX_BYTES = 64 * 1024 * 1024  # a 4K keyframe is a few MB; anything this big is not ours

_NON_SYNC = 0x00010000  # sample_is_non_sync_sample
_TFHD_BASE_DATA_OFFSET = 0x000001
_TFHD_SAMPLE_DESCRIPTION = 0x000002
_TFHD_DEFAULT_DURATION = 0x000008
_TFHD_DEFAULT_SIZE = 0x000010
_TFHD_DEFAULT_FLAGS = 0x000020
_TRUN_DATA_OFFSET = 0x000001
_TRUN_FIRST_FLAGS = 0x000004
_TRUN_DURATION = 0x000100
_TRUN_SIZE = 0x000200
_TRUN_FLAGS = 0x000400


class Fmp4Error(ValueError):
    """The bytes are not a fragmented-MP4 stream we can split."""


@dataclass(frozen=True)
class InitSegment:
    """ftyp … moov: what a decoder needs before any fragment."""

    data: bytes
    video_track: int | None  # None when the moov names no video track


@dataclass(frozen=True)
class MediaFragment:
    """moof + mdat (with any boxes that preceded the moof)."""

    data: bytes
    keyframe: bool
    sequence: int  # mfhd sequence_number


Segment = InitSegment | MediaFragment


def iter_boxes(
    data: bytes | memoryview, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each whole box in ``data[start:end]``; raises on a
    box that overruns its parent."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise Fmp4Error("truncated largesize box")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        if size < header or pos + size > end:
            raise Fmp4Error(f"box {kind!r} of {size} bytes does not fit its parent")
        yield kind, pos + header, pos + size
        pos += size
    if pos != end:
        raise Fmp4Error("trailing bytes after the last box")


def _child(data: bytes, kind: bytes, start: int, end: int) -> tuple[int, int] | None:
    """(payload start, end) of the first child box ``kind``."""
    for k, s, e in iter_boxes(data, start, end):
        if k == kind:
            return s, e
    return None


def video_track_id(moov: bytes) -> int | None:
    """The track id of the first ``vide`` track of a ``moov`` box (whole box bytes)."""
    for kind, s, e in iter_boxes(moov, 8, len(moov)):
        if kind != b"trak":
            continue
        tkhd = _child(moov, b"tkhd", s, e)
        mdia = _child(moov, b"mdia", s, e)
        hdlr = _child(moov, b"hdlr", *mdia) if mdia else None
        if tkhd is None or hdlr is None or hdlr[1] - hdlr[0] < 12 or tkhd[0] >= tkhd[1]:
            continue
        if moov[hdlr[0] + 8 : hdlr[0] + 12] != b"vide":
            continue
        version = moov[tkhd[0]]
        offset = tkhd[0] + (20 if version == 1 else 12)
        if offset + 4 > tkhd[1]:
            raise Fmp4Error("truncated tkhd")
        track: int = struct.unpack_from(">I", moov, offset)[0]
        return track
    return None


def _traf_first_sync(moof: bytes, s: int, e: int) -> tuple[int, bool | None]:
    """(track id, whether its first sample is a sync sample; None when it has no samples)."""
    tfhd = _child(moof, b"tfhd", s, e)
    if tfhd is None or tfhd[1] - tfhd[0] < 8:
        raise Fmp4Error("traf without tfhd")
    flags = int.from_bytes(moof[tfhd[0] + 1 : tfhd[0] + 4], "big")
    (track,) = struct.unpack_from(">I", moof, tfhd[0] + 4)
    default_flags: int | None = None
    if flags & _TFHD_DEFAULT_FLAGS:
        pos = tfhd[0] + 8
        for bit, size in (
            (_TFHD_BASE_DATA_OFFSET, 8),
            (_TFHD_SAMPLE_DESCRIPTION, 4),
            (_TFHD_DEFAULT_DURATION, 4),
            (_TFHD_DEFAULT_SIZE, 4),
        ):
            pos += size if flags & bit else 0
        if pos + 4 > tfhd[1]:
            raise Fmp4Error("truncated tfhd")
        (default_flags,) = struct.unpack_from(">I", moof, pos)
    trun = _child(moof, b"trun", s, e)
    if trun is None:
        return track, None
    return track, _trun_first_sync(moof, trun[0], trun[1], default_flags)


def _trun_first_sync(moof: bytes, s: int, e: int, default_flags: int | None) -> bool | None:
    """Sync-ness of a trun's first sample (trex defaults are unknown here: treated as sync
    only when nothing says otherwise, which no muxer we read relies on)."""
    if e - s < 8:
        raise Fmp4Error("truncated trun")
    flags = int.from_bytes(moof[s + 1 : s + 4], "big")
    (count,) = struct.unpack_from(">I", moof, s + 4)
    if count == 0:
        return None
    pos = s + 8 + (4 if flags & _TRUN_DATA_OFFSET else 0)
    sample_flags = default_flags
    if flags & _TRUN_FIRST_FLAGS:
        if pos + 4 > e:
            raise Fmp4Error("truncated trun")
        (sample_flags,) = struct.unpack_from(">I", moof, pos)
        pos += 4
    elif flags & _TRUN_FLAGS:
        pos += 4 if flags & _TRUN_DURATION else 0
        pos += 4 if flags & _TRUN_SIZE else 0
        if pos + 4 > e:
            raise Fmp4Error("truncated trun")
        (sample_flags,) = struct.unpack_from(">I", moof, pos)
    return sample_flags is None or not sample_flags & _NON_SYNC


def moof_info(moof: bytes, video_track: int | None) -> tuple[int, bool]:
    """(mfhd sequence, keyframe) of a ``moof`` box (whole box bytes): a keyframe when the
    video track's first sample (any track's, with no video track known) is a sync sample."""
    sequence = 0
    keyframe = False
    for kind, s, e in iter_boxes(moof, 8, len(moof)):
        if kind == b"mfhd" and e - s >= 8:
            (sequence,) = struct.unpack_from(">I", moof, s + 4)
        elif kind == b"traf":
            track, sync = _traf_first_sync(moof, s, e)
            if sync and (video_track is None or track == video_track):
                keyframe = True
    return sequence, keyframe


class Fmp4Splitter:
    """Bytes in, whole init segments and fragments out (see the module docstring)."""

    def __init__(self, max_box_bytes: int = MAX_BOX_BYTES) -> None:
        self._max = max_box_bytes
        self._buf = bytearray()
        self._pending: list[bytes] = []  # boxes of the segment being assembled
        self._moof: bytes | None = None
        self.video_track: int | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete segment."""
        return len(self._buf) + sum(map(len, self._pending))

    def feed(self, data: bytes) -> list[Segment]:
        """Add bytes; return every segment they complete, in order."""
        self._buf += data
        out: list[Segment] = []
        while (box := self._next_box()) is not None:
            segment = self._on_box(box)
            if segment is not None:
                out.append(segment)
        return out

    def _next_box(self) -> bytes | None:
        """Cut one whole top-level box off the buffer, or None while it is incomplete."""
        buf = self._buf
        if len(buf) < 8:
            return None
        size = int.from_bytes(buf[0:4], "big")
        header = 8
        if size == 1:
            if len(buf) < 16:
                return None
            size = int.from_bytes(buf[8:16], "big")
            header = 16
        if size < header:
            raise Fmp4Error(f"box {bytes(buf[4:8])!r} with size {size}")
        if size > self._max:
            raise Fmp4Error(f"box {bytes(buf[4:8])!r} of {size} bytes is over the bound")
        if len(buf) < size:
            return None
        box = bytes(buf[:size])
        del buf[:size]
        return box

    def _on_box(self, box: bytes) -> Segment | None:
        """Group top-level boxes: … moov ends an init segment, moof … mdat a fragment."""
        kind = box[4:8]
        self._pending.append(box)
        if kind == b"moov":
            data = b"".join(self._pending)
            self._pending, self._moof = [], None
            self.video_track = video_track_id(box)
            return InitSegment(data, self.video_track)
        if kind == b"moof":
            self._moof = box
        elif kind == b"mdat":
            if self._moof is None:
                raise Fmp4Error("mdat without a moof")
            sequence, keyframe = moof_info(self._moof, self.video_track)
            data = b"".join(self._pending)
            self._pending, self._moof = [], None
            return MediaFragment(data, keyframe, sequence)
        if self.buffered > self._max:
            raise Fmp4Error("no segment ends within the bound")
        return None
