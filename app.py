"""One server for one-shot face and voice verification: the REST API and the web app (Gradio).

    python app.py [--host 127.0.0.1] [--port 7860] [--store FILE] [--key-file FILE] [--device auto]
                  [--level medium] [--auth USER:PASS] [--no-api-auth] [--batch-window-ms 0 | --no-batching]
                  [--lanes N] [--cpu-threads N] [--fusion and|sum]
                  [--share never|public] [--concurrency 2]

or the console script ``verify-app``. Serves the REST API at ``/api/v1`` (API tokens: ``python -m
verify token create NAME --scope verify|admin``; OpenAPI at ``/api/v1/docs``) and the web app at
``/``. Binds to 127.0.0.1 unless told otherwise; the web app's login can also come from
``$VERIFY_APP_AUTH`` (``user:pass``); ``--no-api-auth`` serves the API without tokens, on
localhost only. The store, key, device, level, lockout and throttle settings are read like the
command line's (arguments, then ``$VERIFY_*``, then defaults), so every front end applies the same
rules to the same store. The models load once, when the server starts; nothing heavy happens at
import time. ``--share public`` serves the web app alone through a gradio.live tunnel.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from enrollment.service import Service
from enrollment.settings import Settings, user_caller
from verify.batching import BatchingConfig
from verify.config import SECURITY_LEVELS
from verify.embedding import Pipeline
from verify.errors import VerifyError
from verify.runtime import single_threaded_blas
from verify_app.rest import ApiConfig
from verify_app.server import LOCAL_HOSTS, MAX_UPLOAD, build_server, close_pipelines, serving_pipelines
from verify_app.ui import PAGE_HEAD, build_app

__all__ = ["build_app", "main", "open_service"]
log = logging.getLogger("verify_app")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="verify-app", description="Face and voice verification: REST API and web app")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--store", help="enrollment store (default $VERIFY_STORE, else "
                        "~/.local/share/verify/enrollments.db)")
    parser.add_argument("--key-file", help="base64 AES-256 key sealing the templates (default $VERIFY_STORE_KEY)")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda:N (default $VERIFY_DEVICE, else auto)")
    parser.add_argument("--level", default=None, choices=sorted(SECURITY_LEVELS),
                        help="default security level (default $VERIFY_LEVEL, else medium)")
    parser.add_argument("--fusion", default=None, choices=["and", "sum"],
                        help="face + voice checks of files and the REST API: 'and' (both must match) or 'sum' "
                        "(their LLRs summed, each with a veto; fewer genuine people refused, weaker against one "
                        "spoofed modality); live sessions keep 'and' (default $VERIFY_FUSION, else and)")
    parser.add_argument("--auth", default=os.environ.get("VERIFY_APP_AUTH"),
                        help="USER:PASS login required for every page of the web app (default $VERIFY_APP_AUTH)")
    parser.add_argument("--no-api-auth", action="store_true",
                        help="serve the REST API without tokens (refused unless --host is localhost)")
    parser.add_argument("--batch-window-ms", type=float, default=0.0,
                        help="micro-batching: how long the first queued sample waits for others (default 0: "
                        "batch only what is already queued)")
    parser.add_argument("--no-batching", action="store_true",
                        help="run each request's sample on its own, as many at once as there are cores")
    parser.add_argument("--lanes", type=int, default=None,
                        help="copies of each model serving batches at once, each with its share of the CPU cores "
                        "(default: 2 on a CPU of 2 or more cores, else 1; 1 with --no-batching)")
    parser.add_argument("--cpu-threads", type=int, default=None,
                        help="threads of each copy's networks on the CPU (default: its share of the cores)")
    parser.add_argument("--share", choices=["never", "public"], default="never",
                        help="'public' opens a gradio.live tunnel to the web app alone; refused without --auth")
    parser.add_argument("--concurrency", type=int, default=2, help="web app requests processed at once")
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


def open_service(args: argparse.Namespace, pipelines: Mapping[str, Pipeline] | None = None) -> Service:
    """The service the app's options describe (options, then ``$VERIFY_*``, then defaults), as the CLI's.

    Raises:
        VerifyError: an invalid option or variable, a malformed or wrong key, an unusable store.
    """
    settings = Settings.resolve(store=args.store, key_file=args.key_file, device=args.device, level=args.level,
                                fusion=args.fusion, caller=user_caller("app"))
    return Service(settings=settings, pipelines=pipelines)


def _refusal(args: argparse.Namespace, auth: tuple[str, str] | None) -> str | None:
    if args.share == "public" and auth is None:
        return "--share public needs --auth USER:PASS (biometric data must not be open to the internet)"
    if args.no_batching and args.lanes not in (None, 1):
        return "--lanes applies to micro-batching; with --no-batching each request runs on its own"
    if args.no_api_auth and args.host not in LOCAL_HOSTS:
        return f"--no-api-auth is only allowed with --host 127.0.0.1 or localhost, not {args.host!r}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, load the models and serve until interrupted."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    single_threaded_blas()
    try:
        auth = parse_auth(args.auth)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    refusal = _refusal(args, auth)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    try:
        with open_service(args) as checked:  # a bad option, store or key stops here, before any model loads
            settings = checked.settings
        if args.share == "public":
            return _share(args, auth)
        batching = None if args.no_batching else BatchingConfig(window_s=args.batch_window_ms / 1000)
        pipelines = serving_pipelines(settings.device, batching, cpu_threads=args.cpu_threads, lanes=args.lanes)
        service = Service(settings=settings, pipelines=pipelines)
    except VerifyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        _serve(args, service, auth)
    finally:
        close_pipelines(pipelines)
        service.close()
    return 0


def _serve(args: argparse.Namespace, service: Service, auth: tuple[str, str] | None) -> None:
    import uvicorn

    if not args.no_api_auth and not service.tokens.list():
        log.warning("no API token yet: create one with 'python -m verify token create NAME --scope admin'")
    workers = ApiConfig.workers if not args.no_batching else os.cpu_count() or 1  # batched: most wait, cheaply
    server = build_server(service, ApiConfig(require_token=not args.no_api_auth, workers=workers), ui_auth=auth,
                          ui_concurrency=args.concurrency, host=args.host, port=args.port)
    log.info("REST API at http://%s:%d/api/v1 (docs /api/v1/docs), web app at http://%s:%d/",
             args.host, args.port, args.host, args.port)
    uvicorn.run(server, host=args.host, port=args.port, log_level="warning")


def _share(args: argparse.Namespace, auth: tuple[str, str] | None) -> int:
    with open_service(args) as service:
        build_app(service, concurrency=args.concurrency).launch(
            server_name=args.host, server_port=args.port, auth=auth, share=True, max_file_size=MAX_UPLOAD,
            show_error=False, head=PAGE_HEAD)
    return 0


if __name__ == "__main__":
    sys.exit(main())
