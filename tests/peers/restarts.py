"""Kill the real relay process and start it again on the same port, timing the agent's return.

Shared by the acceptance test (tests/e2e/test_relay_restarts.py) and ``bench/reconnect.py``.
Dependency-free on purpose (no pytest). "Back" is read from the relay itself: the device is
online in ``GET /api/v1/devices`` with a ``last_seen_at`` (written when the relay authenticated
the agent) after the new relay process printed that it listens.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.peers import stack

EMAIL = "owner@example.com"
PASSWORD = "Restart-me1!"


@dataclass
class RestartRig:
    """A relay process, one registered agent process, and the viewer's token."""

    base: Path
    agent_env: dict[str, str]
    relay: stack.Relay | None = None
    agent: stack.Proc | None = None
    token: str = ""
    device_id: str = ""
    #: Seconds from "relay listening again" to "agent authenticated", one per restart.
    times: list[float] = field(default_factory=list)

    def start(self) -> None:
        """Relay, account, registered agent, and wait until it is online once."""
        self.relay = stack.start_relay(self.base / "relay")
        result = stack.create_account(self.relay, EMAIL, "Owner", PASSWORD)
        assert result.returncode == 0, result.stderr
        result = stack.register_agent(self.base / "agent", self.relay, EMAIL, PASSWORD)
        assert result.returncode == 0, result.stderr
        self.agent = stack.start_agent(self.base / "agent", env=self.agent_env)
        body = self._api("POST", "/api/v1/auth/login", {"email": EMAIL, "password": PASSWORD})
        self.token = body["token"]
        self._wait_back(since=0.0, timeout=30.0)

    def restart(self, timeout: float = 60.0) -> float:
        """SIGKILL the relay, start it on the same port, time the agent's return."""
        assert self.relay is not None
        self.relay.proc.kill()
        self.relay = stack.start_relay(
            self.relay.data_dir, listen=f"127.0.0.1:{self.relay.port}", env=self.relay.env
        )
        listening = time.time()
        back = self._wait_back(since=listening, timeout=timeout)
        self.times.append(back - listening)
        return back - listening

    def stop(self) -> None:
        """Stop both processes (agent first, so the relay records a clean hang-up)."""
        if self.agent is not None:
            self.agent.stop()
        if self.relay is not None:
            self.relay.proc.stop()

    def _wait_back(self, since: float, timeout: float) -> float:
        """The relay-side authentication time of the agent's first session after ``since``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for device in self._api("GET", "/api/v1/devices", token=self.token)["devices"]:
                seen = device["last_seen_at"]
                at = datetime.fromisoformat(seen).timestamp() if seen else 0.0
                if device["online"] and at >= since:
                    self.device_id = device["id"]
                    return at
            time.sleep(0.1)  # the relay offers no push signal for this; poll its API
        assert self.agent is not None
        raise TimeoutError(f"agent not back within {timeout} s:\n{self.agent.log()[-3000:]}")

    def _api(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        assert self.relay is not None
        ctx = ssl.create_default_context(cafile=str(self.relay.ca))
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.relay.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return json.loads(resp.read())


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 20 values is the 19th smallest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]
