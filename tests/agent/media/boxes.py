"""A minimal ISO-BMFF reader for assertions on what the muxer wrote (independent of fmp4.py)."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator
from dataclasses import dataclass

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"dinf"}
SKIP_BEFORE_CHILDREN = {
    b"stsd": 8,
    b"avc1": 78,
    b"hvc1": 78,
    b"hev1": 78,
    b"mp4a": 28,
}  # fields before boxes


def iter_boxes(
    data: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, bytes]]:
    """(type, payload) of the boxes in ``data[start:end]``."""
    pos, end = start, len(data) if end is None else end
    while pos < end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        assert size >= 8, f"bad box size {size} at {pos}"
        assert pos + size <= end, f"box {kind!r} runs past its parent"
        yield kind, data[pos + 8 : pos + size]
        pos += size


def walk(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Every box, depth first (descending into container boxes)."""
    for kind, payload in iter_boxes(data):
        yield kind, payload
        if kind in CONTAINERS:
            yield from walk(payload)
        elif kind in SKIP_BEFORE_CHILDREN:
            yield from walk(payload[SKIP_BEFORE_CHILDREN[kind] :])


@dataclass(frozen=True)
class Frag:
    """What one moof says about its (single) sample."""

    sequence: int
    track_id: int
    base_time: int
    sync: bool
    tfhd_flags: int
    size: int


def fragments(data: bytes) -> list[Frag]:
    """The moof+mdat pairs in a chunk (which may hold many, e.g. a cached GOP)."""
    out: list[Frag] = []
    boxes = list(iter_boxes(data))
    for (kind, moof), (next_kind, mdat) in itertools.pairwise(boxes):
        if kind != b"moof":
            continue
        assert next_kind == b"mdat"
        parts = dict(walk(moof))
        (sequence,) = struct.unpack(">I", parts[b"mfhd"][4:8])
        tfhd_flags = int.from_bytes(parts[b"tfhd"][1:4], "big")
        (track_id,) = struct.unpack(">I", parts[b"tfhd"][4:8])
        tfdt = parts[b"tfdt"]
        base = (
            struct.unpack(">Q", tfdt[4:12])[0]
            if tfdt[0] == 1
            else struct.unpack(">I", tfdt[4:8])[0]
        )
        trun = parts[b"trun"]
        flags = int.from_bytes(trun[1:4], "big")
        pos = 8 + (4 if flags & 1 else 0) + (4 if flags & 4 else 0)
        pos += 4 * (flags & 0x100 != 0) + 4 * (flags & 0x200 != 0)
        (sample_flags,) = struct.unpack(">I", trun[pos : pos + 4])
        sync = not sample_flags & 0x00010000
        out.append(Frag(sequence, track_id, base, sync, tfhd_flags, len(mdat)))
    return out
