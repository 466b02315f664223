"""Relay-side fan-out of live video: one tunnel stream per (device, camera), many viewers.

Why: without it every viewer opened its own tunnel stream, so a site's uplink carried a camera
once per viewer (DESIGN.md, Media: "the site's uplink carries each camera once"), and a tunnel
move (TLS/TCP fallback → QUIC, a reconnect) cut every open live WebSocket.

    agent ──one request stream──▶ Channel (Fmp4Splitter: init, fragments, newest GOP)
                                     ├──▶ LiveViewer queue ──▶ WebSocket
                                     └──▶ LiveViewer queue ──▶ WebSocket

- A viewer joining gets the JSON ``init`` message, the init segment, then the fragments since the
  newest keyframe as one message (as the agent's own GOP cache does), then fragments as they come:
  joining an open channel costs no round trip to the site.
- Each viewer has a byte-bounded queue; over the bound it loses its queued media and resumes at
  the next keyframe, alone (the policy of ``agent/media/fanout.py``'s ``LiveSubscription``).
- The last viewer leaving closes the upstream after ``linger_s`` (a page reload re-uses it).
- When the upstream ends (agent session replaced, reconnect), the channel opens it again on the
  agent's new session for up to ``reopen_s`` while viewers keep their sockets; the new stream's
  JSON init and init segment go to every viewer, who start a fresh MediaSource (the player's
  protocol for a source restart: the agent's sequence numbers and times cannot be proven
  continuous across a reconnect, so nothing is spliced). An init segment in the middle of a
  stream (the agent's source restarted with a changed init) re-opens the stream too, because only
  a new RESPONSE header carries the new mime type.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from dataclasses import dataclass
from types import TracebackType

from relay.settings import RelaySettings
from relay.tunnel.broker import Broker, BrokerError
from shared import fmp4, models, quic
from shared.tunnel.codes import TunnelCode
from shared.tunnel.errors import FrameError
from shared.tunnel.frames import Frame, FrameType

log = logging.getLogger(__name__)

#: What a viewer is told when its camera's stream ended and could not be re-opened.
ENDED = (50115, "Failed to connect to the camera. Reload to reconnect.")
#: Pause between re-open attempts while the agent's session is still up but the stream fails.
REOPEN_BACKOFF_S = 0.25
#: Broker answers worth retrying while the agent moves its tunnel (offline, no answer).
RETRYABLE = frozenset({(503, TunnelCode.CAMERA_UNREACHABLE), (504, TunnelCode.CAMERA_UNREACHABLE)})


class LiveEnded(Exception):
    """The viewer's stream is over; ``code`` and ``message`` go to the player."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class HubSettings:
    """Tunables of the hub (RelaySettings ``live_*``)."""

    viewer_queue_bytes: int = 4 * 1024 * 1024
    linger_s: float = 2.0
    reopen_s: float = 10.0
    coalesce_bytes: int = 64 * 1024  # tunnel data taken at once before splitting

    @classmethod
    def of(cls, settings: RelaySettings) -> HubSettings:
        """The hub's tunables from the relay's settings."""
        return cls(
            settings.live_viewer_queue_bytes,
            settings.live_linger_s,
            settings.live_reopen_s,
            settings.ws_coalesce_bytes,
        )


class LiveViewer:
    """One WebSocket's ordered messages: JSON text, init segments, media (coalesced on read)."""

    def __init__(self, channel: Channel, max_bytes: int) -> None:
        self._channel = channel
        self._max = max_bytes
        self._queue: deque[str | bytes] = deque()
        self._media: deque[bool] = deque()  # parallel to _queue: True for media chunks
        self._queued_bytes = 0
        self._need_keyframe = True
        self._ended: LiveEnded | None = None
        self._wakeup = asyncio.Event()
        self.dropped = 0  # times this viewer fell behind and skipped to a keyframe

    async def __aenter__(self) -> LiveViewer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._channel.leave(self)

    async def next_message(self, limit: int) -> str | bytes:
        """The next WebSocket message: JSON text, an init segment alone, or media chunks
        joined up to about ``limit`` bytes. Raises LiveEnded once the stream is over."""
        while not self._queue:
            if self._ended is not None:
                raise self._ended
            self._wakeup.clear()
            await self._wakeup.wait()
        first, media = self._pop()
        if not media:
            return first
        assert isinstance(first, bytes)
        parts, size = [first], len(first)
        while self._queue and self._media[0] and size < limit:
            chunk, _ = self._pop()
            assert isinstance(chunk, bytes)
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)

    def _pop(self) -> tuple[str | bytes, bool]:
        """Take the head of the queue: (item, whether it is media)."""
        item = self._queue.popleft()
        media = self._media.popleft()
        if isinstance(item, bytes):
            self._queued_bytes -= len(item)
            if self.has_room:
                self._channel.room.set()
        return item, media

    @property
    def has_room(self) -> bool:
        """Under half its bound: the channel may read more from the agent for this viewer."""
        return self._queued_bytes < self._max // 2

    # called by the channel

    def deliver_init(self, text: str, init: bytes) -> None:
        """A (new) source: drop whatever is queued, start over at the next keyframe."""
        self._queue.clear()
        self._media.clear()
        self._queued_bytes = 0
        self._need_keyframe = True
        self._push(text, media=False)
        self._push(init, media=False)

    def deliver_gop(self, gop: bytes) -> None:
        """The cached fragments since the newest keyframe, as one chunk (unless it alone
        overflows the queue: then wait for the next keyframe)."""
        if len(gop) + self._queued_bytes > self._max:
            return
        self._need_keyframe = False
        self._push(gop, media=True)

    def deliver_fragment(self, data: bytes, keyframe: bool) -> None:
        """Queue a fragment, or skip it while waiting for a keyframe; over the bound, drop
        the queued media and wait for the next keyframe (this viewer only)."""
        if self._need_keyframe and not keyframe:
            return
        if self._queued_bytes + len(data) > self._max and self._drop_media():
            self.dropped += 1
            log.debug("live viewer fell behind, skipping to the next keyframe")
            if not keyframe:
                self._need_keyframe = True
                return
        self._need_keyframe = False
        self._push(data, media=True)

    def end(self, err: LiveEnded) -> None:
        """No more messages after what is queued."""
        if self._ended is None:
            self._ended = err
        self._wakeup.set()

    def _drop_media(self) -> bool:
        """Drop queued media but keep unread JSON and init segments; whether any was dropped."""
        kept = [(item, m) for item, m in zip(self._queue, self._media, strict=True) if not m]
        dropped = len(kept) != len(self._queue)
        self._queue = deque(item for item, _ in kept)
        self._media = deque(False for _ in kept)
        self._queued_bytes = sum(len(item) for item in self._queue if isinstance(item, bytes))
        return dropped

    def _push(self, item: str | bytes, *, media: bool) -> None:
        """Append and wake the reader."""
        self._queue.append(item)
        self._media.append(media)
        if isinstance(item, bytes):
            self._queued_bytes += len(item)
        self._wakeup.set()


class Channel:
    """One camera's upstream stream and its viewers."""

    def __init__(self, hub: LiveHub, broker: Broker, device_id: str, camera: str) -> None:
        self._hub = hub
        self._broker = broker
        self.key = (device_id, camera)
        self.viewers: set[LiveViewer] = set()
        self.opened = 0  # upstream streams opened (tests, bench)
        self._text: str | None = None
        self._init: bytes | None = None
        self._gop: list[bytes] = []
        self._gop_bytes = 0
        self._linger: asyncio.TimerHandle | None = None
        self.room = asyncio.Event()  # set when some viewer has room (see _wait_for_room)
        self._task = asyncio.create_task(self._run(), name=f"live {device_id}/{camera}")

    def join(self) -> LiveViewer:
        """A new viewer, given the current init and GOP at once when the stream is open."""
        viewer = LiveViewer(self, self._hub.settings.viewer_queue_bytes)
        self.viewers.add(viewer)
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._text is not None and self._init is not None:
            viewer.deliver_init(self._text, self._init)
            if self._gop:
                viewer.deliver_gop(b"".join(self._gop))
        return viewer

    def leave(self, viewer: LiveViewer) -> None:
        """Forget a viewer; the last one leaving starts the linger before closing upstream."""
        self.viewers.discard(viewer)
        self.room.set()  # the others (or nobody) decide whether to read on
        if not self.viewers and self._linger is None and not self._task.done():
            loop = asyncio.get_running_loop()
            self._linger = loop.call_later(self._hub.settings.linger_s, self._linger_over)

    def _linger_over(self) -> None:
        """Nobody came back: close the upstream."""
        self._linger = None
        if not self.viewers:
            self.close()

    def close(self) -> None:
        """Stop the upstream (resets the tunnel stream) and forget this channel."""
        self._hub.forget(self)
        self._task.cancel()

    async def wait_closed(self) -> None:
        """Until the upstream task has ended (shutdown)."""
        await asyncio.gather(self._task, return_exceptions=True)

    # upstream

    async def _run(self) -> None:
        """Open, pump, re-open on the agent's new session; tell viewers when it is over."""
        ended = LiveEnded(*ENDED)
        try:
            ended = await self._upstream_loop()
        except Exception:  # a bug must not leave viewers hanging
            log.exception("live channel %s/%s failed", *self.key)
        finally:
            self._hub.forget(self)
            for viewer in list(self.viewers):
                viewer.end(ended)

    async def _upstream_loop(self) -> LiveEnded:
        """Keep one upstream stream open; the reason viewers are given when it stops."""
        loop = asyncio.get_running_loop()
        deadline: float | None = None  # set while re-opening after the upstream ended
        while True:
            try:
                response, stream = await self._open()
            except BrokerError as err:
                if deadline is None:  # the first open: the viewer hears why, as before
                    return LiveEnded(err.code, err.message)
                if (err.status, err.code) not in RETRYABLE or loop.time() >= deadline:
                    return LiveEnded(*ENDED)
                await self._broker.registry.wait_attached(deadline - loop.time())
                continue
            try:
                delivered = await self._pump(response, stream)
            finally:
                stream.reset(quic.RESET_CANCELLED)
            if delivered or deadline is None:
                deadline = loop.time() + self._hub.settings.reopen_s
            elif loop.time() >= deadline:
                return LiveEnded(*ENDED)
            else:  # opened but ended at once on the same session: do not spin
                await self._broker.registry.wait_attached(REOPEN_BACKOFF_S)
            log.info("live stream of %s/%s ended, re-opening", *self.key)

    async def _open(self) -> tuple[models.Response, quic.TunnelStream]:
        """One request stream to the agent."""
        device_id, camera = self.key
        request = models.Request(kind="live", camera=camera)
        response, stream = await self._broker.open(device_id, request)
        self.opened += 1
        return response, stream

    async def _pump(self, response: models.Response, stream: quic.TunnelStream) -> bool:
        """Split the stream into segments and fan them out until it ends or restarts; whether
        any init segment arrived (so the stream worked)."""
        text = json.dumps({"type": "init", "mime": response.content_type, **response.meta})
        splitter = fmp4.Fmp4Splitter()
        delivered = False
        with contextlib.suppress(quic.StreamReset, FrameError, fmp4.Fmp4Error):
            while (frame := await self._read(stream)) is not None:
                if frame.type is not FrameType.DATA:
                    continue
                data = frame.payload + stream.take_ready_data(self._hub.settings.coalesce_bytes)
                for segment in splitter.feed(data):
                    if isinstance(segment, fmp4.InitSegment):
                        if delivered:
                            return True  # the source changed: a new header has the new mime
                        delivered = True
                        self._on_init(text, segment.data)
                    elif delivered:
                        self._on_fragment(segment)
        return delivered

    async def _read(self, stream: quic.TunnelStream) -> Frame | None:
        """The next frame, once some viewer has room: when every viewer is behind (one slow
        viewer alone, a flood) the tunnel's flow control pushes back to the agent, which skips
        to a keyframe on its side as before; one slow viewer among fast ones never holds the
        others, it skips alone here."""
        while self.viewers and not any(v.has_room for v in self.viewers):
            self.room.clear()
            await self.room.wait()
        return await stream.read_frame()

    def _on_init(self, text: str, init: bytes) -> None:
        """A new source for everyone: the JSON init and init segment, then a fresh GOP."""
        self._text, self._init = text, init
        self._gop, self._gop_bytes = [], 0
        for viewer in self.viewers:
            viewer.deliver_init(text, init)

    def _on_fragment(self, frag: fmp4.MediaFragment) -> None:
        """Keep it in the newest GOP (from its keyframe) and hand it to every viewer."""
        if frag.keyframe:
            self._gop, self._gop_bytes = [], 0
        if frag.keyframe or self._gop:
            self._gop.append(frag.data)
            self._gop_bytes += len(frag.data)
            if self._gop_bytes > self._hub.settings.viewer_queue_bytes:
                self._gop, self._gop_bytes = [], 0  # too big to send a joiner: it waits
        for viewer in self.viewers:
            viewer.deliver_fragment(frag.data, frag.keyframe)


class LiveHub:
    """The relay's live channels, by (device id, camera local id)."""

    def __init__(self, settings: HubSettings | None = None) -> None:
        self.settings = settings or HubSettings()
        self.channels: dict[tuple[str, str], Channel] = {}

    def watch(self, broker: Broker, device_id: str, camera: str) -> LiveViewer:
        """A viewer of this camera; use as ``async with hub.watch(...) as viewer:``. The
        broker comes per call because the web app is made before the tunnel listener."""
        key = (device_id, camera)
        channel = self.channels.get(key)
        if channel is None:
            channel = self.channels[key] = Channel(self, broker, device_id, camera)
        return channel.join()

    def forget(self, channel: Channel) -> None:
        """Drop a channel that is closing, so the next viewer opens a fresh one."""
        if self.channels.get(channel.key) is channel:
            del self.channels[channel.key]

    async def close(self) -> None:
        """Stop every upstream (relay shutdown)."""
        channels = list(self.channels.values())
        for channel in channels:
            channel.close()
        for channel in channels:
            await channel.wait_closed()
