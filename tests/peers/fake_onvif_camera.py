"""A FAKE ONVIF camera for what no third-party peer offers: the Events service (PullPoint).

This is a test fake, not a camera: ipycam (the real third-party peer, ``tests/peers/ipycam.py``)
has no Events service (TEST-PEERS.md), so this aiohttp SOAP server answers the calls the
agent's event and health code makes — GetSystemDateAndTime, GetCapabilities, GetDeviceInformation,
CreatePullPointSubscription, PullMessages, Renew, Unsubscribe — with real devices' payloads:
the golden files in ``tests/agent/onvif/golden/events/`` named ``<vendor>_<model>_*.xml``
(Axis, Hikvision, Dahua, Hanwha), written from published captures, and ``onvif-spec_*.xml``
written from the ONVIF specification. Only what a real camera would vary per call is rewritten:
the subscription address, Axis's SubscriptionId, and the times.

Test controls: ``push(name)`` queues a vendor's PullMessages answer for the next pull;
``drop_subscriptions()`` forgets every subscription (what a rebooting camera does); ``hostile``
answers everything with an attack body; credentials turn on WS-UsernameToken checks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from lxml import etree  # type: ignore[import-untyped]

GOLDEN = Path(__file__).resolve().parents[1] / "agent" / "onvif" / "golden" / "events"
VENDORS = {
    "axis": "axis_m3045-v",
    "hikvision": "hikvision_ds-2cd2143g0-i",
    "dahua": "dahua_ipc-hdw2431t",
    "hanwha": "hanwha_xnv-8080r",
}
#: Hostile answers: an external entity, an exponential entity expansion, a 10 MB body.
HOSTILE = {
    "xxe": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&x;</s:Body>'
    b"</s:Envelope>",
    "billion_laughs": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "lollollollol">'
    + b"".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(9)
    )
    + b']><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&j;</s:Body>'
    b"</s:Envelope>",
    "huge": b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><x>'
    + b"A" * (10 * 1024 * 1024)
    + b"</x></s:Body></s:Envelope>",
}
_DURATION = re.compile(r"^PT(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$")


def golden(name: str) -> bytes:
    """One golden file's bytes."""
    return (GOLDEN / f"{name}.xml").read_bytes()


def _seconds(duration: str, default: float) -> float:
    """An xs:duration such as PT60S or PT1M as seconds (the subset cameras are sent)."""
    match = _DURATION.match(duration.strip())
    if not match:
        return default
    return float(match[1] or 0) * 60 + float(match[2] or 0)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeOnvifCamera:
    """The fake's state; ``start()`` serves it on 127.0.0.1 (or ``host``)."""

    vendor: str = "hikvision"
    username: str = ""
    password: str = field(default="", repr=False)
    host: str = "127.0.0.1"
    clock_offset_s: float = 0.0
    hostile: str | None = None
    port: int = 0
    creates: int = 0
    renews: int = 0
    pulls: int = 0
    unsubscribes: int = 0
    #: Reference-parameter SubscriptionIds the client echoed (Axis); checked by tests.
    echoed_ids: list[str] = field(default_factory=list)
    _queue: deque[bytes] = field(default_factory=deque)
    _subs: set[str] = field(default_factory=set)
    _pushed: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    # --- controls -----------------------------------------------------------------------------

    def push(self, name: str) -> None:
        """Queue a golden PullMessagesResponse (a file name without .xml) for the next pull."""
        self._queue.append(golden(name))
        self._pushed.set()

    def drop_subscriptions(self) -> None:
        """Forget every subscription, as a camera does when it reboots."""
        self._subs.clear()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Return once ``predicate()`` holds, re-checked after every call the fake answers."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def xaddr(self) -> str:
        """The device service URL."""
        return f"{self.base}/onvif/device_service"

    async def start(self) -> None:
        """Serve on a free port."""
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/onvif/device_service", self._device)
        app.router.add_post("/onvif/events", self._events)
        app.router.add_post("/onvif/subscription/{sid}", self._subscription)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    # --- handlers -----------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset_s)

    async def _parse(self, request: web.Request) -> tuple[str, etree._Element] | web.Response:
        """The operation's local name and the envelope, or the auth fault / hostile answer."""
        if self.hostile:
            return web.Response(body=HOSTILE[self.hostile], content_type="application/soap+xml")
        root = etree.fromstring(await request.read())
        body = root.find("{http://www.w3.org/2003/05/soap-envelope}Body")
        op = etree.QName(body[0]).localname if body is not None and len(body) else ""
        if op != "GetSystemDateAndTime" and not self._authorized(root):
            return self._soap(golden("onvif-spec_fault_not_authorized"), status=400)
        return op, root

    def _authorized(self, root: etree._Element) -> bool:
        """WS-UsernameToken PasswordDigest check (when the fake has credentials)."""
        if not self.username:
            return True
        text = {el.tag.rpartition("}")[2]: (el.text or "") for el in root.iter("{*}*")}
        if text.get("Username") != self.username:
            return False
        nonce = base64.b64decode(text.get("Nonce", ""))
        raw = nonce + text.get("Created", "").encode() + self.password.encode()
        expected = base64.b64encode(hashlib.sha1(raw).digest()).decode()  # noqa: S324
        return text.get("Password") == expected

    def _soap(self, body: bytes, status: int = 200) -> web.Response:
        self._changed.set()
        return web.Response(body=body, status=status, content_type="application/soap+xml")

    async def _device(self, request: web.Request) -> web.Response:
        parsed = await self._parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        op, _ = parsed
        if op == "GetSystemDateAndTime":
            return self._soap(self._date_and_time())
        if op == "GetCapabilities":
            doc = etree.fromstring(golden("onvif-spec_get_capabilities_events"))
            next(doc.iter("{*}XAddr")).text = f"{self.base}/onvif/events"
            return self._soap(etree.tostring(doc))
        if op == "GetDeviceInformation":
            return self._soap(golden("onvif-spec_get_device_information"))
        return self._soap(golden("onvif-spec_fault_resource_unknown"), status=400)

    def _date_and_time(self) -> bytes:
        """GetSystemDateAndTime with the fake's (possibly wrong) clock."""
        doc = etree.fromstring(golden("onvif-spec_get_system_date_and_time"))
        now = self._now()
        values = {"Year": now.year, "Month": now.month, "Day": now.day,
                  "Hour": now.hour, "Minute": now.minute, "Second": now.second}  # fmt: skip
        for el in next(doc.iter("{*}UTCDateTime")).iter("{*}*"):
            local = etree.QName(el).localname
            if local in values:
                el.text = str(values[local])
        return bytes(etree.tostring(doc))

    async def _events(self, request: web.Request) -> web.Response:
        parsed = await self._parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        op, root = parsed
        if op != "CreatePullPointSubscription":
            return self._soap(golden("onvif-spec_fault_resource_unknown"), status=400)
        self.creates += 1
        sid = str(self.creates)
        self._subs.add(sid)
        length = _seconds(_text(root, "InitialTerminationTime") or "PT60S", 60.0)
        doc = etree.fromstring(golden(f"{VENDORS[self.vendor]}_create_pullpoint_subscription"))
        next(doc.iter("{*}Address")).text = f"{self.base}/onvif/subscription/{sid}"
        for el in doc.iter("{*}SubscriptionId"):
            el.text = sid
        self._set_times(doc, length)
        return self._soap(etree.tostring(doc, xml_declaration=True, encoding="UTF-8"))

    def _set_times(self, doc: etree._Element, length: float) -> None:
        now = self._now()
        for el in doc.iter("{*}CurrentTime"):
            el.text = _iso(now)
        for el in doc.iter("{*}TerminationTime"):
            el.text = _iso(now + timedelta(seconds=length))

    async def _subscription(self, request: web.Request) -> web.Response:
        parsed = await self._parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        op, root = parsed
        sid = request.match_info["sid"]
        self.echoed_ids += [el.text or "" for el in root.iter("{*}SubscriptionId")]
        if sid not in self._subs:
            return self._soap(golden("onvif-spec_fault_resource_unknown"), status=400)
        if op == "PullMessages":
            return await self._pull(root)
        if op == "Renew":
            self.renews += 1
            doc = etree.fromstring(golden("onvif-spec_renew"))
            self._set_times(doc, _seconds(_text(root, "TerminationTime") or "PT60S", 60.0))
            return self._soap(etree.tostring(doc))
        if op == "Unsubscribe":
            self.unsubscribes += 1
            self._subs.discard(sid)
            return self._soap(golden("onvif-spec_unsubscribe"))
        return self._soap(golden("onvif-spec_fault_resource_unknown"), status=400)

    async def _pull(self, root: etree._Element) -> web.Response:
        """The next queued vendor answer, or an empty one when the long poll times out."""
        self.pulls += 1
        timeout = _seconds(_text(root, "Timeout") or "PT5S", 5.0)
        if not self._queue:
            self._pushed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pushed.wait(), timeout)
        body = self._queue.popleft() if self._queue else golden("onvif-spec_pull_messages_empty")
        doc = etree.fromstring(body)
        self._set_times(doc, 60.0)
        return self._soap(etree.tostring(doc, xml_declaration=True, encoding="UTF-8"))


def _text(root: etree._Element, local: str) -> str | None:
    for el in root.iter(f"{{*}}{local}"):
        return str(el.text or "")
    return None
