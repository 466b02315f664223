"""Start a whole rmon system on this machine: relay, a demo camera site, and the agent.

The camera (PyPI ipycam, a virtual ONVIF camera) runs in its own network namespace joined to
this host by a veth pair, like a camera on a customer's LAN; the agent finds it by WS-Discovery
over that link and opens its outbound QUIC tunnel to the relay on 127.0.0.1. Everything stays on
this machine: the relay listens on 127.0.0.1 only unless RMON_DEMO_LISTEN says otherwise.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.peers import stack  # noqa: E402 - after the path set-up above
from tests.peers.ipycam import start_ipycam  # noqa: E402
from tests.peers.netns import create_site_netns, delete_netns  # noqa: E402

NETNS = "rmon-demo"
HOST_IP, CAMERA_IP = "198.51.100.1", "198.51.100.2"  # TEST-NET-2: exists only on this link
EMAIL = os.environ.get("RMON_DEMO_EMAIL", "demo@rmon.example")
# The password must not contain the e-mail address (a password rule of the reference service).
PASSWORD = os.environ.get("RMON_DEMO_PASSWORD", "Watch-cams1!")
LISTEN = os.environ.get("RMON_DEMO_LISTEN", "127.0.0.1:8443")


def main() -> int:
    """Bring everything up, print how to log in, and wait for Ctrl-C."""
    if os.geteuid() != 0:
        print("the demo needs root to create the camera's network namespace", file=sys.stderr)
        return 1
    data = Path(os.environ.get("RMON_DEMO_DATA", ROOT / "demo-data"))
    delete_netns(NETNS)
    create_site_netns(NETNS, HOST_IP, CAMERA_IP)
    relay = agent = None
    try:
        with start_ipycam(NETNS, CAMERA_IP):
            relay = stack.start_relay(data / "relay", LISTEN)
            _ensure_account(relay)
            _ensure_registered(data / "agent", relay)
            agent = stack.start_agent(
                data / "agent", env={"RMON_AGENT_DISCOVERY_INTERFACES": f'["{HOST_IP}"]'}
            )
            _announce(relay, data)
            _wait_for_signal()
    finally:
        for proc in (agent, relay.proc if relay else None):
            if proc is not None:
                proc.stop()
        delete_netns(NETNS)
    return 0


def _ensure_account(relay: stack.Relay) -> None:
    """Create the demo subscriber unless it exists (400229 = already registered)."""
    result = stack.create_account(relay, EMAIL, "Demo subscriber", PASSWORD)
    if result.returncode != 0 and "400229" not in result.stderr:
        raise SystemExit(result.stderr)


def _ensure_registered(agent_dir: Path, relay: stack.Relay) -> None:
    """Register the agent once; later starts reuse its identity."""
    if (agent_dir / "device.key").exists():
        return
    result = stack.register_agent(agent_dir, relay, EMAIL, PASSWORD)
    if result.returncode != 0:
        raise SystemExit(result.stderr)


def _announce(relay: stack.Relay, data: Path) -> None:
    """Tell the user where to look."""
    print(
        f"""
rmon demo is running.
  Portal:   {relay.url}/   (self-signed: trust {relay.ca} or accept the warning)
  Login:    {EMAIL}
  Password: {PASSWORD}
  Logs:     {data}/relay/relay.log, {data}/agent/agent.log
The camera appears within a few seconds. Press Ctrl-C to stop.""",
        flush=True,
    )


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()


if __name__ == "__main__":
    sys.exit(main())
