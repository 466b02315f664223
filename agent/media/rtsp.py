"""The RTSP pull: one PyAV session per camera on its own thread, reconnecting with backoff.

PyAV calls block (open ~2 s, each read until the next packet), so they run on a thread; what it
produces goes to the event loop through a callback the owner makes thread-safe. ``stop()`` is
seen between packets (every frame, ~67 ms at 15 fps) and during backoff at once; a blocked
``av.open``/read returns within OPEN_TIMEOUT_S/READ_TIMEOUT_S, PyAV offering no other interrupt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from fractions import Fraction
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import av
import av.error

from agent.media.errors import (
    MediaUnavailable,
    SourceAuthError,
    SourceUnreachable,
    UnsupportedStream,
)
from agent.media.muxer import (
    DEFAULT_FRAME_S,
    AudioSource,
    LiveMuxer,
    MuxEvent,
    Packet,
    VideoSource,
)

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 5.0
BACKOFF_FIRST_S = 0.5


def with_credentials(url: str, username: str, password: str) -> str:
    """The URL with percent-encoded userinfo (given credentials win over any in the URL)."""
    parts = urlsplit(url)
    if not username:
        return url
    host = parts.netloc.rpartition("@")[2]
    userinfo = quote(username, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def split_credentials(url: str) -> tuple[str, str, str]:
    """(URL without userinfo, username, password): credentials given inside the URL."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, "", ""
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), unquote(user), unquote(password)


def redact(url: str) -> str:
    """A URL safe for logs: no userinfo, no query (some cameras take ?user=&password=)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    query = "…" if parts.query else ""
    return urlunsplit(parts._replace(netloc=host, query=query, fragment=""))


def describe_av_error(err: Exception) -> MediaUnavailable:
    """Our error for a PyAV failure, worded without ``str(err)`` (it embeds the URL)."""
    if isinstance(err, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return SourceAuthError("the camera refused the credentials")
    if isinstance(err, av.error.HTTPNotFoundError):
        return SourceUnreachable("the camera has no stream at this path (404)")
    if isinstance(err, av.error.ExitError):
        return SourceUnreachable("the camera did not answer in time")
    if isinstance(err, av.error.FFmpegError):
        return SourceUnreachable(f"RTSP failed: {err.strerror} (error {err.errno})")
    if isinstance(err, OSError):
        return SourceUnreachable(f"RTSP failed: {err.strerror or type(err).__name__}")
    return SourceUnreachable(f"RTSP failed: {type(err).__name__}")


class RtspPull:
    """Pulls one RTSP URL forever (until ``stop()``), handing muxer events to ``emit``."""

    def __init__(
        self,
        url: str,
        label: str,
        *,
        emit: Callable[[MuxEvent], None],
        on_error: Callable[[MediaUnavailable], None],
        on_lost: Callable[[], None],
        on_exit: Callable[[], None],
        reconnect_max_s: float,
    ) -> None:
        self._url = url
        self._label = label
        self._emit = emit
        self._on_error = on_error
        self._on_lost = on_lost
        self._on_exit = on_exit
        self._reconnect_max_s = reconnect_max_s
        self._stop = threading.Event()
        self._resume_s = Fraction(0)
        self._sequence = 1
        self._delivered = False
        self._thread = threading.Thread(target=self._run, name=f"rtsp-{label}", daemon=True)

    @property
    def thread(self) -> threading.Thread:
        """The pull thread (for joins and tests)."""
        return self._thread

    def start(self) -> None:
        """Start the pull thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end; it does at the next packet, or at once while backing off."""
        self._stop.set()

    def _run(self) -> None:
        """Pull until stopped, then tell the owner."""
        try:
            self._sessions()
        finally:
            self._on_exit()

    def _sessions(self) -> None:
        """Session after session; the delay doubles after failures and resets after success."""
        delay = BACKOFF_FIRST_S
        last_message = ""
        while not self._stop.is_set():
            self._delivered = False
            try:
                self._session()
            except MediaUnavailable as err:
                if self._stop.is_set():
                    break
                self._on_error(err)
                # the first failure of a kind is a warning; its repeats while down are noise
                level = logging.DEBUG if str(err) == last_message else logging.WARNING
                log.log(level, "camera %s: %s", self._label, err)
                last_message = str(err)
            except Exception:  # a bug must not end the pull for good
                log.exception("camera %s: unexpected error in the RTSP pull", self._label)
            if self._delivered:
                self._on_lost()
                delay, last_message = BACKOFF_FIRST_S, ""
            if self._stop.wait(delay):
                break
            log.debug("camera %s: reconnecting", self._label)
            delay = min(delay * 2, self._reconnect_max_s)
        log.debug("camera %s: pull thread ends", self._label)

    def _session(self) -> None:
        """One RTSP session until stop or failure (sets ``_delivered`` if media went out)."""
        container = _open(self._url)
        muxer: LiveMuxer | None = None
        try:
            muxer = _muxer_for(container, self._resume_s, self._sequence)
            self._pump(container, muxer)
        finally:
            container.close()
            if muxer is not None:
                self._resume_s, self._sequence = muxer.end_s(), muxer.sequence
                self._delivered = muxer.started

    def _pump(self, container: av.container.InputContainer, muxer: LiveMuxer) -> None:
        """Demux and mux packet by packet, emitting each fragment as soon as it exists."""
        streams = [container.streams.video[0], *_aac_streams(container)[:1]]
        try:
            for pkt in container.demux(streams):
                if self._stop.is_set():
                    return
                packet = Packet(
                    pkt.stream.type == "video", bytes(pkt), pkt.dts, pkt.pts, pkt.is_keyframe
                )
                for event in muxer.push(packet):
                    self._emit(event)
        except (av.error.FFmpegError, OSError) as err:
            raise describe_av_error(err) from None
        if not self._stop.is_set():
            raise SourceUnreachable("the camera ended the stream")


def _open(url: str) -> av.container.InputContainer:
    """Open RTSP over TCP with bounded waits; errors come out as our (redacted) errors."""
    options = {
        "rtsp_transport": "tcp",
        "timeout": str(int(READ_TIMEOUT_S * 1_000_000)),  # socket I/O timeout, microseconds
        "fflags": "nobuffer",
    }
    try:
        return av.open(url, "r", options=options, timeout=(OPEN_TIMEOUT_S, READ_TIMEOUT_S))
    except Exception as err:  # any text from PyAV may embed the URL: reword it all
        raise describe_av_error(err) from None


def _aac_streams(container: av.container.InputContainer) -> list[av.audio.AudioStream]:
    """Audio streams MP4/MSE can carry as they are (AAC); G.711 etc. would need transcoding."""
    return [s for s in container.streams.audio if s.codec_context.name == "aac"]


def _muxer_for(container: av.container.InputContainer, start_s: Fraction, seq: int) -> LiveMuxer:
    """A muxer for this session's streams, continuing the previous session's clock."""
    if not container.streams.video:
        raise UnsupportedStream("the camera stream has no video")
    vin = container.streams.video[0]
    rate = vin.average_rate or vin.guessed_rate
    video = VideoSource(
        codec=vin.codec_context.name,
        extradata=bytes(vin.codec_context.extradata or b""),
        time_base=_time_base(vin.time_base),
        frame_duration=1 / Fraction(rate) if rate else DEFAULT_FRAME_S,
    )
    audio = None
    if aac := _aac_streams(container):
        extradata = bytes(aac[0].codec_context.extradata or b"")
        audio = AudioSource(extradata, _time_base(aac[0].time_base))
    return LiveMuxer(video, audio, start_s=start_s, first_sequence=seq)


def _time_base(tb: Fraction | None) -> Fraction:
    """Stream time base (RTSP gives 1/90000 video, 1/rate audio)."""
    return Fraction(tb) if tb else Fraction(1, 90000)
