"""Connection history written by the real tunnel (DEV-7): every connect and disconnect of a
device, with its reason, read back through the relay's HTTPS API after a restart.

One relay in this process on 127.0.0.1 over real QUIC; the agents are the real tunnel client
and hand-driven "raw" agents (for a silent one and a duplicate one).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from relay.cli_account import create_account
from relay.server import RelayServer
from tests.relay.conftest import OWNER, PASSWORD, make_settings
from tests.relay.tunnel_kit import (
    enroll,
    eventually,
    history_rows,
    make_client,
    raw_agent,
    stop_task,
)


# spec: DEV-7
async def test_the_tunnel_records_each_connect_and_disconnect_with_its_reason(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path / "relay",
        listen_host="127.0.0.1",
        listen_port=0,
        agent_dead_after_s=1.0,
        goaway_retry_after_s=0.0,
    )
    await create_account(settings, OWNER, "Owner", PASSWORD)
    relay = RelayServer(settings)
    await relay.start()
    assert relay.listener is not None
    registry = relay.listener.registry
    try:
        store, identity = await enroll(relay, tmp_path / "agent", name="Shop")
        device, key = identity.device_id, store.load_key()

        impostor = make_client(identity, Ed25519PrivateKey.generate())
        await asyncio.gather(asyncio.wait_for(impostor._session(), 10), return_exceptions=True)

        async with raw_agent(relay) as first:
            await first.handshake(device, key)
            first_session = registry.get(device)
            async with raw_agent(relay) as second:  # same device again: replaces the first
                await second.handshake(device, key)
                await first.frames_until_closed()
                assert registry.get(device) is not first_session
                # ``second`` never pings: the relay drops it after agent_dead_after_s.
                await second.frames_until_closed()
        await eventually(lambda: registry.get(device) is None, 5, "the silent agent dropped")

        agent = make_client(identity, key, heartbeat_interval_s=0.5)
        task = asyncio.create_task(agent.run_forever())
        await asyncio.wait_for(agent.connected.wait(), 10)
        await stop_task(task, agent)  # the agent hangs up
        await eventually(lambda: registry.get(device) is None, 5, "the agent's hang-up")

        task = asyncio.create_task(agent.run_forever())
        await asyncio.wait_for(agent.connected.wait(), 10)
        await relay.stop()  # graceful: GOAWAY
        await stop_task(task, agent)
    finally:
        await relay.stop()

    relay = RelayServer(settings.model_copy(update={"listen_port": relay.port}))
    await relay.start()
    try:
        rows = await history_rows(relay)
    finally:
        await relay.stop()
    assert [(r["status"], r["reason"], r["refused"]) for r in rows] == [
        ("disconnected", "refused: key proof failed", True),
        ("connected", "authenticated", False),
        ("disconnected", "replaced by newer connection", False),
        ("connected", "authenticated", False),
        ("disconnected", "heartbeat timeout", False),
        ("connected", "authenticated", False),
        ("disconnected", "agent closed", False),
        ("connected", "authenticated", False),
        ("disconnected", "relay shutting down", False),
    ]
    assert all(r["device_name"] == "Shop" for r in rows)
    assert all(r["address"].startswith("127.0.0.1:") for r in rows)
    assert all(r["transport"] == "quic" for r in rows if not r["refused"])
