"""Web app for one-shot face and voice verification (Gradio).

    python app.py [--host 127.0.0.1] [--port 7860] [--store FILE] [--key-file FILE] [--device auto]
                  [--level medium] [--auth USER:PASS] [--share never|public] [--concurrency 2]

or the console script ``verify-app``. Binds to 127.0.0.1 unless told otherwise; the login can
also come from ``$VERIFY_APP_AUTH`` (``user:pass``). The store, key, device, level, lockout and
throttle settings are read like the command line's (arguments, then ``$VERIFY_*``, then
defaults), so both front ends apply the same rules to the same store. Models load on first use,
once, and are shared by every user; nothing heavy happens at import time.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from enrollment.service import Service
from enrollment.settings import Settings, user_caller
from verify.config import SECURITY_LEVELS
from verify.errors import VerifyError
from verify_app.ui import build_app

MAX_UPLOAD = "50mb"
__all__ = ["build_app", "main", "open_service"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="verify-app", description="Face and voice verification web app")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--store", help="enrollment store (default $VERIFY_STORE, else "
                        "~/.local/share/verify/enrollments.db)")
    parser.add_argument("--key-file", help="base64 AES-256 key sealing the templates (default $VERIFY_STORE_KEY)")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda:N (default $VERIFY_DEVICE, else auto)")
    parser.add_argument("--level", default=None, choices=sorted(SECURITY_LEVELS),
                        help="default security level (default $VERIFY_LEVEL, else medium)")
    parser.add_argument("--auth", default=os.environ.get("VERIFY_APP_AUTH"),
                        help="USER:PASS login required for every page (default $VERIFY_APP_AUTH)")
    parser.add_argument("--share", choices=["never", "public"], default="never",
                        help="'public' opens a gradio.live tunnel; refused without --auth")
    parser.add_argument("--concurrency", type=int, default=2, help="requests processed at once")
    return parser


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``"user:pass"`` -> ``("user", "pass")``; ``None``/empty -> ``None``.

    Raises:
        ValueError: no colon, or an empty user or password.
    """
    if not value:
        return None
    user, colon, password = value.partition(":")
    if not colon or not user or not password:
        raise ValueError("--auth / VERIFY_APP_AUTH must look like USER:PASS")
    return user, password


def open_service(args: argparse.Namespace) -> Service:
    """The service the app's options describe (options, then ``$VERIFY_*``, then defaults), as the CLI's.

    Raises:
        VerifyError: an invalid option or variable, a malformed or wrong key, an unusable store.
    """
    settings = Settings.resolve(store=args.store, key_file=args.key_file, device=args.device, level=args.level,
                                caller=user_caller("app"))
    return Service(settings=settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, build the app and serve it until interrupted."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        auth = parse_auth(args.auth)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.share == "public" and auth is None:
        print("error: --share public needs --auth USER:PASS (biometric data must not be open to the internet)",
              file=sys.stderr)
        return 2
    try:
        service = open_service(args)
    except VerifyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    demo = build_app(service, concurrency=args.concurrency)
    demo.launch(server_name=args.host, server_port=args.port, auth=auth, share=args.share == "public",
                max_file_size=MAX_UPLOAD, show_error=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
