"""Liveness of the tunnel: pings, noticing a dead relay, GOAWAY spreading, backoff reset.

The timing rules are checked twice: on the sans-I/O machines with a fake clock for the default
settings (15 s would be slow to wait for), and over real QUIC against the in-process relay for
the behaviour of the agent's reconnect loop.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import update

from agent.settings import AgentSettings
from agent.tunnel.client import LIVENESS_LIMIT_S, goaway_delay, liveness
from relay.cli_account import create_account
from relay.server import RelayServer
from relay.settings import RelaySettings
from relay.store.schema import devices
from shared.testing import ControlPair
from shared.tunnel.control import PeerSilent
from shared.tunnel.frames import FrameType
from shared.tunnel.identity import public_key_raw
from tests.relay.conftest import OWNER, PASSWORD, make_settings
from tests.relay.tunnel_kit import RecordingRandom, enroll, eventually, make_client, stop_task

KEY = Ed25519PrivateKey.generate()


def _pair_for(heartbeat_s: float) -> ControlPair:
    """Both machines configured the way agent and relay configure them for this heartbeat."""
    ping_every, dead_after = liveness(heartbeat_s)
    relay_heartbeat = RelaySettings(data_dir=Path("/nonexistent")).heartbeat_interval_s
    pair = ControlPair.create(
        heartbeat_interval_s=min(ping_every, relay_heartbeat), agent_dead_after_s=dead_after
    )
    pair.agent.heartbeat_interval_s = ping_every  # the relay's WELCOME may only lower it
    pair.handshake(KEY)
    return pair


def _notices_silence_within(pair: ControlPair, limit: float) -> bool:
    """Cut the link just after the agent last heard the relay; is it reported silent in time?

    The worst case for the agent is a relay that dies right after answering a PING: everything
    it can still go by is that last PONG.
    """
    pong_seen = sum(f.type is FrameType.PONG for f in pair.relay_sent)
    while sum(f.type is FrameType.PONG for f in pair.relay_sent) == pong_seen:
        pair.advance(0.01)
    pair.connected = False
    agent_events, _ = pair.advance(limit)
    return any(isinstance(e, PeerSilent) for e in agent_events)


def test_default_settings_ping_within_15_s_and_notice_a_dead_relay_within_15_s() -> None:
    """With nothing configured, the agent pings at most every 15 s and gives up on a silent
    relay within 15 s (DESIGN.md, Liveness: NATs cut idle flows, a dead relay must not look
    alive for long)."""
    heartbeat = AgentSettings().heartbeat_interval_s
    ping_every, dead_after = liveness(heartbeat)
    assert ping_every <= 15.0
    assert dead_after <= LIVENESS_LIMIT_S
    pair = _pair_for(heartbeat)
    pings_before = sum(f.type is FrameType.PING for f in pair.agent_sent)
    pair.advance(60.0)
    pings = sum(f.type is FrameType.PING for f in pair.agent_sent) - pings_before
    assert pings >= 60.0 / 15.0
    assert _notices_silence_within(pair, 15.0)


@pytest.mark.parametrize("heartbeat", [0.5, 2.0, 10.0, 14.0, 15.0])
def test_every_allowed_heartbeat_keeps_a_healthy_link_and_drops_a_dead_one(
    heartbeat: float,
) -> None:
    """A heartbeat of 15 s (the settings' maximum) must not make a healthy relay look dead."""
    pair = _pair_for(heartbeat)
    agent_events, _ = pair.advance(120.0)
    assert not any(isinstance(e, PeerSilent) for e in agent_events)
    assert _notices_silence_within(pair, LIVENESS_LIMIT_S)


def test_goaway_delays_spread_over_the_whole_window() -> None:
    """1 000 agents told "come back in 10 s" arrive spread over the 10 s, not together."""
    rng = random.Random(7)
    delays = [goaway_delay(10.0, rng) for _ in range(1000)]
    assert all(0.0 <= d <= 10.0 for d in delays)
    per_second = [sum(int(d) == s for d in delays) for s in range(10)]
    assert min(per_second) > 60  # uniform: ~100 per second, never a stampede in one second
    assert max(per_second) < 140
    assert goaway_delay(0.0, rng) == 0.0


# --- over real QUIC --------------------------------------------------------------------------


@pytest.fixture
async def relay_factory(tmp_path: Path) -> AsyncIterator[list[RelayServer]]:
    """Relays sharing one data dir (and, once the first chose it, one port); all stopped at end."""
    servers: list[RelayServer] = []
    yield servers
    for server in servers:
        await server.stop()


async def _start_relay(servers: list[RelayServer], data_dir: Path, port: int = 0) -> RelayServer:
    settings = make_settings(
        data_dir, listen_host="127.0.0.1", listen_port=port, goaway_retry_after_s=2.0
    )
    if not (data_dir / "relay.db").exists():
        await create_account(settings, OWNER, "Owner", PASSWORD)
    server = RelayServer(settings)
    await server.start()
    servers.append(server)
    return server


async def test_agent_comes_back_at_a_random_point_of_the_goaway_window(
    relay_factory: list[RelayServer], tmp_path: Path
) -> None:
    """GOAWAY "come back in 2 s": the agent draws its delay from [0, 2] and waits that long."""
    relay = await _start_relay(relay_factory, tmp_path / "relay")
    store, identity = await enroll(relay, tmp_path / "agent")
    rng = RecordingRandom(0.75)
    client = make_client(identity, store.load_key(), rng=rng, heartbeat_interval_s=2)
    task = asyncio.create_task(client.run_forever())
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        stopped_at = time.monotonic()
        await relay.stop()
        relay_factory.remove(relay)
        await eventually(lambda: not client.connected.is_set(), 5, "the agent to see GOAWAY")
        await _start_relay(relay_factory, tmp_path / "relay", relay.port)
        await asyncio.wait_for(client.connected.wait(), 10)
        back_after = time.monotonic() - stopped_at
    finally:
        await stop_task(task, client)
    assert (0.0, 2.0) in rng.windows
    assert back_after >= 0.75 * 2.0


async def test_backoff_starts_afresh_after_an_authenticated_session(
    relay_factory: list[RelayServer], tmp_path: Path
) -> None:
    """Failed attempts widen the jitter window 0.5, 1, 2, 4 s; once a session got through, the
    next failure starts again at 0.5 s instead of waiting up to the cap."""
    relay = await _start_relay(relay_factory, tmp_path / "relay")
    store, identity = await enroll(relay, tmp_path / "agent")
    assert relay.listener is not None
    relay_store = relay.listener.store
    right_key = store.load_key()

    async def register_key(key: Ed25519PrivateKey) -> None:
        async with relay_store.engine.begin() as conn:
            await conn.execute(
                update(devices)
                .where(devices.c.id == identity.device_id)
                .values(public_key=public_key_raw(key).hex())
            )

    await register_key(Ed25519PrivateKey.generate())  # every attempt is refused, quickly
    rng = RecordingRandom(0.0)  # no actual waiting: the windows are what is under test
    client = make_client(identity, right_key, rng=rng, reconnect_max_backoff_s=4)
    task = asyncio.create_task(client.run_forever())
    try:
        await eventually(lambda: len(rng.windows) >= 5, 30, "five refused attempts")
        await register_key(right_key)
        await asyncio.wait_for(client.connected.wait(), 10)
        before = len(rng.windows)
        await register_key(Ed25519PrivateKey.generate())
        session = relay.listener.registry.get(identity.device_id)
        assert session is not None
        session.conn.close(reason="test cuts the session")
        await eventually(lambda: len(rng.windows) >= before + 2, 30, "two refused attempts")
    finally:
        await stop_task(task, client)
    assert rng.windows[:5] == [(0, 0.5), (0, 1.0), (0, 2.0), (0, 4.0), (0, 4.0)]
    assert rng.windows[before : before + 2] == [(0, 0.5), (0, 1.0)]
