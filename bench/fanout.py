"""Relay fan-out: site uplink and relay CPU for 1, 4 and 16 viewers of one camera, one run.

    .venv/bin/python -m bench.fanout [--viewers 1 4 16] [--seconds 10] [--runs 3] [--ttff-runs 10]

Everything real on loopback, assembled as in ``bench/live_forwarding.py``: the GStreamer test
camera (a busy picture at ``--kbps``), the agent's ``CameraMedia`` and tunnel client, ``rmon-relay
serve`` as its own process (qh3), and aiohttp WebSocket viewers in this process.

- **uplink B/s**: the bytes the site's live request handler hands to its tunnel streams
  (``send_data``: DATA payload, what crosses the site's uplink before QUIC framing), per second,
  over a window of ``--seconds`` with N viewers all watching the same camera;
- **relay CPU %**: the relay process's user+system time over the same window;
- each beside its ratio to 1 viewer; and the viewers' received bytes per second, to show every
  viewer got the stream;
- **TTFF**: opening the WebSocket → first media segment, cold (no other viewer: the relay opens
  the tunnel stream, ``live_linger_s=0``) and warm (joining a camera someone watches).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from agent.media.live import CameraMedia
from bench.live_forwarding import (
    LIVE_NAME,
    BenchSite,
    cpu_seconds,
    relay_with_site,
    sub_ready,
    time_to_first_frame,
    viewer_session,
)
from shared import quic
from tests.peers.gst_rtsp import gst_rtsp_server


class CountingSite(BenchSite):
    """The bench site, counting the live bytes its handler sends (the site's uplink)."""

    def __init__(self, media: CameraMedia) -> None:
        super().__init__(media, b"", [], 0)
        self.sent = 0
        self.requests = 0

    async def handle(self, stream: quic.TunnelStream) -> None:
        """Count, then serve as the agent does."""
        self.requests += 1
        original = stream.send_data

        async def counted(data: bytes, chunk: int = 16 * 1024) -> None:
            self.sent += len(data)
            await original(data, chunk)

        stream.send_data = counted  # type: ignore[method-assign]
        await super().handle(stream)


@dataclass
class Row:
    """One viewer count's figures over runs."""

    viewers: int
    uplink: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    per_viewer: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)


async def _watch(
    ws: aiohttp.ClientWebSocketResponse, got: list[int], i: int, started: asyncio.Event
) -> None:
    """Read a viewer's socket, counting binary bytes; ``started`` at its first media."""
    async for msg in ws:
        if msg.type is aiohttp.WSMsgType.BINARY:
            got[i] += len(msg.data)
            if b"moof" in msg.data[:64]:
                started.set()
        elif msg.type is not aiohttp.WSMsgType.TEXT:
            return


async def window(  # noqa: PLR0917 -- one call site, names would only repeat these
    http: aiohttp.ClientSession,
    url: str,
    token: str,
    n: int,
    seconds: float,
    pid: int,
    site: CountingSite,
) -> tuple[float, float, float, int]:
    """N viewers for ``seconds`` once all have media: (uplink B/s, relay CPU %, B/s per
    viewer, tunnel streams the site was asked for)."""
    headers = {"Authorization": f"Bearer {token}"}
    requests0 = site.requests
    sockets = [await http.ws_connect(url, headers=headers, max_msg_size=0) for _ in range(n)]
    got = [0] * n
    started = [asyncio.Event() for _ in range(n)]
    tasks = [asyncio.create_task(_watch(ws, got, i, started[i])) for i, ws in enumerate(sockets)]
    try:
        await asyncio.gather(*(e.wait() for e in started))
        sent0, cpu0, got0, t0 = site.sent, cpu_seconds(pid), sum(got), time.perf_counter()
        await asyncio.sleep(seconds)  # the measured window, not a synchronisation
        elapsed = time.perf_counter() - t0
        uplink = (site.sent - sent0) / elapsed
        cpu = 100 * (cpu_seconds(pid) - cpu0) / elapsed
        per_viewer = (sum(got) - got0) / elapsed / n
        return uplink, cpu, per_viewer, site.requests - requests0
    finally:
        for task in tasks:
            task.cancel()
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*tasks, return_exceptions=True)


async def ttff(
    http: aiohttp.ClientSession, url: str, token: str, runs: int, *, warm: bool
) -> list[float]:
    """Milliseconds to the first media segment, with or without another viewer watching."""
    out: list[float] = []
    watcher: aiohttp.ClientWebSocketResponse | None = None
    task: asyncio.Task[None] | None = None
    if warm:
        watcher = await http.ws_connect(url, headers={"Authorization": f"Bearer {token}"})
        first = asyncio.Event()
        task = asyncio.create_task(_watch(watcher, [0], 0, first))
        await first.wait()
    try:
        for _ in range(runs):
            took = await time_to_first_frame(http, url, token)
            out.append(1000 * took)
    finally:
        if task is not None and watcher is not None:
            task.cancel()
            await watcher.close()
    return out


async def main(args: argparse.Namespace) -> None:
    """One relay, one camera; each viewer count in turn, ``--runs`` times, interleaved."""
    with (
        gst_rtsp_server(fps=args.fps, bitrate=args.kbps, pattern="snow") as cam,
        tempfile.TemporaryDirectory() as tmp,
    ):
        media = CameraMedia(cam.url("/h264"), label="bench-fanout")
        await media.start()
        try:
            await sub_ready(media)
            site = CountingSite(media)
            env = {"RMON_RELAY_LIVE_LINGER_S": "0"}
            async with relay_with_site("qh3", Path(tmp), site, env) as (relay, token, cams):
                path = f"/api/v1/cameras/{cams[LIVE_NAME]}/live"
                url = relay.url.replace("https://", "wss://") + path
                pid = relay.proc.popen.pid
                rows = {n: Row(n) for n in args.viewers}
                async with viewer_session(relay.ca) as http:
                    cold = await ttff(http, url, token, args.ttff_runs, warm=False)
                    warm = await ttff(http, url, token, args.ttff_runs, warm=True)
                    for run in range(args.runs):
                        for n in args.viewers:
                            up, cpu, pv, req = await window(
                                http, url, token, n, args.seconds, pid, site
                            )
                            row = rows[n]
                            row.uplink.append(up)
                            row.cpu.append(cpu)
                            row.per_viewer.append(pv)
                            row.requests.append(req)
                            print(f"run {run + 1}: {n} viewers measured", flush=True)
        finally:
            await media.close()
    report(list(rows.values()), cold, warm)


def report(rows: list[Row], cold: list[float], warm: list[float]) -> None:
    """Medians, each with its ratio to one viewer."""
    med = statistics.median
    base_up, base_cpu = med(rows[0].uplink), med(rows[0].cpu)
    print("\nviewers | uplink KB/s | x1 viewer | relay CPU % | x1 viewer | KB/s each | streams")
    for r in rows:
        up, cpu = med(r.uplink), med(r.cpu)
        print(
            f"{r.viewers:7d} | {up / 1e3:11.1f} | {up / base_up:9.2f} | {cpu:11.2f} | "
            f"{cpu / base_cpu if base_cpu else 0:9.2f} | {med(r.per_viewer) / 1e3:9.1f} | "
            f"{max(r.requests)}"
        )
    print(f"\nTTFF cold (opens the tunnel stream): median {med(cold):.1f} ms over {len(cold)}")
    print(f"TTFF warm (joins a watched camera):  median {med(warm):.1f} ms over {len(warm)}")


def parse_args() -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--viewers", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--seconds", type=float, default=10.0, help="measured window per count (s)")
    p.add_argument("--runs", type=int, default=3, help="windows per viewer count")
    p.add_argument("--ttff-runs", type=int, default=10, help="time-to-first-frame runs")
    p.add_argument("--fps", type=int, default=25, help="test camera frame rate")
    p.add_argument("--kbps", type=int, default=2000, help="test camera bitrate")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
