"""The command line's evaluation, training and demo commands (no enrollment store of the user's)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from enrollment.service import Service
from verify.config import MODALITIES, SECURITY_LEVELS
from verify.errors import VerifyError
from verify.evaluation import embed_pair_files, level_outcomes, pair_cosines, read_pairs, summarize
from verify.lanes import job_lanes, load_lanes
from verify.models import model_scorer
from verify.weights import ASSETS_DIR

SAMPLES_DIR = ASSETS_DIR / "samples"
HEADS = ("none", "siamese", "proto", "relation")
ADAPTATIONS = ("none", "maml", "fomaml", "reptile", "metasgd", "taml")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``evaluate``, ``train`` and ``demo`` subcommands."""
    evaluate = sub.add_parser("evaluate", help="EER, TAR@FAR and minDCF on a pairs file")
    evaluate.add_argument("--pairs", type=Path, required=True, help="CSV: enroll_path,probe_path,same")
    evaluate.add_argument("--root", type=Path, required=True, help="folder the pair paths are relative to")
    evaluate.add_argument("--modality", choices=MODALITIES, required=True)
    evaluate.add_argument("--json", type=Path, help="also write the figures as JSON")
    evaluate.add_argument("--plot", type=Path, help="also draw the DET curve to this PNG")
    evaluate.add_argument("--head", default="none", choices=HEADS, help="score through a trained few-shot head (default: none)")
    evaluate.add_argument("--head-checkpoint", type=Path, help="head weights (default: the one shipped in assets/models)")
    evaluate.add_argument("--adapt", dest="adapt_method", default="none", choices=ADAPTATIONS,
                          help="per-user adaptation of each enrollment (default: none)")
    evaluate.add_argument("--adapt-checkpoint", type=Path, help="adaptation checkpoint (default: the shipped one)")

    train = sub.add_parser("train", help="train a few-shot head or per-user adaptation on a data folder")
    train.add_argument("--data", type=Path, required=True, help="identity-labelled data sets (e.g. ../shared/data)")
    train.add_argument("--modality", choices=MODALITIES, required=True)
    train.add_argument("--method", required=True, choices=HEADS[1:] + ADAPTATIONS[1:])
    train.add_argument("--epochs", type=int, help="training epochs (default: the method's)")
    train.add_argument("--out", type=Path, help="output folder (default: runs/meta)")
    train.add_argument("--seed", type=int, default=0)

    demo = sub.add_parser("demo", help="enroll the shipped samples and verify the rest against them")
    demo.add_argument("--modality", choices=MODALITIES, help="only this modality")


def cmd_evaluate(args: argparse.Namespace) -> int:
    pairs = read_pairs(args.pairs)
    files = len({p.enroll_path for p in pairs} | {p.probe_path for p in pairs})
    pipeline = load_lanes(args.modality, args.device or "auto", job_lanes(files))  # verify.lanes
    with tqdm(total=files, unit="file", desc="embedding", file=sys.stderr) as bar:
        if args.head != "none" or args.adapt_method != "none":
            from training.dispatch import score_pairs_meta

            scores, errors = score_pairs_meta(pipeline, pairs, args.root, args.head, args.head_checkpoint,
                                              args.adapt_method, args.adapt_checkpoint, bar.update)
            report = summarize(pairs, scores, errors)
        else:
            embeddings, errors = embed_pair_files(pipeline, pairs, args.root, bar.update)
            scores, scorer = pair_cosines(pairs, embeddings), model_scorer(args.modality)
            thresholds = {level: scorer.operating_point(level).threshold for level in SECURITY_LEVELS}
            report = summarize(pairs, scores, errors, level_outcomes(pairs, embeddings, pipeline, scorer), thresholds)
    print(f"pairs {report.pairs} (genuine {report.genuine}, impostor {report.impostor}); model {pipeline.model_id}")
    print(f"EER {report.eer:.2%} (threshold {report.eer_threshold:.3f})")
    print(f"TAR at FAR 1%: {report.tar_at_far_1e_2:.2%}   TAR at FAR 0.1%: {report.tar_at_far_1e_3:.2%}")
    print(f"minDCF (P_target {report.p_target}): {report.min_dcf:.4f}")
    print(f"failed pairs {report.failed_pairs} (genuine {report.failed_genuine}); failed files {report.failed_files or 0}")
    for level, rates in (report.levels or {}).items():
        print(f"{level:<7} (LLR >= {rates['threshold']:.2f}): FAR {rates['far']:.3%}  FRR {rates['frr']:.2%}"
              f"  of which retry {rates['retry']:.2%}")
    if args.json:
        args.json.write_text(json.dumps({"model_id": pipeline.model_id, **report.as_dict()}, indent=1) + "\n", encoding="utf-8")
    if args.plot:
        from verify.plots import plot_det

        plot_det(scores, [p.same for p in pairs], args.plot, title=f"{pipeline.model_id} on {args.pairs.name}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from training.dispatch import train

    print(train(args.modality, args.method, args.data, args.out, args.seed, args.epochs, args.device or "auto"))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Enroll the first sample of each shipped person, check every other sample against everyone."""
    modalities = [args.modality] if args.modality else list(MODALITIES)
    with tempfile.TemporaryDirectory() as folder, \
            Service(Path(folder) / "demo.db", device=args.device, level=args.level, max_failures=0) as service:
        for modality in modalities:
            _demo_modality(service, modality, SAMPLES_DIR / f"{modality}s")
    return 0


def _demo_modality(service: Service, modality: str, folder: Path) -> None:
    people = {p.name: sorted(f for f in p.iterdir() if f.is_file()) for p in sorted(folder.iterdir()) if p.is_dir()}
    for name, files in people.items():
        service.enroll(name, **{modality: files[0]})
    point = service.operating_point(modality)
    print(f"\n{modality}: enrolled {', '.join(people)} from one sample each "
          f"(level {point.level}, threshold {point.threshold:.3f})")
    print(f"{'probe':<28}{'claimed':<18}{'truth':<8}{'decision':<10}score")
    for owner, files in people.items():
        for path in files[1:]:
            label = f"{owner}/{path.name}"
            for claimed in people:
                try:
                    decision = service.check(claimed, **{modality: path}).deciding
                except VerifyError as error:
                    print(f"{label:<28}{'-':<18}{'-':<8}{'error':<10}{error}")
                    break
                truth = "same" if claimed == owner else "other"
                print(f"{label:<28}{claimed:<18}{truth:<8}{decision.outcome:<10}{decision.score:.3f}")


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "evaluate": cmd_evaluate, "train": cmd_train, "demo": cmd_demo,
}
