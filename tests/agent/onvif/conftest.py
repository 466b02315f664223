"""A camera site for the ONVIF tests: one network namespace with two ipycam cameras.

The namespace is joined to the host by a veth pair on a free TEST-NET-3 /28, so WS-Discovery
multicast goes from the host's veth address over a real link. Camera ``open`` has no auth;
camera ``auth`` (other ports) wants USER/PASSWORD. Started once per session: about 1.5 s.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.agent.onvif.onvif_site import PASSWORD, USER, CameraSite
from tests.peers.ipycam import start_ipycam
from tests.peers.netns import allocated_site_netns

NETNS_PREFIX = "rmon-onvif"


@pytest.fixture(scope="session")
def camera_site() -> Iterator[CameraSite]:
    """The site, or a skip when not root (network namespaces need CAP_SYS_ADMIN)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create the camera's network namespace")
    with (
        allocated_site_netns(NETNS_PREFIX) as link,
        start_ipycam(link.name, link.ns_ip) as open_cam,
        start_ipycam(
            link.name, link.ns_ip, onvif_port=8180, rtsp_port=8654, username=USER, password=PASSWORD
        ) as auth_cam,
    ):
        yield CameraSite(link.name, link.host_ip, link.ns_ip, link.prefix, open_cam, auth_cam)
