"""The command line's ``token`` commands: create, list and revoke the REST API's tokens."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from enrollment.tokens import SCOPES
from verify_cli.commands import open_service
from verify_cli.output import iso_time


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``token create|list|revoke`` subcommands."""
    token = sub.add_parser("token", help="API tokens of the REST API (create, list, revoke)")
    actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a new token; its secret is printed once")
    create.add_argument("name", help="who or what holds it (logged as the caller of its attempts)")
    create.add_argument("--scope", choices=SCOPES, default="verify",
                        help="verify: verify and identify; admin: also enroll, list and delete (default verify)")
    actions.add_parser("list", help="every token, active and revoked (never their secrets)").add_argument(
        "--json", action="store_true")
    actions.add_parser("revoke", help="refuse a token from now on").add_argument("name")


def cmd_token(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        if args.token_command == "create":
            issued = service.tokens.create(args.name, args.scope)
            print(f"created API token {args.name!r} (scope {args.scope}); it is shown once, keep it secret:",
                  file=sys.stderr)
            print(issued.secret)
        elif args.token_command == "revoke":
            service.tokens.revoke(args.name)
            print(f"revoked API token {args.name!r}")
        else:
            _print_tokens(service.tokens.list(), args.json)
    return 0


def _print_tokens(tokens: list, as_json: bool) -> None:
    if as_json:
        print(json.dumps([token.as_dict() for token in tokens], indent=1, ensure_ascii=False))
        return
    if not tokens:
        print("no API tokens")
    for token in tokens:
        state = f"revoked {iso_time(token.revoked_at)}" if token.revoked_at else "active"
        print(f"{token.name}\t{token.scope}\t{token.token_id}\tcreated {iso_time(token.created_at)}\t{state}")


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"token": cmd_token}
