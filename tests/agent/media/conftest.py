"""Fixtures for the media tests: the GStreamer RTSP camera and PyAV-encoded sample streams."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import pytest

from tests.peers.gst_rtsp import RtspServer, available, gst_rtsp_server

RTSP_USER = "admin"
RTSP_PASSWORD = "S3cr:t@p/ss%20w0rd"  # needs percent-encoding in the URL userinfo


@pytest.fixture(scope="session")
def rtsp_camera() -> Iterator[RtspServer]:
    """An open RTSP camera (/h264 with AAC, /h264v, /h265), keyframe every second."""
    if not available():
        pytest.skip("Debian's python3-gi with GStreamer RTSP server is not installed")
    with gst_rtsp_server() as server:
        yield server


@pytest.fixture(scope="session")
def rtsp_camera_digest() -> Iterator[RtspServer]:
    """The same camera behind RTSP Digest auth (RTSP_USER / RTSP_PASSWORD)."""
    if not available():
        pytest.skip("Debian's python3-gi with GStreamer RTSP server is not installed")
    with gst_rtsp_server(RTSP_USER, RTSP_PASSWORD) as server:
        yield server


@dataclass(frozen=True)
class EncodedFrame:
    """One encoded picture as an RTSP demuxer would hand it over (Annex-B)."""

    data: bytes
    keyframe: bool
    pts: int


def encode_video(
    codec: str = "libx264",
    *,
    frames: int = 20,
    width: int = 320,
    height: int = 180,
    gop: int = 10,
    start: int = 0,
) -> list[EncodedFrame]:
    """Moving-gradient frames encoded in-process (Annex-B, parameter sets in-band)."""
    enc = av.CodecContext.create(codec, "w")
    assert isinstance(enc, av.VideoCodecContext)
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base = Fraction(1, 15)
    enc.gop_size = gop
    enc.options = (
        {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x265-params": f"log-level=error:keyint={gop}",
        }
        if codec == "libx265"
        else {"preset": "ultrafast", "tune": "zerolatency", "g": str(gop), "bf": "0"}
    )
    out: list[EncodedFrame] = []
    ramp = np.arange(width, dtype=np.uint16)
    for i in range(frames):
        row = ((ramp + i * 8) % 256).astype(np.uint8)
        rgb = np.repeat(np.repeat(row[None, :, None], height, 0), 3, 2)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = start + i
        out += [EncodedFrame(bytes(p), p.is_keyframe, p.pts or 0) for p in enc.encode(frame)]
    out += [EncodedFrame(bytes(p), p.is_keyframe, p.pts or 0) for p in enc.encode(None)]
    return out


def encode_aac(seconds: float = 1.0, rate: int = 48000) -> tuple[bytes, list[bytes]]:
    """(AudioSpecificConfig, raw AAC frames of 1024 samples) of a sine tone."""
    enc = av.CodecContext.create("aac", "w")
    assert isinstance(enc, av.AudioCodecContext)
    enc.sample_rate, enc.layout, enc.format = rate, "mono", "fltp"
    enc.open()
    samples = int(seconds * rate) // 1024 * 1024
    tone = np.sin(np.arange(samples) * 2 * np.pi * 440 / rate).astype(np.float32)
    packets: list[bytes] = []
    for i in range(0, samples, 1024):
        frame = av.AudioFrame.from_ndarray(tone[None, i : i + 1024], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, i
        packets += [bytes(p) for p in enc.encode(frame)]
    packets += [bytes(p) for p in enc.encode(None)]
    return bytes(enc.extradata or b""), packets


def read_back(data: bytes) -> dict[str, int]:
    """Decode an fMP4 byte string with PyAV: frames decoded per stream type (raises if bad)."""
    counts = {"video": 0, "audio": 0}
    with av.open(io.BytesIO(data), "r", format="mp4") as container:
        for frame in container.decode(*container.streams):
            kind = "video" if isinstance(frame, av.VideoFrame) else "audio"
            counts[kind] += 1
    return counts
