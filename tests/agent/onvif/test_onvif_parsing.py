"""Pure parsing and error classification, plus hostile and dead peers on loopback (no root)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
import zeep.exceptions
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.onvif import client
from agent.onvif.client import read_camera
from agent.onvif.discovery import (
    DiscoveredDevice,
    build_probe,
    merge,
    parse_probe_matches,
    probe,
)
from agent.onvif.errors import (
    OnvifAuthError,
    OnvifProtocolError,
    OnvifUnreachable,
    OnvifUnsupported,
    redact,
)

GOLDEN = Path(__file__).parent / "golden"
#: Captured from ipycam 1.3.0 (manufacturer PythonCam, model VirtualCam-1) answering a Probe.
IPYCAM_PROBE_MATCH = (GOLDEN / "pythoncam_virtualcam-1.probe_match.xml").read_bytes()
IPYCAM_PROBE_ID = "urn:uuid:30891daf-6acf-4535-827a-86fd03c9b121"

#: A standard reply: ProbeMatches wrapper, OASIS 1.1 namespaces, two XAddrs, hardware scope.
WSDD11_PROBE_MATCHES = b"""<?xml version="1.0" encoding="UTF-8"?>
<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"
  xmlns:w="http://www.w3.org/2005/08/addressing"
  xmlns:d="http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01">
 <e:Header><w:RelatesTo>urn:uuid:ours</w:RelatesTo></e:Header>
 <e:Body><d:ProbeMatches><d:ProbeMatch>
  <w:EndpointReference><w:Address>urn:uuid:cam-2</w:Address></w:EndpointReference>
  <d:Types>dn:NetworkVideoTransmitter</d:Types>
  <d:Scopes>onvif://www.onvif.org/hardware/DS-2CD2143G2-I
   onvif://www.onvif.org/name/Front%20door</d:Scopes>
  <d:XAddrs>http://192.168.1.64/onvif/device_service urn:not-a-url
   http://[fe80::1]/onvif/device_service</d:XAddrs>
 </d:ProbeMatch></d:ProbeMatches></e:Body></e:Envelope>"""


def test_golden_ipycam_probe_match() -> None:
    """ipycam's reply (a bare ProbeMatch, no ProbeMatches wrapper) parses to one device."""
    (device,) = parse_probe_matches(IPYCAM_PROBE_MATCH, IPYCAM_PROBE_ID)
    assert device.endpoint == "urn:uuid:4288fb41-651b-4579-9187-cf395824068e"
    assert device.xaddrs == ("http://203.0.113.18:8080/onvif/device_service",)
    assert device.name == "rmon demo camera"
    assert device.hardware is None
    assert device.types == ("dn:NetworkVideoTransmitter", "tds:Device")
    assert len(device.scopes) == 3


def test_answer_to_another_probe_is_not_ours() -> None:
    """RelatesTo must be our MessageID: another client's answers are ignored."""
    assert parse_probe_matches(IPYCAM_PROBE_MATCH, "urn:uuid:someone-else") == []


def test_standard_probe_matches_with_wsdd_1_1_namespaces() -> None:
    """The OASIS 1.1 namespaces parse too; non-HTTP XAddrs are dropped; scopes are decoded."""
    (device,) = parse_probe_matches(WSDD11_PROBE_MATCHES, "urn:uuid:ours")
    assert device.xaddrs == (
        "http://192.168.1.64/onvif/device_service",
        "http://[fe80::1]/onvif/device_service",
    )
    assert (device.name, device.hardware) == ("Front door", "DS-2CD2143G2-I")


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"<not-closed",
        b'<?xml version="1.0" encoding="bogus"?><a/>',
        b"<?xml version='1.0'?><html><body>hi</body></html>",
        b'<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><x>&b;</x>',
        IPYCAM_PROBE_MATCH.replace(b"<wsa:Address>", b"<wsa:Nothing>").replace(
            b"</wsa:Address>", b"</wsa:Nothing>"
        ),
    ],
)
def test_garbage_is_a_protocol_error(garbage: bytes) -> None:
    """Anything that is not a usable SOAP envelope raises our error, never a parser's."""
    with pytest.raises(OnvifProtocolError):
        parse_probe_matches(garbage, None)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(IPYCAM_PROBE_MATCH) - 1), st.integers(0, 255)), max_size=8
    )
)
def test_mutated_probe_match_never_raises_a_foreign_error(flips: list[tuple[int, int]]) -> None:
    """Byte-flipped captures give devices, [] or OnvifProtocolError, nothing else."""
    data = bytearray(IPYCAM_PROBE_MATCH)
    for pos, value in flips:
        data[pos] = value
    with contextlib.suppress(OnvifProtocolError):
        parse_probe_matches(bytes(data), IPYCAM_PROBE_ID)


def test_probe_message_is_well_formed_and_asks_for_nvt() -> None:
    """Our Probe parses as SOAP and carries our MessageID and the NVT type."""
    data = build_probe("urn:uuid:abc")
    assert parse_probe_matches(data, None) == []  # an envelope, with no ProbeMatch in it
    assert b"<a:MessageID>urn:uuid:abc</a:MessageID>" in data
    assert b"dn:NetworkVideoTransmitter" in data


def test_merge_dedupes_by_endpoint_and_unions_xaddrs() -> None:
    """Two answers of one device (two interfaces, repeats) become one entry."""
    a = DiscoveredDevice("urn:1", ("http://a/",), ("s1",), None, None)
    b = DiscoveredDevice("urn:1", ("http://b/", "http://a/"), ("s1",), "cam", None)
    c = DiscoveredDevice("urn:2", ("http://c/",), (), None, None)
    assert merge([a, c, b]) == [
        DiscoveredDevice("urn:1", ("http://a/", "http://b/"), ("s1",), "cam", None),
        c,
    ]


def test_redact_hides_url_credentials_and_secrets() -> None:
    """User-info in URLs and the given secrets never reach a message."""
    text = "GET http://admin:hunter22@10.0.0.5/snap.jpg failed for hunter22"
    assert redact(text, "hunter22") == "GET http://***@10.0.0.5/snap.jpg failed for ***"


def _fault(message: str, **kwargs: object) -> BaseException:
    """A zeep SOAP fault as zeep raises it (zeep is untyped)."""
    return zeep.exceptions.Fault(message, **kwargs)  # type: ignore[no-untyped-call]


def _transport(status_code: int) -> BaseException:
    """zeep's error for an HTTP status without a SOAP body."""
    return zeep.exceptions.TransportError(status_code=status_code)  # type: ignore[no-untyped-call]


def _xml_syntax(message: str) -> BaseException:
    """zeep's error for a reply that is not XML."""
    return zeep.exceptions.XMLSyntaxError(message)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (_fault("Sender not authorized"), OnvifAuthError),
        (
            _fault("denied", subcodes=["{http://www.onvif.org/ver10/error}NotAuthorized"]),
            OnvifAuthError,
        ),
        (_fault("Action not supported: GetSystemLog"), OnvifUnsupported),
        (
            _fault("x", subcodes=["{http://www.onvif.org/ver10/error}ActionNotSupported"]),
            OnvifUnsupported,
        ),
        (_fault("Invalid argument value"), OnvifProtocolError),
        (_transport(status_code=401), OnvifAuthError),
        (_transport(status_code=503), OnvifUnreachable),
        (_xml_syntax("bad"), OnvifProtocolError),
        (ConnectionRefusedError(111, "refused"), OnvifUnreachable),
        (ValueError("Invalid tag name 'tptz:Preset'"), OnvifProtocolError),
    ],
)
def test_library_errors_are_classified(fault: BaseException, kind: type) -> None:
    """Faults by code and reason (ipycam sends "Action not supported" with HTTP 200)."""
    assert client._classify(fault)[0] is kind


async def test_closed_port_is_unreachable_at_once() -> None:
    """Connection refused fails fast (no retry: it is not a classified quirk)."""
    with socket.socket() as s:  # a port that was free a moment ago and is closed now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(OnvifUnreachable, match=r"127\.0\.0\.1"):
        await read_camera(f"http://127.0.0.1:{port}/onvif/device_service", "u", "p", timeout=5)
    assert time.monotonic() - started < 1.0


async def test_not_an_xaddr_is_a_protocol_error() -> None:
    """A configured XAddr that is not an http(s) URL is reported, not crashed on."""
    with pytest.raises(OnvifProtocolError):
        await read_camera("rtsp://10.0.0.1/", "", "", timeout=1)


async def test_probe_from_an_address_we_do_not_have() -> None:
    """No socket can be bound: OnvifUnreachable, and nothing was sent anywhere."""
    with pytest.raises(OnvifUnreachable):
        await probe(timeout=0.1, interfaces=["203.0.113.254"])


class _HostileResponder(asyncio.DatagramProtocol):
    """A LAN peer answering every Probe with garbage first, then one real ProbeMatch."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message_id = data.split(b"<a:MessageID>")[1].split(b"<")[0]
        ours = IPYCAM_PROBE_MATCH.replace(IPYCAM_PROBE_ID.encode(), message_id)
        for reply in (b"\x00garbage", b"<a><b></a>", IPYCAM_PROBE_MATCH, ours, ours):
            self.transport.sendto(reply, addr)


@pytest.fixture
async def hostile_peer() -> AsyncIterator[int]:
    """The responder on a loopback port; yields the port."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        _HostileResponder, local_addr=("127.0.0.1", 0)
    )
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


async def test_probe_ignores_garbage_and_foreign_answers(
    hostile_peer: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage and answers to other Probes are dropped (logged at debug); ours counts once."""
    caplog.set_level(logging.DEBUG, logger="agent.onvif.discovery")
    found = await probe(timeout=0.3, unicast_hosts=[f"127.0.0.1:{hostile_peer}"], multicast=False)
    assert [d.endpoint for d in found] == ["urn:uuid:4288fb41-651b-4579-9187-cf395824068e"]
    assert "ignoring datagram" in caplog.text


def test_importing_the_client_leaves_root_logging_alone(tmp_path: Path) -> None:
    """onvif-zeep-async calls logging.basicConfig on import; our import undoes it."""
    code = (
        "import logging, agent.onvif.client; r = logging.getLogger(); "
        "print(len(r.handlers), r.level)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.split() == ["0", str(logging.WARNING)]
