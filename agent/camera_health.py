"""Camera health: status for the inventory, and EVT-1's "camera failure occurrence/recovery".

Each camera is checked every ``interval_s`` with an authenticated GetDeviceInformation (cheap,
and unlike GetSystemDateAndTime it proves the credentials). Status:

- ``normal``: the last check answered;
- ``communication_error``: ``failures_to_fail`` checks in a row got no usable answer, or the
  camera said Bye (WS-Discovery) — a clean goodbye needs no confirmation;
- ``authentication_error``: the camera answers but refuses our credentials. It is kept and
  shown that way (the recorder screen in the manual does the same), never dropped.

Going from normal to communication error spools ``camera_failure``; coming back spools
``camera_recovery``. One failed check is not a failure: embedded HTTP servers drop a request
now and then under load. Passwords never reach the events or the log (``redact``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from agent.onvif import soap
from agent.onvif.errors import OnvifAuthError, OnvifError, redact

log = logging.getLogger(__name__)

CameraStatus = Literal["normal", "communication_error", "authentication_error"]
FAILURE_KIND = "camera_failure"
RECOVERY_KIND = "camera_recovery"
#: EVT-1 classes these as recorder (agent) events, unlike the cameras' own alarms.
RECORDER_EVENT = "recorder_event"
_DEVICE_INFO = '<tds:GetDeviceInformation xmlns:tds="http://www.onvif.org/ver10/device/wsdl"/>'
_ACTION = "http://www.onvif.org/ver10/device/wsdl/GetDeviceInformation"

EventSink = Callable[[str, str, dict[str, Any]], object]


@dataclass
class CameraHealth:
    """The health of one camera and the events its changes raise."""

    camera_id: str
    xaddr: str
    username: str
    password: str = field(repr=False)
    sink: EventSink = field(repr=False, default=lambda *_: None)
    #: Called after every status change (the agent re-sends its inventory).
    on_change: Callable[[], object] = field(repr=False, default=lambda: None)
    failures_to_fail: int = 2
    status: CameraStatus = "normal"
    failed_checks: int = 0
    last_error: str = ""
    #: Checks done so far (answered or not).
    checks: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def check(self, session: aiohttp.ClientSession, timeout: float) -> CameraStatus:
        """One GetDeviceInformation; the status after it."""
        creds = soap.Credentials(self.username, self.password)
        try:
            await soap.call(session, soap.Endpoint(self.xaddr), _ACTION, _DEVICE_INFO, creds,
                            timeout=timeout)  # fmt: skip
        except OnvifAuthError as err:
            self._set("authentication_error", str(err))
        except OnvifError as err:
            self.failed_checks += 1
            if self.failed_checks >= self.failures_to_fail:
                self._set("communication_error", str(err))
        else:
            self.failed_checks = 0
            self._set("normal", "")
        self.checks += 1
        self._changed.set()
        return self.status

    def said_bye(self) -> None:
        """The camera announced it is leaving: a communication error at once."""
        self.failed_checks = self.failures_to_fail
        self._set("communication_error", "camera said Bye")

    def _set(self, status: CameraStatus, reason: str) -> None:
        """Record a status; spool failure/recovery on the transitions EVT-1 names."""
        before, self.status = self.status, status
        self.last_error = redact(reason, self.password)
        if before == status:
            return
        log.info("camera %s: %s -> %s %s", self.camera_id, before, status, self.last_error)
        payload = {"class": RECORDER_EVENT, "status": status, "reason": self.last_error[:300]}
        if status == "communication_error":
            self.sink(FAILURE_KIND, self.camera_id, payload)
        elif before == "communication_error":
            self.sink(RECOVERY_KIND, self.camera_id, payload)
        self._changed.set()
        self.on_change()

    async def wait_status(self, status: CameraStatus, timeout: float, *, checks: int = 0) -> None:
        """Return once the camera has ``status`` after at least ``checks`` checks (for tests
        and the CLI; woken by each check and change, no polling)."""
        async with asyncio.timeout(timeout):
            while self.status != status or self.checks < checks:
                self._changed.clear()
                await self._changed.wait()
