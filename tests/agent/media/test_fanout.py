"""Fan-out rules on the event loop, fed by a real muxer (no camera): GOP cache, slow viewers."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import pytest

from agent.media.errors import MediaClosed, SourceAuthError, StreamNotReady
from agent.media.fanout import Hub, LiveSubscription
from agent.media.muxer import Fragment, InitSegment, LiveMuxer, MuxEvent, Packet, VideoSource

from .boxes import fragments
from .conftest import encode_video, read_back

GOP = 10


@pytest.fixture(scope="module")
def events() -> list[MuxEvent]:
    """Init + 30 frames (keyframes at 0, 10, 20), then a new init at another size + 10 frames."""
    frames = encode_video(frames=30, gop=GOP) + encode_video(
        frames=10, width=640, height=360, start=30
    )
    muxer = LiveMuxer(VideoSource("h264", b"", Fraction(1, 15)))
    return [e for f in frames for e in muxer.push(Packet(True, f.data, f.pts, f.pts, f.keyframe))]


def feed(hub: Hub, events: list[MuxEvent]) -> None:
    """Hand events to the hub as the pull thread's callbacks would."""
    for e in events:
        if isinstance(e, InitSegment):
            hub.on_init(e)
        else:
            assert isinstance(e, Fragment)
            hub.on_fragment(e)


def drain(sub: LiveSubscription) -> list[bytes]:
    """Everything queued right now."""
    out: list[bytes] = []
    while sub._queue:
        out.append(sub._queue.popleft()[1])
    sub._queued_bytes = 0
    return out


async def test_joiner_gets_init_then_the_cached_gop_in_one_chunk(events: list[MuxEvent]) -> None:
    hub = Hub("cam")
    feed(hub, events[:16])  # init + frames 0..14: the newest GOP is frames 10..14
    async with LiveSubscription(hub, 1 << 20) as sub:
        info = await sub.ready(1)
        assert (info.width, info.height) == (320, 180)
        init, gop = await sub.next_chunk(), await sub.next_chunk()
        assert init == events[0].data
        frags = fragments(gop)
        assert len(frags) == 5
        assert frags[0].sync
        assert [f.sequence for f in frags] == [11, 12, 13, 14, 15]
        feed(hub, events[16:21])
        assert [fragments(c)[0].sequence for c in drain(sub)] == [16, 17, 18, 19, 20]
    assert read_back(init + gop)["video"] == 5


async def test_slow_viewer_skips_to_next_keyframe_and_keeps_unread_init(
    events: list[MuxEvent],
) -> None:
    hub = Hub("cam")
    room = sum(len(e.data) for e in events[:6])  # init + 5 frames
    slow = LiveSubscription(hub, max_queue_bytes=room)
    fast = LiveSubscription(hub, max_queue_bytes=1 << 20)
    feed(hub, events[:23])  # init + 22 frames, nobody reads
    assert fast.dropped == 0
    assert len(drain(fast)) == 23
    assert slow._queued_bytes <= room
    assert slow.dropped >= 1
    chunks = drain(slow)
    assert chunks[0] == events[0].data  # the unread init survived the drop
    first = fragments(chunks[1])[0]
    assert first.sync  # resumed at a keyframe
    assert first.sequence in (11, 21)
    seqs = [fragments(c)[0].sequence for c in chunks[1:]]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert read_back(b"".join(chunks))["video"] == len(seqs)


async def test_changed_init_goes_to_viewers_then_its_keyframe(events: list[MuxEvent]) -> None:
    hub = Hub("cam")
    sub = LiveSubscription(hub, 1 << 20)
    feed(hub, events)
    chunks = drain(sub)
    second_init = next(e for e in events[1:] if isinstance(e, InitSegment))
    at = chunks.index(second_init.data)
    assert fragments(chunks[at + 1])[0].sync
    assert read_back(b"".join(chunks[at:]))["video"] == 10
    assert hub.info is not None
    assert (hub.info.width, hub.info.height) == (640, 360)


async def test_identical_init_after_reconnect_is_not_resent(events: list[MuxEvent]) -> None:
    hub = Hub("cam")
    sub = LiveSubscription(hub, 1 << 20)
    feed(hub, events[:5])
    hub.on_lost()
    assert hub.info is None
    feed(hub, events[:5])
    chunks = drain(sub)
    assert chunks.count(events[0].data) == 1
    assert len(chunks) == 9


async def test_ready_waits_and_fails_clearly() -> None:
    hub = Hub("cam")
    sub = LiveSubscription(hub, 1 << 20)
    with pytest.raises(StreamNotReady, match=r"no stream within 0\.05 s"):
        await sub.ready(0.05)
    hub.on_error(SourceAuthError("the camera refused the credentials"))
    with pytest.raises(SourceAuthError):
        await sub.ready(30)  # fails at once, no point waiting


async def test_close_ends_waiting_viewers(events: list[MuxEvent]) -> None:
    hub = Hub("cam")
    sub = LiveSubscription(hub, 1 << 20)
    waiting = asyncio.ensure_future(sub.next_chunk())
    ready = asyncio.ensure_future(sub.ready(30))
    hub.close()
    with pytest.raises(MediaClosed):
        await asyncio.wait_for(waiting, 1)
    with pytest.raises(MediaClosed):
        await asyncio.wait_for(ready, 1)
    feed(hub, events[:3])  # late events after close reach nobody
    assert not sub._queue
