"""The TLS/TCP fallback against the real in-process relay (no root needed).

"UDP blocked" is played by closing the relay's QUIC listener (nothing answers on the UDP port,
the HTTPS port still does); "UDP back" by opening it again on the same port. The agent's own
tunnel client, the relay's WebSocket endpoint and the multiplexer are all real.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from agent.tunnel.client import TunnelClient
from agent.tunnel.transport import Mode
from relay.server import RelayServer
from shared import models, quic, tcp
from shared.tunnel.frames import FrameType
from tests.relay.tunnel_kit import enroll, eventually, history_rows, make_client, stop_task

#: Short timers so a fallback and a return both happen within a few seconds.
FAST = {"quic_probe_timeout_s": 1.0, "quic_reprobe_interval_s": 1.0, "heartbeat_interval_s": 2}


def _block_udp(relay: RelayServer) -> None:
    """Close the QUIC listener: the UDP port goes silent, HTTPS stays up."""
    assert relay.listener is not None
    assert relay.listener._server is not None
    relay.listener._server.close()


async def _unblock_udp(relay: RelayServer) -> None:
    """Listen for QUIC again on the same port."""
    assert relay.listener is not None
    await relay.listener.start("127.0.0.1", relay.port)


def _session_transport(relay: RelayServer, device_id: str) -> str:
    assert relay.listener is not None
    session = relay.listener.registry.get(device_id)
    return session.conn.transport if session is not None else ""


async def test_udp_blocked_agent_uses_tcp_then_returns_to_quic(
    relay: RelayServer, tmp_path: Path
) -> None:
    """QUIC silent: the agent authenticates over TLS/TCP; QUIC back: it moves to QUIC."""
    store, identity = await enroll(relay, tmp_path / "agent")
    _block_udp(relay)
    client = make_client(identity, store.load_key(), **FAST)
    started = time.monotonic()
    task = asyncio.create_task(client.run_forever())
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        assert time.monotonic() - started < 5
        assert client.status.transport == "tcp"
        assert client.policy.mode is Mode.FALLBACK
        await eventually(lambda: _session_transport(relay, identity.device_id) == "tcp", 5, "tcp")

        await _unblock_udp(relay)
        await eventually(lambda: client.status.transport == "quic", 10, "the move to QUIC")
        await eventually(
            lambda: _session_transport(relay, identity.device_id) == "quic", 5, "relay on QUIC"
        )
        assert client.policy.mode is Mode.QUIC
        # DEV-7: the history says what carried each tunnel
        connects = [r["transport"] for r in await history_rows(relay) if r["status"] == "connected"]
        assert (connects[0], connects[-1]) == ("tcp", "quic"), connects
    finally:
        await stop_task(task, client)


def _client_serving(identity: object, key: object, body: bytes, **settings: float) -> TunnelClient:
    """A client that answers every request with ``body`` as DATA, then FIN."""
    client = make_client(identity, key, **settings)  # type: ignore[arg-type]

    async def serve(stream: quic.TunnelStream) -> None:
        await stream.read_frame()
        stream.send_message(FrameType.RESPONSE, models.Response(content_type="application/x"))
        await stream.send_data(body)
        stream.end()

    client._handle_request = serve
    return client


async def test_request_streams_carry_a_large_body_over_tcp(
    relay: RelayServer, tmp_path: Path
) -> None:
    """A 5 MB body (more than two stream windows) arrives intact through the fallback."""
    store, identity = await enroll(relay, tmp_path / "agent")
    _block_udp(relay)
    body = bytes(range(256)) * (5 * 1024 * 1024 // 256)
    client = _client_serving(identity, store.load_key(), body, **FAST)
    task = asyncio.create_task(client.run_forever())
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        assert relay.listener is not None
        session = relay.listener.registry.get(identity.device_id)
        assert session is not None
        assert isinstance(session.conn, tcp.MuxTunnelConnection)
        broker_request = models.Request(kind="snapshot", camera="x")
        stream = await session.open_request_stream()
        stream.send_message(FrameType.REQUEST, broker_request)
        header = await asyncio.wait_for(stream.read_frame(), 5)
        assert header is not None
        assert header.type is FrameType.RESPONSE
        received = bytearray()
        async with asyncio.timeout(20):
            while (frame := await stream.read_frame()) is not None:
                received += frame.payload
        assert bytes(received) == body
    finally:
        await stop_task(task, client)


async def test_a_viewer_that_stops_reading_does_not_stall_the_tunnel(
    relay: RelayServer, tmp_path: Path
) -> None:
    """One stream left unread with 8 MB pending: a second request still completes at once,
    and the session stays alive (heartbeats flow on the control stream meanwhile)."""
    store, identity = await enroll(relay, tmp_path / "agent")
    _block_udp(relay)
    body = bytes(8 * 1024 * 1024)
    client = _client_serving(identity, store.load_key(), body, **FAST)
    task = asyncio.create_task(client.run_forever())
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        assert relay.listener is not None
        session = relay.listener.registry.get(identity.device_id)
        assert session is not None
        stalled = await session.open_request_stream()
        stalled.send_message(FrameType.REQUEST, models.Request(kind="snapshot", camera="x"))
        await asyncio.wait_for(stalled.read_frame(), 5)  # header read, body never
        for _ in range(3):
            stream = await session.open_request_stream()
            stream.send_message(FrameType.REQUEST, models.Request(kind="snapshot", camera="y"))
            got = 0
            async with asyncio.timeout(10):
                while (frame := await stream.read_frame()) is not None:
                    got += len(frame.payload) if frame.type is FrameType.DATA else 0
            assert got == len(body)
            await asyncio.sleep(1.5)  # not a sync: lets heartbeats run while the stall holds
        assert client.status.connected
        assert relay.listener.registry.get(identity.device_id) is session
    finally:
        await stop_task(task, client)


async def test_garbage_on_the_fallback_socket_is_a_protocol_error_not_a_crash(
    relay: RelayServer,
) -> None:
    """Malformed mux bytes close that socket with PROTOCOL_ERROR; the relay serves on."""
    import ssl

    import aiohttp

    from shared.tunnel import mux
    from shared.tunnel.codes import TunnelCode

    ctx = ssl.create_default_context(cafile=str(relay.settings.tls_dir / "ca.pem"))
    url = f"https://127.0.0.1:{relay.port}{tcp.TUNNEL_PATH}"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, protocols=[tcp.SUBPROTOCOL], ssl=ctx) as ws:
            await ws.send_bytes(b"\xff" * 64)
            msg = await asyncio.wait_for(ws.receive(), 5)
            assert msg.type is aiohttp.WSMsgType.BINARY
            (frame,) = mux.MuxDecoder().feed(msg.data)
            assert frame.type is mux.MuxType.CLOSE
            assert int.from_bytes(frame.payload[:4], "big") == TunnelCode.PROTOCOL_ERROR
            closing = await asyncio.wait_for(ws.receive(), 5)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        async with http.get(url, ssl=ctx) as plain:  # no subprotocol offered: refused
            assert plain.status == 400
        async with http.get(
            f"https://127.0.0.1:{relay.port}/api/v1/openapi.json", ssl=ctx
        ) as still_up:
            assert still_up.status == 200
            tunnel_op = (await still_up.json())["paths"][tcp.TUNNEL_PATH]["get"]
    assert "101" in tunnel_op["responses"]
    assert tunnel_op["security"] == []  # agents prove their key inside, not with a session
