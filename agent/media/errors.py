"""Why a camera's media cannot be had right now; callers catch ``MediaUnavailable``.

    MediaUnavailable                 anything below: answer the viewer "camera unreachable"
    ├── SourceAuthError              the camera refused our credentials (RTSP 401/403)
    ├── SourceUnreachable            connect/read failed or timed out, stream ended, 404
    ├── UnsupportedStream            no H.264/H.265 video we can pass to browsers
    ├── StreamNotReady               no stream/keyframe known within the caller's timeout
    └── MediaClosed                  the camera's media (or this subscription) was closed

Messages never contain the RTSP URL's userinfo: they are built from our own words and FFmpeg's
error text, never from ``str()`` of a PyAV exception (which includes the URL with credentials).
"""

from __future__ import annotations


class MediaUnavailable(Exception):
    """No media for this camera at the moment (the root of this module's errors)."""


class SourceAuthError(MediaUnavailable):
    """The camera refused the credentials; retrying without new ones will not help."""


class SourceUnreachable(MediaUnavailable):
    """The RTSP session could not be opened or broke off."""


class UnsupportedStream(MediaUnavailable):
    """The camera sends a codec we cannot remux for browsers."""


class StreamNotReady(MediaUnavailable):
    """Nothing to show within the time the caller was willing to wait."""


class MediaClosed(MediaUnavailable):
    """Used after ``close()``: the pull is gone for good."""
