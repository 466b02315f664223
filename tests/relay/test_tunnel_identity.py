"""Device identity at the tunnel: the relay admits a device only with the key it enrolled.

Real parts end to end in one process: the relay server (HTTPS + QUIC on one port of 127.0.0.1),
enrollment over HTTPS by the agent's own code, and the agent's tunnel client over real QUIC on
both cores.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.enroll import register
from agent.settings import AgentSettings
from agent.store import AgentStore, Identity
from agent.tunnel.client import Refused, TunnelClient
from relay.server import RelayServer
from shared import models, quic
from shared.tunnel.codes import TunnelCode
from tests.relay.conftest import OWNER, PASSWORD

CORES = ["qh3", "aioquic"]


async def _enroll(server: RelayServer, data_dir: Path) -> tuple[AgentStore, Identity]:
    """Register an agent the way ``rmon-agent register`` does."""
    store = AgentStore(data_dir)
    ca = (server.settings.tls_dir / "ca.pem").read_bytes()
    identity = await register(
        store, f"https://127.0.0.1:{server.port}", OWNER, PASSWORD, relay_ca_pem=ca, name="site"
    )
    return store, identity


def _client(identity: Identity, key: Ed25519PrivateKey, core: str) -> TunnelClient:
    """A tunnel client with no cameras that answers no requests."""

    async def no_requests(stream: quic.TunnelStream) -> None:
        stream.reset(quic.RESET_INTERNAL)

    return TunnelClient(
        AgentSettings(quic_core=core, heartbeat_interval_s=2),
        identity,
        key,
        handle_request=no_requests,
        inventory=lambda: models.Inventory(cameras=[]),
    )


# spec: DEV-10
@pytest.mark.parametrize("core", CORES)
async def test_device_id_without_its_key_is_refused(
    relay: RelayServer, tmp_path: Path, core: str
) -> None:
    """An impostor naming a real device id, signing with another key, gets AUTH_FAILED."""
    _, victim = await _enroll(relay, tmp_path / "victim")
    impostor = _client(victim, Ed25519PrivateKey.generate(), core)

    with pytest.raises(Refused) as refused:
        await asyncio.wait_for(impostor._session(), 10)

    assert refused.value.code == TunnelCode.DEVICE_AUTH_FAILED
    assert relay.listener is not None
    assert relay.listener.registry.get(victim.device_id) is None
    assert not impostor.status.connected


# spec: DEV-10
@pytest.mark.parametrize("core", CORES)
async def test_the_enrolled_key_is_admitted_and_an_impostor_cannot_displace_it(
    relay: RelayServer, tmp_path: Path, core: str
) -> None:
    """The genuine agent connects; an impostor's attempt leaves its session untouched."""
    store, identity = await _enroll(relay, tmp_path / "genuine")
    genuine = _client(identity, store.load_key(), core)
    task = asyncio.create_task(genuine.run_forever())
    try:
        await asyncio.wait_for(genuine.connected.wait(), 10)
        assert relay.listener is not None
        session = relay.listener.registry.get(identity.device_id)
        assert session is not None

        impostor = _client(identity, Ed25519PrivateKey.generate(), core)
        with pytest.raises(Refused):
            await asyncio.wait_for(impostor._session(), 10)

        assert relay.listener.registry.get(identity.device_id) is session
        assert genuine.status.connected
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await genuine.close()
