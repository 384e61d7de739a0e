"""Command line: ``python -m verify`` (alias ``verify``).

The thin top layer over :mod:`enrollment` and :mod:`verify`: it parses arguments, calls them,
prints results, and maps every :class:`VerifyError` to a one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from enrollment.audit import recent_attempts
from enrollment.backup import export_store, import_store
from enrollment.crypto import load_key
from enrollment.enroll import check, check_many, enroll
from enrollment.ratelimit import LockoutPolicy, clear_lockout
from enrollment.store import TemplateStore, default_store_path
from verify.config import DEFAULT_SECURITY_LEVEL, MODALITIES, SECURITY_LEVELS
from verify.embedding import Pipeline
from verify.errors import ConfigError, VerifyError
from verify.evaluation import read_pairs, score_pairs, summarize
from verify.models import load_pipeline, model_thresholds
from verify.scoring import Decision
from verify.verifier import Verifier
from verify.weights import ASSETS_DIR

EXIT_ACCEPTED, EXIT_REJECTED, EXIT_ERROR = 0, 1, 2
SAMPLES_DIR = ASSETS_DIR / "samples"
log = logging.getLogger("verify")


def _add_sample_option(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--face", type=Path, metavar="FILE", help="an image with the face")
    group.add_argument("--voice", type=Path, metavar="FILE", help="a speech clip")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="verify", description="One-shot face and speaker verification.")
    parser.add_argument("--store", type=Path, default=None, help="enrollment store file (default: $VERIFY_STORE or ~/.local/share/verify/enrollments.db)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda:N")
    parser.add_argument("--level", default=DEFAULT_SECURITY_LEVEL, choices=sorted(SECURITY_LEVELS), help="security level: target false accept rate low 1%%, medium 0.1%%, high 0.01%%")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--adapt", action="store_true", help="enroll and check with the shipped per-user adaptation (face only; see README)")
    parser.add_argument("--key-file", type=Path, metavar="FILE", help="base64 AES-256 key sealing the templates (default: $VERIFY_STORE_KEY; none: not encrypted)")
    parser.add_argument("--max-failures", type=int, default=LockoutPolicy.max_failures, metavar="N", help="failed checks within --failure-window that lock a name out (0: never; default %(default)s)")
    parser.add_argument("--failure-window", type=float, default=LockoutPolicy.window_seconds, metavar="SECONDS", help="default %(default)s")
    parser.add_argument("--lockout", type=float, default=LockoutPolicy.lockout_seconds, metavar="SECONDS", help="how long a lockout lasts (default %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    enroll_parser = commands.add_parser("enroll", help="enroll NAME from one sample (again to add samples)")
    enroll_parser.add_argument("name")
    _add_sample_option(enroll_parser)
    enroll_parser.add_argument("--allow-low-quality", action="store_true", help="accept a blurry, dark or clipped sample")

    commands.add_parser("list", help="list enrolled identities").add_argument("--json", action="store_true")

    delete_parser = commands.add_parser("delete", help="delete NAME's templates")
    delete_parser.add_argument("name")
    delete_parser.add_argument("--modality", choices=MODALITIES, help="delete only this modality")

    check_parser = commands.add_parser("check", help="verify one sample against NAME (exit 0 accepted, 1 not)")
    check_parser.add_argument("name")
    _add_sample_option(check_parser)

    batch_parser = commands.add_parser("batch", help="verify every file under DIR against NAME")
    batch_parser.add_argument("name")
    batch_parser.add_argument("dir", type=Path)
    batch_parser.add_argument("--modality", choices=MODALITIES)
    batch_parser.add_argument("--out", type=Path, help="results.csv or results.json (default: CSV on stdout)")

    evaluate_parser = commands.add_parser("evaluate", help="EER, TAR@FAR and minDCF on a pairs file")
    evaluate_parser.add_argument("--pairs", type=Path, required=True, help="CSV: enroll_path,probe_path,same")
    evaluate_parser.add_argument("--root", type=Path, required=True, help="folder the pair paths are relative to")
    evaluate_parser.add_argument("--modality", choices=MODALITIES, required=True)
    evaluate_parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    evaluate_parser.add_argument("--plot", type=Path, help="also draw the DET curve to this PNG")
    evaluate_parser.add_argument("--head", default="none", choices=("none", "siamese", "proto", "relation"), help="score through a trained few-shot head (default: none)")
    evaluate_parser.add_argument("--head-checkpoint", type=Path, help="head weights (default: the one shipped in assets/models)")
    evaluate_parser.add_argument("--adapt", default="none", choices=("none", "maml", "fomaml", "reptile", "metasgd", "taml"), help="per-user adaptation of each enrollment (default: none)")
    evaluate_parser.add_argument("--adapt-checkpoint", type=Path, help="adaptation checkpoint (default: the shipped one)")

    train_parser = commands.add_parser("train", help="train a few-shot head or per-user adaptation on ../shared/data")
    train_parser.add_argument("--modality", choices=MODALITIES, required=True)
    train_parser.add_argument("--method", required=True, choices=("siamese", "proto", "relation", "maml", "fomaml", "reptile", "metasgd", "taml"))
    train_parser.add_argument("--epochs", type=int, help="training epochs (default: the method's)")
    train_parser.add_argument("--out", type=Path, help="output folder (default: runs/meta)")
    train_parser.add_argument("--seed", type=int, default=0)

    demo_parser = commands.add_parser("demo", help="enroll the shipped samples and verify the rest against them")
    demo_parser.add_argument("--modality", choices=MODALITIES, help="only this modality")
    commands.add_parser("info", help="device, models and thresholds in use")

    commands.add_parser("export", help="back up every template to a JSON file").add_argument("file", type=Path)
    import_parser = commands.add_parser("import", help="restore templates from an export (all or nothing)")
    import_parser.add_argument("file", type=Path)
    import_parser.add_argument("--replace", action="store_true", help="overwrite templates already enrolled")
    audit_parser = commands.add_parser("audit", help="recent verification attempts, newest first")
    audit_parser.add_argument("--name", help="only this identity")
    audit_parser.add_argument("--limit", type=int, default=50)
    audit_parser.add_argument("--json", action="store_true")
    unlock_parser = commands.add_parser("unlock", help="lift NAME's lockout after failed checks")
    unlock_parser.add_argument("name")
    unlock_parser.add_argument("--modality", choices=MODALITIES, required=True)
    return parser


def _open_store(args: argparse.Namespace) -> TemplateStore:
    return TemplateStore(args.store or default_store_path(), key=load_key(args.key_file))


def _policy(args: argparse.Namespace) -> LockoutPolicy:
    return LockoutPolicy(args.max_failures, args.failure_window, args.lockout)


def _sample(args: argparse.Namespace) -> tuple[str, Path]:
    return ("face", args.face) if args.face is not None else ("voice", args.voice)


def _verifier(args: argparse.Namespace, modality: str) -> Verifier:
    pipeline = load_pipeline(modality, args.device)
    return Verifier(pipeline, model_thresholds(pipeline.model_id), args.level)


def _format_decision(decision: Decision) -> str:
    line = f"{decision.outcome}  score {decision.score:.3f}  threshold {decision.threshold:.3f}"
    return f"{line}  ({decision.reason})" if decision.reason and not decision.accepted else line


def _adapter(args: argparse.Namespace, modality: str):
    """The shipped per-user adaptation when ``--adapt`` is given, else ``None`` (plain templates)."""
    if not args.adapt:
        return None
    from verify.meta.adapt import shipped_adapter

    adapter = shipped_adapter(modality)
    if adapter is None:
        raise ConfigError(f"no per-user adaptation ships for {modality}: it did not beat the plain model on validation")
    return adapter


def cmd_enroll(args: argparse.Namespace) -> int:
    modality, path = _sample(args)
    pipeline = load_pipeline(modality, args.device)
    with _open_store(args) as store:
        result = enroll(store, pipeline, args.name, path, allow_low_quality=args.allow_low_quality,
                        adapter=_adapter(args, modality))
    for note in result.sample.notes:
        print(f"note: {note}", file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    template = result.template
    print(f"enrolled {template.identity!r} ({modality}, {template.sample_count} sample(s), model {template.model_id})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        templates = store.list_templates()
    rows = [
        {"identity": t.identity, "modality": t.modality, "samples": t.sample_count, "model": t.model_id,
         "model_version": t.model_version, "enrolled": _iso(t.created_at), "updated": _iso(t.updated_at)}
        for t in templates
    ]
    if args.json:
        print(json.dumps(rows, indent=1, ensure_ascii=False))
    elif not rows:
        print("no identities enrolled")
    for row in rows if not args.json else ():
        print(f"{row['identity']}\t{row['modality']}\t{row['samples']} sample(s)\t{row['model']}\t{row['enrolled']}")
    return 0


def _iso(timestamp: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def cmd_delete(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        count = store.delete(args.name, args.modality)
    print(f"deleted {count} template(s) of {args.name!r}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    modality, path = _sample(args)
    with _open_store(args) as store:
        decision = check(store, _verifier(args, modality), args.name, path, policy=_policy(args),
                         adapter=_adapter(args, modality))
    print(_format_decision(decision))
    return EXIT_ACCEPTED if decision.accepted else EXIT_REJECTED


def _batch_modality(store: TemplateStore, name: str, requested: str | None) -> str:
    if requested:
        return requested
    enrolled = [template.modality for template in store.find(name)]
    if len(enrolled) == 1:
        return enrolled[0]
    if not enrolled:
        raise ConfigError(f"no template enrolled for {name!r}")
    raise ConfigError(f"{name!r} has {' and '.join(enrolled)} templates: choose one with --modality")


def cmd_batch(args: argparse.Namespace) -> int:
    if not args.dir.is_dir():
        raise ConfigError(f"{args.dir} is not a folder")
    if args.out is not None and args.out.suffix.lower() not in (".csv", ".json"):
        raise ConfigError(f"--out must end in .csv or .json, got {args.out}")
    files = sorted(p for p in args.dir.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(args.dir).parts))
    rows = []
    with _open_store(args) as store:
        modality = _batch_modality(store, args.name, args.modality)
        verifier, adapter = _verifier(args, modality), _adapter(args, modality)
        with tqdm(total=len(files), unit="file", desc=f"checking against {args.name}", file=sys.stderr) as bar:
            for start in range(0, len(files), 32):
                chunk = files[start : start + 32]
                for path, result in zip(chunk, check_many(store, verifier, args.name, chunk, policy=_policy(args), adapter=adapter)):
                    rows.append(_batch_row(path, result))
                bar.update(len(chunk))
    _write_rows(rows, args.out)
    counts = {outcome: sum(row["decision"] == outcome for row in rows) for outcome in ("accepted", "rejected", "retry", "error")}
    print(", ".join(f"{count} {outcome}" for outcome, count in counts.items()), file=sys.stderr)
    return 0


def _batch_row(path: Path, result: Decision | VerifyError) -> dict:
    if isinstance(result, VerifyError):
        return {"path": str(path), "decision": "error", "score": "", "threshold": "", "reason": str(result)}
    return {"path": str(path), "decision": result.outcome, "score": round(result.score, 4),
            "threshold": round(result.threshold, 4), "reason": result.reason}


def _write_rows(rows: list[dict], out: Path | None) -> None:
    if out is not None and out.suffix.lower() == ".json":
        out.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    handle = open(out, "w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        writer = csv.DictWriter(handle, fieldnames=["path", "decision", "score", "threshold", "reason"])
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if out:
            handle.close()


def cmd_evaluate(args: argparse.Namespace) -> int:
    pairs = read_pairs(args.pairs)
    pipeline = load_pipeline(args.modality, args.device)
    files = len({p.enroll_path for p in pairs} | {p.probe_path for p in pairs})
    with tqdm(total=files, unit="file", desc="embedding", file=sys.stderr) as bar:
        if args.head != "none" or args.adapt != "none":
            from verify.meta.dispatch import score_pairs_meta

            scores, errors = score_pairs_meta(pipeline, pairs, args.root, args.head, args.head_checkpoint,
                                              args.adapt, args.adapt_checkpoint, bar.update)
        else:
            scores, errors = score_pairs(pipeline, pairs, args.root, bar.update)
    report = summarize(pairs, scores, errors)
    print(f"pairs {report.pairs} (genuine {report.genuine}, impostor {report.impostor}); model {pipeline.model_id}")
    print(f"EER {report.eer:.2%} (threshold {report.eer_threshold:.3f})")
    print(f"TAR at FAR 1%: {report.tar_at_far_1e_2:.2%}   TAR at FAR 0.1%: {report.tar_at_far_1e_3:.2%}")
    print(f"minDCF (P_target {report.p_target}): {report.min_dcf:.4f}")
    print(f"failed pairs {report.failed_pairs} (genuine {report.failed_genuine}); failed files {report.failed_files or 0}")
    if args.json:
        args.json.write_text(json.dumps({"model_id": pipeline.model_id, **report.as_dict()}, indent=1) + "\n", encoding="utf-8")
    if args.plot:
        from verify.plots import plot_det

        plot_det(scores, [p.same for p in pairs], args.plot, title=f"{pipeline.model_id} on {args.pairs.name}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from verify.meta.dispatch import train

    print(train(args.modality, args.method, args.out, args.seed, args.epochs, args.device))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    modalities = [args.modality] if args.modality else list(MODALITIES)
    with tempfile.TemporaryDirectory() as folder, TemplateStore(Path(folder) / "demo.db") as store:
        for modality in modalities:
            _demo_modality(store, _verifier(args, modality), SAMPLES_DIR / f"{modality}s")
    return 0


def _demo_modality(store: TemplateStore, verifier: Verifier, folder: Path) -> None:
    people = {p.name: sorted(f for f in p.iterdir() if f.is_file()) for p in sorted(folder.iterdir()) if p.is_dir()}
    templates = {name: enroll(store, verifier.pipeline, name, files[0]).template for name, files in people.items()}
    print(f"\n{verifier.pipeline.modality}: enrolled {', '.join(people)} from one sample each "
          f"(level {verifier.operating_point.level}, threshold {verifier.operating_point.threshold:.3f})")
    print(f"{'probe':<28}{'claimed':<18}{'truth':<8}{'decision':<10}score")
    probes = [(owner, path) for owner, files in people.items() for path in files[1:]]
    for (owner, path), probe in zip(probes, verifier.pipeline.embed_many([path for _, path in probes])):
        label = f"{owner}/{path.name}"
        if isinstance(probe, VerifyError):
            print(f"{label:<28}{'-':<18}{'-':<8}{'error':<10}{probe}")
            continue
        for claimed, template in templates.items():
            decision = verifier.decide(template.embedding, probe)
            truth = "same" if claimed == owner else "other"
            print(f"{label:<28}{claimed:<18}{truth:<8}{decision.outcome:<10}{decision.score:.3f}")


def cmd_info(args: argparse.Namespace) -> int:
    for modality in MODALITIES:
        verifier = _verifier(args, modality)
        pipeline = verifier.pipeline
        print(f"{modality}: {pipeline.model_id} {pipeline.model_version} on {pipeline.device}")
        for level in SECURITY_LEVELS:
            point = verifier.thresholds.operating_point(level)
            print(f"  {level:<7} FAR {point.target_far:<7g} accept >= {point.threshold:.3f}  retry >= {point.retry_threshold:.3f}")
    print(f"store: {args.store or default_store_path()}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        count = export_store(store, args.file)
    print(f"exported {count} template(s) to {args.file} (embeddings in clear: keep it private)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from verify.face.pipeline import FacePipeline
    from verify.voice.pipeline import VoicePipeline

    models = {p.modality: (p.model_id, p.model_version) for p in (FacePipeline, VoicePipeline)}
    with _open_store(args) as store:
        count = import_store(store, args.file, models, replace=args.replace)
    print(f"imported {count} template(s) from {args.file}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        attempts = recent_attempts(store, args.limit, args.name)
    if args.json:
        print(json.dumps([a.as_dict() for a in attempts], indent=1, ensure_ascii=False))
        return 0
    for a in attempts:
        score = "" if a.score is None else f"{a.score:.3f}"
        print(f"{_iso(a.time)}\t{a.identity}\t{a.modality}\t{a.decision}\t{score}\t{a.detail}")
    if not attempts:
        print("no attempts logged")
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        lifted = clear_lockout(store, args.name, args.modality)
    print(f"lifted the lockout of {args.name!r} ({args.modality})" if lifted else f"{args.name!r} ({args.modality}) was not locked out")
    return 0


COMMANDS = {"enroll": cmd_enroll, "list": cmd_list, "delete": cmd_delete, "check": cmd_check,
            "batch": cmd_batch, "evaluate": cmd_evaluate, "train": cmd_train, "demo": cmd_demo, "info": cmd_info,
            "export": cmd_export, "import": cmd_import, "audit": cmd_audit, "unlock": cmd_unlock}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 accepted/ok, 1 rejected, 2 error)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except VerifyError as error:
        if args.debug:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
