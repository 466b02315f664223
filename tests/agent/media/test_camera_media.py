"""CameraMedia against a real RTSP camera (GStreamer): live fMP4, GOP cache, snapshots, auth."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import time
import traceback
from collections.abc import AsyncIterator

import av
import pytest

from agent.media.errors import MediaClosed, MediaUnavailable, SourceAuthError, StreamNotReady
from agent.media.live import CameraMedia, LiveSubscription
from tests.peers.gst_rtsp import RtspServer, gst_rtsp_server

from .boxes import Frag, fragments
from .conftest import RTSP_PASSWORD, RTSP_USER, read_back

OPEN_S = 15.0  # RTSP open (~2 s) + first keyframe (<= 1 s), with room for a loaded machine


@pytest.fixture
async def h264(rtsp_camera: RtspServer) -> AsyncIterator[CameraMedia]:
    """A started pull of /h264 (video + AAC), closed after the test."""
    media = CameraMedia(rtsp_camera.url("/h264"), label="cam-h264")
    await media.start()
    yield media
    await media.close()


def video(chunks: list[bytes]) -> list[Frag]:
    """Video fragments in received chunks."""
    return [f for c in chunks for f in fragments(c) if f.track_id == 1]


def frames_since_keyframe(chunks: list[bytes]) -> int:
    """Video fragments received after the newest keyframe (-1 before any keyframe)."""
    v = video(chunks)
    newest = max((i for i, f in enumerate(v) if f.sync), default=None)
    return -1 if newest is None else len(v) - 1 - newest


async def read_until(sub: LiveSubscription, chunks: list[bytes], video_frames: int) -> None:
    """Append chunks until ``video_frames`` more video fragments arrived."""
    target = len(video(chunks)) + video_frames
    async with asyncio.timeout(OPEN_S):
        while len(video(chunks)) < target:
            chunks.append(await sub.next_chunk())


async def test_live_h264_with_audio_decodes(h264: CameraMedia) -> None:
    async with h264.subscribe() as sub:
        info = await sub.ready(OPEN_S)
        assert info.mime == 'video/mp4; codecs="avc1.42C016, mp4a.40.2"'
        assert (info.width, info.height, info.video_codec) == (640, 360, "h264")
        assert h264.info == info
        chunks: list[bytes] = []
        await read_until(sub, chunks, 20)
    assert chunks[0][4:8] == b"ftyp"
    frags = video(chunks)
    assert frags[0].sync
    assert frags[0].base_time == 0  # rebased at the first keyframe
    times = [f.base_time for f in frags]
    assert times == sorted(times)
    counts = read_back(b"".join(chunks))
    assert counts["video"] >= 20
    assert counts["audio"] > 0


async def test_joining_viewer_gets_init_and_the_newest_gop_in_one_chunk(
    h264: CameraMedia,
) -> None:
    async with h264.subscribe() as first:
        await first.ready(OPEN_S)
        seen: list[bytes] = []
        async with asyncio.timeout(OPEN_S):  # until the newest GOP holds a keyframe + 3 frames
            while frames_since_keyframe(seen) < 3 or first._queue:
                seen.append(await first.next_chunk())
        gop_frames = frames_since_keyframe(seen) + 1  # the hub's GOP is what ``first`` saw
        started = time.monotonic()
        async with h264.subscribe() as second:
            init, gop = await second.next_chunk(), await second.next_chunk()
            joined_in = time.monotonic() - started
            after = await second.next_chunk()
    assert init == seen[0]
    gop_frags = fragments(gop)
    assert gop_frags[0].track_id == 1
    assert gop_frags[0].sync
    assert len([f for f in gop_frags if f.track_id == 1]) == gop_frames
    seqs = [f.sequence for f in gop_frags]
    assert seqs == list(range(seqs[0], seqs[-1] + 1))
    assert fragments(after)[0].sequence == gop_frags[-1].sequence + 1
    assert joined_in < 0.1  # no wait for the next keyframe
    assert read_back(init + gop)["video"] == gop_frames


async def test_slow_viewer_drops_to_a_keyframe_without_holding_back_others(
    h264: CameraMedia,
) -> None:
    slow = h264.subscribe(max_queue_bytes=30_000)
    async with h264.subscribe() as fast:
        await fast.ready(OPEN_S)
        chunks: list[bytes] = []
        await read_until(fast, chunks, 40)  # ~2.7 s of video, ~250 KB at 800 kbit/s
    seqs = [f.sequence for c in chunks for f in fragments(c)]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # the fast one lost nothing
    assert slow.dropped >= 1
    queued: list[bytes] = []
    while slow._queue:  # what the slow viewer finds when it finally reads
        queued.append(await slow.next_chunk())
    slow.close()
    assert sum(map(len, queued)) <= 30_000 + max(map(len, queued))
    media = [c for c in queued if c[4:8] != b"ftyp"]
    assert queued[0][4:8] == b"ftyp"  # the unread init was kept
    first_video = video(media)[0]
    assert first_video.sync
    assert read_back(b"".join(queued))["video"] == len(video(media))


async def test_snapshot_is_a_640x360_jpeg(h264: CameraMedia) -> None:
    jpeg = await h264.snapshot(OPEN_S)
    assert jpeg[:2] == b"\xff\xd8"
    with av.open(io.BytesIO(jpeg), "r") as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (640, 360)
    assert (await h264.snapshot(1))[:2] == b"\xff\xd8"


async def test_h265_camera_gives_hvc1(rtsp_camera: RtspServer) -> None:
    media = CameraMedia(rtsp_camera.url("/h265"), label="cam-h265")
    await media.start()
    try:
        async with media.subscribe() as sub:
            info = await sub.ready(OPEN_S)
            chunks: list[bytes] = []
            await read_until(sub, chunks, 10)
        jpeg = await media.snapshot(OPEN_S)
    finally:
        await media.close()
    with av.open(io.BytesIO(jpeg), "r") as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (640, 360)
    assert info.mime.startswith('video/mp4; codecs="hvc1.1.6.L')
    assert info.mime.endswith(', mp4a.40.2"')
    assert info.video_codec == "hevc"
    assert read_back(b"".join(chunks))["video"] >= 10


async def test_video_only_camera(rtsp_camera: RtspServer) -> None:
    media = CameraMedia(rtsp_camera.url("/h264v"))
    await media.start()
    try:
        async with media.subscribe() as sub:
            info = await sub.ready(OPEN_S)
    finally:
        await media.close()
    assert info.mime == 'video/mp4; codecs="avc1.42C016"'


def assert_no_secret(secret: str, *texts: str) -> None:
    """Neither the password nor its percent-encoded form appears anywhere."""
    from urllib.parse import quote

    for text in texts:
        assert secret not in text
        assert quote(secret, safe="") not in text


async def test_wrong_digest_password_fails_fast_without_leaking_it(
    rtsp_camera_digest: RtspServer,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Wr0ng:p@ss/%w0rd-" + "x7Q"
    media = CameraMedia(
        rtsp_camera_digest.url("/h264"), username=RTSP_USER, password=secret, label=""
    )
    await media.start()
    try:
        with pytest.raises(SourceAuthError) as raised:
            async with media.subscribe() as sub:
                await sub.ready(OPEN_S)
        with pytest.raises(MediaUnavailable) as snap_raised:
            await media.snapshot(1)
    finally:
        await media.close()
    out, err = capfd.readouterr()
    texts = [str(raised.value), repr(raised.value), str(snap_raised.value), repr(media)]
    texts += ["".join(traceback.format_exception(raised.value)), caplog.text, out, err]
    texts.append(str(media.last_error))
    assert_no_secret(secret, *texts)
    assert "refused the credentials" in str(raised.value)


async def test_right_digest_password_with_special_characters_works(
    rtsp_camera_digest: RtspServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    media = CameraMedia(
        rtsp_camera_digest.url("/h264v"), username=RTSP_USER, password=RTSP_PASSWORD
    )
    await media.start()
    try:
        async with media.subscribe() as sub:
            info = await sub.ready(OPEN_S)
    finally:
        await media.close()
    assert info.width == 640
    assert_no_secret(RTSP_PASSWORD, caplog.text, repr(media))


async def test_close_stops_the_pull_thread_promptly(rtsp_camera: RtspServer) -> None:
    media = CameraMedia(rtsp_camera.url("/h264v"))
    await media.start()
    sub = media.subscribe()
    await sub.ready(OPEN_S)
    started = time.monotonic()
    await media.close()
    assert time.monotonic() - started < 2.0
    assert not media.pull_thread_alive
    for _ in range(len(sub._queue)):  # what was queued is still readable...
        await sub.next_chunk()
    with pytest.raises(MediaClosed):  # ...then the end
        await sub.next_chunk()
    with pytest.raises(MediaClosed):
        await media.snapshot(1)
    with pytest.raises(MediaClosed):
        await media.subscribe().next_chunk()


async def test_close_returns_while_pyav_is_stuck_opening() -> None:
    """A camera that accepts TCP but never answers: close() must not wait for PyAV's timeout."""
    connected = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        connected.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    media = CameraMedia(f"rtsp://127.0.0.1:{port}/h264")
    await media.start()
    await asyncio.wait_for(connected.wait(), 5)
    started = time.monotonic()
    await media.close()
    assert time.monotonic() - started < 2.5
    server.close()
    for writer in writers:
        writer.close()  # FFmpeg sees EOF, av.open fails, the thread sees the stop flag
    await server.wait_closed()
    assert media._pull is not None
    await asyncio.to_thread(media._pull.thread.join, 5)
    assert not media.pull_thread_alive


async def test_unreachable_camera_says_why() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connection refused
    media = CameraMedia(f"rtsp://127.0.0.1:{port}/h264", reconnect_max_s=1)
    await media.start()
    try:
        with pytest.raises(StreamNotReady, match="RTSP failed") as raised:
            async with media.subscribe() as sub:
                await sub.ready(2)
    finally:
        await media.close()
    assert f"127.0.0.1:{port}" in str(raised.value)


async def test_camera_restart_continues_the_same_viewer_stream() -> None:
    with gst_rtsp_server() as first:
        port = first.port
        media = CameraMedia(first.url("/h264v"), reconnect_max_s=1)
        await media.start()
        sub = media.subscribe()
        await sub.ready(OPEN_S)
        chunks: list[bytes] = []
        await read_until(sub, chunks, 5)
    with gst_rtsp_server(port=port):
        try:
            await read_until(sub, chunks, 5)
        finally:
            sub.close()
            await media.close()
    frames = video(chunks)
    times = [f.base_time for f in frames]
    assert times == sorted(times)
    assert len(set(times)) == len(times)
    assert [f.sequence for f in frames] == sorted(f.sequence for f in frames)
    assert read_back(b"".join(chunks))["video"] == len(frames)
