"""The alarm/error state follows the events the agent raises (DEV-4), fed with real cameras'
event payloads parsed from the golden files, so "alarm reset" has something to reset."""

from __future__ import annotations

from pathlib import Path

from agent.alarms import AlarmState
from agent.camera_health import FAILURE_KIND, RECOVERY_KIND
from agent.onvif.event_parsers import parse_pull_response

GOLDEN = Path(__file__).parent / "onvif" / "golden" / "events"


def _feed(state: AlarmState, golden: str, camera: str) -> None:
    for event in parse_pull_response((GOLDEN / f"{golden}.xml").read_bytes()):
        state.observe(event.kind, camera, event.payload())


# spec: DEV-4, EVT-1
def test_camera_events_latch_alarms_until_reset() -> None:
    """Axis: five alarms turn on; the subscription's opening snapshot and a state going false
    latch nothing; reset of one camera clears only its alarms."""
    state = AlarmState(lambda: 1.0)
    _feed(state, "axis_m3045-v_pull_messages", "cam-a")
    assert sorted(code for _, code in state.alarms) == [
        "camera_audio",
        "camera_digital_input",
        "camera_human",
        "camera_motion",
        "camera_tamper",
    ]
    _feed(state, "hikvision_ds-2cd2143g0-i_pull_messages", "cam-b")
    assert {source for source, _ in state.alarms} == {"cam-a", "cam-b"}
    assert state.reset_alarms("cam-a") == 5
    assert {source for source, _ in state.alarms} == {"cam-b"}
    assert state.errors == {}


# spec: DEV-4, EVT-1
def test_camera_failure_is_an_error_until_recovery_or_error_recovery() -> None:
    state = AlarmState(lambda: 1.0)
    state.observe(FAILURE_KIND, "cam-a", {"class": "recorder_event", "reason": "timed out"})
    state.observe(FAILURE_KIND, "cam-b", {"class": "recorder_event", "reason": "refused"})
    assert state.errors[("cam-a", FAILURE_KIND)].message == "timed out"
    state.observe(RECOVERY_KIND, "cam-a", {"class": "recorder_event"})
    assert list(state.errors) == [("cam-b", FAILURE_KIND)]
    assert state.alarms == {}
    assert state.recover_errors() == 1
    assert state.errors == {}
