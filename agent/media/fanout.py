"""Fan-out of one camera's fMP4 to many viewers, on the event loop (never blocks the pull).

The hub keeps the current init segment and the newest GOP (keyframe up to now) so a viewer who
joins gets init + the GOP in one chunk and sees a picture at once instead of waiting up to a GOP
for the next keyframe. Each subscription has a byte-bounded queue; a viewer that falls behind
loses its queued fragments and resumes at the next keyframe (live video tolerates the skip).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from agent.media.errors import MediaClosed, MediaUnavailable, SourceAuthError, StreamNotReady
from agent.media.muxer import Fragment, InitSegment, StreamInfo

log = logging.getLogger(__name__)

GOP_CACHE_MAX_BYTES = 16 * 1024 * 1024  # beyond this a GOP is not cached (joiners wait instead)

T = TypeVar("T")


class Hub:
    """Current stream state of one camera and its live subscriptions."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.init: bytes | None = None
        self.info: StreamInfo | None = None
        self.last_error: MediaUnavailable | None = None
        self.keyframe: tuple[int, str, bytes] | None = None  # (serial, codec, Annex-B data)
        self.closed = False
        self._gop: list[bytes] = []
        self._gop_bytes = 0
        self._gop_valid = False
        self._keyframe_serial = 0
        self._subs: set[LiveSubscription] = set()
        self._changed = asyncio.Event()

    # from the pull thread (via call_soon_threadsafe)

    def on_init(self, init: InitSegment) -> None:
        """A (re)started stream: new viewers start from here; changed init goes to everyone."""
        changed = init.data != self.init
        self.init, self.info, self.last_error = init.data, init.info, None
        self._reset_gop()
        for sub in self._subs:
            sub.deliver_init(init.data, changed)
        self._notify()

    def on_fragment(self, frag: Fragment) -> None:
        """Cache it in the newest GOP and hand it to every viewer."""
        if frag.keyframe:
            self._reset_gop()
            self._gop_valid = True
            if frag.snapshot_source is not None and self.info is not None:
                self._keyframe_serial += 1
                serial = self._keyframe_serial
                self.keyframe = (serial, self.info.video_codec, frag.snapshot_source)
                self._notify()
        if self._gop_valid:
            self._gop.append(frag.data)
            self._gop_bytes += len(frag.data)
            if self._gop_bytes > GOP_CACHE_MAX_BYTES:
                log.debug("camera %s: GOP larger than the cache, not caching it", self.label)
                self._reset_gop()
        for sub in self._subs:
            sub.deliver_fragment(frag.data, frag.keyframe)

    def on_error(self, err: MediaUnavailable) -> None:
        """Remember why the pull fails so waiters can say so."""
        self.last_error = err
        self._notify()

    def on_lost(self) -> None:
        """The session ended: nothing current to show until the next keyframe."""
        self.info = None
        self.keyframe = None
        self._reset_gop()
        self._notify()

    # from the loop

    def add(self, sub: LiveSubscription) -> None:
        """Register a viewer and give it what exists: init, then the cached GOP."""
        if self.closed:
            sub.close()
            return
        self._subs.add(sub)
        if self.init is not None and self.info is not None:
            sub.deliver_init(self.init, True)
            if self._gop_valid and self._gop:
                sub.deliver_gop(b"".join(self._gop))

    def remove(self, sub: LiveSubscription) -> None:
        """Forget a viewer."""
        self._subs.discard(sub)

    def close(self) -> None:
        """Wake every waiter and viewer with MediaClosed."""
        self.closed = True
        self.info = None
        self.keyframe = None
        for sub in list(self._subs):
            sub.close()
        self._notify()

    async def wait_for(self, get: Callable[[], T | None], timeout: float, what: str) -> T:
        """Wait until ``get()`` gives a value; fail fast on closed or refused credentials."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self.closed:
                raise MediaClosed(f"camera {self.label}: media closed")
            value = get()
            if value is not None:
                return value
            if isinstance(self.last_error, SourceAuthError):
                raise SourceAuthError(f"camera {self.label}: {self.last_error}")
            changed = self._changed
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StreamNotReady(self._not_ready_message(what, timeout))
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                continue

    def _not_ready_message(self, what: str, timeout: float) -> str:
        """Timeout message, with the pull's last error when there is one."""
        msg = f"camera {self.label}: no {what} within {timeout:g} s"
        return f"{msg} ({self.last_error})" if self.last_error else msg

    def _notify(self) -> None:
        """Wake all current waiters (each waits on the event current when it checked)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _reset_gop(self) -> None:
        """Drop the cached GOP."""
        self._gop = []
        self._gop_bytes = 0
        self._gop_valid = False


class LiveSubscription:
    """One viewer's ordered chunks: init, the cached GOP as one chunk, then one chunk per frame."""

    def __init__(self, hub: Hub, max_queue_bytes: int) -> None:
        self._hub = hub
        self._max = max_queue_bytes
        self._queue: deque[tuple[bool, bytes]] = deque()  # (is_init, chunk)
        self._queued_bytes = 0
        self._has_init = False
        self._need_keyframe = True
        self._closed = False
        self._wakeup = asyncio.Event()
        self.dropped = 0  # how many times this viewer fell behind and skipped to a keyframe
        hub.add(self)

    async def __aenter__(self) -> LiveSubscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def ready(self, timeout: float) -> StreamInfo:
        """Wait until the stream is known (its mime type is needed before any bytes)."""
        return await self._hub.wait_for(lambda: self._hub.info, timeout, "stream")

    async def next_chunk(self) -> bytes:
        """The next chunk to append to the viewer's SourceBuffer, in order."""
        while not self._queue:
            if self._closed:
                raise MediaClosed(f"camera {self._hub.label}: live view closed")
            self._wakeup.clear()
            await self._wakeup.wait()
        _, chunk = self._queue.popleft()
        self._queued_bytes -= len(chunk)
        return chunk

    def close(self) -> None:
        """Leave the hub; a pending ``next_chunk`` raises MediaClosed once the queue is empty."""
        if not self._closed:
            self._closed = True
            self._hub.remove(self)
            self._wakeup.set()

    # called by the hub

    def deliver_init(self, init: bytes, changed: bool) -> None:
        """Queue an init segment when this viewer has none yet or the source's changed."""
        if self._has_init and not changed:
            return
        self._has_init = True
        self._need_keyframe = True
        self._push(True, init)

    def deliver_gop(self, gop: bytes) -> None:
        """The cached GOP as one chunk (unless it alone overflows: then wait for a keyframe)."""
        if len(gop) + self._queued_bytes > self._max:
            return
        self._need_keyframe = False
        self._push(False, gop)

    def deliver_fragment(self, data: bytes, keyframe: bool) -> None:
        """Queue a frame's fragment, or skip it while waiting for a keyframe."""
        if not self._has_init:
            return
        if self._need_keyframe and not keyframe:
            return
        if self._queued_bytes + len(data) > self._max and self._drop_media():
            self.dropped += 1
            log.debug("camera %s: slow viewer, skipping to the next keyframe", self._hub.label)
            if not keyframe:
                self._need_keyframe = True
                return
        self._need_keyframe = False
        self._push(False, data)

    def _drop_media(self) -> bool:
        """Drop queued fragments but keep unread init segments; whether anything was dropped."""
        kept = deque(item for item in self._queue if item[0])
        dropped = len(kept) != len(self._queue)
        self._queue = kept
        self._queued_bytes = sum(len(chunk) for _, chunk in kept)
        return dropped

    def _push(self, is_init: bool, chunk: bytes) -> None:
        """Append and wake the reader."""
        if self._closed:
            return
        self._queue.append((is_init, chunk))
        self._queued_bytes += len(chunk)
        self._wakeup.set()
