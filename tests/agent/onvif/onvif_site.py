"""What the ONVIF tests' camera site fixture yields (in its own module so tests can import it)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from tests.peers.ipycam import IpycamProcess

USER = "operator"
PASSWORD = "Zq8-unique-camera-pass"  # distinctive, so a leak is found by a plain substring search


@dataclass(frozen=True)
class CameraSite:
    """The namespace, the host's and the cameras' addresses, and the two cameras."""

    netns: str
    host_ip: str
    ns_ip: str
    prefix: int
    open: IpycamProcess
    auth: IpycamProcess

    @property
    def silent_ip(self) -> str:
        """An address on the link that nobody holds: packets to it go unanswered."""
        return str(ipaddress.IPv4Address(self.ns_ip) + 3)
