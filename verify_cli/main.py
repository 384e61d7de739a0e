"""Command line: ``python -m verify`` (alias ``verify``).

A thin front end over :class:`enrollment.Service`: it parses arguments into the service's settings
(arguments, then environment, then defaults), calls one use case, prints the result, and maps
every :class:`VerifyError` to a one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Sequence

from verify.config import MODALITIES, SECURITY_LEVELS
from verify.errors import VerifyError
from verify.runtime import single_threaded_blas
from verify_cli import commands, research, scale, tokens
from verify_cli.output import EXIT_ERROR

log = logging.getLogger("verify")


def _add_sample_option(parser: argparse.ArgumentParser, folder: bool = False) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--face", type=Path, metavar="FILE", help="an image with the face")
    group.add_argument("--voice", type=Path, metavar="FILE", help="a speech clip")
    if folder:
        group.add_argument("--dir", metavar="DIR", help="every file under DIR (a folder or a URI): an operator's job,"
                           " each search logged, not throttled")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=Path, default=None, help="enrollment store file (default: $VERIFY_STORE or ~/.local/share/verify/enrollments.db)")
    parser.add_argument("--device", default=None, help="auto (CUDA when present), cpu or cuda:N (default: $VERIFY_DEVICE or auto)")
    parser.add_argument("--level", default=None, choices=sorted(SECURITY_LEVELS), help="security level: target false accept rate low 1%%, medium 0.1%%, high 0.01%% (default: $VERIFY_LEVEL or medium)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--adapt", action="store_true", default=None, help="enroll and check with the shipped per-user adaptation (face only; see README)")
    parser.add_argument("--key-file", type=Path, metavar="FILE", help="base64 AES-256 key sealing the templates (default: $VERIFY_STORE_KEY; none: not encrypted)")
    parser.add_argument("--max-failures", type=int, default=None, metavar="N", help="failed checks within --failure-window that lock a name out (0: never; default 5)")
    parser.add_argument("--failure-window", type=float, default=None, metavar="SECONDS", help="default 300")
    parser.add_argument("--lockout", type=float, default=None, metavar="SECONDS", help="how long a lockout lasts (default 900)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="verify", description="One-shot face and speaker verification.")
    _add_global_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    enroll = sub.add_parser("enroll", help="enroll NAME from one sample (again to add samples)")
    enroll.add_argument("name")
    _add_sample_option(enroll)
    enroll.add_argument("--allow-low-quality", action="store_true", help="accept a blurry, dark or clipped sample")

    sub.add_parser("list", help="list enrolled identities").add_argument("--json", action="store_true")

    delete = sub.add_parser("delete", help="delete NAME's templates")
    delete.add_argument("name")
    delete.add_argument("--modality", choices=MODALITIES, help="delete only this modality")

    check = sub.add_parser("check", help="verify one sample against NAME (exit 0 accepted, 1 not)")
    check.add_argument("name")
    _add_sample_option(check)

    identify = sub.add_parser("identify", help="who among the enrolled people is this? (exit 0 named, 1 nobody)")
    _add_sample_option(identify, folder=True)
    identify.add_argument("--top", type=_positive, metavar="K", help="show at most K candidates (those at or above the retry threshold)")
    identify.add_argument("--json", action="store_true")
    identify.add_argument("--modality", choices=MODALITIES, default="face", help="with --dir (default face)")
    identify.add_argument("--out", type=Path, help="with --dir: results.csv, .json or .parquet (default: CSV on stdout)")
    scale.add_engine_options(identify)

    batch = sub.add_parser("batch", help="verify every file under DIR against NAME")
    batch.add_argument("name")
    batch.add_argument("dir", help="a folder, or a URI pyarrow reads (s3://bucket/photos)")
    batch.add_argument("--modality", choices=MODALITIES)
    batch.add_argument("--out", type=Path, help="results.csv, .json or .parquet (default: CSV on stdout)")
    scale.add_engine_options(batch)

    embed = sub.add_parser("embed", help="embed every file under DIR into a Parquet file (no store needed)")
    embed.add_argument("dir", help="a folder, or a URI pyarrow reads")
    embed.add_argument("--out", type=Path, required=True, help="embeddings.parquet")
    embed.add_argument("--modality", choices=MODALITIES, default="face")
    scale.add_engine_options(embed)

    research.add_parsers(sub)
    tokens.add_parsers(sub)
    sub.add_parser("info", help="device, models and thresholds in use")

    sub.add_parser("export", help="back up every template to a JSON file").add_argument("file", type=Path)
    restore = sub.add_parser("import", help="restore templates from an export (all or nothing)")
    restore.add_argument("file", type=Path)
    restore.add_argument("--replace", action="store_true", help="overwrite templates already enrolled")
    audit = sub.add_parser("audit", help="recent verification and identification attempts, newest first")
    audit.add_argument("--name", help="only this identity")
    audit.add_argument("--limit", type=int, default=50)
    audit.add_argument("--json", action="store_true")
    unlock = sub.add_parser("unlock", help="lift NAME's lockout after failed checks")
    unlock.add_argument("name")
    unlock.add_argument("--modality", choices=MODALITIES, required=True)
    return parser


COMMANDS = {**commands.COMMANDS, **research.COMMANDS, **tokens.COMMANDS}

EXIT_BROKEN_PIPE = 141
"""The reader of the output went away (``verify audit | head``): 128 + SIGPIPE, as a shell reports it."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 accepted/ok, 1 rejected, 2 error, 130 interrupted,
    141 the output's reader went away)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    single_threaded_blas()
    try:
        status = COMMANDS[args.command](args)
        sys.stdout.flush()  # a reader that went away shows here, not as a traceback at exit
        return status
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to write
        return EXIT_BROKEN_PIPE
    except VerifyError as error:
        if args.debug:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
