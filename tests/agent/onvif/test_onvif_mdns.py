"""mDNS discovery, against a real zeroconf advertisement inside the camera site's namespace.

A zeroconf publisher (a subprocess in the namespace, on the camera's veth address) advertises
``_onvif._tcp`` for the site's ipycam host; the agent's watch browses from the host's side of
the link, asks the advertised host with a unicast Probe, and must end with the same device the
multicast WS-Discovery Probe finds — one camera, not two.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from agent.camera_watch import CameraWatch
from agent.onvif.discovery import merge, probe
from agent.onvif.mdns import MdnsBrowser
from agent.onvif.models import DiscoveredDevice
from tests.agent.onvif.onvif_site import CameraSite

pytestmark = pytest.mark.netns

WAIT_S = 15.0
_PUBLISHER = """
import socket, sys
from zeroconf import IPVersion, ServiceInfo, Zeroconf
ip, port = sys.argv[1], int(sys.argv[2])
zc = Zeroconf(interfaces=[ip], ip_version=IPVersion.V4Only)
info = ServiceInfo("_onvif._tcp.local.", "Site camera._onvif._tcp.local.",
                   addresses=[socket.inet_aton(ip)], port=port, server="sitecam.local.",
                   properties={"path": "/onvif/device_service"})
zc.register_service(info)
print("REGISTERED", flush=True)
sys.stdin.read()
zc.unregister_service(info)
zc.close()
"""


@contextlib.contextmanager
def advertised(site: CameraSite) -> Iterator[None]:
    """The site camera advertised over mDNS from inside the namespace until the block ends."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", site.netns, sys.executable, "-c", _PUBLISHER,
         site.ns_ip, str(site.open.onvif_port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "REGISTERED"
        yield
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_mdns_browser_hears_the_advertised_host(camera_site: CameraSite) -> None:
    # spec: DEV-10
    heard: asyncio.Queue[str] = asyncio.Queue()
    browser = MdnsBrowser(heard.put_nowait, [camera_site.host_ip])
    await browser.start()
    try:
        with advertised(camera_site):
            host = await asyncio.wait_for(heard.get(), WAIT_S)
    finally:
        await browser.close()
    assert host == camera_site.ns_ip


async def test_mdns_camera_is_the_ws_discovery_camera(camera_site: CameraSite) -> None:
    # spec: DEV-10
    """The watch turns the advertisement into a device (unicast Probe to the host); it is one
    of the devices the multicast Probe found — merged by endpoint reference into the same
    entry — and once that camera is watched the mDNS answer maps to it, so it is not added
    twice."""
    multicast = await probe(timeout=0.8, interfaces=[camera_site.host_ip])
    found: asyncio.Queue[DiscoveredDevice] = asyncio.Queue()

    async def on_found(device: DiscoveredDevice) -> None:
        found.put_nowait(device)

    watch = CameraWatch(
        sink=lambda *_: None, on_found=on_found, interfaces=[camera_site.host_ip],
        check_interval_s=60, call_timeout_s=2, events=None, mdns=True,
    )  # fmt: skip
    task = asyncio.create_task(watch.run())
    try:
        with advertised(camera_site):
            via_mdns = await asyncio.wait_for(found.get(), WAIT_S)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert via_mdns.endpoint in {d.endpoint for d in multicast}
    assert len(merge([*multicast, via_mdns])) == len(multicast)
    twin = next(d for d in multicast if d.endpoint == via_mdns.endpoint)
    assert via_mdns.xaddrs[0] in twin.xaddrs
    watch.watch("cam", twin.xaddrs[0], "", "", endpoint=twin.endpoint)
    assert watch.camera_of(via_mdns) == "cam"
    await watch.close()
