"""ONVIF PullPoint event subscription for one camera, its events into the agent's spool.

One ``EventSubscriber`` per camera: find the event service (GetCapabilities), learn the
camera's clock offset (GetSystemDateAndTime), CreatePullPointSubscription, then PullMessages in
a loop, Renew before the termination time, Unsubscribe on stop. Each event is parsed by the
topic registry (``event_parsers``) and handed to ``sink(kind, camera_id, payload)`` — the
agent passes ``AgentEvents.raise_event``, so every event is spooled durably in order.

Failures are classified (``RESUBSCRIBE_AT_ONCE`` / ``BACK_OFF``): a camera that forgot our
subscription is subscribed again immediately; an unreachable camera or a firmware glitch is
retried with capped exponential backoff; a camera without an event service stops the loop
(reported as a missing capability, not an error); refused credentials back off to the longest
wait (the health check reports the status).

Initialized messages are the camera's state dump at subscription time: an inactive one is not
an event (NOTES: ``onvif-parsers`` turns them into alarms), an active one is (the alarm was on
before we subscribed). Deleted messages are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from lxml import etree  # type: ignore[import-untyped]

from agent.onvif import soap
from agent.onvif.errors import (
    OnvifAuthError,
    OnvifError,
    OnvifProtocolError,
    OnvifUnreachable,
    OnvifUnsupported,
)
from agent.onvif.event_parsers import CameraEvent, notifications, parse_event
from agent.onvif.soap import Credentials, Endpoint, SubscriptionGone

log = logging.getLogger(__name__)

TEV = "http://www.onvif.org/ver10/events/wsdl"
TDS = "http://www.onvif.org/ver10/device/wsdl"
WSNT = "http://docs.oasis-open.org/wsn/b-2"
A_CREATE = f"{TEV}/EventPortType/CreatePullPointSubscriptionRequest"
A_PULL = f"{TEV}/PullPointSubscription/PullMessagesRequest"
A_RENEW = "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewRequest"
A_UNSUBSCRIBE = "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest"
A_CAPABILITIES = f"{TDS}/GetCapabilities"
A_DATE = f"{TDS}/GetSystemDateAndTime"

#: Subscribe again at once: the camera dropped our subscription (reboot, its own expiry).
RESUBSCRIBE_AT_ONCE: tuple[type[OnvifError], ...] = (SubscriptionGone,)
#: Back off, then subscribe again: camera down or rebooting (unreachable), or a firmware that
#: answered something unusable for a while (protocol errors seen during camera start-up).
BACK_OFF: tuple[type[OnvifError], ...] = (OnvifUnreachable, OnvifProtocolError, OnvifAuthError)

EventSink = Callable[[str, str, dict[str, Any]], object]


@dataclass(frozen=True)
class SubscriberSettings:
    """Timings of one subscription (seconds)."""

    subscription_s: float = 60.0
    pull_timeout_s: float = 5.0
    message_limit: int = 100
    call_timeout_s: float = 10.0
    renew_fraction: float = 0.8  # renew once this share of the subscription has passed
    backoff_min_s: float = 1.0
    backoff_max_s: float = 60.0


@dataclass
class Subscription:
    """A live PullPoint: where to pull and when it ends on our monotonic clock."""

    endpoint: Endpoint
    length_s: float
    expires_at: float


def _duration(seconds: float) -> str:
    """xs:duration of a number of seconds (``PT5S``, ``PT0.5S``)."""
    return f"PT{seconds:g}S"


def _camera_time(text: str | None) -> datetime | None:
    """An xs:dateTime from the camera, or None."""
    try:
        return datetime.fromisoformat((text or "").replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def _remaining(root: etree._Element, default: float) -> float:
    """Seconds between the answer's CurrentTime and TerminationTime, both on the camera clock
    (our clock and the camera's may disagree by hours)."""
    now = _camera_time(soap.first_text(root, "CurrentTime"))
    end = _camera_time(soap.first_text(root, "TerminationTime"))
    if now is None or end is None:
        return default
    return max((end - now).total_seconds(), 1.0)


class EventSubscriber:
    """The PullPoint loop of one camera; ``run`` until cancelled."""

    def __init__(
        self,
        camera_id: str,
        device_xaddr: str,
        username: str,
        password: str,
        sink: EventSink,
        *,
        settings: SubscriberSettings | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.device_xaddr = device_xaddr
        self._username = username
        self._password = password
        self._sink = sink
        self.settings = settings or SubscriberSettings()
        #: Subscriptions created so far (a re-subscription after a loss adds one).
        self.subscriptions_created = 0
        self.renewals = 0
        self.supported: bool | None = None
        self.last_error: str = ""
        self._pulls_ok = 0

    async def run(self) -> None:
        """Subscribe, pull, renew; recover from failures as classified; stop when cancelled."""
        failures = 0
        async with soap.bounded_session(self.settings.call_timeout_s * 2) as session:
            while True:
                try:
                    await self._session(session)
                except OnvifUnsupported as err:
                    self.supported, self.last_error = False, str(err)
                    log.info("camera %s has no PullPoint events: %s", self.camera_id, err)
                    return
                except RESUBSCRIBE_AT_ONCE as err:
                    log.info("camera %s dropped the subscription: %s", self.camera_id, err)
                    if self._pulls_ok == 0:  # dropped before it ever worked: do not spin
                        failures += 1
                        await self._back_off(err, failures)
                    else:
                        failures = 0
                except BACK_OFF as err:
                    failures += 1
                    await self._back_off(err, failures)

    async def _back_off(self, err: OnvifError, failures: int) -> None:
        """Wait before subscribing again (exponential, capped; the longest for auth errors)."""
        self.last_error = str(err)
        s = self.settings
        wait = min(s.backoff_min_s * 2 ** (failures - 1), s.backoff_max_s)
        if isinstance(err, OnvifAuthError):
            wait = s.backoff_max_s
        log.warning("camera %s events: %s; again in %.1f s", self.camera_id, err, wait)
        await asyncio.sleep(wait)

    async def _session(self, session: aiohttp.ClientSession) -> None:
        """One subscription from creation to loss (raises) or cancellation (unsubscribes)."""
        creds = await self._credentials(session)
        service = await self._event_service(session, creds)
        sub = await self._create(session, service, creds)
        self.supported = True
        try:
            while True:
                await self._pull(session, sub, creds)
                if time.monotonic() >= self._renew_at(sub):
                    await self._renew(session, sub, creds)
        except asyncio.CancelledError:
            await self._unsubscribe(session, sub, creds)
            raise

    async def _credentials(self, session: aiohttp.ClientSession) -> Credentials:
        """Our credentials with the camera's clock offset (0 when it will not say)."""
        to = Endpoint(self.device_xaddr)
        try:
            root = await soap.call(session, to, A_DATE, "<tds:GetSystemDateAndTime "
                                   f'xmlns:tds="{TDS}"/>', None,
                                   timeout=self.settings.call_timeout_s)  # fmt: skip
        except (OnvifAuthError, OnvifProtocolError, OnvifUnsupported):
            return Credentials(self._username, self._password)  # ipycam wants auth even here
        return Credentials(self._username, self._password, _clock_offset(root))

    async def _event_service(self, session: aiohttp.ClientSession, creds: Credentials) -> str:
        """The events XAddr from GetCapabilities; OnvifUnsupported when the camera has none."""
        body = (
            f'<tds:GetCapabilities xmlns:tds="{TDS}">'
            "<tds:Category>Events</tds:Category></tds:GetCapabilities>"
        )
        root = await soap.call(session, Endpoint(self.device_xaddr), A_CAPABILITIES, body, creds,
                               timeout=self.settings.call_timeout_s)  # fmt: skip
        events = next(root.iter("{*}Events"), None)
        xaddr = soap.first_text(events, "XAddr") if events is not None else None
        if not xaddr:
            raise OnvifUnsupported("no event service in GetCapabilities")
        return xaddr

    async def _create(
        self, session: aiohttp.ClientSession, service: str, creds: Credentials
    ) -> Subscription:
        """CreatePullPointSubscription with a relative termination time (clock-proof)."""
        length = self.settings.subscription_s
        body = (
            f'<tev:CreatePullPointSubscription xmlns:tev="{TEV}">'
            f"<tev:InitialTerminationTime>{_duration(length)}</tev:InitialTerminationTime>"
            "</tev:CreatePullPointSubscription>"
        )
        root = await soap.call(session, Endpoint(service), A_CREATE, body, creds,
                               timeout=self.settings.call_timeout_s)  # fmt: skip
        ref = next(root.iter(f"{{{TEV}}}SubscriptionReference"), None)
        address = soap.first_text(ref, "Address") if ref is not None else None
        if not address:
            raise OnvifProtocolError("CreatePullPointSubscription without an address")
        self.subscriptions_created += 1
        self._pulls_ok = 0
        remaining = _remaining(root, length)
        log.info("camera %s: subscribed to events for %.0f s", self.camera_id, remaining)
        endpoint = Endpoint(address, _reference_parameters(ref))
        return Subscription(endpoint, remaining, time.monotonic() + remaining)

    def _renew_at(self, sub: Subscription) -> float:
        """Monotonic time at which to renew (``renew_fraction`` into the subscription)."""
        return sub.expires_at - sub.length_s * (1 - self.settings.renew_fraction)

    async def _pull(
        self, session: aiohttp.ClientSession, sub: Subscription, creds: Credentials
    ) -> None:
        """One PullMessages (long poll up to the renewal time); its events into the sink."""
        wait = min(self.settings.pull_timeout_s, max(self._renew_at(sub) - time.monotonic(), 0.1))
        body = (
            f'<tev:PullMessages xmlns:tev="{TEV}"><tev:Timeout>{_duration(round(wait, 3))}'
            f"</tev:Timeout><tev:MessageLimit>{self.settings.message_limit}</tev:MessageLimit>"
            "</tev:PullMessages>"
        )
        root = await soap.call(session, sub.endpoint, A_PULL, body, creds,
                               timeout=wait + self.settings.call_timeout_s)  # fmt: skip
        self._pulls_ok += 1
        for note in notifications(root):
            self._deliver(parse_event(note))

    def _deliver(self, event: CameraEvent) -> None:
        """Spool one event unless it is a state dump of an inactive condition or a deletion."""
        if event.operation == "Deleted":
            return
        if event.operation == "Initialized" and event.state is not True:
            return
        self._sink(event.kind, self.camera_id, event.payload())

    async def _renew(
        self, session: aiohttp.ClientSession, sub: Subscription, creds: Credentials
    ) -> None:
        """Renew for another subscription length; the camera's answer sets the new deadline."""
        length = self.settings.subscription_s
        body = (
            f'<wsnt:Renew xmlns:wsnt="{WSNT}"><wsnt:TerminationTime>{_duration(length)}'
            "</wsnt:TerminationTime></wsnt:Renew>"
        )
        root = await soap.call(session, sub.endpoint, A_RENEW, body, creds,
                               timeout=self.settings.call_timeout_s)  # fmt: skip
        remaining = _remaining(root, length)
        sub.length_s, sub.expires_at = remaining, time.monotonic() + remaining
        self.renewals += 1

    async def _unsubscribe(
        self, session: aiohttp.ClientSession, sub: Subscription, creds: Credentials
    ) -> None:
        """Best effort, bounded: a camera keeps few pull points, free ours when stopping."""
        body = f'<wsnt:Unsubscribe xmlns:wsnt="{WSNT}"/>'
        try:
            await soap.call(session, sub.endpoint, A_UNSUBSCRIBE, body, creds, timeout=2.0)
        except OnvifError as err:
            log.debug("camera %s: unsubscribe failed: %s", self.camera_id, err)


def _reference_parameters(ref: etree._Element) -> tuple[str, ...]:
    """The subscription's WS-Addressing ReferenceParameters, serialized to echo as headers."""
    params = next(ref.iter("{*}ReferenceParameters"), None)
    if params is None:
        return ()
    return tuple(etree.tostring(child, encoding="unicode") for child in params
                 if isinstance(child.tag, str))  # fmt: skip


def _clock_offset(root: etree._Element) -> float:
    """Camera UTC minus ours from a GetSystemDateAndTime answer (0 if it lacks UTC)."""
    utc = next(root.iter("{*}UTCDateTime"), None)
    if utc is None:
        return 0.0
    try:
        parts = {k: int(soap.first_text(utc, k) or "") for k in
                 ("Year", "Month", "Day", "Hour", "Minute", "Second")}  # fmt: skip
        camera = datetime(
            parts["Year"], parts["Month"], parts["Day"],
            parts["Hour"], parts["Minute"], parts["Second"], tzinfo=UTC,
        )  # fmt: skip
    except ValueError:
        return 0.0
    return camera.timestamp() - time.time()
