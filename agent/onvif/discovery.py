"""WS-Discovery Probe for ONVIF NetworkVideoTransmitters, on raw asyncio UDP.

One Probe (WS-Discovery 2005/04, as ONVIF Core 7.3 requires) goes to 239.255.255.250:3702 from
each configured interface address, and optionally unicast to given hosts. ProbeMatches are
collected until the timeout; only those whose RelatesTo is our MessageID count. Devices are
deduplicated by endpoint reference (one device answering over two interfaces or twice is one
device). Anything that is not a ProbeMatch for us is ignored and logged at debug: the group
also carries Hello/Bye, other clients' Probes and whatever else a LAN sends.

The parsers are pure (bytes in, dataclasses out) so they are tested with captured datagrams.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree as ET

from agent.onvif.errors import OnvifProtocolError, OnvifUnreachable
from agent.onvif.models import DiscoveredDevice

__all__ = ["DiscoveredDevice", "build_probe", "parse_probe_matches", "probe"]

log = logging.getLogger(__name__)

WSD_GROUP = "239.255.255.250"
WSD_PORT = 3702
SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
#: WS-Discovery as ONVIF uses it (2005/04) and the OASIS 1.1 version some devices also speak.
DISCOVERY_NS = (
    "http://schemas.xmlsoap.org/ws/2005/04/discovery",
    "http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01",
)
ADDRESSING_NS = (
    "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "http://www.w3.org/2005/08/addressing",
)
NVT_TYPE_NS = "http://www.onvif.org/ver10/network/wsdl"
SCOPE_NAME = "onvif://www.onvif.org/name/"
SCOPE_HARDWARE = "onvif://www.onvif.org/hardware/"
#: SOAP-over-UDP 1.1 section 3.4: send a multicast message twice, 50-250 ms apart (UDP loses).
REPEAT_DELAY_S = 0.1
#: Routers do not forward it: cameras on this LAN segment only, as WS-Discovery intends.
MULTICAST_TTL = 1
MAX_DATAGRAM = 65_535

_PROBE_TEMPLATE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<s:Envelope xmlns:s="{SOAP_ENV}" xmlns:a="{ADDRESSING_NS[0]}" '
    f'xmlns:d="{DISCOVERY_NS[0]}" xmlns:dn="{NVT_TYPE_NS}">'
    "<s:Header>"
    '<a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>'
    "<a:MessageID>{message_id}</a:MessageID>"
    "<a:ReplyTo><a:Address>"
    "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
    "</a:Address></a:ReplyTo>"
    '<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>'
    "</s:Header>"
    "<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>"
    "</s:Envelope>"
)


def build_probe(message_id: str) -> bytes:
    """The Probe datagram for NetworkVideoTransmitter with this MessageID."""
    return _PROBE_TEMPLATE.format(message_id=message_id).encode()


def parse_probe_matches(data: bytes, message_id: str | None = None) -> list[DiscoveredDevice]:
    """Devices in a ProbeMatches datagram answering ``message_id`` ([] if it answers another).

    Raises OnvifProtocolError when the datagram is not a well-formed SOAP envelope or a match
    lacks its endpoint reference. ``message_id=None`` accepts any RelatesTo (for fixtures).
    """
    root = _parse_envelope(data)
    if message_id is not None and _relates_to(root) != message_id:
        return []
    return [_device(match) for match in _iter(root, DISCOVERY_NS, "ProbeMatch")]


def _parse_envelope(data: bytes) -> ET.Element:
    """The SOAP 1.2 envelope of a datagram, or OnvifProtocolError.

    A datagram from the LAN is untrusted. The stdlib parser is safe for it: expat >= 2.4.1
    (3.11 bundles 2.5) bounds entity expansion, and external entities and DTDs are never fetched.
    """
    try:
        root = ET.fromstring(data)  # noqa: S314 - see the docstring
    except (ET.ParseError, LookupError, ValueError) as err:  # LookupError: unknown encoding
        raise OnvifProtocolError(f"not XML: {err}") from err
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise OnvifProtocolError("not a SOAP 1.2 envelope")
    return root


def _qnames(namespaces: Iterable[str], local: str) -> list[str]:
    """Clark-notation names of ``local`` in each namespace version we accept."""
    return [f"{{{ns}}}{local}" for ns in namespaces]


def _iter(parent: ET.Element, namespaces: Iterable[str], local: str) -> Iterator[ET.Element]:
    """Descendants named ``local`` in any of the namespace versions we accept."""
    for qname in _qnames(namespaces, local):
        yield from parent.iter(qname)


def _first_text(parent: ET.Element, namespaces: Iterable[str], local: str) -> str | None:
    """Stripped text of the first descendant named ``local`` in one of ``namespaces``."""
    for el in _iter(parent, namespaces, local):
        return (el.text or "").strip()
    return None


def _relates_to(root: ET.Element) -> str | None:
    """The WS-Addressing RelatesTo of the envelope (the MessageID it answers)."""
    header = root.find(f"{{{SOAP_ENV}}}Header")
    return None if header is None else _first_text(header, ADDRESSING_NS, "RelatesTo")


def _device(match: ET.Element) -> DiscoveredDevice:
    """One ProbeMatch element as a DiscoveredDevice."""
    endpoint = _first_text(match, ADDRESSING_NS, "Address")
    if not endpoint:
        raise OnvifProtocolError("ProbeMatch without EndpointReference/Address")
    scopes = tuple(_words(match, "Scopes"))
    return DiscoveredDevice(
        endpoint=endpoint,
        xaddrs=tuple(x for x in _words(match, "XAddrs") if x.startswith(("http://", "https://"))),
        scopes=scopes,
        name=scope_value(scopes, SCOPE_NAME),
        hardware=scope_value(scopes, SCOPE_HARDWARE),
        types=tuple(_words(match, "Types")),
    )


def _words(match: ET.Element, local: str) -> list[str]:
    """The whitespace-separated list in a discovery element (Types, Scopes, XAddrs)."""
    return (_first_text(match, DISCOVERY_NS, local) or "").split()


def scope_value(scopes: Iterable[str], prefix: str) -> str | None:
    """The percent-decoded value of the first scope under ``prefix`` (ONVIF Core 7.3.2.2)."""
    for scope in scopes:
        if scope.lower().startswith(prefix):
            return unquote(scope[len(prefix) :]) or None
    return None


def merge(devices: Iterable[DiscoveredDevice]) -> list[DiscoveredDevice]:
    """One entry per endpoint reference, with the XAddrs and scopes of all its answers."""
    by_endpoint: dict[str, DiscoveredDevice] = {}
    for dev in devices:
        seen = by_endpoint.get(dev.endpoint)
        by_endpoint[dev.endpoint] = dev if seen is None else _merge_two(seen, dev)
    return list(by_endpoint.values())


def _merge_two(a: DiscoveredDevice, b: DiscoveredDevice) -> DiscoveredDevice:
    """Union of two answers of the same device, first seen first."""
    return DiscoveredDevice(
        endpoint=a.endpoint,
        xaddrs=tuple(dict.fromkeys(a.xaddrs + b.xaddrs)),
        scopes=tuple(dict.fromkeys(a.scopes + b.scopes)),
        name=a.name or b.name,
        hardware=a.hardware or b.hardware,
        types=tuple(dict.fromkeys(a.types + b.types)),
    )


class _Collector(asyncio.DatagramProtocol):
    """Receives answers on one sending socket; keeps the ProbeMatches for our MessageID."""

    def __init__(self, message_id: str, found: list[DiscoveredDevice]) -> None:
        self._message_id = message_id
        self._found = found

    def datagram_received(self, data: bytes, addr: Any) -> None:
        """Parse one datagram; garbage and other conversations are dropped."""
        try:
            devices = parse_probe_matches(data, self._message_id)
        except OnvifProtocolError as err:
            log.debug("ignoring datagram from %s: %s", addr, err)
            return
        if not devices:
            log.debug("ignoring datagram from %s: not a ProbeMatch for us", addr)
        self._found.extend(devices)

    def error_received(self, exc: Exception) -> None:
        """ICMP errors (port unreachable from a unicast target) arrive here, not at sendto."""
        log.debug("WS-Discovery socket error: %s", exc)


def _make_socket(bind_ip: str, multicast_if: str | None) -> socket.socket:
    """A UDP socket bound to ``bind_ip`` whose multicast leaves through ``multicast_if``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setblocking(False)
        sock.bind((bind_ip, 0))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, MULTICAST_TTL)
        if multicast_if:
            sock.setsockopt(
                socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(multicast_if)
            )
    except OSError:
        sock.close()
        raise
    return sock


async def _open(
    bind_ip: str, multicast_if: str | None, protocol: _Collector
) -> asyncio.DatagramTransport | None:
    """A datagram transport for one sending address, or None (logged) if it cannot be made."""
    loop = asyncio.get_running_loop()
    try:
        sock = _make_socket(bind_ip, multicast_if)
    except OSError as err:
        log.warning("WS-Discovery: cannot send from %s: %s", bind_ip, err)
        return None
    transport, _ = await loop.create_datagram_endpoint(lambda: protocol, sock=sock)
    return transport


def _split_target(host: str) -> tuple[str, int]:
    """``host`` or ``host:port`` (a camera behind a port forward) as (host, port)."""
    name, sep, port = host.rpartition(":")
    return (name, int(port)) if sep and port.isdigit() else (host, WSD_PORT)


async def _resolve_targets(hosts: Sequence[str]) -> list[tuple[str, int]]:
    """IPv4 addresses of the unicast targets; unresolvable ones are logged and skipped."""
    loop = asyncio.get_running_loop()
    targets = []
    for host in hosts:
        name, port = _split_target(host)
        try:
            infos = await loop.getaddrinfo(
                name, port, family=socket.AF_INET, type=socket.SOCK_DGRAM
            )
        except OSError as err:
            log.warning("WS-Discovery: cannot resolve %s: %s", name, err)
            continue
        targets.append((str(infos[0][4][0]), port))
    return targets


def _send_all(
    multicast: Sequence[asyncio.DatagramTransport],
    unicast: asyncio.DatagramTransport | None,
    targets: Sequence[tuple[str, int]],
    datagram: bytes,
) -> None:
    """One round of Probes: to the group from each interface, and to each unicast target."""
    for transport in multicast:
        transport.sendto(datagram, (WSD_GROUP, WSD_PORT))
    if unicast is not None:
        for target in targets:
            unicast.sendto(datagram, target)


async def probe(
    *,
    timeout: float = 3.0,
    interfaces: Sequence[str] = (),
    unicast_hosts: Sequence[str] = (),
    multicast: bool = True,
) -> list[DiscoveredDevice]:
    """Probe for NetworkVideoTransmitters; every device that answered within ``timeout``.

    ``interfaces`` are local IPv4 addresses to multicast from (empty: the default route's
    interface); ``unicast_hosts`` are probed directly too (``host`` or ``host:port``);
    ``multicast=False`` probes only those. Raises OnvifUnreachable only when not a single
    Probe could be sent.
    """
    message_id = f"urn:uuid:{uuid.uuid4()}"
    found: list[DiscoveredDevice] = []
    collector = _Collector(message_id, found)
    senders = await _open_senders(interfaces, collector) if multicast else []
    targets = await _resolve_targets(unicast_hosts)
    unicast = await _open("0.0.0.0", None, collector) if targets else None
    transports = [*senders, *([unicast] if unicast else [])]
    if not transports:
        raise OnvifUnreachable("WS-Discovery: no address to send a Probe from")
    try:
        await _probe_rounds(senders, unicast, targets, build_probe(message_id), timeout)
    finally:
        for transport in transports:
            transport.close()
    devices = merge(found)
    log.debug("WS-Discovery found %d device(s) in %.1f s", len(devices), timeout)
    return devices


async def _open_senders(
    interfaces: Sequence[str], collector: _Collector
) -> list[asyncio.DatagramTransport]:
    """One multicast sender per interface address, or one on the default interface."""
    wanted: list[tuple[str, str | None]] = [(ip, ip) for ip in interfaces] or [("0.0.0.0", None)]
    opened = [await _open(bind_ip, mcast_if, collector) for bind_ip, mcast_if in wanted]
    return [t for t in opened if t is not None]


async def _probe_rounds(
    multicast: Sequence[asyncio.DatagramTransport],
    unicast: asyncio.DatagramTransport | None,
    targets: Sequence[tuple[str, int]],
    datagram: bytes,
    timeout: float,
) -> None:
    """Send, send again shortly after (same MessageID), then listen until the timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    _send_all(multicast, unicast, targets, datagram)
    await asyncio.sleep(min(REPEAT_DELAY_S, timeout))
    if loop.time() < deadline:
        _send_all(multicast, unicast, targets, datagram)
        await asyncio.sleep(deadline - loop.time())
