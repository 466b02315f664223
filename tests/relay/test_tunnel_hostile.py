"""Hostile agents over real QUIC: garbage and oversize frames on the control stream end that
connection with the PROTOCOL_ERROR code, and the relay keeps serving everybody else.

The relay runs in this process on 127.0.0.1 (both QUIC cores); a genuine agent stays connected
through every attack, and a fresh agent must still be able to connect after them.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp
import pytest

from relay.server import RelayServer
from shared.tunnel.codes import TunnelCode
from shared.tunnel.frames import HEADER, FrameType, encode_frame
from tests.relay.tunnel_kit import enroll, eventually, make_client, raw_agent, stop_task

CORES = ["qh3", "aioquic"]


def _header(frame_type: int, length: int, version: int = 1, flags: int = 0) -> bytes:
    return HEADER.pack(version, frame_type, flags, length)


#: Attacks before any handshake: bytes on a fresh control stream.
BEFORE_HELLO = {
    "random garbage": b"\x00\xff" * 64,
    "unknown frame type": _header(0x7E, 2) + b"{}",
    "wrong frame version": _header(FrameType.HELLO, 2, version=9) + b"{}",
    "reserved flags": _header(FrameType.HELLO, 2, flags=1) + b"{}",
    "oversize HELLO": _header(FrameType.HELLO, 10 * 1024 * 1024) + b"{" * 1000,
    "oversize INVENTORY": _header(FrameType.INVENTORY, 2**32 - 1),
    "HELLO not JSON": encode_frame(FrameType.HELLO, b"\xff\xfe not json"),
    "HELLO id too long": encode_frame(
        FrameType.HELLO, b'{"device_id": "' + b"d" * 5000 + b'", "protocol_version": 1}'
    ),
    "DATA on the control stream": encode_frame(FrameType.DATA, b"x" * 100),
}

#: Attacks from an agent that has authenticated (with its own enrolled key).
AFTER_AUTH = {
    "inventory of 100k cameras": encode_frame(
        FrameType.INVENTORY, b'{"cameras": [' + b",".join([b'{"local_id": "c"}'] * 20_000) + b"]}"
    ),
    "inventory string bomb": encode_frame(
        FrameType.INVENTORY, b'{"cameras": [{"local_id": "' + b"x" * 200_000 + b'"}]}'
    ),
    "second HELLO": encode_frame(FrameType.HELLO, b'{"device_id": "x", "protocol_version": 1}'),
    "oversize PING": _header(FrameType.PING, 300 * 1024),
    "nested JSON bomb": encode_frame(FrameType.PING, b"[" * 100_000),
    "REQUEST from the agent": encode_frame(FrameType.REQUEST, b'{"kind": "live", "camera": "c"}'),
}


async def _api_still_answers(server: RelayServer) -> None:
    ctx = ssl.create_default_context(cafile=str(server.settings.tls_dir / "ca.pem"))
    url = f"https://127.0.0.1:{server.port}/api/v1/openapi.json"
    async with aiohttp.ClientSession() as http, http.get(url, ssl=ctx) as resp:
        assert resp.status == 200


@pytest.mark.parametrize("core", CORES)
async def test_hostile_control_streams_get_protocol_errors_and_others_keep_working(
    relay: RelayServer, tmp_path: Path, core: str
) -> None:
    assert relay.listener is not None
    registry = relay.listener.registry
    store, genuine = await enroll(relay, tmp_path / "genuine", name="genuine")
    attacker_store, attacker = await enroll(relay, tmp_path / "attacker", name="attacker")
    attacker_key = attacker_store.load_key()
    # The default 5 s heartbeat: with 1 s a loaded CI machine once stalled past the agent's
    # liveness limit on aioquic and the genuine agent reconnected (a new session, not the attack).
    client = make_client(genuine, store.load_key(), core=core)
    task = asyncio.create_task(client.run_forever())
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        session = registry.get(genuine.device_id)
        attacks = [(name, data, False) for name, data in BEFORE_HELLO.items()]
        attacks += [(name, data, True) for name, data in AFTER_AUTH.items()]
        for name, data, authenticate in attacks:
            async with raw_agent(relay, core=core) as raw:
                if authenticate:
                    await raw.handshake(attacker.device_id, attacker_key)
                raw.send(data)
                assert await raw.refusal_code() == TunnelCode.PROTOCOL_ERROR, name
            assert registry.get(genuine.device_id) is session, name
            assert client.status.connected, name
        await eventually(lambda: registry.get(attacker.device_id) is None, 5, "attacker gone")

        async with raw_agent(relay, core=core) as fresh:  # a well-behaved newcomer still gets in
            await fresh.handshake(attacker.device_id, attacker_key)
            assert registry.get(attacker.device_id) is not None
        await _api_still_answers(relay)
    finally:
        await stop_task(task, client)
