"""The asyncio adapter between the sans-I/O tunnel core and a QUIC library.

qh3 is the default core and aioquic the supported alternative (DESIGN.md: qh3 measured 3.6x
aioquic's throughput here at a quarter of the CPU per GB). They share one API apart from imports,
so this module imports the chosen one lazily and hides what differs:

* peer certificate access (aioquic gives a ``cryptography`` certificate, qh3 its own wrapper);
* send back-pressure: neither library pushes back on ``send_stream_data``; qh3 reports queued
  bytes with ``get_send_buffer_size`` and for aioquic we read the stream sender's buffer;
* qh3 delivers datagrams in batches (``datagrams_received``).

Each QUIC stream becomes a :class:`TunnelStream` that yields whole frames and sends frames with
bounded buffering; a connection becomes a :class:`TunnelConnection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import socket
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from shared.tunnel.errors import FrameError
from shared.tunnel.frames import (
    HEADER_SIZE,
    MAX_DATA_PAYLOAD,
    Frame,
    FrameDecoder,
    FrameType,
    encode_frame,
)

log = logging.getLogger(__name__)

Core = Literal["qh3", "aioquic"]
ALPN = "rmon/1"

#: Stream error codes used in RESET_STREAM / STOP_SENDING.
RESET_CANCELLED = 0x1  # the viewer went away; stop the work
RESET_SLOW_CONSUMER = 0x2  # the reader fell too far behind
RESET_INTERNAL = 0x3  # the sender failed mid-body

#: Per-stream send buffer above which ``drain`` waits (bytes).
SEND_HIGH_WATER = 512 * 1024
#: Per-stream received-but-unread bytes above which the stream is reset as a slow consumer.
RECV_LIMIT = 16 * 1024 * 1024
#: Idle timeout of the QUIC connection; agents ping every <= 15 s so this only fires on loss.
IDLE_TIMEOUT_S = 30.0
#: UDP receive buffer of the server socket: the default dropped handshakes in reconnect storms.
SERVER_RCVBUF = 4 * 1024 * 1024


class StreamReset(ConnectionError):
    """The peer reset the stream (or the connection closed) before it ended."""

    def __init__(self, stream_id: int, code: int) -> None:
        super().__init__(f"stream {stream_id} reset with code {code}")
        self.code = code


@dataclass(frozen=True)
class _CoreApi:
    """The pieces of one QUIC library that the adapter uses."""

    name: Core
    configuration: Any
    events: Any
    connect: Any
    serve: Any
    protocol: Any


def _load_core(core: Core) -> _CoreApi:
    """Import qh3 or aioquic on demand so either may be absent."""
    pkg = importlib.import_module(core)
    del pkg
    aio = importlib.import_module(f"{core}.asyncio")
    return _CoreApi(
        name=core,
        configuration=importlib.import_module(f"{core}.quic.configuration").QuicConfiguration,
        events=importlib.import_module(f"{core}.quic.events"),
        connect=aio.connect,
        serve=aio.serve,
        protocol=aio.QuicConnectionProtocol,
    )


class TunnelStream:
    """One bidirectional QUIC stream carrying frames."""

    def __init__(self, conn: TunnelConnection, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self._decoder = FrameDecoder()
        self._frames: deque[Frame] = deque()
        self._buffered = 0
        self._readable = asyncio.Event()
        self._fin = False
        self._reset_code: int | None = None
        self._send_stopped: int | None = None
        self._ended = False
        self._frame_error: FrameError | None = None

    # receiving

    async def read_frame(self) -> Frame | None:
        """The next frame, or None at a clean end of stream; raises StreamReset or FrameError."""
        while True:
            if self._frames:
                frame = self._frames.popleft()
                self._buffered -= len(frame.payload) + HEADER_SIZE
                return frame
            if self._frame_error is not None:
                raise self._frame_error
            if self._reset_code is not None:
                raise StreamReset(self.stream_id, self._reset_code)
            if self._fin:
                if self._decoder.pending:
                    raise FrameError("stream ended inside a frame")
                return None
            self._readable.clear()
            await self._readable.wait()

    def take_ready_data(self, limit: int) -> bytes:
        """Payloads of DATA frames already received, joined up to about ``limit`` bytes.

        Lets a forwarder coalesce many small frames into one WebSocket message without waiting.
        """
        parts: list[bytes] = []
        size = 0
        while self._frames and self._frames[0].type is FrameType.DATA and size < limit:
            frame = self._frames.popleft()
            self._buffered -= len(frame.payload) + HEADER_SIZE
            parts.append(frame.payload)
            size += len(frame.payload)
        return b"".join(parts)

    def _on_data(self, data: bytes, fin: bool) -> None:
        """Called by the protocol with stream bytes; bad framing resets the stream."""
        if self._reset_code is not None:
            # Reset on our side: drop what the peer sent before it heard; its FIN (or the
            # RESET_STREAM that answers our STOP_SENDING) retires the id. Forgetting the id at
            # reset time made late bytes look like a new incoming stream for ``on_stream``.
            if fin:
                self.conn._forget(self.stream_id)
            return
        try:
            frames = self._decoder.feed(data)
        except FrameError as err:
            # The reader gets the FrameError itself (not a bare reset) so the owner of a
            # control stream can answer with a protocol error code.
            log.warning("stream %d: invalid framing, resetting: %s", self.stream_id, err)
            self._frame_error = err
            self.reset(RESET_INTERNAL)
            self._on_reset(RESET_INTERNAL)
            return
        self._frames.extend(frames)
        # Count each frame's header too: a flood of empty frames must hit the limit as well.
        self._buffered += sum(len(f.payload) + HEADER_SIZE for f in frames)
        self._fin = self._fin or fin
        if fin and self._ended:  # both directions finished: nothing more can arrive
            self.conn._forget(self.stream_id)
        if self._buffered > RECV_LIMIT:
            log.warning("stream %d: reader too slow, resetting", self.stream_id)
            self.reset(RESET_SLOW_CONSUMER)
            self._on_reset(RESET_SLOW_CONSUMER)
            return
        self._readable.set()

    def _on_reset(self, code: int) -> None:
        """The peer reset its sending side, or the connection went away."""
        if self._reset_code is None:
            self._reset_code = code
        self._send_stopped = self._send_stopped if self._send_stopped is not None else code
        self._readable.set()
        self.conn._writable.set()

    def _on_stop_sending(self, code: int) -> None:
        """The peer no longer reads: stop producing (a closed viewer)."""
        self._send_stopped = code
        self.conn._writable.set()

    @property
    def is_reset(self) -> bool:
        """True once the peer reset or stopped the stream (or the connection closed)."""
        return self._reset_code is not None or self._send_stopped is not None

    # sending

    def send_frame(self, frame_type: FrameType, payload: bytes = b"") -> None:
        """Queue one frame; raises StreamReset if the peer no longer reads."""
        self._check_sendable()
        self.conn._send(self.stream_id, encode_frame(frame_type, payload))

    def send_message(self, frame_type: FrameType, message: BaseModel) -> None:
        """Queue one JSON frame built from a pydantic model."""
        self.send_frame(frame_type, message.model_dump_json().encode())

    def send_bytes(self, data: bytes) -> None:
        """Queue bytes that already are whole frames (what a control state machine produced)."""
        self.conn._send(self.stream_id, data)

    async def send_data(self, data: bytes, chunk: int = MAX_DATA_PAYLOAD // 4) -> None:
        """Send body bytes as DATA frames, waiting for the buffer to drain between chunks."""
        view = memoryview(data)
        for start in range(0, len(data), chunk):
            await self.drain()
            self.send_frame(FrameType.DATA, bytes(view[start : start + chunk]))

    async def drain(self, high_water: int = SEND_HIGH_WATER) -> None:
        """Wait until this stream's unsent bytes drop below ``high_water``."""
        while self.send_buffered() >= high_water:
            self._check_sendable()
            await self.conn._wait_writable()
        self._check_sendable()

    def send_buffered(self) -> int:
        """Bytes queued on this stream and not yet sent."""
        return self.conn._send_buffered(self.stream_id)

    def end(self) -> None:
        """Send FIN: the body is complete."""
        if not self._ended and self._send_stopped is None and not self.conn.closed:
            self._ended = True
            self.conn._send(self.stream_id, b"", fin=True)

    def reset(self, code: int = RESET_CANCELLED) -> None:
        """Abort both directions: RESET_STREAM for ours, STOP_SENDING for theirs."""
        if self.conn.closed:
            return
        with contextlib.suppress(Exception):  # already finished or reset streams refuse again
            self.conn._quic.reset_stream(self.stream_id, code)
        with contextlib.suppress(Exception):
            self.conn._quic.stop_stream(self.stream_id, code)
        self._ended = True
        self._send_stopped = code
        if self._reset_code is None:  # a local reader waiting on this stream gets StreamReset
            self._reset_code = code
        self._readable.set()
        self.conn._transmit()
        if self._fin:  # the peer had finished: no late bytes can come, retire the id now
            self.conn._forget(self.stream_id)

    def _check_sendable(self) -> None:
        """Raise StreamReset when writing is pointless."""
        if self._send_stopped is not None:
            raise StreamReset(self.stream_id, self._send_stopped)
        if self.conn.closed:
            raise StreamReset(self.stream_id, RESET_CANCELLED)


class TunnelConnection:
    """One QUIC connection with frame streams on top; wraps the library's protocol object."""

    def __init__(self, protocol: Any, core: _CoreApi) -> None:
        self._protocol = protocol
        self._core = core
        self._quic: Any = protocol._quic
        self._streams: dict[int, TunnelStream] = {}
        self._writable = asyncio.Event()
        self._closed = asyncio.Event()
        self.close_reason = ""
        #: The QUIC error code the peer closed with (a TunnelCode when it refused us), else 0.
        self.close_code = 0
        self.on_stream: Callable[[TunnelStream], None] | None = None
        #: Where the peer's datagrams come from; a server's socket has no peername to ask.
        self.peer_address: tuple[str, int] | None = None

    @property
    def closed(self) -> bool:
        """True once the connection terminated."""
        return self._closed.is_set()

    @property
    def core(self) -> Core:
        """Which QUIC library carries this connection."""
        return self._core.name

    @property
    def transport(self) -> str:
        """What carries the tunnel: "quic" here, "tcp" for the fallback (``shared.tcp``)."""
        return "quic"

    async def open_stream(self) -> TunnelStream:
        """Open a new bidirectional stream from our side."""
        if self.closed:
            raise ConnectionError("tunnel closed")
        stream_id = self._quic.get_next_available_stream_id()
        stream = TunnelStream(self, stream_id)
        self._streams[stream_id] = stream
        return stream

    def peer_certificate_der(self) -> bytes:
        """DER of the peer's leaf certificate (the relay's, seen from the agent)."""
        cert = getattr(self._quic.tls, "peer_certificate", None)
        if cert is None:
            cert = getattr(self._quic.tls, "_peer_certificate", None)
        if cert is None:
            raise ConnectionError("no peer certificate")
        if self._core.name == "aioquic":
            from cryptography.hazmat.primitives.serialization import Encoding

            return bytes(cert.public_bytes(Encoding.DER))
        return bytes(cert.public_bytes())

    def remote_address(self) -> tuple[str, int]:
        """The peer's UDP address (for logs and connection history)."""
        if self.peer_address is not None:
            return self.peer_address
        addr = self._protocol._transport.get_extra_info("peername") if self._protocol else None
        if addr:
            return str(addr[0]), int(addr[1])
        paths = getattr(self._quic, "_network_paths", None) or [None]
        path = paths[0]
        return (str(path.addr[0]), int(path.addr[1])) if path is not None else ("", 0)

    def close(self, error_code: int = 0, reason: str = "") -> None:
        """Close the connection (CONNECTION_CLOSE) and fail every stream."""
        if not self.closed:
            with contextlib.suppress(Exception):
                self._quic.close(error_code=error_code, reason_phrase=reason)
            self._transmit()
        self._terminated(reason or "closed locally")

    async def wait_closed(self) -> None:
        """Return once the connection is gone."""
        await self._closed.wait()

    # called by the protocol

    def _event(self, event: Any) -> None:
        """Dispatch one QUIC event from the library."""
        ev = self._core.events
        if isinstance(event, ev.StreamDataReceived):
            stream = self._streams.get(event.stream_id) or self._accept(event.stream_id)
            if stream is not None:
                stream._on_data(event.data, event.end_stream)
        elif isinstance(event, ev.StreamReset):
            if (stream := self._streams.pop(event.stream_id, None)) is not None:
                stream._on_reset(event.error_code)
        elif isinstance(event, ev.StopSendingReceived):
            if (stream := self._streams.get(event.stream_id)) is not None:
                stream._on_stop_sending(event.error_code)
        elif isinstance(event, ev.ConnectionTerminated):
            if not self.closed:
                self.close_code = int(event.error_code)
            self._terminated(event.reason_phrase or f"error {event.error_code}")

    def _accept(self, stream_id: int) -> TunnelStream | None:
        """A stream the peer opened: wrap it and hand it to ``on_stream``."""
        if self.on_stream is None:
            return None
        stream = TunnelStream(self, stream_id)
        self._streams[stream_id] = stream
        self.on_stream(stream)
        return stream

    def _terminated(self, reason: str) -> None:
        """Fail every stream once, when the connection ends."""
        if self.closed:
            return
        self.close_reason = reason
        self._closed.set()
        for stream in list(self._streams.values()):
            stream._on_reset(RESET_CANCELLED)
        self._streams.clear()
        self._writable.set()

    def _send(self, stream_id: int, data: bytes, fin: bool = False) -> None:
        """Queue stream bytes and schedule a transmit.

        The core may already know the connection is closing before its termination event reached
        us; the bytes could never arrive then, so the connection is treated as terminated.
        """
        try:
            self._quic.send_stream_data(stream_id, data, end_stream=fin)
        except Exception as err:  # qh3: QuicConnectionError; aioquic: AssertionError/ValueError
            if self._is_closing(err):
                self._terminated("connection closed")
                return
            raise
        self._transmit()
        if fin and (stream := self._streams.get(stream_id)) is not None and stream._fin:
            self._forget(stream_id)

    def _is_closing(self, err: Exception) -> bool:
        """True when ``err`` says the core is past the point of sending stream data."""
        if getattr(self._quic, "_close_event", None) is not None:
            return True
        state = getattr(getattr(self._quic, "_state", None), "name", "")
        return state not in ("", "FIRSTFLIGHT", "CONNECTED") or "closed" in str(err)

    def _forget(self, stream_id: int) -> None:
        """Drop a finished stream from the table."""
        self._streams.pop(stream_id, None)

    def flush_now(self) -> None:
        """Send queued datagrams immediately (before a socket is closed, say)."""
        with contextlib.suppress(Exception):
            self._protocol.transmit()

    def _transmit(self) -> None:
        """Ask the protocol to send soon (coalesces with other sends in this loop turn)."""
        self._protocol._transmit_soon()

    def _send_buffered(self, stream_id: int) -> int:
        """Unsent bytes on a stream, from whichever library carries it."""
        if self.closed:
            return 0
        if self._core.name == "qh3":
            return int(self._quic.get_send_buffer_size(stream_id))
        stream = self._quic._streams.get(stream_id)
        if stream is None:
            return 0
        sender = stream.sender
        return max(0, int(sender._buffer_stop - sender._buffer_start))

    async def _wait_writable(self) -> None:
        """Wait for the next batch of incoming packets (ACKs free the send buffer)."""
        self._writable.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._writable.wait(), timeout=0.05)


def _protocol_class(core: _CoreApi) -> type:
    """A protocol subclass that routes events into a TunnelConnection."""

    class Protocol(core.protocol):  # type: ignore[misc, name-defined]
        tunnel: TunnelConnection | None = None
        on_handshake: Callable[[TunnelConnection], None] | None = None
        _core_error_logged = False

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.tunnel = TunnelConnection(self, core)

        async def wait_connected(self) -> None:
            """As the library's; a waiter abandoned by a connect timeout retrieves its own error.

            The library shields the waiter, so it outlives our cancelled wait and would log
            "Future exception was never retrieved" once the handshake finally fails (every QUIC
            probe that times out while UDP is blocked).
            """
            try:
                await super().wait_connected()
            except asyncio.CancelledError:
                if (waiter := getattr(self, "_connected_waiter", None)) is not None:
                    waiter.add_done_callback(_retrieve)
                raise

        def quic_event_received(self, event: Any) -> None:
            assert self.tunnel is not None
            if isinstance(event, core.events.HandshakeCompleted) and self.on_handshake:
                self.on_handshake(self.tunnel)
            self.tunnel._event(event)

        def datagram_received(self, data: Any, addr: Any) -> None:
            self._note_peer(addr)
            try:
                super().datagram_received(data, addr)
            except Exception as err:  # see _core_failed
                self._core_failed(err)
            self._wake()

        def datagrams_received(self, data: Any, addr: Any) -> None:
            self._note_peer(addr)
            try:
                super().datagrams_received(data, addr)
            except Exception as err:  # see _core_failed
                self._core_failed(err)
            self._wake()

        def _core_failed(self, err: Exception) -> None:
            """The QUIC core raised while handling one peer's packets; keep it to that peer.

            Left alone the error escapes into the shared server socket's callback. Seen here:
            qh3 2.1 as server raises "packet builder capacity exhausted" from
            ``datagrams_to_send`` with aioquic clients, and the connection carries on working,
            so it is logged (once per connection) rather than closed.
            """
            if not self._core_error_logged:
                self._core_error_logged = True
                log.warning("QUIC core error on the connection from %s: %s", self._peer(), err)

        def _peer(self) -> str:
            return str(self.tunnel.peer_address) if self.tunnel is not None else "?"

        def _note_peer(self, addr: Any) -> None:
            if self.tunnel is not None and addr:
                self.tunnel.peer_address = (str(addr[0]), int(addr[1]))

        def _wake(self) -> None:
            if self.tunnel is not None:
                self.tunnel._writable.set()

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            if self.tunnel is not None:
                self.tunnel._terminated("transport lost")

    return Protocol


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's outcome as seen (its error is expected and already handled)."""
    if not future.cancelled():
        future.exception()


def _configuration(core: _CoreApi, *, is_client: bool, server_name: str | None = None) -> Any:
    """QUIC settings shared by both ends: our ALPN, idle timeout, no 0-RTT."""
    return core.configuration(
        alpn_protocols=[ALPN],
        is_client=is_client,
        idle_timeout=IDLE_TIMEOUT_S,
        server_name=server_name,
    )


@contextlib.asynccontextmanager
async def connect(
    host: str,
    port: int,
    *,
    core: Core = "qh3",
    cafile: Path | None = None,
    server_name: str | None = None,
    timeout: float = 10.0,
) -> AsyncIterator[TunnelConnection]:
    """Open a QUIC connection to a relay; the relay certificate must chain to ``cafile``."""
    api = _load_core(core)
    config = _configuration(api, is_client=True, server_name=server_name or host)
    if cafile is not None:
        config.load_verify_locations(cafile=str(cafile))
    async with asyncio.timeout(timeout):
        cm = api.connect(host, port, configuration=config, create_protocol=_protocol_class(api))
        protocol = await cm.__aenter__()
    try:
        yield protocol.tunnel
    finally:
        protocol.tunnel.close(reason="client closing")
        await cm.__aexit__(None, None, None)


class QuicServerHandle:
    """A running QUIC listener; ``close()`` stops accepting and drops connections."""

    def __init__(self, server: Any) -> None:
        self._server = server

    @property
    def port(self) -> int:
        """The bound UDP port."""
        sock: socket.socket = self._server._transport.get_extra_info("socket")
        port: int = sock.getsockname()[1]
        return port

    def close(self) -> None:
        """Stop the listener."""
        self._server.close()


async def serve(
    host: str,
    port: int,
    *,
    certfile: Path,
    keyfile: Path,
    on_connection: Callable[[TunnelConnection], None],
    core: Core = "qh3",
) -> QuicServerHandle:
    """Listen for agents on UDP ``host:port``; each authenticated-TLS connection is handed over."""
    api = _load_core(core)
    config = _configuration(api, is_client=False)
    config.load_cert_chain(str(certfile), str(keyfile))
    base = _protocol_class(api)

    class ServerProtocol(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.on_handshake = on_connection

    server = await api.serve(host, port, configuration=config, create_protocol=ServerProtocol)
    sock = server._transport.get_extra_info("socket")
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SERVER_RCVBUF)
    return QuicServerHandle(server)
