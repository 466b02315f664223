"""Live forwarding through the relay: time to first frame, throughput, relay CPU per GB.

    .venv/bin/python -m bench.live_forwarding [--megabytes 200] [--runs 3] [--ttff-runs 15]

Everything real on loopback: the GStreamer test camera, the agent's media pipeline
(``CameraMedia``) and tunnel client, ``rmon-relay serve`` as its own process, and an aiohttp
WebSocket viewer. Each figure is printed beside, measured in the same run:

- **direct**: a plain TLS WebSocket server (its own process) that serves the same camera and the
  same bytes with no tunnel — what a port-forwarded agent would cost; the baseline;
- **relay qh3** and **relay aioquic**: the viewer's WebSocket at the relay, the bytes through the
  QUIC tunnel from the agent (both ends on the named core);
- **relay qh3, no coalescing**: ``ws_coalesce_bytes=1``, each tunnel DATA frame its own message.

Time to first frame: opening the WebSocket (TCP + TLS + upgrade) → the first media segment (after
the JSON ``init`` and the fMP4 init segment), with the camera already pulled (the agent keeps the
newest GOP, so this is the tunnel + relay cost, not the camera's). The relay keeps a camera's
tunnel stream ``live_linger_s`` after its last viewer (``relay/tunnel/live_hub.py``), so runs after
the first join a warm stream; ``RMON_RELAY_LIVE_LINGER_S=0`` makes every run open one.

Throughput and CPU: the agent floods fMP4 fragments recorded from the same camera (a busy picture at
``--kbps``, with its AAC audio) as fast as the tunnel takes them; CPU is the serving process's
user+system time (``/proc/PID/stat``) over the transfer, divided by the gigabytes received.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import ssl
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from agent.enroll import register
from agent.media.live import CameraMedia, LiveSubscription
from agent.settings import AgentSettings
from agent.store import AgentStore
from agent.tunnel.client import TunnelClient
from relay.tls import ensure_tls
from shared import fmp4, models, quic
from shared.tunnel.frames import FrameType
from tests.peers import stack
from tests.peers.gst_rtsp import gst_rtsp_server

EMAIL, PASSWORD = "bench@rmon.example", "Forward-pass1!"
LIVE_NAME, FLOOD_NAME = "bench-live", "bench-flood"
CLK_TCK = os.sysconf("SC_CLK_TCK")
COALESCE = 64 * 1024  # the relay's default ws_coalesce_bytes, used by the direct baseline too


@dataclass
class Figures:
    """One configuration's results (lists over runs; medians are printed)."""

    label: str
    ttff_ms: list[float]
    mb_per_s: list[float]
    cpu_s_per_gb: list[float]
    msg_kb: list[float]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --- fragments -------------------------------------------------------------------------------


async def record_fragments(url: str, seconds: float) -> tuple[bytes, list[bytes]]:
    """The camera's fMP4 init segment and one fragment per frame, from the agent's pipeline."""
    media = CameraMedia(url, label="bench-record")
    await media.start()
    try:
        async with media.subscribe(64 * 1024 * 1024) as sub:
            await sub.ready(15)
            init = await sub.next_chunk()
            frags: list[bytes] = []
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                frags.append(await sub.next_chunk())
    finally:
        await media.close()
    return init, from_keyframe(init, frags[1:])  # the first is the cached GOP in one piece


def from_keyframe(init: bytes, frags: list[bytes]) -> list[bytes]:
    """The fragments rotated to start at a keyframe: the relay's live hub starts a viewer at
    one, so a flood starting mid-GOP would lose its first fragments."""
    splitter = fmp4.Fmp4Splitter()
    splitter.feed(init)  # names the video track: audio fragments are never keyframes
    for i, frag in enumerate(frags):
        (segment,) = splitter.feed(frag)
        if isinstance(segment, fmp4.MediaFragment) and segment.keyframe:
            return frags[i:] + frags[:i]
    return frags


def save_fragments(path: Path, init: bytes, frags: list[bytes]) -> None:
    """Length-prefixed: init, then fragments (for the direct server process)."""
    with path.open("wb") as fh:
        for chunk in (init, *frags):
            fh.write(struct.pack("!I", len(chunk)) + chunk)


def load_fragments(path: Path) -> tuple[bytes, list[bytes]]:
    """Inverse of :func:`save_fragments`."""
    data, chunks, pos = path.read_bytes(), [], 0
    while pos < len(data):
        (n,) = struct.unpack_from("!I", data, pos)
        chunks.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return chunks[0], chunks[1:]


def flood(frags: list[bytes], total: int) -> Iterator[bytes]:
    """Cycle the recorded fragments until ``total`` bytes were produced."""
    sent = 0
    while sent < total:
        for frag in frags:
            yield frag
            sent += len(frag)
            if sent >= total:
                return


def coalesced(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    """Join consecutive chunks into messages of up to ``limit`` bytes (as the relay does)."""
    buf = b""
    for chunk in chunks:
        if buf and len(buf) + len(chunk) > limit:
            yield buf
            buf = b""
        buf += chunk
    if buf:
        yield buf


# --- the direct baseline (its own process, so its CPU is its own) ---------------------------


async def serve_direct(url: str, frags_path: Path, tls_dir: Path, total: int) -> None:
    """A TLS WebSocket server with no tunnel: /live from the camera, /flood recorded bytes."""
    init, frags = load_fragments(frags_path)
    media = CameraMedia(url, label="bench-direct")
    await media.start()

    async def live(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async with media.subscribe(8 * 1024 * 1024) as sub:
            info = await sub.ready(15)
            await ws.send_json({"type": "init", "mime": info.mime})
            pump = asyncio.ensure_future(_pump(ws, sub))
            reader = asyncio.ensure_future(ws.receive())  # the viewer's close, answered at once
            await asyncio.wait({pump, reader}, return_when=asyncio.FIRST_COMPLETED)
            pump.cancel()
            reader.cancel()
        return ws

    async def flood_ws(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "init", "mime": "video/mp4"})
        await ws.send_bytes(init)
        for msg in coalesced(flood(frags, total), COALESCE):
            await ws.send_bytes(msg)
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/live", live)
    app.router.add_get("/flood", flood_ws)
    tls = ensure_tls(tls_dir, ["127.0.0.1"])
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls.cert, tls.key)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await sub_ready(media)
    print(f"READY {port}", flush=True)
    await asyncio.Event().wait()


async def _pump(ws: web.WebSocketResponse, sub: LiveSubscription) -> None:
    """Chunks to the viewer, one message each, as a direct server would."""
    while not ws.closed:
        await ws.send_bytes(await sub.next_chunk())


async def sub_ready(media: CameraMedia) -> None:
    """Wait until the camera pull delivers (so TTFF measures a warm camera)."""
    async with media.subscribe(8 * 1024 * 1024) as sub:
        await sub.ready(15)


@contextlib.asynccontextmanager
async def direct_server(
    url: str, frags: Path, work: Path, total: int
) -> AsyncIterator[tuple[int, int]]:
    """Start the direct server process; yield (port, pid) — the pid is whose CPU is measured."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.live_forwarding",
        "--serve-direct",
        url,
        str(frags),
        str(work / "direct-tls"),
        str(total),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    if not line.startswith("READY "):
        raise RuntimeError(f"direct server failed: {line!r}")
    try:
        yield int(line.split()[1]), proc.pid
    finally:
        proc.terminate()
        await proc.wait()


# --- the relay path ---------------------------------------------------------------------------


class BenchSite:
    """The agent side: real tunnel client; live from CameraMedia, flood from recorded bytes."""

    def __init__(self, media: CameraMedia, init: bytes, frags: list[bytes], total: int) -> None:
        self.media, self.init, self.frags, self.total = media, init, frags, total

    def inventory(self) -> models.Inventory:
        """Two cameras: the real one and the flood source."""
        cams = [
            models.CameraInventory(local_id=name, name=name, capabilities=["live"])
            for name in (LIVE_NAME, FLOOD_NAME)
        ]
        return models.Inventory(cameras=cams)

    async def handle(self, stream: quic.TunnelStream) -> None:
        """Serve a live request the way the agent does (``Agent._serve_live``)."""
        frame = await stream.read_frame()
        assert frame is not None
        request = models.Request.model_validate_json(frame.payload)
        if request.camera == FLOOD_NAME:
            stream.send_message(FrameType.RESPONSE, models.Response(content_type="video/mp4"))
            await stream.send_data(self.init)
            for frag in flood(self.frags, self.total):
                await stream.send_data(frag)
            stream.end()
            return
        async with self.media.subscribe(8 * 1024 * 1024) as sub:
            info = await sub.ready(15)
            stream.send_message(FrameType.RESPONSE, models.Response(content_type=info.mime))
            with contextlib.suppress(quic.StreamReset, ConnectionError):
                while not stream.is_reset:
                    await stream.send_data(await sub.next_chunk())


@contextlib.asynccontextmanager
async def relay_with_site(
    core: str, work: Path, site: BenchSite, env: dict[str, str]
) -> AsyncIterator[tuple[stack.Relay, str, dict[str, str]]]:
    """A relay process on ``core`` with the bench site connected: relay, token, camera ids."""
    data = work / f"relay-{core}-{len(env)}"
    relay = stack.start_relay(data, env={"RMON_RELAY_QUIC_CORE": core, **env})
    try:
        created = stack.create_account(relay, EMAIL, "Bench", PASSWORD)
        if created.returncode != 0:
            raise RuntimeError(created.stderr)
        store = AgentStore(data / "agent")
        identity = await register(
            store, relay.url, EMAIL, PASSWORD, relay_ca_pem=relay.ca.read_bytes(), name="bench"
        )
        client = TunnelClient(
            AgentSettings(data_dir=data / "agent", quic_core=core),
            identity,
            store.load_key(),
            handle_request=site.handle,
            inventory=site.inventory,
        )
        task = asyncio.create_task(client.run_forever())
        try:
            await asyncio.wait_for(client.connected.wait(), 15)
            async with viewer_session(relay.ca) as http:
                token, cams = await login_and_cameras(http, relay.url)
            yield relay, token, cams
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()
    finally:
        relay.proc.stop()


@contextlib.asynccontextmanager
async def viewer_session(ca: Path) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client that trusts ``ca``."""
    ctx = ssl.create_default_context(cafile=str(ca))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:
        yield http


async def login_and_cameras(http: aiohttp.ClientSession, base: str) -> tuple[str, dict[str, str]]:
    """Bearer token and camera name → id, once both cameras are online."""
    async with http.post(
        f"{base}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
    ) as r:
        token = (await r.json())["token"]
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(100):
        async with http.get(f"{base}/api/v1/devices", headers=headers) as r:
            devices = (await r.json())["devices"]
        cams = {c["name"]: c["id"] for d in devices for c in d["cameras"] if c["online"]}
        if len(cams) == 2:
            return token, cams
        await asyncio.sleep(0.1)  # polling the API: the inventory write has no push signal
    raise TimeoutError("bench cameras did not come online")


# --- the viewer --------------------------------------------------------------------------------


async def time_to_first_frame(http: aiohttp.ClientSession, url: str, token: str) -> float:
    """Seconds from opening the WebSocket (TCP, TLS, upgrade) to the first media segment."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    opened = time.perf_counter()
    async with http.ws_connect(url, headers=headers, max_msg_size=0) as ws:
        binaries = 0
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                body = json.loads(msg.data)
                if body.get("type") == "error":
                    raise RuntimeError(body)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                binaries += 1
                if b"moof" in msg.data[:64]:
                    return time.perf_counter() - opened
            else:
                break
    raise RuntimeError(f"no media segment (got {binaries} binary messages)")


async def receive_flood(
    http: aiohttp.ClientSession, url: str, token: str, total: int, pid: int
) -> tuple[float, float, float]:
    """Receive ``total`` bytes; (MB/s, CPU-s per GB of the serving process, mean message KB)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.ws_connect(url, headers=headers, max_msg_size=0) as ws:
        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        got, messages = 0, 0
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                got += len(msg.data)
                messages += 1
                if got >= total:
                    break
            elif msg.type != aiohttp.WSMsgType.TEXT:
                break
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    if got < total:
        raise RuntimeError(f"flood ended after {got} of {total} bytes")
    return got / elapsed / 1e6, cpu / (got / 1e9), got / messages / 1e3


@dataclass(frozen=True)
class Target:
    """Where a configuration's viewer connects, and which process serves it."""

    label: str
    live_url: str
    flood_url: str
    token: str
    pid: int
    ca: Path


async def measure(t: Target, args: argparse.Namespace) -> Figures:
    """TTFF runs and flood runs against one configuration."""
    total = args.megabytes * 1_000_000
    figs = Figures(t.label, [], [], [], [])
    async with viewer_session(t.ca) as http:
        for _ in range(args.ttff_runs):
            figs.ttff_ms.append(1000 * await time_to_first_frame(http, t.live_url, t.token))
        for _ in range(args.runs):
            mbps, cpu, kb = await receive_flood(http, t.flood_url, t.token, total, t.pid)
            figs.mb_per_s.append(mbps)
            figs.cpu_s_per_gb.append(cpu)
            figs.msg_kb.append(kb)
    return figs


def report(results: list[Figures], frags: list[bytes]) -> None:
    """Medians, each beside the direct baseline as a ratio."""
    med = statistics.median
    sizes = [len(f) for f in frags]
    print(
        f"\nfragments recorded from the test camera: {len(frags)}, "
        f"median {med(sizes) / 1e3:.1f} KB, max {max(sizes) / 1e3:.1f} KB"
    )
    base = results[0]
    head = f"{'path':<28}{'TTFF ms':>10}{'x base':>8}{'MB/s':>9}{'x base':>8}"
    head += f"{'CPU-s/GB':>10}{'x base':>8}{'msg KB':>8}"
    print(head)
    for r in results:
        ttff, mbps, cpu = med(r.ttff_ms), med(r.mb_per_s), med(r.cpu_s_per_gb)
        print(
            f"{r.label:<28}{ttff:>10.1f}{ttff / med(base.ttff_ms):>8.2f}"
            f"{mbps:>9.1f}{mbps / med(base.mb_per_s):>8.2f}"
            f"{cpu:>10.1f}{cpu / med(base.cpu_s_per_gb):>8.2f}{med(r.msg_kb):>8.1f}"
        )
    print("(medians; TTFF over the --ttff-runs, throughput and CPU over --runs floods)")


async def main(args: argparse.Namespace) -> None:
    """Record, then measure direct, relay qh3, relay aioquic, relay qh3 without coalescing."""
    total = args.megabytes * 1_000_000
    with (
        gst_rtsp_server(fps=args.fps, bitrate=args.kbps, pattern="snow") as cam,
        tempfile.TemporaryDirectory() as tmp,
    ):
        work = Path(tmp)
        url = cam.url("/h264")
        init, frags = await record_fragments(url, args.record_seconds)
        print(f"recorded {len(frags)} fragments", flush=True)
        save_fragments(work / "frags.bin", init, frags)
        results: list[Figures] = []

        async with direct_server(url, work / "frags.bin", work, total) as (port, pid):
            ca = work / "direct-tls" / "ca.pem"
            base = f"wss://127.0.0.1:{port}"
            target = Target("direct (no tunnel)", base + "/live", base + "/flood", "", pid, ca)
            results.append(await measure(target, args))
            print("measured direct", flush=True)

        media = CameraMedia(url, label="bench-agent")
        await media.start()
        try:
            await sub_ready(media)
            site = BenchSite(media, init, frags, total)
            configs: list[tuple[str, dict[str, str], str]] = [
                ("qh3", {}, "relay qh3"),
                ("aioquic", {}, "relay aioquic"),
                ("qh3", {"RMON_RELAY_WS_COALESCE_BYTES": "1"}, "relay qh3, no coalescing"),
            ]
            for core, env, label in configs:
                async with relay_with_site(core, work, site, env) as (relay, token, cams):
                    wsbase = relay.url.replace("https://", "wss://")
                    live = f"/api/v1/cameras/{cams[LIVE_NAME]}/live"
                    fl = f"/api/v1/cameras/{cams[FLOOD_NAME]}/live"
                    pid = relay.proc.popen.pid
                    target = Target(label, wsbase + live, wsbase + fl, token, pid, relay.ca)
                    results.append(await measure(target, args))
                    print(f"measured {label}", flush=True)
        finally:
            await media.close()
        report(results, frags)


def parse_args() -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--megabytes", type=int, default=200, help="bytes per flood run (MB)")
    p.add_argument("--runs", type=int, default=3, help="flood runs per configuration")
    p.add_argument("--ttff-runs", type=int, default=15, help="time-to-first-frame runs")
    p.add_argument("--fps", type=int, default=25, help="test camera frame rate")
    p.add_argument("--kbps", type=int, default=6000, help="test camera bitrate (a busy 1080p)")
    p.add_argument("--record-seconds", type=float, default=4.0, help="fragments to record (s)")
    p.add_argument("--serve-direct", nargs=4, metavar=("URL", "FRAGS", "TLS", "TOTAL"))
    return p.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_direct:
        u, f, t, n = arguments.serve_direct
        asyncio.run(serve_direct(u, Path(f), Path(t), int(n)))
    else:
        asyncio.run(main(arguments))
