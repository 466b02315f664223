"""Helpers for tunnel tests against the real in-process relay: enroll an agent, build a client,
record the agent's random draws, and wait on conditions the relay exposes only by polling."""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.enroll import register
from agent.settings import AgentSettings
from agent.store import AgentStore, Identity
from agent.tunnel.client import TunnelClient
from relay.server import RelayServer
from shared import models, quic
from shared.tunnel import control as ctl
from shared.tunnel.errors import FrameError
from shared.tunnel.frames import Frame, FrameType
from shared.tunnel.identity import certificate_fingerprint, sign_auth
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


class RawAgent:
    """An agent speaking the tunnel by hand over real QUIC: it can stay silent, send garbage or
    oversize frames, and read what the relay answers (the relay under test cannot tell it from
    the real agent until it misbehaves)."""

    def __init__(self, conn: quic.TunnelConnection, stream: quic.TunnelStream) -> None:
        self.conn = conn
        self.stream = stream
        self.control: ctl.AgentControl | None = None

    def send(self, data: bytes) -> None:
        """Put raw bytes on the control stream."""
        self.conn._send(self.stream.stream_id, data)

    async def handshake(
        self, device_id: str, key: Ed25519PrivateKey, timeout: float = 10.0
    ) -> ctl.AgentControl:
        """HELLO, sign the CHALLENGE, wait for WELCOME; the session is then OPEN (no pings)."""
        loop = asyncio.get_running_loop()
        control = self.control = ctl.AgentControl(device_id, loop.time())
        fingerprint = certificate_fingerprint(self.conn.peer_certificate_der())
        control.start(loop.time())
        async with asyncio.timeout(timeout):
            while control.state is not ctl.State.OPEN:
                self.send(control.data_to_send())
                frame = await self.stream.read_frame()
                assert frame is not None, "relay ended the control stream"
                for event in control.receive_frame(frame, loop.time()):
                    if isinstance(event, ctl.ChallengeReceived):
                        control.answer_challenge(
                            sign_auth(key, event.nonce, fingerprint, device_id)
                        )
                    assert not isinstance(event, ctl.PeerError), event
            self.send(control.data_to_send())
        return control

    async def frames_until_closed(self, timeout: float = 10.0) -> list[Frame]:
        """Every frame the relay still sends before it ends the stream or the connection."""
        frames: list[Frame] = []
        async with asyncio.timeout(timeout):
            try:
                while (frame := await self.stream.read_frame()) is not None:
                    frames.append(frame)
            except (quic.StreamReset, FrameError):
                pass
            await self.conn.wait_closed()
        return frames

    async def refusal_code(self, timeout: float = 10.0) -> int:
        """The code the relay refused us with: from its ERROR frame when it could send one (a
        real agent then hangs up), else from its CONNECTION_CLOSE (after a framing error the
        control stream is reset and only the close can carry the code)."""
        async with asyncio.timeout(timeout):
            try:
                while (frame := await self.stream.read_frame()) is not None:
                    if frame.type is FrameType.ERROR:
                        return models.ErrorMessage.model_validate_json(frame.payload).code
            except (quic.StreamReset, FrameError):
                pass
            await self.conn.wait_closed()
        return self.conn.close_code


@contextlib.asynccontextmanager
async def raw_agent(server: RelayServer, *, core: str = "qh3") -> AsyncIterator[RawAgent]:
    """A QUIC connection to ``server`` with its control stream opened (nothing sent yet)."""
    async with quic.connect(
        "127.0.0.1",
        server.port,
        core=core,  # type: ignore[arg-type]
        cafile=server.settings.tls_dir / "ca.pem",
        server_name="127.0.0.1",
    ) as conn:
        yield RawAgent(conn, await conn.open_stream())


async def history_rows(server: RelayServer) -> list[dict[str, Any]]:
    """Log in as the owner and read the whole connection history over HTTPS, oldest first."""
    ctx = ssl.create_default_context(cafile=str(server.settings.tls_dir / "ca.pem"))
    base = f"https://127.0.0.1:{server.port}/api/v1"
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base}/auth/login", json={"email": OWNER, "password": PASSWORD}, ssl=ctx
        ) as resp:
            token = (await resp.json())["token"]
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{base}/connection-history", headers=headers, ssl=ctx) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
    return list(reversed(body["items"]))
