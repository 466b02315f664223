"""Acceptance (issue 3): commands issued around relay kills end in exactly one terminal state,
and a counter on the agent proves none ran twice (DEV-2).

Real processes on loopback: ``rmon-relay serve`` (SIGKILLed and restarted on the same port) and
``rmon-agent run``. Every command is a ``restart`` of the agent, the non-idempotent kind; the
agent's service-manager hook is set to a harmless script that appends the command id to a file
— that file is the counter. Commands are issued right before each kill (so some are cut
mid-flight: stored but not delivered, delivered but not acknowledged, run but not reported)
and right after each restart.
"""

from __future__ import annotations

import shlex
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peers.restarts import RestartRig

pytestmark = [pytest.mark.e2e]

KILLS = 5
PER_BURST = 4
TERMINAL = {"done", "failed", "expired", "unknown_outcome"}


@pytest.fixture
def ran_file(tmp_path: Path) -> Path:
    return tmp_path / "restart-hook-ran.txt"


@pytest.fixture
def rig(tmp_path: Path, ran_file: Path) -> Iterator[RestartRig]:
    hook = f'echo "$RMON_COMMAND_ID" >> {shlex.quote(str(ran_file))}'
    env = {
        "RMON_AGENT_HEARTBEAT_INTERVAL_S": "2",
        "RMON_AGENT_RECONNECT_MAX_BACKOFF_S": "2",
        "RMON_AGENT_DISCOVERY_INTERVAL_S": "3600",
        "RMON_AGENT_DISCOVERY_INTERFACES": '["127.0.0.1"]',
        "RMON_AGENT_RESTART_COMMAND": f"sh -c {shlex.quote(hook)}",
    }
    rig = RestartRig(tmp_path, env)
    try:
        rig.start()
        yield rig
    finally:
        rig.stop()


def _issue(rig: RestartRig, count: int) -> list[str]:
    """POST ``count`` restart commands; the relay answers once each is stored."""
    path = f"/api/v1/devices/{rig.device_id}/commands"
    body = {"kind": "restart", "args": {}, "deadline_s": 300}
    return [rig._api("POST", path, body, token=rig.token)["id"] for _ in range(count)]


def _states(rig: RestartRig, ids: list[str]) -> dict[str, dict[str, Any]]:
    return {i: rig._api("GET", f"/api/v1/commands/{i}", token=rig.token) for i in ids}


# spec: DEV-2
@pytest.mark.timeout(240)
def test_commands_around_relay_kills_end_once_and_run_once(rig: RestartRig, ran_file: Path) -> None:
    issued: list[str] = []
    for _ in range(KILLS):
        issued += _issue(rig, PER_BURST)  # then SIGKILL at once: some are cut mid-flight
        rig.restart(timeout=30)
        issued += _issue(rig, PER_BURST)

    deadline = time.monotonic() + 60
    while True:
        states = _states(rig, issued)
        if all(s["state"] in TERMINAL for s in states.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # the API has no push for command states; poll it
    assert rig.agent is not None
    log = rig.agent.log()[-3000:]
    assert {s["state"] for s in states.values()} == {"done"}, (states, log)
    runs = Counter(ran_file.read_text().split())
    assert max(runs.values()) == 1, f"ran twice: {runs.most_common(3)}"
    assert set(runs) == set(issued), "a command reported done never ran"
