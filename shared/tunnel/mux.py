"""Stream multiplexer for the TLS/TCP fallback tunnel (sans-I/O).

When UDP is blocked the agent reaches the relay over a WebSocket on its HTTPS port (subprotocol
``rmon/1``) and this multiplexer carries the same tunnel streams QUIC would: the control stream and
one bidirectional stream per viewer request, each a byte stream of tunnel frames
(``shared.tunnel.frames``). The WebSocket messages are only a byte pipe: mux frames may straddle
or share messages, so the decoder is fed whatever arrives.

The API deliberately mirrors the subset of a QUIC connection that ``shared.quic`` drives
(``send_stream_data``, ``reset_stream``, ``stop_stream``, ``get_next_available_stream_id``,
``get_send_buffer_size``, ``close`` and events with the same names and fields), so the stream
layer above is shared by both transports instead of written twice.

Wire format, one mux frame::

     0        1        2                                  6                                 10
     +--------+--------+----------------------------------+---------------------------------+
     | type   | flags  | stream id (u32, big endian)      | payload length (u32, big end.)  |
     +--------+--------+----------------------------------+---------------------------------+
     | payload                                                                             |
     +-------------------------------------------------------------------------------------+

* ``STREAM``: payload = stream bytes (at most ``MAX_STREAM_CHUNK``), flag ``FIN`` ends the
  sender's direction. The first frame on an id the peer may open opens the stream.
* ``RESET_STREAM`` / ``STOP_SENDING``: payload = error code (u32); as in RFC 9000 §19.4/§19.5.
  A STOP_SENDING is answered with a RESET_STREAM carrying the same code (RFC 9000 §3.5).
* ``WINDOW_UPDATE``: payload = credit increment (u32) for the stream.
* ``CLOSE``: stream id 0, payload = error code (u32) + UTF-8 reason (at most ``MAX_REASON``).

Stream ids follow QUIC's client/server bidirectional numbering (client 0, 4, 8…; server 1, 5,
9…) so logs read the same on both transports.

**Flow control** (why: one slow live viewer must not stall the control stream sharing the TCP
connection): every stream starts with ``STREAM_WINDOW`` bytes of credit in each direction. The
receiver grants more only as the application *consumes* bytes (``stream_consumed``), so a reader
that falls behind stops its sender, not the connection; the TCP socket is always read. The
window is larger than the largest tunnel frame so a whole frame always fits. Outgoing data is
scheduled round-robin across streams in ``SCHEDULE_CHUNK`` pieces, after connection-level frames.

Every bound here is checked on input; anything malformed ends the connection with
``TunnelCode.PROTOCOL_ERROR`` as a :class:`ConnectionTerminated` event (``receive_data`` never
raises).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from shared.tunnel.codes import TunnelCode
from shared.tunnel.errors import MuxError
from shared.tunnel.frames import HEADER_SIZE, MAX_DATA_PAYLOAD

HEADER = struct.Struct("!BBII")
MUX_HEADER_SIZE = HEADER.size
CODE = struct.Struct("!I")

#: Largest STREAM payload a peer may send (bytes); the decoder never holds more than this.
MAX_STREAM_CHUNK = 64 * 1024
#: Outgoing stream data is interleaved in pieces of this size (bytes).
SCHEDULE_CHUNK = 16 * 1024
#: Initial per-stream credit in each direction (bytes): above the largest tunnel frame.
STREAM_WINDOW = 2 * (MAX_DATA_PAYLOAD + HEADER_SIZE)
#: Longest CLOSE reason (bytes of UTF-8).
MAX_REASON = 1024
#: Streams the peer may have open at once; more is a protocol error.
MAX_PEER_STREAMS = 256
#: Stream offsets and credit stay below this (QUIC's varint limit, RFC 9000 §4.1).
MAX_OFFSET = 2**62
#: Error code of a CLOSE for a clean end.
NO_ERROR = 0


class MuxType(IntEnum):
    """Mux frame types."""

    STREAM = 0x0
    RESET_STREAM = 0x1
    STOP_SENDING = 0x2
    WINDOW_UPDATE = 0x3
    CLOSE = 0x4


class MuxFlags(IntFlag):
    """Flag bits; only STREAM frames may set any."""

    FIN = 0x1


NO_FLAGS = MuxFlags(0)
FIXED_SIZE_TYPES = frozenset({MuxType.RESET_STREAM, MuxType.STOP_SENDING, MuxType.WINDOW_UPDATE})

# Events, named and shaped like the QUIC libraries' so ``shared.quic`` dispatches both.


@dataclass(frozen=True)
class StreamDataReceived:
    """Bytes (and possibly the end) of a stream's incoming direction."""

    stream_id: int
    data: bytes
    end_stream: bool


@dataclass(frozen=True)
class StreamReset:
    """The peer abandoned its sending direction of a stream."""

    stream_id: int
    error_code: int


@dataclass(frozen=True)
class StopSendingReceived:
    """The peer no longer reads a stream (we have already reset our direction in answer)."""

    stream_id: int
    error_code: int


@dataclass(frozen=True)
class ConnectionTerminated:
    """The connection is over: closed by the peer, by us, or by a protocol error."""

    error_code: int
    reason_phrase: str


MuxEvent = StreamDataReceived | StreamReset | StopSendingReceived | ConnectionTerminated


@dataclass(frozen=True, slots=True)
class MuxFrame:
    """One decoded mux frame."""

    type: MuxType
    flags: MuxFlags
    stream_id: int
    payload: bytes


def encode(
    frame_type: MuxType, stream_id: int, payload: bytes = b"", flags: MuxFlags = NO_FLAGS
) -> bytes:
    """Serialise one mux frame; raises MuxError rather than emit what the peer would refuse."""
    _check_header(frame_type, flags, stream_id, len(payload))
    return HEADER.pack(frame_type, flags, stream_id, len(payload)) + payload


def _check_header(frame_type: int, flags: int, stream_id: int, length: int) -> MuxType:
    """Validate a header before its payload arrives, so garbage is refused at once."""
    try:
        kind = MuxType(frame_type)
    except ValueError as err:
        raise MuxError(f"unknown mux frame type 0x{frame_type:02x}") from err
    if flags not in (0, MuxFlags.FIN) or (flags and kind is not MuxType.STREAM):
        raise MuxError(f"invalid flags 0x{flags:02x} on {kind.name}")
    if kind is MuxType.STREAM and length > MAX_STREAM_CHUNK:
        raise MuxError(f"STREAM frame of {length} bytes")
    if kind in FIXED_SIZE_TYPES and length != CODE.size:
        raise MuxError(f"{kind.name} payload of {length} bytes")
    if kind is MuxType.CLOSE and not CODE.size <= length <= CODE.size + MAX_REASON:
        raise MuxError(f"CLOSE payload of {length} bytes")
    if kind is MuxType.CLOSE and stream_id:
        raise MuxError("CLOSE on a stream")
    return kind


class MuxDecoder:
    """Incremental decoder: feed bytes as they arrive, get whole mux frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[MuxFrame]:
        """Append ``data`` and return every frame now complete; raises MuxError on garbage."""
        self._buf += data
        frames: list[MuxFrame] = []
        offset = 0
        try:
            while len(self._buf) - offset >= MUX_HEADER_SIZE:
                kind, flags, stream_id, length = HEADER.unpack_from(self._buf, offset)
                checked = _check_header(kind, flags, stream_id, length)
                end = offset + MUX_HEADER_SIZE + length
                if len(self._buf) < end:
                    break
                payload = bytes(self._buf[offset + MUX_HEADER_SIZE : end])
                frames.append(MuxFrame(checked, MuxFlags(flags), stream_id, payload))
                offset = end
        finally:
            del self._buf[:offset]
        return frames

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a whole frame."""
        return len(self._buf)


@dataclass
class _Stream:
    """Both directions of one stream as the multiplexer sees them."""

    send_queue: deque[bytes] = field(default_factory=deque)
    queued: int = 0
    send_credit: int = STREAM_WINDOW
    fin_pending: bool = False  # FIN asked for, sent after the queue drains
    send_done: bool = False  # FIN or RESET_STREAM sent
    recv_received: int = 0
    recv_limit: int = STREAM_WINDOW
    recv_consumed: int = 0
    recv_done: bool = False  # FIN or RESET_STREAM received, or STOP_SENDING sent

    @property
    def finished(self) -> bool:
        return self.send_done and self.recv_done


class Multiplexer:
    """One end of a multiplexed connection: pure state, bytes in and bytes out."""

    def __init__(self, *, is_client: bool) -> None:
        self.is_client = is_client
        self._decoder = MuxDecoder()
        self._streams: dict[int, _Stream] = {}
        self._urgent = bytearray()  # connection-level frames, sent before stream data
        self._rotation: deque[int] = deque()  # streams with something to send, round-robin
        self._next_local = 0 if is_client else 1
        self._highest_peer = -1
        self._events: list[MuxEvent] = []
        self.closed = False
        self.close_code = NO_ERROR
        self.close_reason = ""

    # streams we open

    def get_next_available_stream_id(self) -> int:
        """Reserve the next id of our parity (a stream is open from this call on)."""
        if self.closed:
            raise MuxError("connection closed")
        stream_id = self._next_local
        self._next_local += 4
        self._streams[stream_id] = _Stream()
        return stream_id

    # sending

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Queue stream bytes (and FIN); the peer's credit decides when they leave."""
        stream = self._sendable(stream_id)
        if data:
            stream.send_queue.append(bytes(data))
            stream.queued += len(data)
        stream.fin_pending = stream.fin_pending or end_stream
        self._schedule(stream_id)

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        """Abandon our direction: drop what is queued and tell the peer (RESET_STREAM)."""
        if self.closed:
            raise MuxError("connection closed")
        stream = self._streams.get(stream_id)
        if stream is None or stream.send_done:
            raise MuxError(f"stream {stream_id} is not sending")
        self._drop_send(stream)
        self._urgent += encode(MuxType.RESET_STREAM, stream_id, CODE.pack(error_code))
        self._retire_if_finished(stream_id)

    def stop_stream(self, stream_id: int, error_code: int) -> None:
        """Ask the peer to stop sending (STOP_SENDING); what still arrives is dropped."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.recv_done:
            raise MuxError(f"stream {stream_id} is not receiving")
        stream.recv_done = True
        self._urgent += encode(MuxType.STOP_SENDING, stream_id, CODE.pack(error_code))
        self._retire_if_finished(stream_id)

    def get_send_buffer_size(self, stream_id: int) -> int:
        """Bytes queued on a stream and not yet handed to ``data_to_send``."""
        stream = self._streams.get(stream_id)
        return stream.queued if stream is not None else 0

    def close(self, error_code: int = NO_ERROR, reason_phrase: str = "") -> None:
        """Queue CLOSE; nothing else is sent or accepted afterwards."""
        if self.closed:
            return
        reason = reason_phrase.encode()[:MAX_REASON].decode(errors="ignore").encode()
        self._urgent += encode(MuxType.CLOSE, 0, CODE.pack(error_code) + reason)
        self._terminate(error_code, reason_phrase, notify=False)

    def data_to_send(self, limit: int = 256 * 1024) -> bytes:
        """Bytes for the transport: connection frames first, then stream data round-robin.

        Stops near ``limit`` so one call never builds an unbounded message.
        """
        out = bytearray(self._urgent)
        self._urgent.clear()
        if self.closed:
            self._rotation.clear()
            return bytes(out)
        while self._rotation and len(out) < limit:
            stream_id = self._rotation.popleft()
            if (stream := self._streams.get(stream_id)) is None:
                continue
            out += self._take_chunk(stream_id, stream, min(SCHEDULE_CHUNK, limit - len(out)))
            if self._has_sendable(stream):
                self._rotation.append(stream_id)
            self._retire_if_finished(stream_id)
        return bytes(out)

    # receiving

    def receive_data(self, data: bytes) -> list[MuxEvent]:
        """Feed transport bytes; return what happened. Never raises on bad input."""
        if self.closed:
            return self._take_events()
        try:
            for frame in self._decoder.feed(data):
                self._on_frame(frame)
                if self.closed:
                    break
        except MuxError as err:
            self._protocol_error(str(err))
        return self._take_events()

    def stream_consumed(self, stream_id: int, size: int) -> None:
        """The application read ``size`` bytes of a stream: grant the peer more credit."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.recv_done or self.closed:
            return
        stream.recv_consumed = min(stream.recv_consumed + size, stream.recv_received)
        if stream.recv_limit - stream.recv_consumed <= STREAM_WINDOW // 2:
            increment = stream.recv_consumed + STREAM_WINDOW - stream.recv_limit
            stream.recv_limit += increment
            self._urgent += encode(MuxType.WINDOW_UPDATE, stream_id, CODE.pack(increment))

    # internals: sending

    def _sendable(self, stream_id: int) -> _Stream:
        """The stream, if our direction may still carry bytes."""
        if self.closed:
            raise MuxError("connection closed")
        stream = self._streams.get(stream_id)
        if stream is None or stream.send_done or stream.fin_pending:
            raise MuxError(f"stream {stream_id} is not sending")
        return stream

    def _drop_send(self, stream: _Stream) -> None:
        """Forget queued bytes of a direction that ends now."""
        stream.send_queue.clear()
        stream.queued = 0
        stream.fin_pending = False
        stream.send_done = True

    def _schedule(self, stream_id: int) -> None:
        if stream_id not in self._rotation:
            self._rotation.append(stream_id)

    @staticmethod
    def _has_sendable(stream: _Stream) -> bool:
        if stream.send_done:
            return False
        return (stream.queued > 0 and stream.send_credit > 0) or (
            stream.fin_pending and stream.queued == 0
        )

    def _take_chunk(self, stream_id: int, stream: _Stream, size: int) -> bytes:
        """Up to ``size`` bytes of the stream within its credit, as one STREAM frame."""
        size = min(size, stream.send_credit, stream.queued)
        parts: list[bytes] = []
        taken = 0
        while taken < size:
            head = stream.send_queue[0]
            piece = head[: size - taken]
            if len(piece) == len(head):
                stream.send_queue.popleft()
            else:
                stream.send_queue[0] = head[len(piece) :]
            parts.append(piece)
            taken += len(piece)
        stream.queued -= taken
        stream.send_credit -= taken
        fin = stream.fin_pending and stream.queued == 0
        if not taken and not fin:
            return b""
        if fin:
            stream.fin_pending, stream.send_done = False, True
        flags = MuxFlags.FIN if fin else NO_FLAGS
        return encode(MuxType.STREAM, stream_id, b"".join(parts), flags)

    # internals: receiving

    def _on_frame(self, frame: MuxFrame) -> None:
        """Apply one frame from the peer."""
        if frame.type is MuxType.CLOSE:
            (code,) = CODE.unpack_from(frame.payload)
            reason = frame.payload[CODE.size :].decode(errors="replace")
            self._terminate(code, reason or f"closed by peer ({code})", notify=True)
            return
        stream = self._stream_for(frame)
        if stream is None:
            return  # a retired stream: late frames are expected after a reset
        if frame.type is MuxType.STREAM:
            self._on_stream_data(frame, stream)
        elif frame.type is MuxType.WINDOW_UPDATE:
            self._on_window_update(frame, stream)
        elif frame.type is MuxType.RESET_STREAM:
            self._on_reset(frame, stream)
        else:
            self._on_stop_sending(frame, stream)

    def _stream_for(self, frame: MuxFrame) -> _Stream | None:
        """The stream a frame belongs to, opening it if the peer may; None when retired."""
        stream_id = frame.stream_id
        if (stream := self._streams.get(stream_id)) is not None:
            return stream
        peer_parity = 1 if self.is_client else 0
        if stream_id % 4 != peer_parity:
            if stream_id % 4 > 1:
                raise MuxError(f"stream id {stream_id} is not bidirectional")
            if stream_id >= self._next_local:
                raise MuxError(f"frame for stream {stream_id} we never opened")
            return None
        if stream_id <= self._highest_peer:
            return None
        if frame.type is not MuxType.STREAM:
            raise MuxError(f"{frame.type.name} opens stream {stream_id}")
        if self._peer_open_count() >= MAX_PEER_STREAMS:
            raise MuxError(f"more than {MAX_PEER_STREAMS} streams opened by the peer")
        self._highest_peer = stream_id
        stream = self._streams[stream_id] = _Stream()
        return stream

    def _peer_open_count(self) -> int:
        peer_parity = 1 if self.is_client else 0
        return sum(1 for sid in self._streams if sid % 4 == peer_parity)

    def _on_stream_data(self, frame: MuxFrame, stream: _Stream) -> None:
        stream_id = frame.stream_id
        end = stream.recv_received + len(frame.payload)
        if end > stream.recv_limit:
            raise MuxError(f"stream {stream_id} exceeded its window ({end} > {stream.recv_limit})")
        stream.recv_received = end
        if stream.recv_done:
            return  # we sent STOP_SENDING: drop what was already in flight
        fin = MuxFlags.FIN in frame.flags
        stream.recv_done = fin
        if frame.payload or fin:
            self._events.append(StreamDataReceived(stream_id, frame.payload, fin))
        self._retire_if_finished(stream_id)

    def _on_window_update(self, frame: MuxFrame, stream: _Stream) -> None:
        (increment,) = CODE.unpack(frame.payload)
        stream.send_credit += increment
        if stream.send_credit > MAX_OFFSET:
            raise MuxError(f"stream {frame.stream_id} credit overflow")
        if self._has_sendable(stream):
            self._schedule(frame.stream_id)

    def _on_reset(self, frame: MuxFrame, stream: _Stream) -> None:
        (code,) = CODE.unpack(frame.payload)
        was_done = stream.recv_done
        stream.recv_done = True
        if not was_done:
            self._events.append(StreamReset(frame.stream_id, code))
        self._retire_if_finished(frame.stream_id)

    def _on_stop_sending(self, frame: MuxFrame, stream: _Stream) -> None:
        (code,) = CODE.unpack(frame.payload)
        if stream.send_done:
            return
        self._events.append(StopSendingReceived(frame.stream_id, code))
        self._drop_send(stream)
        self._urgent += encode(MuxType.RESET_STREAM, frame.stream_id, CODE.pack(code))
        self._retire_if_finished(frame.stream_id)

    def _retire_if_finished(self, stream_id: int) -> None:
        """Drop a stream whose two directions are both over."""
        stream = self._streams.get(stream_id)
        if stream is not None and stream.finished:
            del self._streams[stream_id]

    # internals: connection

    def _protocol_error(self, message: str) -> None:
        """Close with PROTOCOL_ERROR and report it; the peer gets the same code."""
        if self.closed:
            return
        self.close(TunnelCode.PROTOCOL_ERROR, f"mux protocol error: {message}")
        self._events.append(ConnectionTerminated(TunnelCode.PROTOCOL_ERROR, self.close_reason))

    def _terminate(self, code: int, reason: str, *, notify: bool) -> None:
        self.closed = True
        self.close_code, self.close_reason = code, reason
        self._streams.clear()
        self._rotation.clear()
        if notify:
            self._events.append(ConnectionTerminated(code, reason))

    def _take_events(self) -> list[MuxEvent]:
        events, self._events = self._events, []
        return events

    @property
    def open_streams(self) -> int:
        """Streams with at least one direction still open (for tests and bounds)."""
        return len(self._streams)
