"""ONVIF event notifications as our ``CameraEvent``: a hardened SOAP parser and a topic registry.

A PullMessagesResponse carries ``wsnt:NotificationMessage`` elements; each has a topic
(``tns1:RuleEngine/CellMotionDetector/Motion``) and a ``tt:Message`` with ``UtcTime``,
``PropertyOperation`` and ``Source``/``Data`` SimpleItems (ONVIF Core 9.2, Analytics 5.3).

Topics are normalised without their namespace prefixes (``tnsaxis:`` and ``tns1:`` alike:
vendors mix them inside one topic) and looked up in ``REGISTRY``: first the exact topic, then
the longest registered prefix (Axis VMD4 topics end in a per-profile name). Every parser maps
a topic to one EVT-1 kind and reads its state item. An unknown topic is still an event — EVT-1
classes all camera events "camera site alarm" — and is logged once per topic with its payload.

Camera bodies are untrusted (``parse_soap``): no DTD (so no XXE and no entity expansion), no
network, libxml2's normal size limits (onvif-zeep-async turns them off for its own parser), and
at most ``MAX_SOAP_BYTES``. Pure: bytes in, dataclasses out, tested on vendors' captures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from agent.onvif.errors import OnvifProtocolError

log = logging.getLogger(__name__)

#: Largest SOAP answer the agent parses (bytes). Event pulls are a few KB; 1 MiB is plenty.
MAX_SOAP_BYTES = 1024 * 1024
#: Bounds on what one event carries into the spool (its payload must stay small).
MAX_ITEMS = 16
MAX_VALUE_LEN = 256
#: How much of an unknown topic's payload goes into its one log line (characters).
UNKNOWN_LOG_CHARS = 2000

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "tt": "http://www.onvif.org/ver10/schema",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
}

#: Every ONVIF camera event belongs to this EVT-1 class (the payload's ``class``).
CAMERA_SITE_ALARM = "camera_site_alarm"

# The kinds spooled for camera events (EVT-1's camera list); an unknown topic keeps the class.
MOTION = "camera_motion"
AUDIO = "camera_audio"
TAMPER = "camera_tamper"
DIGITAL_INPUT = "camera_digital_input"
COMMAND_ALARM = "camera_command_alarm"
STORAGE = "camera_storage"
AUTO_TRACKING = "camera_auto_tracking"
HUMAN = "camera_human"
VIDEO_LOSS = "camera_video_loss"
UNKNOWN = CAMERA_SITE_ALARM

_TRUE = frozenset({"true", "1", "active", "on", "yes"})
_FALSE = frozenset({"false", "0", "inactive", "off", "no"})
_STATE_NAMES = frozenset({"state", "logicalstate", "active", "triggered", "failed", "motion"})


@dataclass(frozen=True)
class Notification:
    """One NotificationMessage as read off the wire, before any topic knowledge."""

    topic: str
    utc_time: str
    operation: str
    source: dict[str, str]
    data: dict[str, str]
    raw: str = field(repr=False, default="")


@dataclass(frozen=True)
class CameraEvent:
    """What a camera reported, in our terms: EVT-1 kind, on/off state, camera time."""

    topic: str
    kind: str
    state: bool | None
    camera_time: str
    operation: str
    source: dict[str, str]
    data: dict[str, str]
    known: bool = True

    def payload(self) -> dict[str, Any]:
        """The spool payload (the kind, camera id and agent time are spool columns)."""
        return {
            "class": CAMERA_SITE_ALARM,
            "state": self.state,
            "topic": self.topic,
            "camera_time": self.camera_time,
            "operation": self.operation,
            "source": self.source,
            "data": self.data,
        }


Parser = Callable[[Notification], CameraEvent]


# --- hardened SOAP parsing ---------------------------------------------------------------------


def _parser() -> etree.XMLParser:
    """lxml with everything a hostile camera could use against us switched off."""
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_soap(body: bytes) -> etree._Element:
    """The root of a camera's SOAP answer, or OnvifProtocolError for anything hostile.

    A DOCTYPE is refused outright (before parsing when visible in the bytes, after it when
    hidden by an encoding): ONVIF never needs one, and it is what XXE and "billion laughs" need.
    """
    if len(body) > MAX_SOAP_BYTES:
        raise OnvifProtocolError(f"SOAP answer larger than {MAX_SOAP_BYTES} bytes")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise OnvifProtocolError("SOAP answer with a DTD refused")
    try:
        root = etree.fromstring(body, parser=_parser())
    except (etree.XMLSyntaxError, ValueError) as err:
        raise OnvifProtocolError(f"not XML: {err}") from err
    if root.getroottree().docinfo.doctype:
        raise OnvifProtocolError("SOAP answer with a DTD refused")
    return root


# --- notifications ------------------------------------------------------------------------------


def notifications(root: etree._Element) -> list[Notification]:
    """Every NotificationMessage under ``root`` (a PullMessagesResponse or a whole envelope)."""
    return [_notification(el) for el in root.iter(f"{{{NS['wsnt']}}}NotificationMessage")]


def _notification(el: etree._Element) -> Notification:
    """One NotificationMessage; a message without the ``tt:Message`` body has empty items."""
    topic_el = el.find("wsnt:Topic", NS)
    msg = el.find("wsnt:Message/tt:Message", NS)
    if msg is None:  # some firmwares put tt:Message one level deeper or drop the wrapper
        msg = next(el.iter(f"{{{NS['tt']}}}Message"), None)
    return Notification(
        topic=normalize_topic(topic_el.text if topic_el is not None else ""),
        utc_time=(msg.get("UtcTime") or "") if msg is not None else "",
        operation=(msg.get("PropertyOperation") or "") if msg is not None else "",
        source=_items(msg, "Source"),
        data=_items(msg, "Data"),
        raw=etree.tostring(el, encoding="unicode")[:UNKNOWN_LOG_CHARS],
    )


def _items(msg: etree._Element | None, part: str) -> dict[str, str]:
    """SimpleItem Name -> Value of a message's Source or Data, bounded in count and length."""
    if msg is None:
        return {}
    found: dict[str, str] = {}
    for item in msg.iterfind(f"tt:{part}/tt:SimpleItem", NS):
        name = (item.get("Name") or "")[:MAX_VALUE_LEN]
        if name and len(found) < MAX_ITEMS:
            found[name] = (item.get("Value") or "")[:MAX_VALUE_LEN]
    return found


def normalize_topic(text: str | None) -> str:
    """``tns1:Device/tnsaxis:IO/Port`` -> ``Device/IO/Port`` (prefixes differ by vendor)."""
    parts = (text or "").strip().split("/")
    return "/".join(p.rpartition(":")[2] for p in parts if p)


def camera_time(utc_time: str) -> str:
    """The camera's UtcTime as ISO 8601, or "" when missing or unreadable (kept, not fatal)."""
    try:
        return datetime.fromisoformat(utc_time.replace("Z", "+00:00")).isoformat()
    except ValueError:
        return ""


# --- the registry -------------------------------------------------------------------------------


REGISTRY: dict[str, Parser] = {}
_PREFIXES: dict[str, Parser] = {}
_logged_unknown: set[str] = set()


def register(*topics: str, prefix: bool = False) -> Callable[[Parser], Parser]:
    """Register a parser for these normalised topics (or topic prefixes)."""

    def add(parser: Parser) -> Parser:
        for topic in topics:
            (_PREFIXES if prefix else REGISTRY)[topic] = parser
        return parser

    return add


def lookup(topic: str) -> Parser | None:
    """The parser of a topic: exact match first, then the longest registered prefix."""
    if topic in REGISTRY:
        return REGISTRY[topic]
    matches = [p for p in _PREFIXES if topic == p or topic.startswith(p + "/")]
    return _PREFIXES[max(matches, key=len)] if matches else None


def parse_event(note: Notification) -> CameraEvent:
    """One notification as a CameraEvent; an unknown topic is a camera site alarm."""
    parser = lookup(note.topic)
    if parser is not None:
        return parser(note)
    if note.topic not in _logged_unknown:
        _logged_unknown.add(note.topic)
        log.info("unknown ONVIF event topic %r (logged once): %s", note.topic, note.raw)
    return _event(note, UNKNOWN, _any_state(note.data), known=False)


def parse_pull_response(body: bytes) -> list[CameraEvent]:
    """Every event of a PullMessagesResponse body, in the camera's order."""
    return [parse_event(n) for n in notifications(parse_soap(body))]


def _event(note: Notification, kind: str, state: bool | None, *, known: bool = True) -> CameraEvent:
    return CameraEvent(
        topic=note.topic,
        kind=kind,
        state=state,
        camera_time=camera_time(note.utc_time),
        operation=note.operation,
        source=note.source,
        data=note.data,
        known=known,
    )


def _truth(value: str | None) -> bool | None:
    """A SimpleItem value as a boolean; None when it is not one."""
    if value is None:
        return None
    low = value.strip().lower()
    return True if low in _TRUE else False if low in _FALSE else None


def _any_state(data: dict[str, str]) -> bool | None:
    """The first boolean Data item named like a state (``State``, ``IsMotion``, ``active``…);
    None for a pulse such as a line crossing (its ``ObjectId`` of 0 is no "off")."""
    for name, value in data.items():
        low = name.lower()
        state = _truth(value)
        if (low in _STATE_NAMES or low.startswith("is")) and state is not None:
            return state
    return None


def _state_of(note: Notification, names: Iterable[str]) -> bool | None:
    """The first of ``names`` present in Data as a boolean, else any boolean item."""
    for name in names:
        if name in note.data:
            return _truth(note.data[name])
    return _any_state(note.data)


def _simple(kind: str, *state_items: str) -> Parser:
    """A parser that maps to ``kind`` and reads the state from the named Data items."""

    def parse(note: Notification) -> CameraEvent:
        return _event(note, kind, _state_of(note, state_items))

    parse.__doc__ = f"{kind} from Data items {', '.join(state_items)}"
    return parse


# Standard ONVIF topics (ONVIF Core / Analytics / Device IO specifications).
register("VideoSource/MotionAlarm")(_simple(MOTION, "State"))
register("RuleEngine/CellMotionDetector/Motion")(_simple(MOTION, "IsMotion"))
register("RuleEngine/MotionRegionDetector/Motion")(_simple(MOTION, "State"))
register("RuleEngine/TamperDetector/Tamper")(_simple(TAMPER, "IsTamper"))
register(
    "VideoSource/GlobalSceneChange",
    "VideoSource/ImageTooBlurry",
    "VideoSource/ImageTooDark",
    "VideoSource/ImageTooBright",
    prefix=True,  # .../ImagingService, .../AnalyticsService, .../RecordingService
)(_simple(TAMPER, "State"))
register("VideoSource/SignalLoss")(_simple(VIDEO_LOSS, "State"))
register("Device/Trigger/DigitalInput")(_simple(DIGITAL_INPUT, "LogicalState"))
register("Device/Trigger/Relay")(_simple(COMMAND_ALARM, "LogicalState"))
register("AudioAnalytics/Audio/DetectedSound")(_simple(AUDIO, "IsSoundDetected"))
register("Device/HardwareFailure/StorageFailure")(_simple(STORAGE, "Failed"))
register("RuleEngine/PeopleDetector/People", "RuleEngine/HumanDetector/Human")(
    _simple(HUMAN, "IsPeople", "IsHuman", "State")
)
# Axis (tnsaxis: topics, VAPIX ONVIF event list).
register("Device/IO/Port", "Device/IO/VirtualPort")(_simple(DIGITAL_INPUT, "state"))
register("Device/IO/VirtualInput")(_simple(COMMAND_ALARM, "active"))
register("VideoSource/Tampering")(_simple(TAMPER, "tampering"))
register("AudioSource/TriggerLevel")(_simple(AUDIO, "triggered"))
register("Storage/Disruption")(_simple(STORAGE, "disruption"))
register("Device/Sensor/PIR")(_simple(HUMAN, "state"))
register("PTZController/AutoTracking")(_simple(AUTO_TRACKING, "active", "state"))
register("VideoAnalytics/MotionDetection", "RuleEngine/VMD3", "RuleEngine/VMD4", prefix=True)(
    _simple(MOTION, "active", "motion")
)
# Hikvision and Hanwha name their rules' engines; Dahua its smart-motion and audio rules.
register("RuleEngine/FieldDetector/ObjectsInside")(_simple(HUMAN, "IsInside"))
register("RuleEngine/MyRuleDetector/PeopleDetect")(_simple(HUMAN, "State"))
register("AudioAnalytics/Audio/DetectedSound/Intensity")(_simple(AUDIO, "IsSoundDetected"))
register("RuleEngine/AudioDetection/Audio", "AudioSource/AudioDetection")(
    _simple(AUDIO, "IsSoundDetected", "State")
)


def iter_kinds() -> Iterator[str]:
    """Every kind a registered parser can produce (for the capability list)."""
    yield from (MOTION, AUDIO, TAMPER, DIGITAL_INPUT, COMMAND_ALARM, STORAGE, AUTO_TRACKING,
                HUMAN, VIDEO_LOSS)  # fmt: skip
