"""The agent process: find cameras, keep their media flowing, serve the relay's requests.

Tasks owned here: the discovery loop, one media pull per camera (inside ``CameraMedia``), the
tunnel client and the status file writer. Everything is cancelled together on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.alarms import AlarmState
from agent.camera_control import CameraControl, send_json, site_info
from agent.camera_health import CameraHealth
from agent.camera_ids import CameraIds, derived_id
from agent.camera_watch import CameraWatch
from agent.commands import CameraAccess, CommandKit, CommandRunner, build_handlers
from agent.events import AgentEvents
from agent.logs import DeviceLogHandler, Redactor
from agent.media.errors import MediaUnavailable
from agent.media.live import CameraMedia, LiveSubscription
from agent.onvif.client import fetch_snapshot, read_camera, system_reboot
from agent.onvif.discovery import probe
from agent.onvif.errors import OnvifAuthError, OnvifError
from agent.onvif.events import SubscriberSettings
from agent.onvif.models import CameraDescription, DiscoveredDevice, MediaProfile
from agent.plane import AgentPlane
from agent.settings import AgentSettings
from agent.store import AgentStore, Identity
from agent.store.journal import CommandJournal
from agent.store.logbook import LogBook
from agent.store.spool import EventSpool
from agent.tunnel.client import TunnelClient
from shared import models, quic
from shared.tunnel.codes import TunnelCode
from shared.tunnel.errors import FrameError
from shared.tunnel.frames import FrameType

log = logging.getLogger(__name__)
#: One INFO line per viewer request served: the device's access log (DEV-8).
access_log = logging.getLogger("agent.access")

#: How long a live request waits for the camera's first keyframe (RTSP open is ~2 s).
LIVE_READY_TIMEOUT_S = 15.0
SNAPSHOT_TIMEOUT_S = 10.0
#: Waits before trying again a camera that said Hello but did not answer yet (seconds, ~1 min).
ANNOUNCE_RETRY_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
#: Request kinds served by ``agent.camera_control`` (small JSON answers).
CONTROL_KINDS = frozenset({"ptz", "presets", "imaging", "camera_info"})


def agent_version() -> str:
    """The installed rmon version, reported to the relay."""
    try:
        return version("rmon")
    except PackageNotFoundError:
        return "dev"


def camera_local_id(desc: CameraDescription) -> str:
    """The id a never-seen camera gets (``agent.camera_ids`` keeps it afterwards)."""
    return derived_id(desc)


async def describe_camera(
    xaddr: str, username: str, password: str, timeout: float
) -> CameraDescription | None:
    """The camera's description; an empty one (its XAddr only) when it refuses our
    credentials — it is there and is kept, shown as "authentication error" — and None when it
    cannot be used at all."""
    try:
        return await read_camera(xaddr, username, password, timeout=timeout)
    except OnvifAuthError as err:
        log.warning("camera %s refuses the credentials: %s", xaddr, err)
        return CameraDescription(xaddr, "", "", "", "", "", None, ())
    except OnvifError as err:
        log.warning("camera %s not usable: %s", xaddr, err)
        return None


def _was_read(desc: CameraDescription) -> bool:
    """Whether a description came from the camera (not the blank one of a refused login)."""
    return bool(desc.serial_number or desc.model)


def pick_profile(profiles: tuple[MediaProfile, ...]) -> MediaProfile | None:
    """The stream to pull: the largest H.264 profile, else the largest of any codec."""
    with_uri = [p for p in profiles if p.stream_uri]
    h264 = [p for p in with_uri if p.encoding.upper() == "H264"]
    pool = h264 or with_uri
    return max(pool, key=lambda p: p.width * p.height, default=None)


@dataclass
class Camera:
    """One camera the agent serves."""

    local_id: str
    desc: CameraDescription
    profile: MediaProfile | None
    name: str
    username: str
    password: str = field(repr=False)
    media: CameraMedia | None = None
    #: Control capabilities found over ONVIF (``ptz``, ``presets``, ``imaging:brightness``…).
    controls: list[str] = field(default_factory=list)
    #: Health and EVT-1 failure/recovery (``agent.camera_watch``); None before it is watched.
    health: CameraHealth | None = None
    #: The installer says its picture has AI privacy guard applied (USER-6).
    privacy_guard: bool = False

    @property
    def xaddr(self) -> str:
        """ONVIF device service URL."""
        return self.desc.xaddr

    @property
    def profile_token(self) -> str:
        """The streamed profile's token (PTZ commands name a profile)."""
        return self.profile.token if self.profile else ""

    def inventory(self) -> models.CameraInventory:
        """How the relay sees this camera."""
        caps = ["snapshot"] + (["live"] if self.media is not None else []) + self.controls
        if self.privacy_guard:
            caps.append("privacy_guard")
        profiles = [
            models.ProfileInventory(
                token=p.token,
                name=p.name,
                encoding=p.encoding,
                width=p.width,
                height=p.height,
                fps=p.fps,
            )
            for p in self.desc.profiles
        ]
        return models.CameraInventory(
            local_id=self.local_id,
            name=self.name,
            manufacturer=self.desc.manufacturer,
            model=self.desc.model,
            firmware_version=self.desc.firmware_version,
            serial_number=self.desc.serial_number,
            status=self.health.status if self.health else "normal",
            online=self.health is None or self.health.status == "normal",
            capabilities=caps,
            profiles=profiles,
        )


class Agent:
    """Owns the cameras and the tunnel for one site."""

    def __init__(self, settings: AgentSettings, store: AgentStore, identity: Identity) -> None:
        self.settings = settings
        self.store = store
        self.cameras: dict[str, Camera] = {}
        self._known_xaddrs: set[str] = set()
        #: Addresses being read right now (by a Hello and a probe round at once, say).
        self._adding: set[str] = set()
        #: Cameras being read again after their credentials started working (local id → task).
        self._rereading: dict[str, asyncio.Future[None]] = {}
        self.ids = CameraIds(store.data_dir)
        self.control = CameraControl(store.data_dir, settings.onvif_timeout_s)
        self.alarms = AlarmState(time.time)
        self.logbook = LogBook(store.data_dir / "agent.db")
        self.commands, self.events = self._plane_parts()
        self.tunnel = TunnelClient(
            settings,
            identity,
            store.load_key(),
            handle_request=self.handle_request,
            inventory=self.inventory,
            agent_version=agent_version(),
            plane=AgentPlane(self.commands, self.events),
        )
        self.watch = self._camera_watch()

    def _plane_parts(self) -> tuple[CommandRunner, AgentEvents]:
        """The command runner (recovered from its journal) and the event spool sender."""
        kit = CommandKit(
            restart_command=self.settings.restart_command,
            cameras=self._camera_access,
            alarms=self.alarms,
            logbook=self.logbook,
            reboot=system_reboot,
            onvif_timeout_s=self.settings.onvif_timeout_s,
        )
        runner = CommandRunner(CommandJournal(self.store.db), build_handlers(kit))
        runner.recover()
        spool = EventSpool(
            self.store.db,
            max_age_s=self.settings.event_spool_max_age_s,
            max_bytes=self.settings.event_spool_max_bytes,
            clock=time.time,
        )
        return runner, AgentEvents(spool)

    def _camera_access(self, local_id: str) -> CameraAccess | None:
        """How to reach one camera for a command."""
        cam = self.cameras.get(local_id)
        return CameraAccess(cam.desc.xaddr, cam.username, cam.password) if cam else None

    def secrets(self) -> list[str]:
        """Every secret the agent knows by value, for the device-log redactor (DEV-8)."""
        known = [self.settings.camera_password.get_secret_value()]
        known += [c.password.get_secret_value() for c in self.settings.cameras if c.password]
        known += [cam.password for cam in self.cameras.values()]
        return known

    def _on_event(self, kind: str, camera: str = "", payload: dict[str, Any] | None = None) -> int:
        """Spool a camera event and let it raise or end an alarm or error (DEV-4)."""
        payload = payload or {}
        self.alarms.observe(kind, camera, payload)
        return self.events.raise_event(kind, camera, payload)

    def _camera_watch(self) -> CameraWatch:
        """Hello/Bye, mDNS, health checks and event subscriptions of the cameras (EVT-1)."""
        return CameraWatch(
            sink=self._on_event,
            on_found=self._on_announced,
            on_change=self._on_camera_change,
            interfaces=self.settings.discovery_interfaces,
            check_interval_s=self.settings.camera_check_interval_s,
            call_timeout_s=self.settings.onvif_timeout_s,
            events=SubscriberSettings() if self.settings.camera_events else None,
            mdns=self.settings.mdns_discovery,
        )

    async def _on_announced(self, device: DiscoveredDevice) -> None:
        """A camera announced itself (Hello, mDNS): add it now, not at the next probe.

        A camera often says Hello while it boots, before its ONVIF service answers: it is
        tried again after each of ANNOUNCE_RETRY_S while unreachable, or the next probe round
        (an hour away by default) would be the first to see it."""
        if not device.xaddrs:
            return
        xaddr = device.xaddrs[0]
        for wait in (0.0, *ANNOUNCE_RETRY_S):
            await asyncio.sleep(wait)
            if xaddr in self._known_xaddrs:
                return
            if await self._add_camera(xaddr, device.endpoint):
                self.tunnel.inventory_changed()
                return

    async def run(self) -> None:
        """Run until cancelled."""
        handler = DeviceLogHandler(self.logbook, Redactor(self.secrets()))
        logging.getLogger().addHandler(handler)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.tunnel.run_forever())
                tg.create_task(self._discovery_loop())
                tg.create_task(self.watch.run())
                tg.create_task(self._status_loop())
        finally:
            logging.getLogger().removeHandler(handler)
            await self.close()

    async def close(self) -> None:
        """Stop every camera pull, request task and running command."""
        await self.tunnel.close()
        await self.watch.close()
        await self.control.close()
        await self.commands.close()
        for cam in self.cameras.values():
            if cam.media is not None:
                await cam.media.close()

    def inventory(self) -> models.Inventory:
        """The full camera list for the relay."""
        return models.Inventory(cameras=[c.inventory() for c in self.cameras.values()])

    # discovery

    async def _discovery_loop(self) -> None:
        """Look for cameras now and then; new ones register themselves (DEV-10)."""
        while True:
            try:
                await self.discover_once()
            except Exception:
                log.exception("camera discovery failed")
            await asyncio.sleep(self.settings.discovery_interval_s)

    async def discover_once(self) -> None:
        """One discovery round: probe, then read every camera not yet known."""
        found = await probe(
            timeout=self.settings.discovery_timeout_s,
            interfaces=self.settings.discovery_interfaces,
        )
        # one entry per device (endpoint reference); a device the watch knows is skipped
        endpoints = {d.xaddrs[0]: d.endpoint for d in found if d.xaddrs}
        xaddrs = [x for d in found if d.xaddrs and (x := d.xaddrs[0])
                  and self.watch.camera_of(d) is None]  # fmt: skip
        xaddrs += [c.xaddr for c in self.settings.cameras]
        added = False
        for xaddr in dict.fromkeys(xaddrs):
            if xaddr not in self._known_xaddrs:
                added = await self._add_camera(xaddr, endpoints.get(xaddr, "")) or added
        if added:
            self.tunnel.inventory_changed()

    async def _add_camera(self, xaddr: str, endpoint: str = "") -> bool:
        """Read a camera's description, start its media pull and watch it.

        A camera refusing our credentials is kept, with status "authentication error"
        (it is there; the installer must fix its password). One already known by serial
        number (answering on a second address) is not added twice.
        """
        if xaddr in self._adding:  # a Hello and a probe round at once: one reads it
            return False
        self._adding.add(xaddr)
        try:
            return await self._read_and_add(xaddr, endpoint)
        finally:
            self._adding.discard(xaddr)

    async def _read_and_add(self, xaddr: str, endpoint: str) -> bool:
        """``_add_camera`` for one address at a time."""
        user, password = self.settings.credentials_for(xaddr)
        desc = await describe_camera(xaddr, user, password, self.settings.onvif_timeout_s)
        if desc is None:
            return False
        if desc.serial_number and any(
            c.desc.serial_number == desc.serial_number and c.desc.manufacturer == desc.manufacturer
            for c in self.cameras.values()
        ):
            self._known_xaddrs.add(xaddr)
            return False
        cam = Camera(
            local_id=self.ids.assign(desc, endpoint),
            desc=desc,
            profile=None,
            name=self.settings.override_for(xaddr).name or "",
            username=user,
            password=password,
            privacy_guard=self.settings.override_for(xaddr).privacy_guard,
        )
        await self._use_description(cam, desc)
        self.cameras[cam.local_id] = cam
        self._known_xaddrs.add(xaddr)
        cam.health = self.watch.watch(cam.local_id, xaddr, user, password, endpoint=endpoint)
        log.info("camera %s (%s %s) at %s", cam.local_id, desc.manufacturer, desc.model, xaddr)
        return True

    async def _use_description(self, cam: Camera, desc: CameraDescription) -> None:
        """Take what the camera told us: its profile and media pull, and its controls."""
        cam.desc, cam.profile = desc, pick_profile(desc.profiles)
        if cam.profile is not None and cam.media is None:
            cam.media = CameraMedia(
                cam.profile.stream_uri,
                username=cam.username,
                password=cam.password,
                label=cam.local_id,
            )
            await cam.media.start()
        if _was_read(desc):  # read, so controls can be asked for
            cam.controls = (await self.control.capabilities(cam)).names()

    def _on_camera_change(self) -> None:
        """A camera's health changed: tell the relay, and re-read each camera that answers now
        but was added while it refused our credentials (the installer fixed the password on
        the camera), so it gets its description, stream and controls without a restart."""
        for cam in self.cameras.values():
            answers = cam.health is not None and cam.health.status == "normal"
            if answers and not _was_read(cam.desc) and cam.local_id not in self._rereading:
                self._rereading[cam.local_id] = asyncio.ensure_future(self._reread(cam))
        self.tunnel.inventory_changed()

    async def _reread(self, cam: Camera) -> None:
        """Read a camera's description again; its id stays (``CameraIds`` merges the serial)."""
        try:
            desc = await describe_camera(
                cam.xaddr, cam.username, cam.password, self.settings.onvif_timeout_s
            )
            if desc is not None and _was_read(desc):
                self.ids.assign(desc)
                await self._use_description(cam, desc)
                log.info("camera %s read after its credentials were accepted", cam.local_id)
                self.tunnel.inventory_changed()
        finally:
            self._rereading.pop(cam.local_id, None)

    # requests from the relay

    async def handle_request(self, stream: quic.TunnelStream) -> None:
        """Serve one relay-opened stream: a REQUEST header, then the kind's handler."""
        frame = await stream.read_frame()
        if frame is None or frame.type is not FrameType.REQUEST:
            stream.reset(quic.RESET_INTERNAL)
            return
        try:
            request = models.Request.model_validate_json(frame.payload)
        except ValidationError:
            _answer_error(stream, 400, TunnelCode.UNSUPPORTED_REQUEST, "bad request header")
            return
        if request.kind == "site_info":
            await send_json(stream, site_info(agent_version(), self.status()["tunnel"]))
            return
        cam = self.cameras.get(request.camera)
        if cam is None:
            _answer_error(stream, 404, TunnelCode.NOT_FOUND, "no such camera on this site")
            return
        access_log.info("%s of camera %s", request.kind, cam.local_id)
        if request.kind in CONTROL_KINDS:
            await self.control.serve(stream, request, cam)
        elif request.kind == "live":
            await self._serve_live(stream, cam)
        else:
            await self._serve_snapshot(stream, cam)

    async def _serve_live(self, stream: quic.TunnelStream, cam: Camera) -> None:
        """Stream fMP4 until the relay resets the stream (the viewer left)."""
        if cam.media is None:
            _answer_error(stream, 503, TunnelCode.CAMERA_UNREACHABLE, "camera has no stream")
            return
        try:
            async with cam.media.subscribe(self.settings.live_queue_bytes) as sub:
                info = await sub.ready(LIVE_READY_TIMEOUT_S)
                meta = {"width": info.width, "height": info.height, "codec": info.video_codec}
                stream.send_message(
                    FrameType.RESPONSE, models.Response(content_type=info.mime, meta=meta)
                )
                await _until_peer_done(stream, _pump_live(stream, sub))
        except MediaUnavailable as err:
            if not stream.is_reset:
                _answer_error(stream, 503, TunnelCode.CAMERA_UNREACHABLE, str(err))

    async def _serve_snapshot(self, stream: quic.TunnelStream, cam: Camera) -> None:
        """Answer a JPEG of the current image (PLAY-5)."""
        try:
            jpeg = await self._snapshot(cam)
        except (MediaUnavailable, OnvifError) as err:
            _answer_error(stream, 503, TunnelCode.CAMERA_UNREACHABLE, str(err))
            return
        stream.send_message(FrameType.RESPONSE, models.Response(content_type="image/jpeg"))
        await stream.send_data(jpeg)
        stream.end()

    async def _snapshot(self, cam: Camera) -> bytes:
        """From the live pull when it runs (no extra camera load), else the ONVIF snapshot URI."""
        if cam.media is not None and cam.media.info is not None:
            with contextlib.suppress(MediaUnavailable):
                return await cam.media.snapshot(SNAPSHOT_TIMEOUT_S)
        uri = cam.profile.snapshot_uri if cam.profile else ""
        if not uri:
            raise MediaUnavailable("camera offers no snapshot")
        return await fetch_snapshot(
            uri, cam.username, cam.password, timeout=self.settings.onvif_timeout_s
        )

    # status for the installer

    async def _status_loop(self) -> None:
        """Write status.json for ``rmon-agent status`` every few seconds."""
        while True:
            write_status(self.store.data_dir, self.status())
            await asyncio.sleep(5)

    def status(self) -> dict[str, object]:
        """Tunnel and camera state as shown to the installer (SUP-1)."""
        st = self.tunnel.status
        return {
            "updated_at": time.time(),
            "tunnel": {
                "connected": st.connected,
                "since": st.since,
                "last_error": st.last_error,
                "transport": st.transport,
            },
            "cameras": [
                {
                    "id": c.local_id,
                    "model": c.desc.model,
                    "xaddr": c.desc.xaddr,
                    "live": bool(c.media),
                }
                for c in self.cameras.values()
            ],
        }


def write_status(data_dir: Path, status: dict[str, object]) -> None:
    """Atomically replace the status file."""
    tmp = data_dir / "status.json.tmp"
    tmp.write_text(json.dumps(status, indent=2))
    tmp.replace(data_dir / "status.json")


def _answer_error(stream: quic.TunnelStream, status: int, code: int, message: str) -> None:
    """A failed RESPONSE header, then FIN."""
    response = models.Response(status=status, code=code, message=message)
    stream.send_message(FrameType.RESPONSE, response)
    stream.end()


async def _pump_live(stream: quic.TunnelStream, sub: LiveSubscription) -> None:
    """Forward media chunks; ``send_data`` waits while the tunnel is backed up."""
    while True:
        await stream.send_data(await sub.next_chunk())


async def _until_peer_done(stream: quic.TunnelStream, work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` until it ends or the relay ends/resets its side of the stream."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_drain_reads(stream))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        task.cancel()
        watcher.cancel()
    if task.done() and not task.cancelled():
        task.result()


async def _drain_reads(stream: quic.TunnelStream) -> None:
    """Return when the relay ends or resets its side (the viewer is gone)."""
    with contextlib.suppress(quic.StreamReset, FrameError):
        while await stream.read_frame() is not None:
            pass
