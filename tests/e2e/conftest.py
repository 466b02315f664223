"""Fixtures for end-to-end tests: a real relay, a camera site in a netns, a real agent, chromium.

The camera (ipycam) runs in a network namespace joined to the host by a veth pair (TEST-NET-2
addresses that exist only on that link); relay and agent run on the host as the real console
scripts; chromium is Debian's, driven by Playwright with ``executable_path``.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peers import stack
from tests.peers.ipycam import start_ipycam
from tests.peers.netns import allocated_site_netns

EMAIL = "owner@example.com"
PASSWORD = "Camera-view1!"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]

#: Fast liveness for tests: a dead relay is noticed in 3 s, reconnect attempts at most 2 s apart.
AGENT_ENV_FAST = {
    "RMON_AGENT_HEARTBEAT_INTERVAL_S": "2",
    "RMON_AGENT_RECONNECT_MAX_BACKOFF_S": "2",
    "RMON_AGENT_DISCOVERY_INTERVAL_S": "5",
}


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to create the camera site's network namespace")


@pytest.fixture(scope="module")
def site() -> Iterator[dict[str, str]]:
    """A camera site LAN: netns with ipycam, reachable from the host over a veth.

    The subnet is allocated, so the e2e tests can run beside the demo and other netns tests.
    """
    _require_root()
    with (
        allocated_site_netns("rmon-e2e") as link,
        start_ipycam(link.name, link.ns_ip) as cam,
    ):
        yield {
            "netns": link.name,
            "host_ip": link.host_ip,
            "camera_ip": link.ns_ip,
            "xaddr": cam.xaddr,
        }


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.Relay]:
    """A relay on 127.0.0.1 with one subscriber account."""
    relay = stack.start_relay(tmp_path_factory.mktemp("relay"))
    try:
        result = stack.create_account(relay, EMAIL, "Owner", PASSWORD)
        assert result.returncode == 0, result.stderr
        yield relay
    finally:
        relay.proc.stop()


def api(relay: stack.Relay, method: str, path: str, body: Any = None, token: str = "") -> Any:
    """Call the relay's JSON API with the relay CA trusted."""
    ctx = ssl.create_default_context(cafile=str(relay.ca))
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(relay.url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """Poll a condition until it holds (the processes offer no push signal to the test)."""
    import time

    def wait(cond: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                if last := cond():
                    return last
            except OSError as err:
                last = err
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")

    return wait


def agent_env(site: dict[str, str]) -> dict[str, str]:
    """Agent settings for the test site."""
    return {**AGENT_ENV_FAST, "RMON_AGENT_DISCOVERY_INTERFACES": json.dumps([site["host_ip"]])}


@contextlib.contextmanager
def registered_agent(
    relay: stack.Relay, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]
) -> Iterator[stack.Proc]:
    """``rmon-agent register`` with the subscriber's login, then ``rmon-agent run`` with
    ``env``; stopped on exit."""
    data = tmp_path_factory.mktemp("agent")
    result = stack.register_agent(data, relay, EMAIL, PASSWORD)
    assert result.returncode == 0, result.stderr
    proc = stack.start_agent(data, env=env)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def agent(
    relay: stack.Relay, site: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[stack.Proc]:
    """A registered agent running against the relay, discovering on the site link."""
    with registered_agent(relay, tmp_path_factory, agent_env(site)) as proc:
        yield proc


def login(relay: stack.Relay) -> str:
    """A bearer token for the subscriber."""
    body = api(relay, "POST", "/api/v1/auth/login", {"email": EMAIL, "password": PASSWORD})
    return str(body["token"])


def portal_login(page: Any, relay: stack.Relay) -> None:
    """Sign the subscriber in through the portal's own login form."""
    page.goto(relay.url + "/")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium under Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
