"""Tunnel faults with real processes: UDP blocked (TLS/TCP fallback and return), 10 % packet loss.

The relay and the camera (ipycam) run inside a network namespace; the agent runs on the host and
reaches both over the veth link. nftables rules inside the namespace, matching only the relay's
port, play the network: ``udp dport PORT drop`` for a site whose firewall blocks UDP, and
``numgen random mod 10 == 0 drop`` in both directions on the tunnel's UDP for a lossy uplink.
The camera's RTSP is not on that port, so only the tunnel suffers. Live video is read the way
the portal reads it: the relay's WebSocket (aiohttp client), checked to be fMP4 that keeps coming.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import AGENT_ENV_FAST, EMAIL, PASSWORD, _require_root, api
from tests.peers import stack
from tests.peers.ipycam import IpycamProcess, start_ipycam
from tests.peers.netns import SiteLink, allocated_site_netns, netns_argv, run_in_netns

pytestmark = [pytest.mark.e2e, pytest.mark.netns]

TABLE = "rmonfault"
#: A gap between media messages longer than this is a visible freeze (seconds).
STALL_S = 0.5
#: The agent tries QUIC again every 3 s while on TCP, and gives QUIC 3 s before falling back.
AGENT_ENV_FAULTS = {
    **AGENT_ENV_FAST,
    "RMON_AGENT_QUIC_PROBE_TIMEOUT_S": "3",
    "RMON_AGENT_QUIC_REPROBE_INTERVAL_S": "3",
}


@dataclass
class Rig:
    """Relay and camera in a netns, agent on the host, and the viewer's token."""

    link: SiteLink
    relay: stack.Relay
    cam: IpycamProcess
    agent: stack.Proc
    agent_dir: Path
    token: str
    #: time.monotonic() when the agent process was started
    agent_started: float

    def nft(self, *rule: str) -> None:
        """One nft command inside the namespace (the rules play the site's network)."""
        _nft(self.link, *rule)

    def block_udp(self) -> None:
        _block_udp(self.link, self.relay.port)

    def lose_one_in_ten(self) -> None:
        """10 % random loss each way on the agent's tunnel (QUIC: UDP to the relay's port).

        UDP only: the test's viewer reaches the relay's HTTPS port over the same veth, and its
        WebSocket is not the site's uplink. Losing its TCP segments too showed up as 1-2.5 s
        RTO stalls on the viewer's side that said nothing about the tunnel.
        """
        port = str(self.relay.port)
        for chain, direction in (("input", "dport"), ("output", "sport")):
            self.nft(
                "add", "rule", "inet", TABLE, chain, "udp", direction, port,
                "numgen", "random", "mod", "10", "==", "0", "counter", "drop",
            )  # fmt: skip

    def heal(self) -> None:
        self.nft("flush", "table", "inet", TABLE)

    def dropped(self) -> int:
        """Packets the rules dropped so far (proves the fault really hit the tunnel)."""
        out = run_in_netns(self.link.name, ["nft", "list", "table", "inet", TABLE]).stdout
        return sum(int(n) for n in re.findall(r"counter packets (\d+)", out))

    def agent_status(self) -> dict[str, Any]:
        """What ``rmon-agent status`` shows about the running tunnel."""
        out = stack.run_cli(
            [str(stack.VENV_BIN / "rmon-agent"), "status", "--data-dir", str(self.agent_dir)]
        )
        running = json.loads(out.stdout).get("running", {})
        return dict(running.get("tunnel", {}))


def _nft(link: SiteLink, *rule: str) -> None:
    """One nft command inside the namespace."""
    result = run_in_netns(link.name, ["nft", *rule])
    assert result.returncode == 0, result.stderr


def _block_udp(link: SiteLink, port: int) -> None:
    """The site's firewall drops UDP to the relay (TCP to the same port still passes)."""
    _nft(link, "add", "rule", "inet", TABLE, "input", "udp", "dport", str(port), "counter", "drop")


def _start_relay_in_netns(link: SiteLink, data_dir: Path) -> stack.Relay:
    """``rmon-relay serve`` inside the namespace, on its end of the veth."""
    argv = [
        str(stack.VENV_BIN / "rmon-relay"),
        "serve",
        "--data-dir",
        str(data_dir),
        "--listen",
        f"{link.ns_ip}:0",
    ]
    proc = stack.start(argv, data_dir / "relay.log", prefix=netns_argv(link.name, []))
    match = stack.wait_for_log(proc, stack.LISTEN_RE, 30)
    return stack.Relay(proc, data_dir, match.group(1), int(match.group(2)))


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """Everything started and the agent online, with no fault applied."""
    _require_root()
    if not _nft_available():
        pytest.skip("nftables (nft) is not installed")
    base = tmp_path_factory.mktemp("faults")
    with allocated_site_netns("rmon-fault") as link, start_ipycam(link.name, link.ns_ip) as cam:
        _nft(link, "add", "table", "inet", TABLE)
        for chain in ("input", "output"):
            spec = f"{{ type filter hook {chain} priority 0; policy accept; }}"
            _nft(link, "add", "chain", "inet", TABLE, chain, spec)
        relay = _start_relay_in_netns(link, base / "relay")
        try:
            assert stack.create_account(relay, EMAIL, "Owner", PASSWORD).returncode == 0
            agent_dir = base / "agent"
            result = stack.register_agent(agent_dir, relay, EMAIL, PASSWORD)
            assert result.returncode == 0, result.stderr
            _block_udp(link, relay.port)  # from the agent's very first connection
            agent_started = time.monotonic()
            agent = stack.start_agent(agent_dir, env=_agent_env(link, cam))
            try:
                login = {"email": EMAIL, "password": PASSWORD}
                token = api(relay, "POST", "/api/v1/auth/login", login)["token"]
                yield Rig(link, relay, cam, agent, agent_dir, token, agent_started)
            finally:
                agent.stop()
        finally:
            relay.proc.stop()


def _agent_env(link: SiteLink, cam: IpycamProcess) -> dict[str, str]:
    """Fast timers; the camera named explicitly (discovery is not under test here)."""
    return {
        **AGENT_ENV_FAULTS,
        "RMON_AGENT_DISCOVERY_INTERFACES": json.dumps([link.host_ip]),
        "RMON_AGENT_CAMERAS": json.dumps([{"xaddr": cam.xaddr}]),
    }


def _online_camera(rig: Rig) -> dict[str, Any] | None:
    """The first online camera of an online device."""
    for device in api(rig.relay, "GET", "/api/v1/devices", token=rig.token)["devices"]:
        if device["online"]:
            for cam in device["cameras"]:
                if cam["online"]:
                    return {**cam, "device_id": device["id"]}
    return None


@dataclass
class LiveSample:
    """What a viewer got from the live WebSocket."""

    init: dict[str, Any]
    first: bytes
    total: int
    messages: int
    #: Seconds between consecutive media messages (the first, the init segment, excluded).
    gaps: list[float]

    @property
    def longest_gap_s(self) -> float:
        return max(self.gaps, default=0.0)

    @property
    def stalled_s(self) -> float:
        """Time spent in gaps over 0.5 s: what a viewer sees as frozen video."""
        return sum(g for g in self.gaps if g > STALL_S)


async def _watch_live(rig: Rig, camera_id: str, seconds: float) -> LiveSample:
    """Open the live WebSocket like the portal and read it for ``seconds``."""
    ctx = ssl.create_default_context(cafile=str(rig.relay.ca))
    url = f"{rig.relay.url}/api/v1/cameras/{camera_id}/live"
    headers = {"Authorization": f"Bearer {rig.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, ssl=ctx, headers=headers, max_msg_size=0) as ws,
    ):
        init = await asyncio.wait_for(ws.receive_json(), 30)
        assert init.get("type") == "init", init
        first = b""
        total = messages = 0
        last = time.monotonic()
        gaps: list[float] = []
        end = last + seconds
        while time.monotonic() < end:
            msg = await asyncio.wait_for(ws.receive(), 10)
            assert msg.type is aiohttp.WSMsgType.BINARY, msg
            first = first or msg.data
            total += len(msg.data)
            messages += 1
            if messages > 2:
                gaps.append(time.monotonic() - last)
            last = time.monotonic()
        return LiveSample(init, first, total, messages, gaps)


def _snapshot(rig: Rig, camera_id: str) -> bytes:
    """GET the camera's snapshot through the tunnel."""
    import urllib.request

    req = urllib.request.Request(f"{rig.relay.url}/api/v1/cameras/{camera_id}/snapshot")
    req.add_header("Authorization", f"Bearer {rig.token}")
    ctx = ssl.create_default_context(cafile=str(rig.relay.ca))
    with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
        return bytes(resp.read())


#: Seconds of live video sampled under loss.
LOSSY_SAMPLE_S = 20


def _assert_fmp4_playing(sample: LiveSample, seconds: float) -> None:
    """An fMP4 init segment, then media that kept coming with no long stall."""
    assert sample.first[4:8] == b"ftyp", sample.first[:16]
    assert sample.messages > seconds * 5, sample
    assert sample.longest_gap_s < 5.0, sample  # never frozen long enough to look dead
    assert sample.stalled_s < seconds / 4, sample  # and mostly playing


# spec: issue 3 acceptance (UDP blocked)
def test_udp_blocked_agent_connects_over_tcp_within_20s_live_works_and_returns_to_quic(
    rig: Rig, wait_until: Callable[..., Any]
) -> None:
    """Fallback within 20 s of start, live fMP4 through it, back on QUIC once UDP is allowed."""
    cam = wait_until(
        lambda: _online_camera(rig),
        max(1.0, 20 - (time.monotonic() - rig.agent_started)),
        "the agent online over the fallback within 20 s of its start",
    )
    connected_after = time.monotonic() - rig.agent_started
    assert rig.dropped() > 0  # QUIC really was tried and dropped
    status = wait_until(
        lambda: (s := rig.agent_status()).get("transport") == "tcp" and s, 10, "status: tcp"
    )
    assert status["connected"]
    assert "over tcp" in rig.relay.proc.log()
    over_tcp = asyncio.run(_watch_live(rig, cam["id"], 5))
    _assert_fmp4_playing(over_tcp, 5)

    rig.heal()
    wait_until(lambda: rig.agent_status().get("transport") == "quic", 30, "status: quic")
    assert rig.relay.proc.log().count("over quic") >= 1
    cam = wait_until(lambda: _online_camera(rig), 10, "the camera online on QUIC")
    sample = asyncio.run(_watch_live(rig, cam["id"], 3))
    _assert_fmp4_playing(sample, 3)
    print(
        f"\nfallback: online {connected_after:.1f} s after agent start; live over tcp "
        f"{over_tcp.total} B in 5 s, over quic {sample.total} B in 3 s"
    )


# spec: issue 3 acceptance (10 % loss)
def test_ten_percent_packet_loss_live_keeps_playing_and_snapshots_complete(
    rig: Rig, wait_until: Callable[..., Any]
) -> None:
    """With one packet in ten dropped each way, live keeps coming and snapshots complete."""
    rig.heal()
    wait_until(lambda: rig.agent_status().get("transport") == "quic", 30, "on QUIC")
    cam = wait_until(lambda: _online_camera(rig), 20, "the camera online")
    baseline = asyncio.run(_watch_live(rig, cam["id"], 5))
    rig.lose_one_in_ten()
    try:
        # 20 s, not 10: under 10 % loss a single freeze of ~2.5 s (QUIC's PTO backing off over
        # consecutive losses) was seen once in a 10 s window; the budget is a quarter of the window.
        sample = asyncio.run(_watch_live(rig, cam["id"], LOSSY_SAMPLE_S))
        _assert_fmp4_playing(sample, LOSSY_SAMPLE_S)
        for kind, args in (("alarm_reset", {}), ("log_fetch", {"type": "error"})):
            assert _command(rig, cam["device_id"], kind, args, wait_until)["state"] == "done"
        for _ in range(3):
            jpeg = _snapshot(rig, cam["id"])
            assert jpeg[:2] == b"\xff\xd8"
        # The bitrate got through. Half, not all: each sample starts with the cached GOP in one
        # burst, which weighs twice as much in the 5 s baseline as in the 10 s lossy sample.
        assert sample.total / LOSSY_SAMPLE_S > 0.5 * baseline.total / 5
        dropped = rig.dropped()
        assert dropped > 20
        assert rig.agent_status().get("transport") == "quic"
    finally:
        rig.heal()
    print(
        f"\n10% loss: live {sample.total / LOSSY_SAMPLE_S:.0f} B/s "
        f"(no loss {baseline.total / 5:.0f} B/s), longest gap {sample.longest_gap_s:.2f} s, "
        f"frozen {sample.stalled_s:.2f} s of {LOSSY_SAMPLE_S}, {dropped} packets dropped"
    )


def _command(
    rig: Rig, device_id: str, kind: str, args: dict[str, str], wait_until: Callable[..., Any]
) -> dict[str, Any]:
    """Issue a command through the API and wait for its terminal state."""
    cmd = api(
        rig.relay,
        "POST",
        f"/api/v1/devices/{device_id}/commands",
        {"kind": kind, "args": args},
        token=rig.token,
    )
    terminal = ("done", "failed", "expired", "unknown_outcome")

    def finished() -> dict[str, Any] | None:
        got = api(rig.relay, "GET", f"/api/v1/commands/{cmd['id']}", token=rig.token)
        return dict(got) if got["state"] in terminal else None

    result: dict[str, Any] = wait_until(finished, 30, f"{kind} to finish under loss")
    return result


def _nft_available() -> bool:
    return subprocess.run(["nft", "--version"], capture_output=True, check=False).returncode == 0
