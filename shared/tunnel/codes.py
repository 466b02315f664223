"""Error codes carried in tunnel ERROR frames and RESPONSE headers.

Codes from the reference manual's table (section 7.2) are reused where one fits; the 9xxxx range
is rmon's own for failures the manual has no word for.
"""

from __future__ import annotations

from enum import IntEnum


class TunnelCode(IntEnum):
    """Codes a peer may send; the relay maps them into API error bodies unchanged."""

    CAMERA_UNREACHABLE = 50115  # manual: "Failed to connect to the camera"
    DEVICE_UNKNOWN = 90001  # the device id is not registered (or was deleted)
    DEVICE_AUTH_FAILED = 90002  # the signature did not verify against the registered key
    PROTOCOL_ERROR = 90003  # malformed frame or a frame not allowed in this state
    VERSION_UNSUPPORTED = 90004  # the peer's protocol version is too old
    NOT_FOUND = 90005  # no such camera on this agent
    UNSUPPORTED_REQUEST = 90006  # this agent cannot serve that request kind
    INTERNAL = 90007  # the agent failed while serving the request
    CAMERA_UNSUPPORTED = 90008  # the camera lacks the operation (no PTZ, no imaging…)
    CAMERA_AUTH_FAILED = 90009  # the camera refused the agent's credentials for it
    CAMERA_FAULT = 90010  # the camera answered the operation with a fault
