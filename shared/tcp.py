"""The TLS/TCP fallback tunnel: the same streams as QUIC, multiplexed over a WebSocket.

When UDP to the relay is blocked the agent opens ``wss://relay:port/api/v1/tunnel`` with the
WebSocket subprotocol ``rmon/1`` on the relay's HTTPS port. Why a WebSocket and not a raw HTTP
Upgrade: aiohttp speaks it on both ends without taking over its transport, it crosses the HTTP
proxies and middleboxes that sites with UDP blocked tend to have, and its framing costs 2-14
bytes per message we coalesce to up to ``MESSAGE_LIMIT``. The messages are only a byte pipe
for the sans-I/O multiplexer in ``shared.tunnel.mux``.

:class:`MuxTunnelConnection` *is* a :class:`shared.quic.TunnelConnection`: the multiplexer has
the same shape as a QUIC connection object, so the stream layer (framing, resets, slow-consumer
bounds, drain) is shared and ``AgentSession``/``TunnelClient`` run unchanged on either
transport. What differs is here: per-stream credit is returned as the application reads
(:class:`MuxStream`), one writer task drains the multiplexer into the socket, and the relay's
certificate comes from the TLS socket. The relay certificate is the same one QUIC serves (one
port, one certificate), so the device signature binds the same fingerprint on both transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aiohttp
from aiohttp import WSMsgType, web
from yarl import URL

from shared import quic
from shared.tunnel import mux
from shared.tunnel.codes import TunnelCode
from shared.tunnel.frames import HEADER_SIZE, Frame

log = logging.getLogger(__name__)

#: Where the relay accepts fallback tunnels (its HTTPS port).
TUNNEL_PATH = "/api/v1/tunnel"
#: WebSocket subprotocol: the mux wire format of ``shared.tunnel.mux`` version 1.
SUBPROTOCOL = "rmon/1"
#: Largest WebSocket message we build (bytes); the multiplexer interleaves streams inside.
MESSAGE_LIMIT = 256 * 1024
#: Largest WebSocket message we accept (bytes): a peer has no reason to exceed our own limit.
MAX_MESSAGE = 1024 * 1024
#: How long closing waits for the CLOSE frame to leave before dropping the socket (seconds).
CLOSE_FLUSH_S = 2.0

WebSocket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse

#: Stands in for the QUIC library in the shared connection class: only ``name`` and ``events``
#: are read outside the methods overridden below.
_MUX_CORE = quic._CoreApi(
    name=cast(quic.Core, "tcp"),
    configuration=None,
    events=mux,
    connect=None,
    serve=None,
    protocol=None,
)


class _MuxHolder:
    """What ``TunnelConnection.__init__`` reads from a QUIC protocol object: ``_quic``."""

    def __init__(self, multiplexer: mux.Multiplexer) -> None:
        self._quic = multiplexer


class MuxStream(quic.TunnelStream):
    """A tunnel stream over the multiplexer: reading returns credit to the peer.

    Credit follows consumption, not arrival, so a viewer that reads slowly holds back only its
    own stream's sender (the agent then skips to the next keyframe) and never the connection.
    """

    conn: MuxTunnelConnection

    async def read_frame(self) -> Frame | None:
        """As in QUIC; then grant the bytes just consumed back to the sender."""
        frame = await super().read_frame()
        if frame is not None:
            self.conn._consumed(self.stream_id, len(frame.payload) + HEADER_SIZE)
        return frame

    def take_ready_data(self, limit: int) -> bytes:
        """As in QUIC; then grant the frames just consumed back to the sender."""
        before = len(self._frames)
        data = super().take_ready_data(limit)
        taken = before - len(self._frames)
        if taken:
            self.conn._consumed(self.stream_id, len(data) + taken * HEADER_SIZE)
        return data


class MuxTunnelConnection(quic.TunnelConnection):
    """A tunnel connection over one WebSocket; the owner runs :meth:`run` to read it."""

    def __init__(
        self,
        ws: WebSocket,
        *,
        is_client: bool,
        remote: tuple[str, int],
        peer_certificate: bytes = b"",
    ) -> None:
        self._mux = mux.Multiplexer(is_client=is_client)
        super().__init__(_MuxHolder(self._mux), _MUX_CORE)
        self._ws = ws
        self._remote = remote
        self._peer_certificate = peer_certificate
        self._wake = asyncio.Event()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    @property
    def transport(self) -> str:
        """The fallback transport."""
        return "tcp"

    async def open_stream(self) -> MuxStream:
        """Open a new bidirectional stream from our side."""
        if self.closed:
            raise ConnectionError("tunnel closed")
        stream = MuxStream(self, self._mux.get_next_available_stream_id())
        self._streams[stream.stream_id] = stream
        return stream

    def _accept(self, stream_id: int) -> MuxStream | None:
        """A stream the peer opened: wrap it and hand it to ``on_stream``."""
        if self.on_stream is None:
            return None
        stream = MuxStream(self, stream_id)
        self._streams[stream_id] = stream
        self.on_stream(stream)
        return stream

    def peer_certificate_der(self) -> bytes:
        """DER of the relay's leaf certificate, from the TLS socket under the WebSocket."""
        if not self._peer_certificate:
            raise ConnectionError("no peer certificate")
        return self._peer_certificate

    def remote_address(self) -> tuple[str, int]:
        """The peer's TCP address."""
        return self._remote

    # reading

    async def run(self) -> None:
        """Feed every WebSocket message to the multiplexer until either side closes."""
        try:
            async for msg in self._ws:
                if msg.type is not WSMsgType.BINARY:
                    self.close(TunnelCode.PROTOCOL_ERROR, f"unexpected {msg.type.name} message")
                    break
                self.feed(msg.data)
                if self.closed:
                    break
        finally:
            self._terminated(self.close_reason or "transport lost")
            self._wake.set()

    def feed(self, data: bytes) -> None:
        """Apply transport bytes: dispatch the events, wake senders waiting for credit."""
        for event in self._mux.receive_data(data):
            self._event(event)
        self._writable.set()
        self._wake.set()

    # writing

    async def _write_loop(self) -> None:
        """The only sender on the socket: what the multiplexer schedules, until it closes."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while data := self._mux.data_to_send(MESSAGE_LIMIT):
                    await self._ws.send_bytes(data)
                    self._writable.set()
                if self._mux.closed or self.closed:
                    return
        except (ConnectionError, RuntimeError) as err:  # the socket went away under us
            log.debug("tunnel socket to %s failed: %s", self._remote, err)
        finally:
            self._terminated(self.close_reason or "transport lost")
            with contextlib.suppress(Exception):
                await self._ws.close()

    def _consumed(self, stream_id: int, size: int) -> None:
        """Return credit for bytes the application read."""
        self._mux.stream_consumed(stream_id, size)
        self._wake.set()

    # overrides of the QUIC-specific parts

    def close(self, error_code: int = 0, reason: str = "") -> None:
        """Queue CLOSE; the writer sends it and then closes the socket."""
        if not self._mux.closed:
            self._mux.close(error_code, reason)
        self._wake.set()
        self._terminated(reason or "closed locally")

    def _terminated(self, reason: str) -> None:
        """As in QUIC, and make sure the writer ends (it closes the socket)."""
        super()._terminated(reason)
        if not self._mux.closed:
            self._mux.close(mux.NO_ERROR, reason)
        self._wake.set()

    async def finish(self, timeout: float = CLOSE_FLUSH_S) -> None:
        """Close, let the writer flush CLOSE and shut the socket, within ``timeout``."""
        self.close(reason=self.close_reason or "closing")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._writer)
        if not self._writer.done():
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)

    def _event(self, event: Any) -> None:
        """Dispatch as QUIC does; a protocol error is also logged with the peer's address."""
        if isinstance(event, mux.ConnectionTerminated) and event.error_code:
            log.info(
                "tunnel %s closed with %d: %s", self._remote, event.error_code, event.reason_phrase
            )
        super()._event(event)

    def _send(self, stream_id: int, data: bytes, fin: bool = False) -> None:
        """As in QUIC; the writer task picks the bytes up."""
        if self.closed:
            return
        super()._send(stream_id, data, fin)

    def _is_closing(self, err: Exception) -> bool:
        return self._mux.closed

    def flush_now(self) -> None:
        """Wake the writer (a WebSocket write cannot be done synchronously)."""
        self._wake.set()

    def _transmit(self) -> None:
        self._wake.set()

    def _send_buffered(self, stream_id: int) -> int:
        return 0 if self.closed else self._mux.get_send_buffer_size(stream_id)


def _ssl_context(cafile: Path | None) -> ssl.SSLContext:
    """Verify the relay against the CA pinned at enrollment, or the system store."""
    return ssl.create_default_context(cafile=str(cafile) if cafile is not None else None)


@contextlib.asynccontextmanager
async def connect(
    host: str,
    port: int,
    *,
    cafile: Path | None = None,
    server_name: str | None = None,
    timeout: float = 10.0,
) -> AsyncIterator[MuxTunnelConnection]:
    """Open the fallback tunnel to a relay's HTTPS port; the certificate must chain to ``cafile``.

    aiohttp's errors are wrapped into ConnectionError here (the agent's retry policy names only
    builtin exceptions).
    """
    url = URL.build(scheme="https", host=host, port=port, path=TUNNEL_PATH)
    async with aiohttp.ClientSession() as session:
        try:
            async with asyncio.timeout(timeout):
                ws = await session.ws_connect(
                    url,
                    protocols=[SUBPROTOCOL],
                    ssl=_ssl_context(cafile),
                    server_hostname=server_name or host,
                    max_msg_size=MAX_MESSAGE,
                    compress=0,
                )
        except aiohttp.ClientError as err:
            raise ConnectionError(f"tunnel over TLS/TCP to {host}:{port}: {err}") from err
        conn = await _client_connection(ws)
        reader = asyncio.get_running_loop().create_task(conn.run())
        try:
            yield conn
        finally:
            await conn.finish()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


async def _client_connection(ws: aiohttp.ClientWebSocketResponse) -> MuxTunnelConnection:
    """Wrap the agent's socket, refusing a relay that did not pick our subprotocol."""
    if ws.protocol != SUBPROTOCOL:
        await ws.close()
        raise ConnectionError(f"relay did not accept the {SUBPROTOCOL} tunnel subprotocol")
    ssl_object = ws.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    peer = ws.get_extra_info("peername") or ("", 0)
    return MuxTunnelConnection(
        ws, is_client=True, remote=(str(peer[0]), int(peer[1])), peer_certificate=der or b""
    )


async def accept(request: web.Request) -> tuple[web.WebSocketResponse, MuxTunnelConnection]:
    """Upgrade a relay request to a fallback tunnel (the caller runs and finishes it)."""
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    if SUBPROTOCOL not in offered:
        raise web.HTTPBadRequest(text=f"tunnel needs the {SUBPROTOCOL} WebSocket subprotocol")
    ws = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,), max_msg_size=MAX_MESSAGE, compress=False, autoping=True
    )
    await ws.prepare(request)
    peer = request.transport.get_extra_info("peername") if request.transport else None
    remote = (str(peer[0]), int(peer[1])) if peer else ("", 0)
    return ws, MuxTunnelConnection(ws, is_client=False, remote=remote)
