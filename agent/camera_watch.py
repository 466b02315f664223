"""Keeping cameras: Hello/Bye and mDNS for arrivals, health checks, one event subscription each.

The agent's discovery loop probes now and then; this runs beside it and reacts at once:

- a Hello (or an mDNS advertisement confirmed by a unicast Probe) from a device we do not
  know goes to ``on_found`` — the agent reads it and re-sends its inventory, so a camera added
  later registers with the relay without installer action (DEV-10);
- a Hello from a known camera wakes the health checks (it is back: recovery sooner);
- a Bye from a known camera is a communication error at once (``CameraHealth.said_bye``);
- every ``check_interval_s`` each camera gets a health check; status changes spool
  ``camera_failure``/``camera_recovery`` (EVT-1) and re-send the inventory;
- each watched camera has its ONVIF PullPoint subscription (``EventSubscriber``).

Known devices are matched by WS-Discovery endpoint reference and by XAddr (a device answers
over several addresses; ipycam makes a new endpoint reference at every start, real cameras
keep theirs); the agent adds the serial-number check after reading a camera.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from agent.camera_health import CameraHealth, CameraStatus
from agent.onvif import soap
from agent.onvif.announcements import Announcement, AnnouncementListener
from agent.onvif.discovery import probe
from agent.onvif.errors import OnvifError
from agent.onvif.events import EventSubscriber, SubscriberSettings
from agent.onvif.mdns import MdnsBrowser
from agent.onvif.models import DiscoveredDevice

log = logging.getLogger(__name__)

EventSink = Callable[[str, str, dict[str, Any]], object]
MDNS_PROBE_TIMEOUT_S = 1.0
#: After a Hello from a known camera, check every second for this long: cameras (ipycam among
#: them) announce themselves before their HTTP server answers, so one check would come too soon.
HELLO_FAST_CHECKS_S = 30.0
HELLO_CHECK_INTERVAL_S = 1.0


class CameraWatch:
    """Health, announcements and event subscriptions of the agent's cameras."""

    def __init__(
        self,
        *,
        sink: EventSink,
        on_found: Callable[[DiscoveredDevice], Awaitable[object]],
        on_change: Callable[[], object] = lambda: None,
        interfaces: list[str] | None = None,
        check_interval_s: float = 30.0,
        call_timeout_s: float = 10.0,
        events: SubscriberSettings | None = SubscriberSettings(),  # noqa: B008 - frozen
        mdns: bool = True,
    ) -> None:
        self._sink = sink
        self._on_found = on_found
        self._on_change = on_change
        self._interfaces = interfaces or []
        self.check_interval_s = check_interval_s
        self.call_timeout_s = call_timeout_s
        self._events = events
        self._mdns = mdns
        self.health: dict[str, CameraHealth] = {}
        self.subscribers: dict[str, EventSubscriber] = {}
        self._by_endpoint: dict[str, str] = {}
        self._by_xaddr: dict[str, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._fast_until = 0.0

    # --- cameras --------------------------------------------------------------------------------

    def watch(
        self, camera_id: str, xaddr: str, username: str, password: str, *, endpoint: str = ""
    ) -> CameraHealth:
        """Start watching a camera the agent added: health now, events in the background."""
        health = CameraHealth(camera_id, xaddr, username, password, self._sink, self._on_change)
        self.health[camera_id] = health
        self._by_xaddr[xaddr] = camera_id
        if endpoint:
            self._by_endpoint[endpoint] = camera_id
        if self._events is not None:
            sub = EventSubscriber(camera_id, xaddr, username, password, self._sink,
                                  settings=self._events)  # fmt: skip
            self.subscribers[camera_id] = sub
            self._spawn(sub.run())
        self._wake.set()
        return health

    def camera_of(self, device: DiscoveredDevice) -> str | None:
        """The id of a watched camera this device is (by endpoint reference or XAddr)."""
        if device.endpoint in self._by_endpoint:
            return self._by_endpoint[device.endpoint]
        return next((self._by_xaddr[x] for x in device.xaddrs if x in self._by_xaddr), None)

    def status(self, camera_id: str) -> CameraStatus:
        """The camera's status (``normal`` until its first check says otherwise)."""
        health = self.health.get(camera_id)
        return health.status if health else "normal"

    # --- running --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Listen and check until cancelled."""
        listener = AnnouncementListener(self.on_announcement, self._interfaces)
        browser = MdnsBrowser(self.on_mdns_host, self._interfaces) if self._mdns else None
        try:
            await self._start(listener, browser)
            await self._check_loop()
        finally:
            listener.close()
            if browser is not None:
                await browser.close()
            await self.close()

    async def _start(self, listener: AnnouncementListener, browser: MdnsBrowser | None) -> None:
        """Start the passive listeners; one that cannot start is logged, not fatal."""
        try:
            await listener.start()
        except OSError as err:
            log.warning("cannot listen for WS-Discovery Hello/Bye: %s", err)
        if browser is not None:
            try:
                await browser.start()
            except (OSError, RuntimeError) as err:  # zeroconf: no usable interface
                log.warning("cannot browse mDNS: %s", err)

    async def _check_loop(self) -> None:
        """Check every camera each interval, or sooner when woken (a Hello, a new camera)."""
        async with soap.bounded_session(self.call_timeout_s * 2) as session:
            while True:
                self._wake.clear()
                checks = [h.check(session, self.call_timeout_s) for h in self.health.values()]
                await asyncio.gather(*checks)
                fast = asyncio.get_running_loop().time() < self._fast_until
                interval = HELLO_CHECK_INTERVAL_S if fast else self.check_interval_s
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), interval)

    async def close(self) -> None:
        """Cancel the event subscriptions and pending work."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _spawn(self, work: Awaitable[Any]) -> None:
        """An owned task (cancelled by ``close``); failures are logged."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("camera watch task failed", exc_info=task.exception())

    # --- announcements --------------------------------------------------------------------------

    def on_announcement(self, announcement: Announcement, sender: str) -> None:
        """Hello: a new camera is added, a known one checked at once; Bye: it failed."""
        camera_id = self.camera_of(announcement.device)
        if announcement.kind == "bye":
            if camera_id is not None:
                self.health[camera_id].said_bye()
            return
        if camera_id is not None:
            self._fast_until = asyncio.get_running_loop().time() + HELLO_FAST_CHECKS_S
            self._wake.set()
        elif announcement.device.xaddrs:
            log.info("WS-Discovery Hello from %s (%s)", announcement.device.endpoint, sender)
            self._spawn(self._on_found(announcement.device))

    def on_mdns_host(self, host: str) -> None:
        """A host advertised a camera service over mDNS: ask it for its XAddr."""
        self._spawn(self._probe_host(host))

    async def _probe_host(self, host: str) -> None:
        """Unicast Probe to an mDNS host; unknown devices go to ``on_found``."""
        try:
            found = await probe(timeout=MDNS_PROBE_TIMEOUT_S, unicast_hosts=[host], multicast=False)
        except OnvifError as err:
            log.debug("mDNS host %s: %s", host, err)
            return
        for device in found:
            if self.camera_of(device) is None:
                await self._on_found(device)
