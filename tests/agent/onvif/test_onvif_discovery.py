"""WS-Discovery against real ipycam cameras in a network namespace, probed from the host."""

from __future__ import annotations

import asyncio

import pytest

from agent.onvif.discovery import DiscoveredDevice, probe
from tests.agent.onvif.onvif_site import CameraSite

pytestmark = pytest.mark.netns

PROBE_TIMEOUT_S = 0.8  # ipycam answers within a few ms; repeats and both cameras fit easily


@pytest.fixture(scope="module")
def multicast_found(camera_site: CameraSite) -> list[DiscoveredDevice]:
    """One multicast probe from the host's veth address, shared by the tests reading it."""
    return asyncio.run(probe(timeout=PROBE_TIMEOUT_S, interfaces=[camera_site.host_ip]))


def test_multicast_probe_from_host_veth_finds_the_camera(
    camera_site: CameraSite, multicast_found: list[DiscoveredDevice]
) -> None:
    """The Probe leaves through the veth, and ipycam's XAddrs, name and type come back."""
    device = next(d for d in multicast_found if camera_site.open.xaddr in d.xaddrs)
    assert device.xaddrs == (camera_site.open.xaddr,)
    assert device.endpoint.startswith("urn:uuid:")
    assert device.name == "rmon demo camera"  # percent-decoded from the onvif:// name scope
    assert "dn:NetworkVideoTransmitter" in device.types


def test_two_cameras_found_once_each(
    camera_site: CameraSite, multicast_found: list[DiscoveredDevice]
) -> None:
    """Both cameras answer both Probe rounds; dedupe by endpoint leaves one entry each."""
    assert len(multicast_found) == 2
    assert {x for d in multicast_found for x in d.xaddrs} == {
        camera_site.open.xaddr,
        camera_site.auth.xaddr,
    }
    assert len({d.endpoint for d in multicast_found}) == 2


async def test_unicast_probe_reaches_the_camera(camera_site: CameraSite) -> None:
    """A unicast Probe to the camera's address works without any multicast."""
    found = await probe(timeout=PROBE_TIMEOUT_S, unicast_hosts=[camera_site.ns_ip], multicast=False)
    # Both cameras share UDP 3702 with SO_REUSEADDR: a unicast datagram reaches one of them.
    assert len(found) == 1
    assert found[0].xaddrs[0] in {camera_site.open.xaddr, camera_site.auth.xaddr}
