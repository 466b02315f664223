"""H.264/H.265/AAC bitstream helpers: NAL framing, SPS fields, avcC/hvcC, RFC 6381 codec strings.

Cameras send H.264/H.265 over RTSP as Annex-B (start codes) with SPS/PPS (and VPS) both in the SDP
and in-band before keyframes; MP4 wants length-prefixed NAL units and the parameter sets in the
sample entry. Everything here is pure and synchronous so it can be unit-tested without a camera.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

H264_IDR = 5
H264_SEI = 6
H264_SPS = 7
H264_PPS = 8
H264_AUD = 9
HEVC_IRAP_MIN = 16
HEVC_IRAP_MAX = 23
HEVC_VPS = 32
HEVC_SPS = 33
HEVC_PPS = 34
HEVC_AUD = 35

_H264_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


class BitstreamError(ValueError):
    """Malformed codec data (truncated SPS, bad ADTS header)."""


# NAL framing


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B buffer (3- or 4-byte start codes), without start codes."""
    nals: list[bytes] = []
    start = _next_start_code(data, 0)
    while start is not None:
        begin = start[1]
        nxt = _next_start_code(data, begin)
        end = nxt[0] if nxt is not None else len(data)
        nal = data[begin:end].rstrip(b"\x00")
        if nal:
            nals.append(nal)
        start = nxt
    return nals


def _next_start_code(data: bytes, pos: int) -> tuple[int, int] | None:
    """(index of the start code, index after it) of the next 00 00 01 at or after ``pos``."""
    idx = data.find(b"\x00\x00\x01", pos)
    if idx < 0:
        return None
    return idx, idx + 3


def is_annexb(data: bytes) -> bool:
    """Whether a packet starts with a start code (else it is length-prefixed, as in MP4)."""
    return data.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01"))


def split_length_prefixed(data: bytes, size: int = 4) -> list[bytes]:
    """NAL units of an AVCC/HVCC buffer with ``size``-byte big-endian lengths."""
    nals: list[bytes] = []
    pos = 0
    while pos + size <= len(data):
        length = int.from_bytes(data[pos : pos + size], "big")
        pos += size
        if length == 0 or pos + length > len(data):
            raise BitstreamError("NAL length runs past the buffer")
        nals.append(data[pos : pos + length])
        pos += length
    return nals


def split_nals(data: bytes) -> list[bytes]:
    """NAL units of a packet in either framing."""
    return split_annexb(data) if is_annexb(data) else split_length_prefixed(data)


def length_prefixed(nals: Iterable[bytes]) -> bytes:
    """MP4 sample payload: each NAL unit behind a 4-byte length."""
    return b"".join(struct.pack(">I", len(n)) + n for n in nals)


def annexb(nals: Iterable[bytes]) -> bytes:
    """Annex-B buffer for a decoder fed outside any container."""
    return b"".join(b"\x00\x00\x00\x01" + n for n in nals)


def nal_type(codec: str, nal: bytes) -> int:
    """NAL unit type from the header byte."""
    return (nal[0] >> 1) & 0x3F if codec == "hevc" else nal[0] & 0x1F


def is_parameter_set(codec: str, kind: int) -> bool:
    """SPS/PPS (and VPS for H.265): these belong in the sample entry."""
    if codec == "hevc":
        return kind in (HEVC_VPS, HEVC_SPS, HEVC_PPS)
    return kind in (H264_SPS, H264_PPS)


def is_access_unit_delimiter(codec: str, kind: int) -> bool:
    """AUDs carry nothing an MP4 reader needs."""
    return kind == (HEVC_AUD if codec == "hevc" else H264_AUD)


def is_random_access(codec: str, kind: int) -> bool:
    """IDR (H.264) or IRAP (H.265) slice: decoding can start here."""
    if codec == "hevc":
        return HEVC_IRAP_MIN <= kind <= HEVC_IRAP_MAX
    return kind == H264_IDR


# Exp-Golomb bit reader


def unescape_rbsp(nal: bytes) -> bytes:
    """Drop emulation-prevention bytes (00 00 03 -> 00 00) so fields can be read."""
    if b"\x00\x00\x03" not in nal:
        return nal
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class BitReader:
    """MSB-first reader for SPS fields (u(n), ue(v), se(v))."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def u(self, bits: int) -> int:
        """Unsigned fixed-width field."""
        if self._pos + bits > len(self._data) * 8:
            raise BitstreamError("SPS truncated")
        value = 0
        for _ in range(bits):
            byte = self._data[self._pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value

    def skip(self, bits: int) -> None:
        """Skip fields we do not need."""
        while bits > 0:
            step = min(bits, 32)
            self.u(step)
            bits -= step

    def ue(self) -> int:
        """Unsigned Exp-Golomb."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise BitstreamError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """Signed Exp-Golomb."""
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


# H.264


@dataclass(frozen=True)
class H264Sps:
    """The SPS fields the sample entry and codec string need."""

    profile_idc: int
    constraint_flags: int
    level_idc: int
    width: int
    height: int


def parse_h264_sps(nal: bytes) -> H264Sps:
    """Profile, level and cropped picture size of an H.264 SPS NAL unit."""
    r = BitReader(unescape_rbsp(nal[1:]))
    profile, constraints, level = r.u(8), r.u(8), r.u(8)
    r.ue()  # seq_parameter_set_id
    chroma = 1
    if profile in _H264_HIGH_PROFILES:
        chroma = _h264_high_profile_fields(r)
    r.ue()  # log2_max_frame_num_minus4
    _h264_skip_poc(r)
    r.ue()  # max_num_ref_frames
    r.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs, height_units = r.ue() + 1, r.ue() + 1
    frame_mbs_only = r.u(1)
    if not frame_mbs_only:
        r.u(1)  # mb_adaptive_frame_field_flag
    r.u(1)  # direct_8x8_inference_flag
    crop = (r.ue(), r.ue(), r.ue(), r.ue()) if r.u(1) else (0, 0, 0, 0)
    sub_w, sub_h = {0: (1, 1), 1: (2, 2), 2: (2, 1)}.get(chroma, (1, 1))
    unit_y = sub_h * (2 - frame_mbs_only)
    width = width_mbs * 16 - sub_w * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_units * 16 - unit_y * (crop[2] + crop[3])
    return H264Sps(profile, constraints, level, width, height)


def _h264_high_profile_fields(r: BitReader) -> int:
    """Chroma format, bit depths and scaling lists of High profiles; returns chroma_format_idc."""
    chroma = r.ue()
    if chroma == 3:
        r.u(1)  # separate_colour_plane_flag
    r.ue()  # bit_depth_luma_minus8
    r.ue()  # bit_depth_chroma_minus8
    r.u(1)  # qpprime_y_zero_transform_bypass_flag
    if r.u(1):  # seq_scaling_matrix_present_flag
        for i in range(8 if chroma != 3 else 12):
            if r.u(1):
                _h264_skip_scaling_list(r, 16 if i < 6 else 64)
    return chroma


def _h264_skip_scaling_list(r: BitReader, size: int) -> None:
    """Walk a scaling_list() without keeping it."""
    last, nxt = 8, 8
    for _ in range(size):
        if nxt != 0:
            nxt = (last + r.se() + 256) % 256
        last = nxt if nxt != 0 else last


def _h264_skip_poc(r: BitReader) -> None:
    """Walk the picture-order-count fields."""
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        r.u(1)  # delta_pic_order_always_zero_flag
        r.se()  # offset_for_non_ref_pic
        r.se()  # offset_for_top_to_bottom_field
        for _ in range(r.ue()):
            r.se()


def avcc_record(sps: Sequence[bytes], pps: Sequence[bytes]) -> bytes:
    """AVCDecoderConfigurationRecord (avcC payload) with 4-byte NAL lengths."""
    first = sps[0]
    out = bytearray([1, first[1], first[2], first[3], 0xFF, 0xE0 | len(sps)])
    for nal in sps:
        out += struct.pack(">H", len(nal)) + nal
    out.append(len(pps))
    for nal in pps:
        out += struct.pack(">H", len(nal)) + nal
    return bytes(out)


def parse_avcc_record(record: bytes) -> tuple[list[bytes], list[bytes]]:
    """(SPS list, PPS list) from an avcC payload (extradata of MP4-style sources)."""
    pos = 6
    sps: list[bytes] = []
    for _ in range(record[5] & 0x1F):
        pos, nal = _read_u16_prefixed(record, pos)
        sps.append(nal)
    pps: list[bytes] = []
    count = record[pos]
    pos += 1
    for _ in range(count):
        pos, nal = _read_u16_prefixed(record, pos)
        pps.append(nal)
    return sps, pps


def _read_u16_prefixed(data: bytes, pos: int) -> tuple[int, bytes]:
    """One 16-bit-length-prefixed blob; returns the new position and the blob."""
    if pos + 2 > len(data):
        raise BitstreamError("config record truncated")
    length = int.from_bytes(data[pos : pos + 2], "big")
    end = pos + 2 + length
    if end > len(data):
        raise BitstreamError("config record truncated")
    return end, data[pos + 2 : end]


def avc1_codec_string(sps: bytes) -> str:
    """RFC 6381 ``avc1.PPCCLL`` from the SPS's profile, constraint and level bytes."""
    return f"avc1.{sps[1]:02X}{sps[2]:02X}{sps[3]:02X}"


# H.265


@dataclass(frozen=True)
class HevcSps:
    """The SPS fields hvcC and the codec string need."""

    profile_space: int
    tier_flag: int
    profile_idc: int
    compat_flags: int
    constraint_flags: bytes  # 6 bytes
    level_idc: int
    chroma_format_idc: int
    bit_depth_luma_minus8: int
    bit_depth_chroma_minus8: int
    width: int
    height: int
    max_sub_layers_minus1: int
    temporal_id_nested: int


def parse_hevc_sps(nal: bytes) -> HevcSps:
    """Profile/tier/level, chroma format, bit depths and cropped size of an H.265 SPS."""
    r = BitReader(unescape_rbsp(nal[2:]))
    r.u(4)  # sps_video_parameter_set_id
    sub_layers = r.u(3)
    nested = r.u(1)
    space, tier, profile = r.u(2), r.u(1), r.u(5)
    compat = r.u(32)
    constraints = r.u(48).to_bytes(6, "big")
    level = r.u(8)
    _hevc_skip_sub_layers(r, sub_layers)
    r.ue()  # sps_seq_parameter_set_id
    chroma = r.ue()
    if chroma == 3:
        r.u(1)  # separate_colour_plane_flag
    width, height = r.ue(), r.ue()
    if r.u(1):  # conformance_window_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        sub_w, sub_h = {1: (2, 2), 2: (2, 1)}.get(chroma, (1, 1))
        width -= sub_w * (left + right)
        height -= sub_h * (top + bottom)
    luma, chroma_depth = r.ue(), r.ue()
    return HevcSps(
        space, tier, profile, compat, constraints, level, chroma, luma, chroma_depth,
        width, height, sub_layers, nested,
    )  # fmt: skip


def _hevc_skip_sub_layers(r: BitReader, sub_layers: int) -> None:
    """Walk the sub-layer part of profile_tier_level()."""
    flags = [(r.u(1), r.u(1)) for _ in range(sub_layers)]
    if sub_layers > 0:
        r.skip(2 * (8 - sub_layers))
    for profile_present, level_present in flags:
        if profile_present:
            r.skip(88)
        if level_present:
            r.skip(8)


def hvcc_record(vps: Sequence[bytes], sps: Sequence[bytes], pps: Sequence[bytes]) -> bytes:
    """HEVCDecoderConfigurationRecord (hvcC payload), parameter sets complete (for hvc1)."""
    info = parse_hevc_sps(sps[0])
    out = bytearray([1, (info.profile_space << 6) | (info.tier_flag << 5) | info.profile_idc])
    out += struct.pack(">I", info.compat_flags) + info.constraint_flags
    out += bytes([info.level_idc])
    out += struct.pack(">H", 0xF000)  # reserved + min_spatial_segmentation_idc 0
    out += bytes([0xFC, 0xFC | info.chroma_format_idc])  # parallelismType 0, chroma format
    out += bytes([0xF8 | info.bit_depth_luma_minus8, 0xF8 | info.bit_depth_chroma_minus8])
    out += struct.pack(">H", 0)  # avgFrameRate unknown
    out.append(((info.max_sub_layers_minus1 + 1) << 3) | (info.temporal_id_nested << 2) | 3)
    arrays = [(HEVC_VPS, vps), (HEVC_SPS, sps), (HEVC_PPS, pps)]
    out.append(len(arrays))
    for kind, nals in arrays:
        out += bytes([0x80 | kind]) + struct.pack(">H", len(nals))  # array_completeness 1
        for nal in nals:
            out += struct.pack(">H", len(nal)) + nal
    return bytes(out)


def parse_hvcc_record(record: bytes) -> list[bytes]:
    """All parameter-set NAL units in an hvcC payload."""
    pos = 23
    nals: list[bytes] = []
    for _ in range(record[22]):
        count = int.from_bytes(record[pos + 1 : pos + 3], "big")
        pos += 3
        for _ in range(count):
            pos, nal = _read_u16_prefixed(record, pos)
            nals.append(nal)
    return nals


def hvc1_codec_string(sps: bytes) -> str:
    """RFC 6381 / ISO 14496-15 Annex E ``hvc1.<space><profile>.<compat>.<tier><level>.<flags>``."""
    info = parse_hevc_sps(sps)
    space = ("", "A", "B", "C")[info.profile_space]
    compat = int(f"{info.compat_flags:032b}"[::-1], 2)
    tier = "H" if info.tier_flag else "L"
    flags = info.constraint_flags.rstrip(b"\x00")
    tail = "".join(f".{b:02X}" for b in flags)
    return f"hvc1.{space}{info.profile_idc}.{compat:X}.{tier}{info.level_idc}{tail}"


# AAC


@dataclass(frozen=True)
class AacConfig:
    """AudioSpecificConfig and the fields the sample entry needs."""

    asc: bytes
    object_type: int
    sample_rate: int
    channels: int


_AAC_RATES: tuple[int, ...] = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000)
_AAC_RATES += (12000, 11025, 8000, 7350)


def parse_aac_config(asc: bytes) -> AacConfig:
    """Object type, sample rate and channel count of an AudioSpecificConfig."""
    r = BitReader(asc)
    object_type = r.u(5)
    if object_type == 31:
        object_type = 32 + r.u(6)
    index = r.u(4)
    rate = r.u(24) if index == 15 else _aac_rate(index)
    channels = r.u(4)
    return AacConfig(asc, object_type, rate, channels)


def _aac_rate(index: int) -> int:
    """Sampling frequency for an index."""
    if index >= len(_AAC_RATES):
        raise BitstreamError("bad AAC sampling frequency index")
    return _AAC_RATES[index]


def adts_header_length(data: bytes) -> int:
    """Length of a leading ADTS header (0 when the frame is raw AAC)."""
    if len(data) >= 7 and data[0] == 0xFF and (data[1] & 0xF6) == 0xF0:
        return 7 if data[1] & 1 else 9
    return 0


def asc_from_adts(data: bytes) -> bytes:
    """AudioSpecificConfig equivalent to an ADTS header (sources without extradata)."""
    if adts_header_length(data) == 0:
        raise BitstreamError("not an ADTS frame")
    object_type = (data[2] >> 6) + 1
    index = (data[2] >> 2) & 0x0F
    channels = ((data[2] & 1) << 2) | (data[3] >> 6)
    return struct.pack(">H", (object_type << 11) | (index << 7) | (channels << 3))


def mp4a_codec_string(config: AacConfig) -> str:
    """RFC 6381 ``mp4a.40.<audioObjectType>``."""
    return f"mp4a.40.{config.object_type}"
