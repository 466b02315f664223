"""Helpers for tunnel tests against the real in-process relay: enroll an agent, build a client,
record the agent's random draws, and wait on conditions the relay exposes only by polling."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.enroll import register
from agent.settings import AgentSettings
from agent.store import AgentStore, Identity
from agent.tunnel.client import TunnelClient
from relay.server import RelayServer
from shared import models, quic
from tests.relay.conftest import OWNER, PASSWORD


class RecordingRandom(random.Random):
    """An RNG that always picks the same point of each window and records every window.

    ``fraction`` 0.0 returns the window's start, 1.0 its end; tests read ``windows`` to see
    which (low, high) ranges the code under test drew from.
    """

    def __init__(self, fraction: float) -> None:
        super().__init__(0)
        self.fraction = fraction
        self.windows: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        """Record the window, return the fixed point in it."""
        self.windows.append((a, b))
        return a + (b - a) * self.fraction


async def enroll(
    server: RelayServer, data_dir: Path, name: str = "site"
) -> tuple[AgentStore, Identity]:
    """Register an agent the way ``rmon-agent register`` does (over HTTPS to the relay)."""
    store = AgentStore(data_dir)
    ca = (server.settings.tls_dir / "ca.pem").read_bytes()
    identity = await register(
        store, f"https://127.0.0.1:{server.port}", OWNER, PASSWORD, relay_ca_pem=ca, name=name
    )
    return store, identity


def make_client(
    identity: Identity,
    key: Ed25519PrivateKey,
    *,
    core: str = "qh3",
    rng: random.Random | None = None,
    **settings: float,
) -> TunnelClient:
    """A tunnel client with no cameras that refuses every request."""

    async def no_requests(stream: quic.TunnelStream) -> None:
        stream.reset(quic.RESET_INTERNAL)

    return TunnelClient(
        AgentSettings(quic_core=core, **settings),  # type: ignore[arg-type]
        identity,
        key,
        handle_request=no_requests,
        inventory=lambda: models.Inventory(cameras=[]),
        rng=rng,
    )


async def eventually(cond: Callable[[], object], timeout: float, what: str) -> None:
    """Wait until ``cond()`` is true; for state only visible by looking (store rows, a registry).

    Each check yields to the loop for one short tick, so the relay and agent tasks run between.
    """
    try:
        async with asyncio.timeout(timeout):
            while not cond():  # noqa: ASYNC110 -- the state has no event to wait on
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


async def stop_task(task: asyncio.Task[None], client: TunnelClient) -> None:
    """Cancel a client's run task and its request tasks."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close()
