"""What a person meets at each security level, on clean and degraded samples of unseen people.

One-shot, on the EVALUATION halves of benchmarks/pairs/splits.json (people never used for
calibration, cohorts or training): every person enrolls from one clean sample that enrollment
accepts (a flagged one would be refused: the person is asked for another; a set with none,
FSDD's sub-2 s digits, enrolls them as with --allow-low-quality); probes are their
other samples (genuine) and everybody else's (impostors), clean or degraded (verify/conditions.py:
webcam-like faces; short, babbled, noisy, telephone, level-changed and reverberant voices). Each trial is
decided by the shipped scoring (S-norm, quality-aware calibration, retry answers) at every
level. Prints a Markdown table and writes benchmarks/results/conditions.json.

    python benchmarks/conditions.py [--root ../shared/data] [--modality face voice] [--seed 7]
        [--max-people N] [--max-impostors 300000] [--cache .cache/conditions] [--unseen] [--without-phone-route]
        [--enroll-condition NAME] [--without-low-cut]

``--unseen`` reports instead conditions that no calibration, cohort or training here draws on
(tilted, partly covered, side-lit and far faces; codec-compressed, far-field and other phone-channel
voices): how the levels carry to degradations they were not fitted to. ``--without-phone-route``
decides every voice probe on the plain path, as before the phone-line route
(:mod:`verify.narrowband`), for comparison. ``--enroll-condition NAME`` enrolls from the samples
of condition NAME instead of the clean ones (a person who enrolled on another microphone, say);
those enrollments keep no telephone-band copy (the benchmark holds their embeddings, not their
audio), so band-limited probes take the plain path there.
``--without-low-cut`` decides voices without the low-cut copies of template and probe
(:mod:`verify.low_cut`), for comparison.

Degradations are drawn with another seed than calibration's (7 against 0), so no probe here was
seen, even as a degraded copy, when fitting.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from verify.conditions import (  # noqa: E402
    CLEAN,
    FACE_CONDITIONS,
    FACE_UNSEEN,
    VOICE_CONDITIONS,
    VOICE_ROOM,
    VOICE_UNSEEN,
    condition_trials,
    embed_cached,
    score_trials,
    with_narrowband_copies,
)
from verify.config import SECURITY_LEVELS  # noqa: E402
from verify.metrics import cllr, equal_error_rate, level_rates  # noqa: E402
from verify.models import load_pipeline, model_scorer  # noqa: E402

DATASETS = {"face": ["lfw_gray"], "voice": ["librispeech", "fsdd"]}
CONDITIONS = {"face": FACE_CONDITIONS, "voice": {**VOICE_CONDITIONS, **VOICE_ROOM}}
UNSEEN = {"face": FACE_UNSEEN, "voice": VOICE_UNSEEN}
RESULTS = REPO / "benchmarks" / "results" / "conditions.json"


def evaluation_files(root: Path, dataset: str, max_people: int | None) -> list[tuple[str, str]]:
    """``(person, relative path)`` of every file of the evaluation people of ``dataset``."""
    split = json.loads((REPO / "benchmarks" / "pairs" / "splits.json").read_text())[dataset]
    people = sorted(split["evaluation"])[:max_people]
    return [(f"{dataset}/{person}", str(path.relative_to(root)))
            for person in people for path in sorted((root / split["folder"] / person).iterdir()) if path.is_file()]


def figures(scored, conditions_failed: int) -> dict:
    """EER, Cllr, the share of genuine probes the front end flagged and the per-level rates of one
    condition's trials."""
    labels = scored.labels
    return {
        "genuine": int(labels.sum()), "impostor": int((~labels).sum()), "failed_probes": conditions_failed,
        "flagged_genuine": round(float(scored.flagged[labels].mean()), 5) if labels.any() else 0.0,
        "eer": round(equal_error_rate(scored.llr, labels)[0], 5), "cllr": round(cllr(scored.llr, labels), 4),
        "levels": {level: {key: (round(value, 6) if isinstance(value, float) else value)
                           for key, value in level_rates(labels, outcomes, 0.0).as_dict().items() if key != "threshold"}
                   for level, outcomes in scored.outcomes.items()},
    }


def run_dataset(modality: str, dataset: str, args: argparse.Namespace, pipeline) -> dict:
    files = evaluation_files(args.root, dataset, args.max_people)
    conditions = (UNSEEN if args.unseen else CONDITIONS)[modality]
    started = time.time()
    with tqdm(total=len(files) * len(conditions), desc=dataset, unit="sample", file=sys.stderr) as bar:
        samples = embed_cached(pipeline, args.root, files, conditions, args.seed, args.cache, progress=bar.update)
    scorer = model_scorer(modality)
    if args.without_low_cut:
        scorer = scorer.replaced(low_cut=None)
    if args.enroll_condition not in conditions:
        raise SystemExit(f"--enroll-condition must be one of {list(conditions)}")
    copies_made = not args.without_phone_route and args.enroll_condition == CLEAN  # copies of clean samples only
    if scorer.narrowband is not None and copies_made:  # voices enroll with their copy, as shipped
        samples = with_narrowband_copies(pipeline, scorer.narrowband, args.root, samples)
    result = {"people": len({person for person, _ in files}), "files": len(files),
              "embedding_seconds": round(time.time() - started, 1), "conditions": {}}
    # FSDD's digits are all under the 2 s of speech an enrollment asks for: enrolled as with --allow-low-quality
    flagged_enroll = bool(np.all(samples.flagged[samples.conditions == args.enroll_condition]))
    result["flagged_enrollments"] = flagged_enroll
    for name in conditions:
        enroll, probe = condition_trials(samples, name, args.max_impostors, args.seed, flagged_enroll,
                                         args.enroll_condition)
        result["conditions"][name] = figures(score_trials(scorer, samples, enroll, probe), samples.failed.get(name, 0))
        if "alignments" in samples.measures:  # faces: the share of photos only one detector located
            located = samples.conditions == name
            result["conditions"][name]["one_alignment_share"] = round(float(np.mean(samples.measures["alignments"][located] < 2)), 5)
    return result


def markdown(results: dict) -> str:
    lines = ["| set | condition | genuine / impostor | EER | " + " | ".join(
        f"{level}: FAR / FRR (retry)" for level in SECURITY_LEVELS) + " |",
             "|---|---|---|---|" + "---|" * len(SECURITY_LEVELS)]
    for modality, datasets in results["modalities"].items():
        for dataset, found in datasets.items():
            for name, fig in found["conditions"].items():
                cells = [f"{fig['levels'][level]['far']:.3%} / {fig['levels'][level]['frr']:.2%} "
                         f"({fig['levels'][level]['retry']:.2%})" for level in SECURITY_LEVELS]
                lines.append(f"| {dataset} | {name} | {fig['genuine']:,} / {fig['impostor']:,} | {fig['eer']:.2%} | "
                             + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--modality", nargs="+", default=["face", "voice"], choices=["face", "voice"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-people", type=int, default=None, help="first N evaluation people per data set")
    parser.add_argument("--max-impostors", type=int, default=300_000, help="impostor trials per condition (seeded draw)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--cache", type=Path, default=None, help="folder to keep the embeddings in between runs")
    parser.add_argument("--unseen", action="store_true",
                        help="the conditions no calibration or training draws on (verify.conditions.*_UNSEEN)")
    parser.add_argument("--without-phone-route", action="store_true",
                        help="voices enroll without their telephone-band copy: every probe on the plain path")
    parser.add_argument("--enroll-condition", default=CLEAN, help="the condition of the enrolled samples")
    parser.add_argument("--without-low-cut", action="store_true",
                        help="voices are decided without their low-cut copies (verify.low_cut)")
    args = parser.parse_args()
    results = {"command": "python " + " ".join(sys.argv), "seed": args.seed, "modalities": {}}
    for modality in args.modality:
        pipeline = load_pipeline(modality, args.device)
        results["modalities"][modality] = {
            dataset: {"model": f"{pipeline.model_id} {pipeline.model_version}", **run_dataset(modality, dataset, args, pipeline)}
            for dataset in DATASETS[modality]
        }
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(markdown(results))


if __name__ == "__main__":
    main()
