"""A FAKE ONVIF camera for what no third-party peer offers: Events, Imaging, SystemReboot,
GetSystemLog (and the Media answers needed to reach them).

This is a test fake, not a camera: ipycam (the real third-party peer, ``tests/peers/ipycam.py``)
has no Events, Imaging, SystemReboot or GetSystemLog (TEST-PEERS.md), so this aiohttp SOAP server
answers the calls the agent makes for them with real devices' payloads:

- events (``golden/events/``): GetSystemDateAndTime, GetCapabilities, GetDeviceInformation,
  CreatePullPointSubscription, PullMessages, Renew, Unsubscribe — ``<vendor>_<model>_*.xml``
  (Axis, Hikvision, Dahua, Hanwha) written from published captures;
- control (``golden/control/``): Media GetProfiles/GetStreamUri/GetSnapshotUri, Imaging
  GetImagingSettings/SetImagingSettings/GetOptions/GetMoveOptions/Move/Stop, Device
  SystemReboot/GetSystemLog — as the ``model`` answers them (a Hikvision DS-2CD2646G2-IZS with a
  motorised lens, or an Axis M3045-V with a fixed one, which borrows the Hikvision's media
  answers); ``onvif-spec_*.xml`` are written from the ONVIF specification.

Only what a real camera would vary per call is rewritten: addresses, Axis's SubscriptionId, the
times, and the imaging settings it stores (SetImagingSettings changes what GetImagingSettings
answers next, and values outside GetOptions' ranges get the spec's SettingsInvalid fault).

``ptz="unadvertised"`` plays an old PTZ camera: it answers ContinuousMove, Stop, RelativeMove
and GotoHomePosition at its device service URL but lists no PTZ service and no PTZConfiguration
(what LIVE-5's "forced PTZ" is for). With ``ptz="none"`` those get ActionNotSupported.

Test controls: ``push(name)`` queues a vendor's PullMessages answer for the next pull;
``drop_subscriptions()`` forgets every subscription (what a rebooting camera does, and what
SystemReboot does here); ``hostile`` answers everything with an attack body; credentials turn on
WS-UsernameToken checks. What the agent did is recorded for tests to check: ``reboots``,
``log_reads``, ``focus_moves`` (speeds), ``focus_stops``, ``ptz_calls`` (operation names),
``imaging_value(path)``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from aiohttp import web
from lxml import etree  # type: ignore[import-untyped]

GOLDEN = Path(__file__).resolve().parents[1] / "agent" / "onvif" / "golden" / "events"
CONTROL_GOLDEN = GOLDEN.parent / "control"
#: The camera models the control goldens describe; the first also lends the others the answers
#: they have no file of their own for (capabilities, media, system log).
MODELS = ("hikvision_ds-2cd2646g2-izs", "axis_m3045-v")
#: The fake's service paths, by the GetCapabilities element that announces them.
SERVICE_PATHS = {
    "Device": "/onvif/device_service",
    "Events": "/onvif/events",
    "Imaging": "/onvif/imaging",
    "Media": "/onvif/media",
}
#: ImagingSettings20 names whose choices GetOptions lists under another name.
_OPTION_NAMES = {"AutoFocusMode": "AutoFocusModes", "IrCutFilter": "IrCutFilterModes"}
_PTZ_OPS = {
    "ContinuousMove": "ptz_continuous_move",
    "Stop": "ptz_stop",
    "RelativeMove": "ptz_relative_move",
    "GotoHomePosition": "ptz_goto_home_position",
}
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


def control_golden(model: str, operation: str) -> etree._Element:
    """A control answer of ``model`` (``onvif-spec`` for the spec's), parsed.

    A model without a file for ``operation`` answers as the first model does.
    """
    path = CONTROL_GOLDEN / f"{model}_{operation}.xml"
    if not path.exists():
        path = CONTROL_GOLDEN / f"{MODELS[0]}_{operation}.xml"
    return etree.fromstring(path.read_bytes())


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
    #: Whose control answers (imaging, reboot, log, media) the fake gives: one of MODELS.
    model: str = MODELS[0]
    ptz: Literal["none", "unadvertised"] = "none"
    #: The RTSP URI GetStreamUri gives ("" = the model's own, on the fake's host, port 554).
    stream_uri: str = ""
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
    reboots: int = 0
    log_reads: int = 0
    focus_moves: list[float] = field(default_factory=list)
    focus_stops: int = 0
    ptz_calls: list[str] = field(default_factory=list)
    _imaging: etree._Element | None = None
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

    def imaging_value(self, path: str) -> str | None:
        """A stored imaging setting by its ImagingSettings20 path, e.g. ``Exposure/Gain``."""
        el = self._settings()
        for local in path.split("/"):
            el = next(el.iterchildren(f"{{*}}{local}"), None)
            if el is None:
                return None
        return str(el.text)

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
        app.router.add_post("/onvif/media", self._media)
        app.router.add_post("/onvif/imaging", self._imaging_service)
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
        answers: dict[str, Callable[[], web.Response]] = {
            "GetSystemDateAndTime": lambda: self._soap(self._date_and_time()),
            "GetCapabilities": lambda: self._soap(self._capabilities()),
            "GetDeviceInformation": lambda: self._answer("get_device_information"),
            "SystemReboot": self._reboot,
            "GetSystemLog": self._system_log,
        }
        if op in answers:
            return answers[op]()
        if op in _PTZ_OPS:
            return self._ptz(op)
        return self._soap(golden("onvif-spec_fault_resource_unknown"), status=400)

    def _reboot(self) -> web.Response:
        """SystemReboot: counted, and the subscriptions are gone as after a real reboot."""
        self.reboots += 1
        self.drop_subscriptions()
        return self._answer("system_reboot")

    def _system_log(self) -> web.Response:
        self.log_reads += 1
        return self._answer("get_system_log")

    def _answer(self, operation: str, model: str = "") -> web.Response:
        """The model's (or the spec's) golden answer to ``operation``."""
        return self._soap(etree.tostring(control_golden(model or self.model, operation)))

    def _fault(self, name: str) -> web.Response:
        """A spec fault; real cameras send them with HTTP 400 (Sender) or 500 (Receiver)."""
        doc = control_golden("onvif-spec", f"fault_{name}")
        receiver = "Receiver" in (next(doc.iter("{*}Value")).text or "")
        return self._soap(etree.tostring(doc), status=500 if receiver else 400)

    def _capabilities(self) -> bytes:
        """The model's GetCapabilities, pointing at the fake's services (no Analytics)."""
        doc = control_golden(self.model, "get_capabilities")
        caps = next(doc.iter("{*}Capabilities"))
        for service in list(caps):
            path = SERVICE_PATHS.get(etree.QName(service).localname)
            if path is None:
                caps.remove(service)
            else:
                next(service.iterchildren("{*}XAddr")).text = self.base + path
        return bytes(etree.tostring(doc))

    def _ptz(self, op: str) -> web.Response:
        """An old PTZ camera's answer at its device service; ActionNotSupported without PTZ."""
        if self.ptz == "none":
            return self._fault("action_not_supported")
        self.ptz_calls.append(op)
        return self._answer(_PTZ_OPS[op], "onvif-spec")

    # --- media and imaging ----------------------------------------------------------------------

    async def _media(self, request: web.Request) -> web.Response:
        parsed = await self._parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        op, _ = parsed
        if op == "GetProfiles":
            return self._answer("get_profiles")
        if op in {"GetStreamUri", "GetSnapshotUri"}:
            return self._soap(self._media_uri(op))
        return self._fault("action_not_supported")

    def _media_uri(self, op: str) -> bytes:
        """The model's URI answer with the camera's address made the fake's."""
        doc = control_golden(
            self.model, "get_stream_uri" if op == "GetStreamUri" else "get_snapshot_uri"
        )
        uri = next(doc.iter("{*}Uri"))
        if op == "GetStreamUri" and self.stream_uri:
            uri.text = self.stream_uri
        else:
            uri.text = re.sub(r"//[^/:]+", f"//{self.host}", uri.text or "", count=1)
        return bytes(etree.tostring(doc))

    def _settings(self) -> etree._Element:
        """The stored ImagingSettings (the model's until something is set)."""
        if self._imaging is None:
            doc = control_golden(self.model, "get_imaging_settings")
            self._imaging = next(doc.iter("{*}ImagingSettings"))
        return self._imaging

    async def _imaging_service(self, request: web.Request) -> web.Response:
        parsed = await self._parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        op, root = parsed
        if _text(root, "VideoSourceToken") != "VideoSource_1":
            return self._fault("no_imaging_for_source")
        return self._imaging_op(op, root)

    def _imaging_op(self, op: str, root: etree._Element) -> web.Response:
        if op in {"GetOptions", "GetMoveOptions"}:
            return self._answer("get_options" if op == "GetOptions" else "get_move_options")
        if op in {"Move", "Stop"}:
            return self._focus(op, root)
        if op == "SetImagingSettings":
            return self._set_imaging(next(root.iter("{*}ImagingSettings")))
        if op == "GetImagingSettings":
            return self._get_imaging()
        return self._fault("action_not_supported")

    def _get_imaging(self) -> web.Response:
        """The model's GetImagingSettings answer holding the stored settings."""
        doc = control_golden(self.model, "get_imaging_settings")
        holder = next(doc.iter("{*}ImagingSettings"))
        holder.getparent().replace(holder, _copy(self._settings()))
        return self._soap(etree.tostring(doc))

    def _set_imaging(self, wanted: etree._Element) -> web.Response:
        """Check every value against GetOptions, then store them all (or none)."""
        options = next(control_golden(self.model, "get_options").iter("{*}ImagingOptions"))
        if not _valid(wanted, options):
            return self._fault("settings_invalid")
        _merge(self._settings(), wanted)
        return self._answer("set_imaging_settings", "onvif-spec")

    def _focus(self, op: str, root: etree._Element) -> web.Response:
        """Continuous focus moves and their stop, on a model whose lens moves."""
        moves = control_golden(self.model, "get_move_options")
        if next(moves.iter("{*}Continuous"), None) is None:
            return self._fault("action_not_supported")
        if op == "Stop":
            self.focus_stops += 1
            return self._answer("imaging_stop", "onvif-spec")
        self.focus_moves.append(float(_text(root, "Speed") or 0))
        return self._answer("imaging_move", "onvif-spec")

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


@contextlib.contextmanager
def serving_in_thread(cam: FakeOnvifCamera, timeout: float = 10.0) -> Iterator[FakeOnvifCamera]:
    """Serve ``cam`` from an event loop of its own thread, for tests whose own thread blocks
    (the e2e tests call the relay with urllib while the agent, a subprocess, calls the fake)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-onvif-camera", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(cam.start(), loop).result(timeout)
        yield cam
    finally:
        asyncio.run_coroutine_threadsafe(cam.stop(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        loop.close()


def _copy(el: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(el))


def _valid(wanted: etree._Element, options: etree._Element) -> bool:
    """Whether every leaf of ``wanted`` lies in the range or among the choices GetOptions gives.

    A leaf GetOptions says nothing about is accepted, as cameras do.
    """
    for leaf in wanted.iter("{*}*"):
        if len(leaf) or leaf is wanted or not (leaf.text or "").strip():
            continue
        names = [etree.QName(leaf).localname]
        for parent in leaf.iterancestors():
            if parent is wanted:
                break
            names.insert(0, etree.QName(parent).localname)
        if not _allowed(options, names, (leaf.text or "").strip()):
            return False
    return True


def _allowed(options: etree._Element, names: list[str], value: str) -> bool:
    """One value against the option at ``names`` (a Min/Max range or a list of choices)."""
    parent = options
    for local in names[:-1]:
        parent = next(parent.iterchildren(f"{{*}}{local}"), None)
        if parent is None:
            return True
    last = _OPTION_NAMES.get(names[-1], names[-1])
    found = list(parent.iterchildren(f"{{*}}{last}"))
    if not found:
        return True
    low, high = found[0].find("{*}Min"), found[0].find("{*}Max")
    if low is not None and high is not None:
        return float(low.text or 0) <= float(value) <= float(high.text or 0)
    return value in {(c.text or "").strip() for c in found}


def _merge(stored: etree._Element, wanted: etree._Element) -> None:
    """Copy ``wanted``'s leaves into ``stored`` (a field the camera lacks is appended)."""
    for child in wanted:
        local = etree.QName(child).localname
        mine = next(stored.iterchildren(f"{{*}}{local}"), None)
        if mine is None:
            stored.append(_copy(child))
        elif len(child):
            _merge(mine, child)
        else:
            mine.text = child.text


def _text(root: etree._Element, local: str) -> str | None:
    for el in root.iter(f"{{*}}{local}"):
        return str(el.text or "")
    return None
