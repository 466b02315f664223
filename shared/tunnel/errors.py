"""Errors of the tunnel protocol core.

::

    TunnelError
    ├── NeedMoreData        the buffer holds only part of a frame: feed more bytes (not a fault)
    ├── FrameError          the bytes can never become a valid frame: close the stream
    │   └── FrameTooLarge   the declared length exceeds the limit for this stream
    ├── ProtocolViolation   a valid frame arrived where the state machine does not allow it
    ├── MuxError            the TCP fallback's multiplexer got bytes it cannot accept: close
    └── AuthError           the device could not prove its identity (carries an API error code)
"""

from __future__ import annotations


class TunnelError(Exception):
    """Base of every error raised by the sans-I/O tunnel core."""


class NeedMoreData(TunnelError):
    """Raised by ``decode_frame`` when the buffer ends inside a frame."""


class FrameError(TunnelError):
    """The bytes on a stream are not a valid frame."""


class FrameTooLarge(FrameError):
    """A frame declares a payload longer than the stream allows."""


class ProtocolViolation(TunnelError):
    """A frame arrived that the peer was not allowed to send in this state."""


class MuxError(TunnelError):
    """The fallback multiplexer (``shared.tunnel.mux``) met malformed or out-of-bounds input."""


class AuthError(TunnelError):
    """The device identity check failed; ``code`` is the API error code sent to the agent."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
