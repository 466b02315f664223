"""``rmon-relay``: run the relay, manage accounts.

serve           HTTPS portal/API and the QUIC listener for agents on one port number
account create  create a subscriber account
message post    publish an announcement to every account (MSG-1)
message list    list the announcements, newest first
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
    _message_parser(sub)
    return parser


def _message_parser(sub: Any) -> None:
    """``message post`` and ``message list`` (MSG-1)."""
    message = sub.add_parser("message", help="operator announcements (MSG-1)")
    msg_sub = message.add_subparsers(dest="message_command", required=True)
    post = msg_sub.add_parser("post", help="publish a message to every account")
    post.add_argument("--data-dir")
    post.add_argument(
        "--kind", required=True, choices=["firmware_available", "maintenance", "other"]
    )
    post.add_argument("--title", required=True)
    post.add_argument("--body", required=True)
    post.add_argument("--starts", help="maintenance start, ISO 8601 with a zone")
    post.add_argument("--ends", help="maintenance end, ISO 8601 with a zone")
    listing = msg_sub.add_parser("list", help="list messages, newest first")
    listing.add_argument("--data-dir")
    listing.add_argument("--kind", choices=["firmware_available", "maintenance", "other"])


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


def cmd_message(args: argparse.Namespace) -> int:
    """Post a message (print its id) or list them; 2 with the reason on bad input."""
    from relay.cli_message import (
        MessageInputError,
        check_message,
        format_row,
        list_messages,
        post_message,
    )

    settings = _settings(args)
    if args.message_command == "list":
        for row in asyncio.run(list_messages(settings, args.kind)):
            print(format_row(row))
        return 0
    try:
        message = check_message(args.kind, args.title, args.body, args.starts, args.ends)
    except MessageInputError as err:
        print(f"message not posted: {err}", file=sys.stderr)
        return 2
    row = asyncio.run(post_message(settings, message))
    print(f"message posted: {row.id}")
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
    if args.command == "message":
        return cmd_message(args)
    return cmd_account_create(args)


if __name__ == "__main__":
    sys.exit(main())
