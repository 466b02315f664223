"""Throughput of one tunnel stream over QUIC (qh3) and over the TLS/TCP fallback, same run.

Both ends in one process on 127.0.0.1 (so the CPU figure is both ends together), TLS material
made by the relay's own code. The agent side sends ``--mb`` MB as DATA frames on one stream; the
relay side reads them as the live forwarder does.

    .venv/bin/python -m bench.fallback_throughput --mb 64
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from relay.tls import TlsFiles, ensure_tls
from shared import quic, tcp

CHUNK = 64 * 1024
Conn = quic.TunnelConnection


async def _receive(stream: quic.TunnelStream, done: asyncio.Future[int]) -> None:
    total = 0
    while (frame := await stream.read_frame()) is not None:
        total += len(frame.payload) + len(stream.take_ready_data(256 * 1024))
    done.set_result(total)


def _on_conn(done: asyncio.Future[int]) -> Callable[[quic.TunnelConnection], None]:
    """Count what arrives on each new stream; the tasks are kept so none is collected early."""
    tasks: set[asyncio.Task[None]] = set()

    def on_stream(stream: quic.TunnelStream) -> None:
        task = asyncio.ensure_future(_receive(stream, done))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def on_conn(conn: quic.TunnelConnection) -> None:
        conn.on_stream = on_stream

    return on_conn


@contextlib.asynccontextmanager
async def _quic_pair(tls: TlsFiles, done: asyncio.Future[int]) -> AsyncIterator[Conn]:
    server = await quic.serve(
        "127.0.0.1", 0, certfile=tls.cert, keyfile=tls.key, on_connection=_on_conn(done)
    )
    try:
        async with quic.connect("127.0.0.1", server.port, cafile=tls.ca_cert) as conn:
            yield conn
    finally:
        server.close()


@contextlib.asynccontextmanager
async def _tcp_pair(tls: TlsFiles, done: asyncio.Future[int]) -> AsyncIterator[Conn]:
    import ssl

    async def handler(request: web.Request) -> web.StreamResponse:
        ws, conn = await tcp.accept(request)
        _on_conn(done)(conn)
        try:
            await conn.run()
        finally:
            await conn.finish()
        return ws

    app = web.Application()
    app.router.add_get(tcp.TUNNEL_PATH, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls.cert, tls.key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with tcp.connect("127.0.0.1", port, cafile=tls.ca_cert) as conn:
            yield conn
    finally:
        await runner.cleanup()


async def _run(name: str, tls: TlsFiles, size: int) -> str:
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    pair = _quic_pair if name == "quic" else _tcp_pair
    async with pair(tls, done) as conn:
        stream = await conn.open_stream()
        payload = bytes(CHUNK)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(size // CHUNK):
            await stream.send_data(payload, chunk=CHUNK)
        stream.end()
        received = await asyncio.wait_for(done, 120)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    mb = received / 1e6
    return f"{name:5s} {mb:7.1f} MB  {mb / wall:7.1f} MB/s  {cpu / (mb / 1000):6.1f} CPU-s/GB"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64, help="megabytes per transport")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tls = ensure_tls(Path(tmp), ["127.0.0.1"])
        for name in ("quic", "tcp"):
            print(await _run(name, tls, args.mb * 1024 * 1024), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
