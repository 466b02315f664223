"""``rmon-agent``: the installer's command line (SUP-1).

register  bind this site to a subscriber's account (DEV-10)
run       run the agent (what the systemd unit starts)
discover  list the cameras found and whether their credentials work
status    show tunnel and camera state from the running agent
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from agent.settings import AgentSettings


def _settings(args: argparse.Namespace) -> AgentSettings:
    """Settings from env/TOML, with ``--data-dir`` on top."""
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    return AgentSettings(**overrides)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rmon-agent", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-level", default=os.environ.get("RMON_AGENT_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)
    reg = sub.add_parser("register", help="bind this site to a subscriber account")
    reg.add_argument("--data-dir")
    reg.add_argument("--relay", required=True, help="relay URL, e.g. https://relay.example:443")
    reg.add_argument("--relay-ca", help="PEM file of the relay CA to pin (self-signed relays)")
    reg.add_argument("--email", required=True)
    reg.add_argument("--password", help="default: $RMON_AGENT_PASSWORD, else a prompt")
    reg.add_argument("--name", default="", help="site name shown in the portal")
    run = sub.add_parser("run", help="run the agent")
    run.add_argument("--data-dir")
    disc = sub.add_parser("discover", help="find cameras and test their credentials")
    disc.add_argument("--data-dir")
    stat = sub.add_parser("status", help="show tunnel and cameras")
    stat.add_argument("--data-dir")
    return parser


def _password(args: argparse.Namespace) -> str:
    """The subscriber's password: flag, environment, or an interactive prompt."""
    if args.password:
        return str(args.password)
    if env := os.environ.get("RMON_AGENT_PASSWORD"):
        return env
    return getpass.getpass(f"Password for {args.email}: ")


def cmd_register(args: argparse.Namespace) -> int:
    """Enroll; print the device id or the relay's error code."""
    from agent.app import agent_version
    from agent.enroll import EnrollError, register
    from agent.store import AgentStore

    settings = _settings(args)
    store = AgentStore(settings.data_dir)
    ca = Path(args.relay_ca).read_bytes() if args.relay_ca else None
    try:
        identity = asyncio.run(
            register(
                store,
                args.relay,
                args.email,
                _password(args),
                relay_ca_pem=ca,
                name=args.name,
                agent_version=agent_version(),
            )
        )
    except EnrollError as err:
        print(f"registration failed: {err}", file=sys.stderr)
        return 2
    print(f"registered: device {identity.device_id} at {identity.relay_url}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run the agent until SIGTERM/SIGINT."""
    from agent.app import Agent
    from agent.store import AgentStore

    settings = _settings(args)
    store = AgentStore(settings.data_dir)
    identity = store.load_identity()
    if identity is None:
        print("not registered: run 'rmon-agent register' first", file=sys.stderr)
        return 3
    agent = Agent(settings, store, identity)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(agent.run())
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    """Print every camera found with whether its credentials work."""
    from agent.onvif.client import read_camera
    from agent.onvif.discovery import probe
    from agent.onvif.errors import OnvifAuthError, OnvifError

    settings = _settings(args)

    async def go() -> int:
        found = await probe(
            timeout=settings.discovery_timeout_s, interfaces=settings.discovery_interfaces
        )
        xaddrs = [d.xaddrs[0] for d in found if d.xaddrs] + [c.xaddr for c in settings.cameras]
        for xaddr in dict.fromkeys(xaddrs):
            user, pw = settings.credentials_for(xaddr)
            try:
                desc = await read_camera(xaddr, user, pw, timeout=settings.onvif_timeout_s)
                print(
                    f"{xaddr}\tOK\tnormal\t{desc.manufacturer} {desc.model}"
                    f"\t{len(desc.profiles)} profiles"
                )
            except OnvifError as err:
                status = (
                    "authentication_error"
                    if isinstance(err, OnvifAuthError)
                    else "communication_error"
                )
                print(f"{xaddr}\tFAILED\t{status}\t{type(err).__name__}: {err}")
        if not xaddrs:
            print("no cameras found")
        return 0

    return asyncio.run(go())


def cmd_status(args: argparse.Namespace) -> int:
    """Print identity and the running agent's last status."""
    from agent.store import AgentStore

    settings = _settings(args)
    store = AgentStore(settings.data_dir)
    identity = store.load_identity()
    out: dict[str, Any] = {"registered": identity is not None}
    if identity is not None:
        out |= {"device_id": identity.device_id, "relay": identity.relay_url}
    status_file = settings.data_dir / "status.json"
    if status_file.exists():
        out["running"] = json.loads(status_file.read_text())
    print(json.dumps(out, indent=2))
    return 0


COMMANDS = {
    "register": cmd_register,
    "run": cmd_run,
    "discover": cmd_discover,
    "status": cmd_status,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rmon-agent`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
