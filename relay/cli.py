"""``rmon-relay``: run the relay, manage accounts.

serve           HTTPS portal/API and the QUIC listener for agents on one port number
account create  create a subscriber account
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from relay.settings import RelaySettings


def _settings(args: argparse.Namespace) -> RelaySettings:
    """Settings from env/TOML, with command-line options on top."""
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "listen", None):
        host, _, port = str(args.listen).rpartition(":")
        overrides["listen_host"] = host.strip("[]") or "127.0.0.1"
        overrides["listen_port"] = int(port)
    if getattr(args, "quic_core", None):
        overrides["quic_core"] = args.quic_core
    return RelaySettings(**overrides)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rmon-relay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-level", default=os.environ.get("RMON_RELAY_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the relay")
    serve.add_argument("--data-dir")
    serve.add_argument("--listen", help="HOST:PORT for HTTPS (TCP) and QUIC (UDP); port 0 = any")
    serve.add_argument("--quic-core", choices=["qh3", "aioquic"])
    account = sub.add_parser("account", help="manage accounts")
    acc_sub = account.add_subparsers(dest="account_command", required=True)
    create = acc_sub.add_parser("create", help="create a subscriber account")
    create.add_argument("--data-dir")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--password", help="default: $RMON_RELAY_PASSWORD")
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    """Run until SIGTERM."""
    from relay.server import serve_forever

    asyncio.run(serve_forever(_settings(args)))
    return 0


def cmd_account_create(args: argparse.Namespace) -> int:
    """Create a subscriber; print its id or the error code."""
    from relay.cli_account import create_account
    from relay.errors import ApiError

    password = args.password or os.environ.get("RMON_RELAY_PASSWORD", "")
    try:
        account_id = asyncio.run(create_account(_settings(args), args.email, args.name, password))
    except ApiError as err:
        print(f"account not created: error {err.code}: {err.message}", file=sys.stderr)
        return 2
    print(f"account created: {account_id} <{args.email}>")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rmon-relay`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migration chatter is not news
    if args.command == "serve":
        return cmd_serve(args)
    return cmd_account_create(args)


if __name__ == "__main__":
    sys.exit(main())
