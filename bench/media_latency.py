"""Latency of the live path: RTSP open -> first fragment, and packet -> fragment at a viewer.

    .venv/bin/python -m bench.media_latency [--seconds 10] [--mount /h264]

Starts the GStreamer test camera, pulls it with ``CameraMedia`` and times, per video frame, the
moment the pull thread got the packet from PyAV against the moment a subscriber's
``next_chunk()`` returned its fragment on the event loop. For comparison it also measures how
many packets FFmpeg's own mp4 muxer (``frag_duration=1``) holds back before writing a fragment.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import struct
import time
from typing import Any

import av

from agent.media import muxer as muxer_module
from agent.media.live import CameraMedia
from tests.peers.gst_rtsp import gst_rtsp_server

push_times: dict[int, float] = {}  # mfhd sequence -> when its packet reached the muxer


def _instrument() -> None:
    """Record when each packet reached the muxer, keyed by the fragment sequence it produced."""
    original = muxer_module.LiveMuxer.push

    def timed(self: muxer_module.LiveMuxer, pkt: muxer_module.Packet) -> list[Any]:
        started = time.perf_counter()
        events = original(self, pkt)
        for e in events:
            if isinstance(e, muxer_module.Fragment) and e.video:
                push_times[struct.unpack(">I", e.data[20:24])[0]] = started
        return events

    muxer_module.LiveMuxer.push = timed  # type: ignore[method-assign]


async def measure_camera_media(url: str, seconds: float) -> None:
    """open -> first chunk, and per-frame packet -> next_chunk latency."""
    _instrument()
    media = CameraMedia(url, label="bench")
    opened = time.perf_counter()
    await media.start()
    latencies: list[float] = []
    async with media.subscribe() as sub:
        await sub.ready(20)
        first_chunk = None
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            chunk = await sub.next_chunk()
            now = time.perf_counter()
            if chunk[4:8] != b"moof":
                continue
            first_chunk = first_chunk or now
            seq = struct.unpack(">I", chunk[20:24])[0]
            if seq in push_times:
                latencies.append(now - push_times.pop(seq))
    await media.close()
    assert first_chunk is not None
    print(f"CameraMedia open -> first fragment: {first_chunk - opened:.2f} s")
    print(
        f"packet -> fragment at viewer: median {statistics.median(latencies) * 1e3:.3f} ms, "
        f"p95 {sorted(latencies)[int(len(latencies) * 0.95)] * 1e3:.3f} ms, n={len(latencies)}"
    )


class _Sink(io.RawIOBase):
    """Collects what FFmpeg's muxer writes."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += bytes(b)
        return len(b)

    def complete_fragments(self) -> int:
        """moof boxes fully written (with their mdat) so far."""
        pos, count = 0, 0
        while pos + 8 <= len(self.data):
            size, kind = struct.unpack(">I4s", self.data[pos : pos + 8])
            if pos + size > len(self.data):
                break
            count += kind == b"mdat" and pos > 0
            pos += size
        return count


def measure_ffmpeg_muxer(url: str, packets: int = 60) -> None:
    """How many muxed packets FFmpeg's mp4 muxer (one fragment per packet) holds back."""
    with av.open(url, "r", options={"rtsp_transport": "tcp"}, timeout=10) as inp:
        vin = inp.streams.video[0]
        sink = _Sink()
        opts = {"movflags": "empty_moov+default_base_moof+frag_custom", "frag_duration": "1"}
        with av.open(sink, "w", format="mp4", options=opts) as out:
            vout = out.add_stream_from_template(vin)
            muxed, behind = 0, []
            for pkt in inp.demux(vin):
                if pkt.dts is None or not pkt.size or not (muxed or pkt.is_keyframe):
                    continue
                pkt.stream = vout
                out.mux(pkt)
                muxed += 1
                behind.append(muxed - sink.complete_fragments())
                if muxed >= packets:
                    break
    print(
        f"FFmpeg mp4 muxer (frag_duration=1): fragments written lag the packets muxed by "
        f"median {statistics.median(behind):g} packet(s) (= frame intervals of latency)"
    )


def main() -> None:
    """Run both measurements against a fresh test camera."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--mount", default="/h264")
    args = parser.parse_args()
    with gst_rtsp_server() as camera:
        asyncio.run(measure_camera_media(camera.url(args.mount), args.seconds))
        measure_ffmpeg_muxer(camera.url(args.mount))


if __name__ == "__main__":
    main()
