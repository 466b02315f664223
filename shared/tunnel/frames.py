"""Wire format of the rmon tunnel: one frame layout for every QUIC stream.

Every stream (the control stream and each request stream) carries a sequence of frames::

     0        1        2                 4                                 8
     +--------+--------+-----------------+---------------------------------+
     | ver    | type   | flags           | payload length (u32, big end.)  |
     +--------+--------+-----------------+---------------------------------+
     | payload (length bytes): UTF-8 JSON for control types, raw for DATA   |
     +---------------------------------------------------------------------+

``ver`` is the frame-layout version (1). ``flags`` are reserved and must be 0 in version 1 so a
later version can give them meaning. Control payloads are JSON objects validated by the pydantic
models in ``shared.models``; DATA payloads are opaque body bytes (fMP4, JPEG, log files…).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from shared.tunnel.errors import FrameError, FrameTooLarge, NeedMoreData

FRAME_VERSION = 1
HEADER = struct.Struct("!BBHI")
HEADER_SIZE = HEADER.size

#: Control and request-header frames are small JSON documents.
MAX_CONTROL_PAYLOAD = 256 * 1024
#: Body chunks; senders split larger bodies (a 2 s GOP at 8 Mbit/s is 2 MB).
MAX_DATA_PAYLOAD = 1024 * 1024
#: A full inventory of ``shared.models.MAX_CAMERAS`` cameras with every field at its maximum.
MAX_INVENTORY_PAYLOAD = 1024 * 1024

#: Protocol (message-set) version spoken in HELLO; features are gated on the peer's version.
PROTOCOL_VERSION = 2
MIN_PROTOCOL_VERSION = 1
#: Command plane and event spool frames (0x0A-0x0F): a relay sends them only to agents this new.
MIN_PROTOCOL_VERSION_FOR_COMMANDS = 2


class FrameType(IntEnum):
    """Frame types; 0x01-0x1F live on the control stream, 0x20-0x3F on request streams."""

    HELLO = 0x01  # agent → relay: device id, versions
    CHALLENGE = 0x02  # relay → agent: nonce to sign
    AUTH = 0x03  # agent → relay: Ed25519 signature
    WELCOME = 0x04  # relay → agent: authenticated, heartbeat period
    PING = 0x05  # either way: liveness probe
    PONG = 0x06  # answer to PING, echoing its sequence number
    INVENTORY = 0x07  # agent → relay: cameras and capabilities
    GOAWAY = 0x08  # relay → agent: leaving, come back in N s
    ERROR = 0x09  # either way: fatal error with an API code, then close
    COMMANDS = 0x0A  # relay → agent: commands to run (id, kind, target, args, deadline)
    COMMAND_ACKS = 0x0B  # agent → relay: ids journalled (or already in progress)
    COMMAND_RESULTS = 0x0C  # agent → relay: terminal outcomes, re-sent until acknowledged
    RESULTS_ACK = 0x0D  # relay → agent: these results are stored
    EVENTS = 0x0E  # agent → relay: spooled events in sequence order
    EVENTS_ACK = 0x0F  # relay → agent: every event up to seq N is stored (cumulative)
    REQUEST = 0x20  # relay → agent: what the viewer asked for
    RESPONSE = 0x21  # agent → relay: status and content type of the body that follows
    DATA = 0x22  # body bytes


CONTROL_TYPES = frozenset(t for t in FrameType if t < FrameType.REQUEST)


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame."""

    type: FrameType
    payload: bytes


def max_payload(frame_type: FrameType) -> int:
    """Upper bound on a frame's payload: JSON frames are kept small, DATA and INVENTORY may be
    larger."""
    if frame_type is FrameType.DATA:
        return MAX_DATA_PAYLOAD
    if frame_type is FrameType.INVENTORY:
        return MAX_INVENTORY_PAYLOAD
    return MAX_CONTROL_PAYLOAD


def encode_frame(frame_type: FrameType, payload: bytes = b"") -> bytes:
    """Serialise one frame; raises FrameTooLarge rather than emit what the peer would refuse."""
    if len(payload) > max_payload(frame_type):
        raise FrameTooLarge(f"{frame_type.name} payload of {len(payload)} bytes")
    return HEADER.pack(FRAME_VERSION, frame_type, 0, len(payload)) + payload


def decode_frame(buf: bytes | bytearray | memoryview) -> tuple[Frame, int]:
    """Decode the first frame of ``buf``; return it and the bytes consumed.

    Raises NeedMoreData when ``buf`` ends inside the frame and FrameError when it cannot be one.
    The header is validated before waiting for the payload so garbage is refused at once.
    """
    if len(buf) < HEADER_SIZE:
        raise NeedMoreData
    version, type_code, flags, length = HEADER.unpack_from(buf)
    frame_type = _check_header(version, type_code, flags, length)
    end = HEADER_SIZE + length
    if len(buf) < end:
        raise NeedMoreData
    return Frame(frame_type, bytes(buf[HEADER_SIZE:end])), end


def _check_header(version: int, type_code: int, flags: int, length: int) -> FrameType:
    """Validate a header's fields; every failure here is final for the stream."""
    if version != FRAME_VERSION:
        raise FrameError(f"unsupported frame version {version}")
    try:
        frame_type = FrameType(type_code)
    except ValueError as err:
        raise FrameError(f"unknown frame type 0x{type_code:02x}") from err
    if flags:
        raise FrameError(f"reserved flags set: 0x{flags:04x}")
    if length > max_payload(frame_type):
        raise FrameTooLarge(f"{frame_type.name} declares {length} bytes")
    return frame_type


class FrameDecoder:
    """Incremental decoder for one stream: feed bytes as they arrive, get whole frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        """Append ``data`` and return every frame now complete (possibly none)."""
        self._buf += data
        frames: list[Frame] = []
        offset = 0
        view = memoryview(self._buf)
        try:
            while True:
                try:
                    frame, used = decode_frame(view[offset:])
                except NeedMoreData:
                    break
                frames.append(frame)
                offset += used
        finally:
            view.release()
        del self._buf[:offset]
        return frames

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a whole frame (non-zero at FIN means truncation)."""
        return len(self._buf)
