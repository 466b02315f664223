"""The README's first command: ``packaging/demo.py`` brings up a system a person can log in to.

Runs the demo script itself (the part of ``demo.sh`` after installing) with its data dir in
tmp_path and the relay on a free port, reads the URL and login it prints, and checks through the
API that the login works and the demo camera comes online. Guards against a demo that prints a
login the relay refuses (a password rule once rejected the demo's own password).
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.peers.netns import list_netns

pytestmark = [pytest.mark.e2e, pytest.mark.netns]

ROOT = Path(__file__).resolve().parents[2]
PORTAL_RE = re.compile(r"Portal:\s+(https://\S+?)/\s")
LOGIN_RE = re.compile(r"Login:\s+(\S+)\s+Password:\s+(\S+)")


def _read_until(proc: subprocess.Popen[bytes], pattern: re.Pattern[str], timeout: float) -> str:
    """Collect the demo's output until ``pattern`` matches (its readiness banner)."""
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    out, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = proc.stdout.read()
        if chunk:
            out += chunk.decode(errors="replace")
            if pattern.search(out):
                return out
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.1)  # polling a pipe; the demo offers no other readiness signal
    raise AssertionError(f"demo did not print its banner:\n{out}")


def _api(base: str, ca: Path, path: str, body: Any = None, token: str = "") -> Any:
    ctx = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        return json.loads(resp.read())


def test_demo_prints_a_login_that_works_and_shows_its_camera(tmp_path: Path) -> None:
    """Banner → login with the printed credentials → the demo camera online; clean stop."""
    if os.geteuid() != 0:
        pytest.skip("the demo needs root for its camera's network namespace")
    if "rmon-demo" in list_netns():
        pytest.skip("a demo is already running on this machine")
    env = {**os.environ, "RMON_DEMO_DATA": str(tmp_path), "RMON_DEMO_LISTEN": "127.0.0.1:0"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "packaging" / "demo.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        banner = _read_until(proc, LOGIN_RE, 90)
        base = PORTAL_RE.search(banner)
        login = LOGIN_RE.search(banner)
        assert base is not None
        assert login is not None
        ca = tmp_path / "relay" / "tls" / "ca.pem"
        token = _api(base[1], ca, "/api/v1/auth/login", {"email": login[1], "password": login[2]})[
            "token"
        ]
        deadline, cams = time.monotonic() + 60, []
        while not cams and time.monotonic() < deadline:
            devices = _api(base[1], ca, "/api/v1/devices", token=token)["devices"]
            cams = [c for d in devices for c in d["cameras"] if c["online"]]
            time.sleep(0.5)  # polling the API: the agent's inventory has no push to the test
        assert cams, "the demo camera never came online"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(30)
    assert "rmon-demo" not in list_netns()
