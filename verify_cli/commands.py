"""The command line's use-case commands: each builds the service from the arguments and calls it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from enrollment.service import Service
from enrollment.settings import Settings, user_caller
from verify.config import MODALITIES, SECURITY_LEVELS
from verify.errors import ConfigError
from verify.models import model_spec
from verify.engines import list_files
from verify_cli import scale
from verify_cli.output import (
    EXIT_ACCEPTED,
    EXIT_REJECTED,
    check_rows_file,
    format_decision,
    iso_time,
    json_number,
    write_rows,
)


def open_service(args: argparse.Namespace, **overrides) -> Service:
    """The service the arguments describe (arguments, then environment, then defaults)."""
    settings = Settings.resolve(
        store=args.store, key_file=args.key_file, device=args.device, level=args.level,
        max_failures=args.max_failures, failure_window=args.failure_window, lockout_seconds=args.lockout,
        adapt=args.adapt, caller=user_caller("cli"), **overrides,
    )
    return Service(settings=settings)


def _sample(args: argparse.Namespace) -> dict[str, Path]:
    return {"face": args.face} if args.face is not None else {"voice": args.voice}


def cmd_enroll(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        result = service.enroll(args.name, **_sample(args), allow_low_quality=args.allow_low_quality)
    (modality, enrolled), = result.enrolled.items()
    for note in enrolled.sample.notes:
        print(f"note: {note}", file=sys.stderr)
    for warning in enrolled.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    template = enrolled.template
    print(f"enrolled {template.identity!r} ({modality}, {template.sample_count} sample(s), model {template.model_id})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        templates = service.templates()
    rows = [
        {"identity": t.identity, "modality": t.modality, "samples": t.sample_count, "model": t.model_id,
         "model_version": t.model_version, "enrolled": iso_time(t.created_at), "updated": iso_time(t.updated_at),
         "phone_line_copy": t.narrowband is not None if t.modality == "voice" else None}
        for t in templates
    ]
    if args.json:
        print(json.dumps(rows, indent=1, ensure_ascii=False))
        return 0
    if not rows:
        print("no identities enrolled")
    for row in rows:
        missing = "\t(no telephone-band copy: enroll again for checks over a phone line)" if row["phone_line_copy"] is False else ""
        print(f"{row['identity']}\t{row['modality']}\t{row['samples']} sample(s)\t{row['model']}\t{row['enrolled']}{missing}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        count = service.delete(args.name, args.modality)
    print(f"deleted {count} template(s) of {args.name!r}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        result = service.check(args.name, **_sample(args))
    print(format_decision(result.deciding))
    return EXIT_ACCEPTED if result.accepted else EXIT_REJECTED


def cmd_identify(args: argparse.Namespace) -> int:
    if args.dir is not None:
        files = list_files(args.dir)
        with open_service(args, lanes=scale.job_lanes(args, files)) as service:
            return scale.cmd_identify_bulk(args, service, files)
    if args.engine != "local" or args.out is not None:
        raise ConfigError("--engine and --out apply to identify --dir")
    with open_service(args) as service:
        result = service.identify(**_sample(args))
    (modality, search), = result.searches.items()
    candidates = search.candidates[: args.top]
    if args.json:
        print(json.dumps({
            "identity": result.identity, "outcome": result.outcome, "level": result.level, "modality": modality,
            "score": json_number(search.decision.score), "threshold": json_number(search.decision.threshold),
            "llr": json_number(search.decision.llr), "reason": result.reason,
            "candidates": [[c.identity, round(c.score, 4), round(c.evidence, 4)] for c in candidates],
        }, indent=1, ensure_ascii=False))
    else:
        if result.identity:
            print(f"{result.identity}  score {search.decision.score:.3f}  threshold {search.decision.threshold:.3f}")
        else:
            print(f"nobody  ({result.reason})")
        for rank, candidate in enumerate(candidates if args.top else (), start=1):
            print(f"  {rank}. {candidate.identity}  score {candidate.score:.3f}  evidence {candidate.evidence:.3f}")
    return EXIT_ACCEPTED if result.identity else EXIT_REJECTED


def _batch_modality(service: Service, name: str, requested: str | None) -> str:
    if requested:
        return requested
    enrolled = [template.modality for template in service.store.find(name)]
    if len(enrolled) == 1:
        return enrolled[0]
    if not enrolled:
        raise ConfigError(f"no template enrolled for {name!r}")
    raise ConfigError(f"{name!r} has {' and '.join(enrolled)} templates: choose one with --modality")


def cmd_batch(args: argparse.Namespace) -> int:
    check_rows_file(args.out)
    files = list_files(args.dir)
    with open_service(args, lanes=scale.job_lanes(args, files)) as service:
        modality = _batch_modality(service, args.name, args.modality)
        rows = scale.batch_on_engine(args, service, modality, files)
    write_rows(rows, args.out)
    counts = {outcome: sum(row["decision"] == outcome for row in rows) for outcome in ("accepted", "rejected", "retry", "error")}
    print(", ".join(f"{count} {outcome}" for outcome, count in counts.items()), file=sys.stderr)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from verify.device import select_device

    with open_service(args) as service:
        settings = service.settings
        for modality in MODALITIES:
            spec = model_spec(modality)
            print(f"{modality}: {spec.model_id} {spec.version} on {select_device(settings.device)}")
            for level in SECURITY_LEVELS:
                point = service.operating_point(modality, level)
                print(f"  {level:<7} FAR {point.target_far:<7g} accept LLR >= {point.threshold:.2f}"
                      f"  retry LLR >= {point.retry_threshold:.2f}")
            scorer = service.scorer(modality)
            compensation = scorer.compensation
            if compensation is not None:
                print(f"  noisy / echoing probes compensated ({compensation.compensation_id}): "
                      + ", ".join(f"{ramp.measure} {ramp.start:g} -> {ramp.full:g}" for ramp in compensation.ramps))
            route = scorer.narrowband
            if route is not None:
                print("  phone line (band-limited, nearer the template's telephone-band copy): accept LLR >= "
                      + " / ".join(f"{route.thresholds.operating_point(level).threshold:.2f}" for level in SECURITY_LEVELS)
                      + " (" + " / ".join(SECURITY_LEVELS) + ")")
            low_cut = scorer.low_cut
            if low_cut is not None:
                print(f"  another microphone (low-cut copies of template and probe, {low_cut.corner_hz:g} Hz): "
                      f"a copy's LLR less {low_cut.penalty:g}")
    print(f"store: {settings.store_path}{' (sealed)' if settings.key else ''}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        count = service.export_templates(args.file)
    print(f"exported {count} template(s) to {args.file} (embeddings in clear: keep it private)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        count = service.import_templates(args.file, replace=args.replace)
    print(f"imported {count} template(s) from {args.file}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        attempts = service.audit(args.name, args.limit)
    if args.json:
        print(json.dumps([a.as_dict() for a in attempts], indent=1, ensure_ascii=False))
        return 0
    for a in attempts:
        score = "" if a.score is None else f"{a.score:.3f}"
        print(f"{iso_time(a.time)}\t{a.action}\t{a.identity or '-'}\t{a.modality}\t{a.decision}\t{score}\t{a.detail}\t{a.caller}")
    if not attempts:
        print("no attempts logged")
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    with open_service(args) as service:
        lifted = service.unlock(args.name, args.modality)
    print(f"lifted the lockout of {args.name!r} ({args.modality})" if lifted else f"{args.name!r} ({args.modality}) was not locked out")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "enroll": cmd_enroll, "list": cmd_list, "delete": cmd_delete, "check": cmd_check, "identify": cmd_identify,
    "batch": cmd_batch, "info": cmd_info, "export": cmd_export, "import": cmd_import, "audit": cmd_audit,
    "unlock": cmd_unlock, "embed": scale.cmd_embed,
}
