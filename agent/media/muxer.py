"""Demuxed RTSP packets in, fMP4 init segments and per-frame fragments out (one muxer per camera).

Pure and synchronous (runs on the pull thread, no PyAV objects) so it can be tested with packets
made anywhere. H.264 and H.265 are passed through as they come; H.265 plays in few browsers
(Chromium has no hvc1 in MSE), so transcoding it to H.264 is later work, not done here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction

from agent.media import bitstream as bs
from agent.media import fmp4
from agent.media.errors import UnsupportedStream

log = logging.getLogger(__name__)

VIDEO_TIMESCALE = 90000
MAX_JUMP_S = 10  # a timestamp jump larger than this (or backwards) is a discontinuity
AUDIO_LEAD_MAX_S = 5  # audio this far from the video clock is on another clock: re-anchor it
DEFAULT_FRAME_S = Fraction(1, 25)
AAC_FRAME_SAMPLES = 1024


@dataclass(frozen=True)
class StreamInfo:
    """What a viewer needs before the first byte: MSE mime type, picture size, codec."""

    mime: str  # e.g. 'video/mp4; codecs="avc1.42E01E, mp4a.40.2"'
    width: int
    height: int
    video_codec: str  # "h264" | "hevc"


@dataclass(frozen=True)
class VideoSource:
    """The demuxer's view of the video stream (parameter sets may also come in-band)."""

    codec: str  # "h264" | "hevc"
    extradata: bytes  # Annex-B parameter sets (RTSP) or an avcC/hvcC record (files)
    time_base: Fraction
    frame_duration: Fraction = DEFAULT_FRAME_S


@dataclass(frozen=True)
class AudioSource:
    """The demuxer's view of an AAC stream."""

    extradata: bytes  # AudioSpecificConfig; empty when frames carry ADTS headers
    time_base: Fraction


@dataclass(frozen=True)
class Packet:
    """One demuxed packet, detached from PyAV."""

    video: bool
    data: bytes
    dts: int | None
    pts: int | None
    keyframe: bool


@dataclass(frozen=True)
class InitSegment:
    """A new init segment: viewers must (re)initialise their SourceBuffer with it."""

    data: bytes
    info: StreamInfo


@dataclass(frozen=True)
class Fragment:
    """moof+mdat of one frame; ``keyframe`` only for video keyframes (where viewers may start)."""

    data: bytes
    video: bool
    keyframe: bool
    snapshot_source: bytes | None = None  # Annex-B parameter sets + keyframe, for JPEG snapshots


MuxEvent = InitSegment | Fragment


class Timeline:
    """Maps one input stream's timestamps onto a gap-free output clock that never goes back."""

    def __init__(self, time_base: Fraction, timescale: int, origin_s: Fraction, start: int) -> None:
        self.time_base = time_base
        self.timescale = timescale
        self.in0 = origin_s
        self.out0 = start
        self.first = start
        self.last: int | None = None
        self.last_delta = 0

    def map(self, dts: int, pts: int | None) -> tuple[int, int]:
        """(output decode time, composition offset) in the track timescale."""
        t = dts * self.time_base
        out = self.out0 + round((t - self.in0) * self.timescale)
        if self.last is not None and not 0 < out - self.last <= MAX_JUMP_S * self.timescale:
            step = self.last_delta or 1
            log.debug("timestamp discontinuity (%d -> %d), re-anchoring", self.last, out)
            self.in0, self.out0 = t, self.last + step
            out = self.out0
        if self.last is not None:
            self.last_delta = out - self.last
        self.last = out
        offset = 0 if pts is None else round((pts - dts) * self.time_base * self.timescale)
        return out, offset

    def seconds(self, ticks: int) -> Fraction:
        """Output ticks as seconds."""
        return Fraction(ticks, self.timescale)

    def output_seconds(self, t: Fraction) -> Fraction:
        """Where an input time (seconds, same clock) lands on the output clock."""
        return Fraction(self.out0, self.timescale) + (t - self.in0)


class LiveMuxer:
    """One per RTSP session: waits for a keyframe, then one fragment per packet, never buffering."""

    def __init__(
        self,
        video: VideoSource,
        audio: AudioSource | None = None,
        *,
        start_s: Fraction = Fraction(0),
        first_sequence: int = 1,
    ) -> None:
        if video.codec not in ("h264", "hevc"):
            raise UnsupportedStream(f"video codec {video.codec} cannot be sent to browsers")
        self._video = video
        self._audio = audio
        self._start_s = start_s
        self.sequence = first_sequence
        self._params = _extradata_parameter_sets(video.codec, video.extradata)
        self._init_params: tuple[bytes, ...] | None = None
        self._asc = audio.extradata if audio else b""
        self._vt: Timeline | None = None
        self._at: Timeline | None = None
        self._audio_ok = audio is not None

    @property
    def started(self) -> bool:
        """Whether the first keyframe went out."""
        return self._vt is not None

    def end_s(self) -> Fraction:
        """Where the next session's clock should continue (end of the newest sample)."""
        ends = [
            tl.seconds(tl.last + tl.last_delta)
            for tl in (self._vt, self._at)
            if tl is not None and tl.last is not None
        ]
        return max([self._start_s, *ends])

    def push(self, pkt: Packet) -> list[MuxEvent]:
        """Events for one packet: maybe an init segment, then this packet's fragment."""
        if pkt.dts is None or not pkt.data:
            return []
        return self._push_video(pkt) if pkt.video else self._push_audio(pkt)

    # video

    def _push_video(self, pkt: Packet) -> list[MuxEvent]:
        """Strip framing and parameter sets; on a keyframe check whether the init changed."""
        codec = self._video.codec
        try:
            nals = bs.split_nals(pkt.data)
        except bs.BitstreamError:
            log.debug("dropping a malformed %s packet", codec)
            return []
        types = [bs.nal_type(codec, n) for n in nals]
        keyframe = pkt.keyframe or any(bs.is_random_access(codec, t) for t in types)
        in_band = [n for n, t in zip(nals, types, strict=True) if bs.is_parameter_set(codec, t)]
        if in_band and keyframe:
            self._params = _merge_parameter_sets(codec, self._params, in_band)
        if not self.started and not keyframe:
            return []
        events: list[MuxEvent] = []
        if keyframe and self._params != self._init_params:
            init = self._make_init(pkt)
            if init is None:
                return []
            events.append(init)
        body = [
            n
            for n, t in zip(nals, types, strict=True)
            if not bs.is_parameter_set(codec, t) and not bs.is_access_unit_delimiter(codec, t)
        ]
        if not body:
            return events
        events.append(self._video_fragment(pkt, body, keyframe))
        return events

    def _make_init(self, pkt: Packet) -> InitSegment | None:
        """Build the init segment from the current parameter sets (None if they are incomplete)."""
        try:
            video_track, video_codec = _video_track(self._video, self._params)
        except (bs.BitstreamError, IndexError, KeyError):
            log.debug("keyframe without usable parameter sets, waiting for the next one")
            return None
        audio_track, audio_codec = self._audio_track()
        self._init_params = self._params
        if self._vt is None:
            assert pkt.dts is not None
            origin = pkt.dts * self._video.time_base
            start = round(self._start_s * VIDEO_TIMESCALE)
            self._vt = Timeline(self._video.time_base, VIDEO_TIMESCALE, origin, start)
        codecs = video_codec if audio_codec is None else f"{video_codec}, {audio_codec}"
        mime = f'video/mp4; codecs="{codecs}"'
        info = StreamInfo(mime, video_track.width, video_track.height, self._video.codec)
        return InitSegment(fmp4.init_segment(video_track, audio_track), info)

    def _video_fragment(self, pkt: Packet, body: list[bytes], keyframe: bool) -> Fragment:
        """One moof+mdat for a frame; a keyframe also keeps what a snapshot decoder needs."""
        assert self._vt is not None
        assert pkt.dts is not None
        dts, offset = self._vt.map(pkt.dts, pkt.pts)
        duration = self._vt.last_delta or round(self._video.frame_duration * VIDEO_TIMESCALE)
        sample = fmp4.Sample(bs.length_prefixed(body), duration, keyframe, offset)
        data = fmp4.fragment(self._next_sequence(), fmp4.VIDEO_TRACK_ID, dts, [sample])
        snap = bs.annexb([*self._params, *body]) if keyframe else None
        return Fragment(data, video=True, keyframe=keyframe, snapshot_source=snap)

    # audio

    def _audio_track(self) -> tuple[fmp4.AudioTrack | None, str | None]:
        """The AAC track, or none when the config is unknown/bad (video still plays)."""
        if not self._audio_ok or not self._asc:
            return None, None
        try:
            config = bs.parse_aac_config(self._asc)
        except bs.BitstreamError:
            log.info("unusable AAC config, sending video only")
            self._audio_ok = False
            return None, None
        entry = fmp4.mp4a_entry(config.sample_rate, config.channels, config.asc)
        return fmp4.AudioTrack(config.sample_rate, entry), bs.mp4a_codec_string(config)

    def _push_audio(self, pkt: Packet) -> list[MuxEvent]:
        """One fragment per AAC frame, on the video's clock, once video has started."""
        data = pkt.data
        header = bs.adts_header_length(data)
        if header and not self._asc and not self.started:
            self._asc = bs.asc_from_adts(data)
        data = data[header:]
        if not self.started or not self._audio_ok or not self._asc or not data:
            return []
        assert pkt.dts is not None
        timeline = self._audio_timeline(pkt.dts)
        if timeline is None:
            return []
        dts, _ = timeline.map(pkt.dts, None)
        duration = timeline.last_delta or AAC_FRAME_SAMPLES
        sample = fmp4.Sample(data, duration, sync=True)
        frag = fmp4.fragment(self._next_sequence(), fmp4.AUDIO_TRACK_ID, dts, [sample])
        return [Fragment(frag, video=False, keyframe=False)]

    def _audio_timeline(self, dts: int) -> Timeline | None:
        """Anchor audio to the video origin; None for audio from before the first keyframe."""
        if self._at is not None:
            return self._at
        assert self._audio is not None
        assert self._vt is not None
        assert self._vt.last is not None
        rate = bs.parse_aac_config(self._asc).sample_rate
        t = dts * self._audio.time_base
        out_s = self._vt.output_seconds(t)
        video_now = self._vt.seconds(self._vt.last)
        if abs(out_s - video_now) > AUDIO_LEAD_MAX_S:
            log.debug("audio clock %.1f s off video, re-anchoring", float(out_s - video_now))
            out_s = video_now
        elif out_s < self._vt.seconds(self._vt.first):
            return None  # older than the keyframe we started at
        self._at = Timeline(self._audio.time_base, rate, t, round(out_s * rate))
        return self._at

    def _next_sequence(self) -> int:
        """mfhd sequence numbers keep rising across sessions."""
        seq = self.sequence
        self.sequence += 1
        return seq


def _extradata_parameter_sets(codec: str, extradata: bytes) -> tuple[bytes, ...]:
    """Parameter sets from Annex-B extradata (RTSP SDP) or an avcC/hvcC record."""
    if not extradata:
        return ()
    try:
        if bs.is_annexb(extradata):
            nals = bs.split_annexb(extradata)
        elif codec == "h264":
            sps, pps = bs.parse_avcc_record(extradata)
            nals = sps + pps
        else:
            nals = bs.parse_hvcc_record(extradata)
    except (bs.BitstreamError, IndexError):
        log.debug("unparseable %s extradata, relying on in-band parameter sets", codec)
        return ()
    return tuple(n for n in nals if bs.is_parameter_set(codec, bs.nal_type(codec, n)))


def _merge_parameter_sets(
    codec: str, known: tuple[bytes, ...], in_band: list[bytes]
) -> tuple[bytes, ...]:
    """In-band sets replace known ones of the same type (a camera changed resolution)."""
    kinds = {bs.nal_type(codec, n) for n in in_band}
    kept = [n for n in known if bs.nal_type(codec, n) not in kinds]
    merged = tuple(dict.fromkeys([*kept, *in_band]))
    return tuple(sorted(merged, key=lambda n: bs.nal_type(codec, n)))


def _video_track(src: VideoSource, params: tuple[bytes, ...]) -> tuple[fmp4.VideoTrack, str]:
    """Video track (sample entry from the parameter sets) and its RFC 6381 codec string."""
    by_type: dict[int, list[bytes]] = {}
    for nal in params:
        by_type.setdefault(bs.nal_type(src.codec, nal), []).append(nal)
    if src.codec == "hevc":
        vps, sps, pps = by_type[bs.HEVC_VPS], by_type[bs.HEVC_SPS], by_type[bs.HEVC_PPS]
        h = bs.parse_hevc_sps(sps[0])
        width, height = h.width, h.height
        entry = fmp4.hvc1_entry(width, height, bs.hvcc_record(vps, sps, pps))
        codec_string = bs.hvc1_codec_string(sps[0])
    else:
        sps, pps = by_type[bs.H264_SPS], by_type[bs.H264_PPS]
        a = bs.parse_h264_sps(sps[0])
        width, height = a.width, a.height
        entry = fmp4.avc1_entry(width, height, bs.avcc_record(sps, pps))
        codec_string = bs.avc1_codec_string(sps[0])
    return fmp4.VideoTrack(VIDEO_TIMESCALE, width, height, entry), codec_string
