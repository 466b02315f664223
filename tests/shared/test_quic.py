"""Tier two: the asyncio QUIC adapter on loopback, over both cores (qh3 and aioquic).

No sleeps: every wait is on an adapter event (a frame, a closed connection, a drained buffer)
bounded by ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from relay.tls import TlsFiles, ensure_tls, leaf_der
from shared import quic
from shared.quic import (
    RESET_CANCELLED,
    RESET_INTERNAL,
    SEND_HIGH_WATER,
    StreamReset,
    TunnelConnection,
    TunnelStream,
)
from shared.tunnel.frames import MAX_DATA_PAYLOAD, Frame, FrameType
from shared.tunnel.identity import certificate_fingerprint

CORES: list[quic.Core] = ["qh3", "aioquic"]
HOSTS = ["localhost", "127.0.0.1"]
WAIT_S = 10.0
CHUNK = MAX_DATA_PAYLOAD // 4  # send_data's default chunk

Handler = Callable[[TunnelStream], Awaitable[None]]


@pytest.fixture(params=CORES)
def core(request: pytest.FixtureRequest) -> quic.Core:
    """Each adapter test runs once per QUIC library."""
    name: quic.Core = request.param
    pytest.importorskip(name)
    return name


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """The relay CA and a server certificate for localhost."""
    return ensure_tls(tmp_path_factory.mktemp("tls"), HOSTS)


@pytest.fixture(scope="module")
def foreign_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """Another CA's server certificate, which the client does not trust."""
    return ensure_tls(tmp_path_factory.mktemp("foreign"), HOSTS)


def body(size: int, seed: int) -> bytes:
    """Deterministic bytes so order and integrity are checked, not just length."""
    return random.Random(seed).randbytes(size)


@dataclass
class Server:
    """A running test server: its port and what it saw."""

    port: int
    connections: list[TunnelConnection] = field(default_factory=list)
    streams: list[TunnelStream] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


@asynccontextmanager
async def serving(core: quic.Core, tls: TlsFiles, handler: Handler) -> AsyncIterator[Server]:
    """Serve ``handler`` for every incoming stream; cancel leftover handlers at exit."""
    tasks: set[asyncio.Task[None]] = set()
    server = Server(0)

    async def run(stream: TunnelStream) -> None:
        try:
            await handler(stream)
        except (StreamReset, asyncio.CancelledError):
            raise
        except Exception as err:  # surfaced by the test, not lost in a task
            server.errors.append(err)
            raise

    def on_stream(stream: TunnelStream) -> None:
        server.streams.append(stream)
        task = asyncio.get_running_loop().create_task(run(stream))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def on_connection(conn: TunnelConnection) -> None:
        server.connections.append(conn)
        conn.on_stream = on_stream

    handle = await quic.serve(
        "127.0.0.1", 0, certfile=tls.cert, keyfile=tls.key, on_connection=on_connection, core=core
    )
    server.port = handle.port
    try:
        yield server
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in server.connections:
            conn.close()
        handle.close()
    assert not server.errors


@asynccontextmanager
async def client(
    core: quic.Core, server: Server, cafile: Path, timeout: float = WAIT_S
) -> AsyncIterator[TunnelConnection]:
    """A client connection to ``server`` trusting ``cafile``."""
    async with quic.connect(
        "127.0.0.1", server.port, core=core, cafile=cafile, server_name="localhost", timeout=timeout
    ) as conn:
        yield conn


async def serve_body(stream: TunnelStream) -> None:
    """REQUEST {"size", "seed"} → RESPONSE, then the body as DATA, then FIN."""
    request = await stream.read_frame()
    assert request is not None
    assert request.type is FrameType.REQUEST
    await answer_body(stream, request)


async def answer_body(stream: TunnelStream, request: Frame) -> None:
    """Send the body a REQUEST asked for."""
    args = json.loads(request.payload)
    stream.send_frame(FrameType.RESPONSE, request.payload)
    await stream.send_data(body(args["size"], args["seed"]))
    stream.end()


async def fetch(conn: TunnelConnection, size: int, seed: int) -> tuple[Frame, bytes]:
    """Ask for a body; return the response header and the body bytes."""
    stream = await conn.open_stream()
    stream.send_frame(FrameType.REQUEST, json.dumps({"size": size, "seed": seed}).encode())
    header = await stream.read_frame()
    assert header is not None
    parts = []
    while (frame := await stream.read_frame()) is not None:
        assert frame.type is FrameType.DATA
        parts.append(frame.payload)
    return header, b"".join(parts)


# --- tests ----------------------------------------------------------------------------------------


async def test_request_response_with_a_large_body(core: quic.Core, tls: TlsFiles) -> None:
    async with serving(core, tls, serve_body) as server, client(core, server, tls.ca_cert) as conn:
        assert conn.core == core
        async with asyncio.timeout(WAIT_S):
            header, got = await fetch(conn, 3_000_000, seed=1)
    assert header.type is FrameType.RESPONSE
    assert len(got) == 3_000_000
    assert got == body(3_000_000, 1)


async def test_client_sees_the_server_certificate(core: quic.Core, tls: TlsFiles) -> None:
    async with serving(core, tls, serve_body) as server, client(core, server, tls.ca_cert) as conn:
        der = conn.peer_certificate_der()
    # The agent signs this fingerprint into its identity proof (spec: DEV-10).
    assert certificate_fingerprint(der) == certificate_fingerprint(leaf_der(tls.cert))


async def test_untrusted_server_certificate_is_refused(
    core: quic.Core, tls: TlsFiles, foreign_tls: TlsFiles
) -> None:
    async with serving(core, foreign_tls, serve_body) as server:
        with pytest.raises(ConnectionError):  # refused in the handshake, not timed out
            async with client(core, server, tls.ca_cert, timeout=5.0):
                pytest.fail("connected to a server signed by an untrusted CA")
        assert not server.streams


async def test_many_concurrent_streams_get_their_own_body(core: quic.Core, tls: TlsFiles) -> None:
    sizes = [10_000 + 7_919 * i for i in range(20)]
    async with serving(core, tls, serve_body) as server, client(core, server, tls.ca_cert) as conn:
        async with asyncio.timeout(WAIT_S):
            results = await asyncio.gather(
                *(fetch(conn, size, seed) for seed, size in enumerate(sizes))
            )
        assert len(server.streams) == len(sizes)
    for seed, (size, (_, got)) in enumerate(zip(sizes, results, strict=True)):
        assert got == body(size, seed), f"stream {seed} got someone else's bytes"


async def _send_forever(stream: TunnelStream) -> None:
    while True:
        stream.send_frame(FrameType.DATA, b"x" * 1000)
        await stream.drain()  # wakes on incoming packets; raises once the reset lands


async def _read_to_end(stream: TunnelStream) -> None:
    while await stream.read_frame() is not None:  # frames sent before a reset may come first
        pass


async def send_until_reset(stream: TunnelStream) -> StreamReset:
    """Keep sending until StreamReset is raised (bounded by WAIT_S)."""
    with pytest.raises(StreamReset) as caught:
        await asyncio.wait_for(_send_forever(stream), WAIT_S)
    return caught.value


async def read_until_reset(stream: TunnelStream) -> StreamReset:
    """Read until StreamReset is raised; a clean end of stream fails the test."""
    with pytest.raises(StreamReset) as caught:
        await asyncio.wait_for(_read_to_end(stream), WAIT_S)
    return caught.value


class Holder:
    """A server handler that answers the request header and hands the stream to the test."""

    def __init__(self) -> None:
        self.streams: asyncio.Queue[TunnelStream] = asyncio.Queue()
        self.done: asyncio.Queue[StreamReset | None] = asyncio.Queue()

    async def __call__(self, stream: TunnelStream) -> None:
        request = await stream.read_frame()
        assert request is not None
        if request.payload != b"{}":
            await answer_body(stream, request)  # an ordinary fetch on the same connection
            return
        stream.send_frame(FrameType.RESPONSE, b"{}")
        await self.streams.put(stream)

    async def next_stream(self) -> TunnelStream:
        async with asyncio.timeout(WAIT_S):
            return await self.streams.get()


async def open_held(conn: TunnelConnection, holder: Holder) -> tuple[TunnelStream, TunnelStream]:
    """A stream with both ends past the request/response headers: (client end, server end)."""
    mine = await conn.open_stream()
    mine.send_frame(FrameType.REQUEST, b"{}")
    theirs = await holder.next_stream()
    async with asyncio.timeout(WAIT_S):
        header = await mine.read_frame()
    assert header is not None
    assert header.type is FrameType.RESPONSE
    return mine, theirs


@pytest.mark.parametrize("resetter", ["client", "server"])
async def test_reset_fails_the_peers_read_and_send(
    core: quic.Core, tls: TlsFiles, resetter: str
) -> None:
    holder = Holder()
    async with serving(core, tls, holder) as server, client(core, server, tls.ca_cert) as conn:
        mine, theirs = await open_held(conn, holder)
        resetting, peer = (mine, theirs) if resetter == "client" else (theirs, mine)
        peer.send_frame(FrameType.DATA, b"in flight when the reset happens")
        resetting.reset(RESET_INTERNAL)
        assert (await send_until_reset(peer)).code == RESET_INTERNAL
        assert (await read_until_reset(peer)).code == RESET_INTERNAL
        assert peer.is_reset
        with pytest.raises(StreamReset):
            peer.send_frame(FrameType.DATA, b"more")
        # The connection and its other streams are unharmed.
        async with asyncio.timeout(WAIT_S):
            assert (await fetch(conn, 1000, 5))[1] == body(1000, 5)
        # Regression: late bytes on a stream reset here came back through on_stream as a "new"
        # incoming stream (2 streams instead of the held one plus the fetch).
        assert len(server.streams) == 2, "a reset stream must not come back as a new one"
        # Once the peer answers with its own RESET_STREAM the id is retired (white-box check);
        # round trips on the connection give its packets time to arrive, without a timed sleep.
        fetches = 1
        async with asyncio.timeout(WAIT_S):
            while resetting.stream_id in resetting.conn._streams:
                await fetch(conn, 10, 0)
                fetches += 1
        assert len(server.streams) == 1 + fetches


async def test_finished_streams_are_retired(core: quic.Core, tls: TlsFiles) -> None:
    # Regression: when our FIN went first and the peer's came later, the id stayed in the table
    # for the life of the connection (white-box check of the adapter's stream table).
    async with serving(core, tls, serve_body) as server, client(core, server, tls.ca_cert) as conn:
        for seed in range(3):
            stream = await conn.open_stream()
            stream.send_frame(FrameType.REQUEST, json.dumps({"size": 100, "seed": seed}).encode())
            stream.end()
            async with asyncio.timeout(WAIT_S):
                got = b"".join([f.payload async for f in _frames(stream)][1:])
            assert got == body(100, seed)
        assert conn._streams == {}
        assert server.connections[0]._streams == {}


async def test_reset_wakes_a_local_reader(core: quic.Core, tls: TlsFiles) -> None:
    holder = Holder()
    async with serving(core, tls, holder) as server, client(core, server, tls.ca_cert) as conn:
        mine, _ = await open_held(conn, holder)
        reader = asyncio.ensure_future(mine.read_frame())
        await asyncio.sleep(0)  # one loop turn: the reader runs until it blocks (not a timed wait)
        assert not reader.done()
        mine.reset(RESET_CANCELLED)
        with pytest.raises(StreamReset):
            async with asyncio.timeout(WAIT_S):
                await reader


async def test_closing_the_server_connection_ends_the_client(
    core: quic.Core, tls: TlsFiles
) -> None:
    holder = Holder()
    async with serving(core, tls, holder) as server, client(core, server, tls.ca_cert) as conn:
        mine, _ = await open_held(conn, holder)
        server.connections[0].close(reason="relay shutting down")
        async with asyncio.timeout(WAIT_S):
            await conn.wait_closed()
        assert conn.closed
        assert (await read_until_reset(mine)).code == RESET_CANCELLED
        with pytest.raises(StreamReset):
            mine.send_frame(FrameType.DATA, b"late")
        with pytest.raises(ConnectionError):
            await conn.open_stream()


async def test_drain_bounds_the_send_buffer(core: quic.Core, tls: TlsFiles) -> None:
    size = 8 * 1024 * 1024  # under RECV_LIMIT: the slow reader is not reset
    samples: list[int] = []
    sent_all = asyncio.Event()

    async def serve_slowly_read_body(stream: TunnelStream) -> None:
        await stream.read_frame()
        send_frame = stream.send_frame

        def sampled(frame_type: FrameType, payload: bytes = b"") -> None:
            send_frame(frame_type, payload)
            samples.append(stream.send_buffered())

        stream.send_frame = sampled  # type: ignore[method-assign]
        await stream.send_data(body(size, 3))
        stream.end()
        sent_all.set()

    async with (
        serving(core, tls, serve_slowly_read_body) as server,
        client(core, server, tls.ca_cert) as conn,
    ):
        stream = await conn.open_stream()
        stream.send_frame(FrameType.REQUEST, b"{}")
        async with asyncio.timeout(WAIT_S * 3):
            await sent_all.wait()  # the reader reads nothing until the sender has finished
            got = b"".join([f.payload async for f in _frames(stream)])
    assert got == body(size, 3)
    assert len(samples) == size // CHUNK
    assert max(samples) >= SEND_HIGH_WATER, "the test never filled the buffer"
    assert max(samples) < SEND_HIGH_WATER + CHUNK + 64


async def _frames(stream: TunnelStream) -> AsyncIterator[Frame]:
    while (frame := await stream.read_frame()) is not None:
        yield frame


async def test_a_reader_too_far_behind_is_reset(core: quic.Core, tls: TlsFiles) -> None:
    server_saw: list[StreamReset] = []
    stopped = asyncio.Event()

    async def serve_endless_body(stream: TunnelStream) -> None:
        await stream.read_frame()
        try:
            while True:  # a live stream: it never ends by itself
                await stream.send_data(bytes(CHUNK))
        except StreamReset as err:
            server_saw.append(err)
            stopped.set()
            raise

    async with (
        serving(core, tls, serve_endless_body) as server,
        client(core, server, tls.ca_cert) as conn,
    ):
        stream = await conn.open_stream()
        stream.send_frame(FrameType.REQUEST, b"{}")
        # The client reads nothing: its adapter buffers up to RECV_LIMIT, then resets.
        async with asyncio.timeout(WAIT_S):
            await stopped.wait()
        assert server_saw[0].code == quic.RESET_SLOW_CONSUMER
        assert (await read_until_reset(stream)).code == quic.RESET_SLOW_CONSUMER
