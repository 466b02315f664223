"""Small raw SOAP 1.2 calls for the long-running ONVIF work: event pulls and health checks.

Why not zeep here: a PullPoint loop makes a call every few seconds for the life of the agent,
on every camera, with bodies a camera fully controls. This path bounds everything itself —
the body size (``MAX_SOAP_BYTES``, read in bounded chunks, refused past the limit), the time of
each call, and the parser (``event_parsers.parse_soap``: no DTD, no entities, no network) — and
its envelopes are a few fixed templates. The one-shot reads (profiles, PTZ, imaging) stay on
onvif-zeep-async in ``client.py``.

Authentication is WS-Security UsernameToken with PasswordDigest (ONVIF Core 5.12), its Created
time shifted by the camera's clock offset (NOTES: a camera 2 h off rejects every token
otherwise). The password only ever enters the digest.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.sax.saxutils import escape

import aiohttp
from lxml import etree  # type: ignore[import-untyped]

from agent.onvif.errors import (
    OnvifAuthError,
    OnvifError,
    OnvifProtocolError,
    OnvifUnreachable,
    OnvifUnsupported,
    redact,
)
from agent.onvif.event_parsers import MAX_SOAP_BYTES, parse_soap

log = logging.getLogger(__name__)

SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
#: A URI naming the digest scheme, not a password.
PASSWORD_DIGEST = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"  # noqa: S105
    "#PasswordDigest"
)
_READ_CHUNK = 64 * 1024

#: Fault texts (letters only, lower case) and what they mean; ResourceUnknown = subscription gone.
_AUTH_MARKERS = ("notauthorized", "unauthorized", "authenticationfailed", "authorityfailure")
_UNSUPPORTED_MARKERS = ("actionnotsupported", "notimplemented", "nosuchservice", "notsupported")
_GONE_MARKERS = ("resourceunknown", "invalidsubscription", "unknownsubscription")


class SubscriptionGone(OnvifProtocolError):
    """The camera no longer knows the subscription (it rebooted, or expired it): subscribe
    again; nothing is wrong with the camera itself."""


@dataclass(frozen=True)
class Credentials:
    """Who we are to one camera; ``clock_offset_s`` = camera clock minus ours."""

    username: str
    password: str = field(repr=False)
    clock_offset_s: float = 0.0


@dataclass(frozen=True)
class Endpoint:
    """Where to send a call: a URL, and the WS-Addressing reference parameters to echo
    (Axis puts its SubscriptionId there)."""

    url: str
    reference_parameters: tuple[str, ...] = ()


def _security_header(creds: Credentials) -> str:
    """WS-Security UsernameToken with PasswordDigest = b64(sha1(nonce + created + password))."""
    if not creds.username:
        return ""
    nonce = os.urandom(16)
    stamp = datetime.fromtimestamp(time.time() + creds.clock_offset_s, UTC)
    created = stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    digest = hashlib.sha1(nonce + created.encode() + creds.password.encode()).digest()  # noqa: S324 - the WS-Security profile mandates SHA-1
    return (
        f'<wsse:Security s:mustUnderstand="1" xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}">'
        f"<wsse:UsernameToken><wsse:Username>{escape(creds.username)}</wsse:Username>"
        f'<wsse:Password Type="{PASSWORD_DIGEST}">{base64.b64encode(digest).decode()}'
        "</wsse:Password>"
        f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce>"
        f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>"
    )


def envelope(body: str, action: str, to: Endpoint, creds: Credentials | None) -> bytes:
    """A SOAP 1.2 request: WS-Addressing headers (cameras route on them), security, body."""
    headers = (
        f"<a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>urn:uuid:{uuid.uuid4()}</a:MessageID>"
        f"<a:To>{escape(to.url)}</a:To>" + "".join(to.reference_parameters)
    )
    security = _security_header(creds) if creds else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{SOAP_ENV}" xmlns:a="{WSA}">'
        f"<s:Header>{security}{headers}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


async def call(
    session: aiohttp.ClientSession,
    to: Endpoint,
    action: str,
    body: str,
    creds: Credentials | None,
    *,
    timeout: float,
) -> etree._Element:
    """POST one request; the parsed answer, or the OnvifError its failure means."""
    where = f"ONVIF {redact(to.url)} {action.rpartition('/')[2]}"
    data = envelope(body, action, to, creds)
    headers = {"Content-Type": f'application/soap+xml; charset=utf-8; action="{action}"'}
    password = creds.password if creds else ""
    try:
        async with asyncio.timeout(timeout):
            status, answer = await _post(session, to.url, data, headers)
    except TimeoutError as err:
        raise OnvifUnreachable(f"{where}: no answer within {timeout:g} s") from err
    except aiohttp.ClientError as err:
        raise OnvifUnreachable(redact(f"{where}: {type(err).__name__}: {err}", password)) from err
    except OnvifError as err:
        raise type(err)(f"{where}: {err}") from err
    return _result(status, answer, where)


async def _post(
    session: aiohttp.ClientSession, url: str, data: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    """Status and body of a POST, the body read in chunks and refused past MAX_SOAP_BYTES."""
    async with session.post(url, data=data, headers=headers, allow_redirects=False) as resp:
        if (resp.content_length or 0) > MAX_SOAP_BYTES:
            raise OnvifProtocolError(f"answer of {resp.content_length} bytes refused")
        chunks: list[bytes] = []
        size = 0
        while chunk := await resp.content.read(_READ_CHUNK):
            size += len(chunk)
            if size > MAX_SOAP_BYTES:
                raise OnvifProtocolError(f"answer larger than {MAX_SOAP_BYTES} bytes refused")
            chunks.append(chunk)
        return resp.status, b"".join(chunks)


def _result(status: int, answer: bytes, where: str) -> etree._Element:
    """The answer's root on success; the error a fault or a bad status means."""
    root: etree._Element | None = None
    if answer.strip():
        try:
            root = parse_soap(answer)
        except OnvifProtocolError as err:
            raise OnvifProtocolError(f"{where}: {err}") from err
    fault = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault") if root is not None else None
    if fault is not None:
        kind, text = classify_fault(fault)
        raise kind(f"{where}: SOAP fault {text} (HTTP {status})")
    if status in {401, 403}:
        raise OnvifAuthError(f"{where}: credentials refused (HTTP {status})")
    if status in {502, 503, 504}:
        raise OnvifUnreachable(f"{where}: HTTP {status}")
    if not 200 <= status < 300 or root is None:
        raise OnvifProtocolError(f"{where}: HTTP {status}")
    return root


def classify_fault(fault: etree._Element) -> tuple[type[OnvifError], str]:
    """Which error a SOAP Fault means, and its codes and reason as one short text."""
    words = [t.strip() for t in fault.itertext() if t.strip()]
    text = " ".join(words)[:300]
    letters = re.sub("[^a-z]", "", text.lower())
    if any(m in letters for m in _AUTH_MARKERS):
        return OnvifAuthError, text
    if any(m in letters for m in _GONE_MARKERS):
        return SubscriptionGone, text
    if any(m in letters for m in _UNSUPPORTED_MARKERS):
        return OnvifUnsupported, text
    return OnvifProtocolError, text


def first_text(root: etree._Element, local: str) -> str | None:
    """Text of the first element named ``local`` in any namespace (cameras vary prefixes)."""
    for el in root.iter(f"{{*}}{local}"):
        return (el.text or "").strip()
    return None


def bounded_session(timeout: float) -> aiohttp.ClientSession:
    """A session for camera calls: no cookies kept, every call bounded by ``timeout``."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout),
        cookie_jar=aiohttp.DummyCookieJar(),
    )
