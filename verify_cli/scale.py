"""Folder-sized jobs on either engine: ``batch --engine ray``, ``embed``, and ``identify --dir``.

The engine (this process, or Ray actors) only embeds. Decisions are made and logged here, through
the service, in path order, a chunk at a time, so both engines give the same rows and the same
audit log, and every ``batch`` file counts towards the lockout as it always has.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

from enrollment.service import Service
from enrollment.settings import user_caller
from verify.engines import ENGINES, FileList, LocalEngine, list_files
from verify.engines.local import Chunk
from verify.errors import ConfigError, VerifyError
from verify_cli.output import batch_row, check_rows_file, json_number, write_rows

IDENTIFY_COLUMNS = ["path", "identity", "outcome", "score", "threshold", "llr", "reason", "candidates"]


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """``--engine``, ``--address`` and ``--workers``."""
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="local: this process; ray: Ray actors (pip install -e '.[scale]')")
    parser.add_argument("--address", help="Ray cluster to join (default: start a local Ray with 2 CPUs)")
    parser.add_argument("--workers", type=int, help="Ray actors (default: one per GPU of the cluster, else per CPU)")


def job_lanes(args: argparse.Namespace, files: FileList) -> int | None:
    """The service's lanes for a folder job: the local engine embeds in as many as suit the device
    and the number of files (:func:`verify.lanes.job_lanes`); with Ray, the actors embed and the
    service needs one."""
    from verify.lanes import job_lanes as lanes_for

    return lanes_for(len(files)) if args.engine == "local" else 1


@contextmanager
def open_engine(args: argparse.Namespace, modality: str, pipeline_of) -> Iterator[LocalEngine]:
    """The engine the arguments ask for; ``pipeline_of(modality)`` gives the local engine its model."""
    if args.engine == "local":
        if args.address or args.workers:
            raise ConfigError("--address and --workers apply to --engine ray")
        yield LocalEngine(pipeline_of(modality))
        return
    from verify.engines.ray_engine import RayEngine, RayOptions

    with RayEngine(modality, args.device or "auto", RayOptions(address=args.address, workers=args.workers)) as engine:
        yield engine


def _progress(files: FileList, chunks: Iterator[Chunk], what: str) -> Iterator[Chunk]:
    with tqdm(total=len(files), unit="file", desc=what, file=sys.stderr) as bar:
        for chunk in chunks:
            yield chunk
            bar.update(len(chunk))


def batch_on_engine(args: argparse.Namespace, service: Service, modality: str, files: FileList) -> list[dict]:
    """``batch`` rows, embedded by the engine and decided by the service in path order."""
    service.check_embedded_many(args.name, [], modality)  # unknown or locked out: fail before embedding
    rows = []
    with open_engine(args, modality, service.pipeline) as engine:
        for chunk in _progress(files, engine.embed(files), f"checking against {args.name}"):
            paths, probes = zip(*chunk)
            answers = service.check_embedded_many(args.name, list(probes), modality, sources=list(paths))
            rows += [batch_row(path, result) for path, result in zip(paths, answers)]
    return rows


def cmd_embed(args: argparse.Namespace) -> int:
    from verify.engines.embeddings_file import write_embeddings
    from verify.lanes import load_lanes
    from verify.models import model_spec

    if args.out.suffix.lower() != ".parquet":
        raise ConfigError(f"--out must end in .parquet, got {args.out}")
    files = list_files(args.dir)
    spec = model_spec(args.modality)
    results: list = []
    lanes = job_lanes(args, files)
    with open_engine(args, args.modality, lambda modality: load_lanes(modality, args.device or "auto", lanes)) as engine:
        for chunk in _progress(files, engine.embed(files), f"embedding {args.modality}"):
            results += chunk
    write_embeddings(args.out, results, args.modality, spec.model_id, spec.version)
    failed = sum(isinstance(result, VerifyError) for _, result in results)
    print(f"embedded {len(results) - failed} file(s), {failed} failed, into {args.out}", file=sys.stderr)
    return 0


def identify_rows(args: argparse.Namespace, service: Service, files: FileList) -> list[dict]:
    """Bulk identification of every file under ``args.dir``: an operator job, logged but not throttled.

    Every search is logged as an ``identify`` attempt of ``cli-bulk:<user>``; the per-caller
    throttle, which keeps remote callers from using 1:N as a score oracle, does not apply to
    whoever can open the store (and its key) on this machine.
    """
    modality = args.modality
    caller = user_caller("cli-bulk")
    rows = []
    with open_engine(args, modality, service.pipeline) as engine:
        for chunk in _progress(files, engine.embed(files), f"identifying {modality}"):
            paths, probes = zip(*chunk)
            results = service.identify_embedded(list(probes), modality, sources=list(paths), caller=caller)
            rows += [identify_row(path, result, args.top) for path, result in zip(paths, results)]
    return rows


def identify_row(path: str, result, top: int | None) -> dict:
    """One row of bulk ``identify`` output (candidates at or above the retry threshold, best first)."""
    if isinstance(result, VerifyError):
        return {"path": path, "identity": "", "outcome": "error", "score": "", "threshold": "", "llr": "",
                "reason": str(result), "candidates": []}
    (search,) = result.searches.values()
    decision = search.decision
    return {"path": path, "identity": result.identity or "", "outcome": result.outcome,
            "score": json_number(decision.score), "threshold": json_number(decision.threshold),
            "llr": json_number(decision.llr), "reason": result.reason,
            "candidates": [[c.identity, round(c.score, 4), round(c.evidence, 4)] for c in search.candidates[:top]]}


def cmd_identify_bulk(args: argparse.Namespace, service: Service, files: FileList) -> int:
    check_rows_file(args.out)
    rows = identify_rows(args, service, files)
    write_rows(rows, args.out, IDENTIFY_COLUMNS)
    named = sum(bool(row["identity"]) for row in rows)
    errors = sum(row["outcome"] == "error" for row in rows)
    print(f"{named} named, {len(rows) - named - errors} nobody, {errors} error", file=sys.stderr)
    return 0
