"""DEV-10 and EVT-1 end to end: a camera plugged in after the agent registered appears in the
relay's camera list without installer action; when it goes away the relay gets
``camera_failure``, and ``camera_recovery`` when it is back.

Real parts only: the relay and the agent as their console scripts, two ipycam cameras in the
site's network namespace. The agent's probe interval is set far beyond the test, so only the
late camera's WS-Discovery Hello can bring it in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import EMAIL, PASSWORD, agent_env, api, registered_agent
from tests.peers import stack
from tests.peers.ipycam import start_ipycam

pytestmark = [pytest.mark.e2e, pytest.mark.netns]

LATE_NAME = "late camera"
LATE_ONVIF_PORT, LATE_RTSP_PORT = 8380, 8854


@pytest.fixture(scope="module")
def agent(
    relay: stack.Relay, site: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[stack.Proc]:
    """A registered agent that probes once at start, then only listens (Hello/Bye)."""
    env = {
        **agent_env(site),
        "RMON_AGENT_DISCOVERY_INTERVAL_S": "3600",
        "RMON_AGENT_MDNS_DISCOVERY": "false",
        "RMON_AGENT_CAMERA_CHECK_INTERVAL_S": "2",
    }
    with registered_agent(relay, tmp_path_factory, env) as proc:
        yield proc


def _cameras(relay: stack.Relay, token: str) -> tuple[str, list[dict[str, Any]]]:
    """The (only) site's id and its cameras as the API lists them."""
    devices = api(relay, "GET", "/api/v1/devices", token=token)["devices"]
    online = [d for d in devices if d["online"]]
    return (online[0]["id"], list(online[0]["cameras"])) if online else ("", [])


def _events(relay: stack.Relay, token: str, device_id: str) -> list[dict[str, Any]]:
    body = api(relay, "GET", f"/api/v1/devices/{device_id}/events?limit=500", token=token)
    return list(body["events"])


# spec: DEV-10, EVT-1
def test_late_camera_registers_itself_then_fails_and_recovers(
    relay: stack.Relay,
    site: dict[str, str],
    agent: stack.Proc,
    wait_until: Callable[..., Any],
) -> None:
    login = {"email": EMAIL, "password": PASSWORD}
    token = api(relay, "POST", "/api/v1/auth/login", login)["token"]
    device_id, first = wait_until(
        lambda: (found := _cameras(relay, token))[1] and found, 60, "the first camera listed"
    )
    assert len(first) == 1

    def late(online: bool) -> dict[str, Any] | None:
        cams = [c for c in _cameras(relay, token)[1] if c["id"] != first[0]["id"]]
        return cams[0] if cams and cams[0]["online"] is online else None

    def event(kind: str) -> dict[str, Any] | None:
        return next((e for e in _events(relay, token, device_id) if e["kind"] == kind), None)

    start_late = lambda: start_ipycam(  # noqa: E731 - started twice below
        site["netns"], site["camera_ip"], onvif_port=LATE_ONVIF_PORT,
        rtsp_port=LATE_RTSP_PORT, name=LATE_NAME,
    )  # fmt: skip
    with start_late():
        arrived = wait_until(lambda: late(True), 30, "the late camera listed online")
    failure = wait_until(lambda: event("camera_failure"), 30, "camera_failure at the relay")
    assert failure["payload"]["class"] == "recorder_event"
    assert late(False) is not None  # shown offline, not dropped
    with start_late():
        recovery = wait_until(lambda: event("camera_recovery"), 30, "camera_recovery")
        assert (
            wait_until(lambda: late(True), 30, "the late camera online again")["id"]
            == (arrived["id"])
        )
    assert recovery["camera"] == failure["camera"]
    assert recovery["seq"] > failure["seq"]
    assert len(_cameras(relay, token)[1]) == 2  # the same camera back, not a third one
