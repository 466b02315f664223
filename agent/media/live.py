"""One RTSP pull per camera, fanned out to live viewers (fMP4 for MediaSource) and JPEG snapshots.

    pull thread: PyAV demux -> LiveMuxer
        --call_soon_threadsafe--> Hub (event loop) --> LiveSubscription (one per viewer)
                                                   `-> snapshot() (newest keyframe -> JPEG)

One muxer per camera, shared by every viewer; one fragment per frame as soon as its packet is
read. H.265 is passed through (``hvc1``); Chromium cannot play it, transcoding is later work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from agent.media.errors import MediaClosed, MediaUnavailable
from agent.media.fanout import Hub, LiveSubscription
from agent.media.muxer import Fragment, InitSegment, MuxEvent, StreamInfo
from agent.media.rtsp import RtspPull, redact, split_credentials, with_credentials
from agent.media.snapshot import keyframe_to_jpeg

__all__ = ["CameraMedia", "LiveSubscription", "MediaUnavailable", "StreamInfo"]

log = logging.getLogger(__name__)

T = TypeVar("T")

CLOSE_WAIT_S = 2.0  # close() returns by then even if PyAV is stuck in a blocking open


class CameraMedia:
    """One RTSP pull per camera, fanned out to live viewers and snapshots."""

    def __init__(
        self,
        url: str,
        *,
        username: str = "",
        password: str = "",
        label: str = "",
        reconnect_max_s: float = 30.0,
    ) -> None:
        base, url_user, url_password = split_credentials(url)
        if not username:
            username, password = url_user, url_password
        self._url = with_credentials(base, username, password)
        self._label = label or redact(base)
        self._reconnect_max_s = reconnect_max_s
        self._hub = Hub(self._label)
        self._pull: RtspPull | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_done: asyncio.Future[None] | None = None
        self._jpeg: tuple[int, bytes] | None = None  # (keyframe serial, JPEG)

    def __repr__(self) -> str:
        return f"CameraMedia({self._label!r})"

    @property
    def info(self) -> StreamInfo | None:
        """The current stream (None until the first keyframe and while reconnecting)."""
        return self._hub.info

    @property
    def last_error(self) -> MediaUnavailable | None:
        """Why the pull last failed (None while it streams), for status pages."""
        return self._hub.last_error

    async def start(self) -> None:
        """Start the pull thread; it reconnects with backoff until ``close()``."""
        if self._pull is not None:
            return
        if self._hub.closed:
            raise MediaClosed(f"camera {self._label}: media closed")
        self._loop = asyncio.get_running_loop()
        self._thread_done = self._loop.create_future()
        self._pull = RtspPull(
            self._url,
            self._label,
            emit=self._from_thread_event,
            on_error=self._from_thread_error,
            on_lost=self._from_thread_lost,
            on_exit=self._from_thread_exit,
            reconnect_max_s=self._reconnect_max_s,
        )
        self._pull.start()

    async def close(self) -> None:
        """Stop the pull (within a frame while streaming) and end every viewer's stream."""
        self._hub.close()
        if self._pull is None or self._thread_done is None:
            return
        self._pull.stop()
        try:
            await asyncio.wait_for(asyncio.shield(self._thread_done), CLOSE_WAIT_S)
        except TimeoutError:
            log.warning("camera %s: pull thread still blocked in PyAV, leaving it", self._label)

    def subscribe(self, max_queue_bytes: int = 4 * 1024 * 1024) -> LiveSubscription:
        """A live viewer; use as ``async with media.subscribe() as sub:``."""
        return LiveSubscription(self._hub, max_queue_bytes)

    async def snapshot(self, timeout: float = 10.0) -> bytes:
        """JPEG of the newest keyframe; raises MediaUnavailable if none comes within ``timeout``."""
        serial, codec, data = await self._hub.wait_for(
            lambda: self._hub.keyframe, timeout, "keyframe"
        )
        if self._jpeg is not None and self._jpeg[0] == serial:
            return self._jpeg[1]
        jpeg = await asyncio.to_thread(keyframe_to_jpeg, codec, data)
        self._jpeg = (serial, jpeg)
        return jpeg

    @property
    def pull_thread_alive(self) -> bool:
        """Whether the pull thread still runs (for health checks and tests)."""
        return self._pull is not None and self._pull.thread.is_alive()

    # thread -> loop

    def _from_thread_exit(self) -> None:
        """The thread ended: resolve ``_thread_done`` so close() can stop waiting."""
        done = self._thread_done
        assert self._loop is not None
        assert done is not None
        _call_soon(self._loop, lambda: None if done.done() else done.set_result(None))

    def _from_thread_event(self, event: MuxEvent) -> None:
        """Muxer output, in order, onto the loop."""
        if isinstance(event, InitSegment):
            self._post(self._hub.on_init, event)
        elif isinstance(event, Fragment):
            self._post(self._hub.on_fragment, event)

    def _from_thread_error(self, err: MediaUnavailable) -> None:
        """A failed session, onto the loop."""
        self._post(self._hub.on_error, err)

    def _from_thread_lost(self) -> None:
        """A delivering session ended, onto the loop."""
        self._post(lambda _: self._hub.on_lost(), None)

    def _post(self, handler: Callable[[T], None], arg: T) -> None:
        """Schedule ``handler(arg)`` on the loop; dropped once the media is closed."""
        assert self._loop is not None
        hub = self._hub

        def run() -> None:
            if not hub.closed:
                handler(arg)

        if not hub.closed:
            _call_soon(self._loop, run)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """call_soon_threadsafe that tolerates a loop already closed (thread outliving it)."""
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:
        log.debug("event loop closed, dropping a media event")
