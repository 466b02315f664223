"""WS-Discovery Hello and Bye: cameras announcing themselves on the LAN, heard passively.

A camera multicasts Hello when it joins the network (boot, cable plugged in) and Bye when it
leaves cleanly (WS-Discovery 2005/04 sections 4.1-4.2; ONVIF Core 7.3.2). Listening for them
lets the agent add a new camera within a second instead of waiting for the next Probe round,
and mark a camera failed the moment it says goodbye instead of after missed health checks.

The listener binds UDP 3702 with SO_REUSEADDR (cameras on the same host and other ONVIF
clients share the port) and joins 239.255.255.250 on each given interface address. Datagrams
are untrusted: parsed with the stdlib parser under the same rules as ProbeMatches
(``discovery._parse_envelope``), anything else is dropped at debug level.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agent.onvif.discovery import (
    DISCOVERY_NS,
    WSD_GROUP,
    WSD_PORT,
    _device,
    _iter,
    _parse_envelope,
)
from agent.onvif.errors import OnvifProtocolError
from agent.onvif.models import DiscoveredDevice

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Announcement:
    """A Hello or a Bye from one device (a Bye may carry only the endpoint reference)."""

    kind: Literal["hello", "bye"]
    device: DiscoveredDevice


def parse_announcement(data: bytes) -> Announcement | None:
    """The Hello or Bye in a datagram; None for other WS-Discovery traffic (Probes, matches).

    Raises OnvifProtocolError for a datagram that is not a SOAP envelope or a Hello/Bye
    without an endpoint reference.
    """
    root = _parse_envelope(data)
    for kind, local in (("hello", "Hello"), ("bye", "Bye")):
        for element in _iter(root, DISCOVERY_NS, local):
            return Announcement(kind, _device(element))  # type: ignore[arg-type]
    return None


AnnouncementHandler = Callable[[Announcement, str], None]


class _Protocol(asyncio.DatagramProtocol):
    """Hands each parsed announcement and its sender's address to the handler."""

    def __init__(self, handler: AnnouncementHandler) -> None:
        self._handler = handler

    def datagram_received(self, data: bytes, addr: Any) -> None:
        """Parse one datagram; garbage and other conversations are dropped."""
        try:
            found = parse_announcement(data)
        except OnvifProtocolError as err:
            log.debug("ignoring datagram from %s: %s", addr, err)
            return
        if found is not None:
            self._handler(found, str(addr[0]))


def _listen_socket(interfaces: Sequence[str]) -> socket.socket:
    """UDP 3702, shared, joined to the WS-Discovery group on each interface (or the default)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setblocking(False)
        sock.bind(("", WSD_PORT))
        for ip in interfaces or ["0.0.0.0"]:
            mreq = struct.pack("4s4s", socket.inet_aton(WSD_GROUP), socket.inet_aton(ip))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    except OSError:
        sock.close()
        raise
    return sock


class AnnouncementListener:
    """Listens for Hello/Bye until closed; ``start`` raises OSError if the port is unusable."""

    def __init__(self, handler: AnnouncementHandler, interfaces: Sequence[str] = ()) -> None:
        self._handler = handler
        self._interfaces = list(interfaces)
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        """Bind and join; from now on announcements reach the handler."""
        loop = asyncio.get_running_loop()
        sock = _listen_socket(self._interfaces)
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self._handler), sock=sock
        )

    def close(self) -> None:
        """Stop listening (leaves the group with the socket)."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
