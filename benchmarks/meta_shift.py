"""Per-user methods against the shipped decision path, on degraded probes of unseen people, with 95 % CIs.

Every person enrolls from one clean sample; probes are degraded samples of other files
(training/condition_sets.py). The shipped path (cosine -> S-norm -> quality-aware calibrated LLR ->
level thresholds) and every method of scripts/train_shift.py (each with its own score calibration,
fitted on held-out train people, training/shift_eval.py) answer the same trials at each level.

* validation: the validation people (20 % of the calibration half), every degraded condition,
  seed 0. Decides what ships: a method must beat the shipped path at every level. The shipped
  cohort holds every calibration person; for these people the shipped path runs with their own
  cohort rows left out (:func:`cohort_without`), as for a new user. (The shipped calibration was
  fitted on all calibration people, these included; the methods' own calibrations were not.)
* test: the README evaluation people, the condition benchmark's trials (benchmarks/conditions.py:
  seed 7, its named conditions, at most 300,000 impostor trials per condition). Reported only.

Intervals: 95 % person bootstrap (1,000 replicates for rates, 200 for EER and Cllr). Writes
benchmarks/results/meta_shift.{json,md} and <runs>/<modality>-shift-shipping.json.

    python scripts/train_shift.py && python benchmarks/meta_shift.py [--data ../shared/data]
        [--modality face voice] [--runs runs/shift]
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.condition_sets import TEST_SEED, TRAIN_SEED, embedded_part  # noqa: E402
from training.episodes import split_identities  # noqa: E402
from training.shift_eval import (  # noqa: E402
    LEVELS,
    calibrated_decisions,
    compare,
    fit_method_calibration,
    probe_measures,
    shipped_decisions,
)
from training.shift_methods import SHIFT_METHODS, checkpoint, load_method  # noqa: E402
from training.shift_setup import TrialList, build_setup, copy_table, score_trials, validation_people  # noqa: E402
from verify.conditions import FACE_CONDITIONS, VOICE_CONDITIONS, condition_trials  # noqa: E402
from verify.models import model_scorer, model_spec  # noqa: E402
from verify.normalization import Cohort  # noqa: E402
from verify.scorer import CalibratedScorer  # noqa: E402
from verify.weights import sha256_of  # noqa: E402

DATASETS = {"face": "lfw_gray", "voice": "librispeech"}
TEST_MAX_IMPOSTORS = 300_000  # as benchmarks/conditions.py
NAMED = {"face": FACE_CONDITIONS, "voice": VOICE_CONDITIONS}
RESULTS = REPO / "benchmarks" / "results"


def shipped_scorer(modality: str) -> tuple[CalibratedScorer, dict]:
    """The shipped S-norm + calibration of ``modality`` (:func:`verify.models.model_scorer`) and its files' sha256."""
    spec = model_spec(modality)
    calibration, cohort = spec.calibration_path(), spec.cohort_path()
    return model_scorer(modality), {"calibration": str(calibration.relative_to(REPO)),
                                    "calibration_sha256": sha256_of(calibration),
                                    "cohort_sha256": sha256_of(cohort.with_suffix(".npz"))}


def cohort_without(scorer: CalibratedScorer, samples, people: set[str]) -> tuple[CalibratedScorer, int]:
    """``scorer`` with the cohort rows that are embeddings of ``people``'s samples left out, and their count.

    The shipped cohort holds every calibration person, validation people included; a new user is
    never in it, and S-norm against one's own images lowers genuine scores. Validation is scored
    as a new user would be (test people are not in the cohort: nothing to leave out).
    """
    mine = samples.vectors[np.isin(samples.people, sorted(people))]
    own = np.max(scorer.cohort.vectors @ mine.T, axis=1) > 0.9999
    reduced = copy.copy(scorer)
    cohort = scorer.cohort
    reduced.cohort = Cohort(cohort.vectors[~own], cohort.top_k, cohort.model_id,
                            None if cohort.identities is None else cohort.identities[~own], cohort.provenance)
    return reduced, int(own.sum())


def test_trials(samples, modality: str) -> TrialList:
    """The condition benchmark's trials of every named degraded condition, concatenated."""
    parts = [condition_trials(samples, name, TEST_MAX_IMPOSTORS, TEST_SEED) for name in NAMED[modality]
             if name != "clean"]
    enroll, probe = np.concatenate([part[0] for part in parts]), np.concatenate([part[1] for part in parts])
    return TrialList(enroll, probe, samples.people[enroll] == samples.people[probe])


def enroll_milliseconds(scorer, samples, copies, rows: np.ndarray) -> float:
    """Median wall time of enrolling one user (1 thread), over ``rows``, after a warm-up."""
    scorer.enroll(samples.vectors[rows[:1]], samples.vectors[copies[rows[:1]]])
    times = []
    for row in rows:
        started = time.perf_counter()
        scorer.enroll(samples.vectors[[row]], samples.vectors[copies[[row]]])
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def modality_results(modality: str, args: argparse.Namespace) -> dict:
    """Validation and test comparisons of every trained method with the shipped path, and the verdict."""
    dataset = DATASETS[modality]
    split = split_identities(dataset)
    calibration_part = embedded_part(dataset, args.data, "calibration", TRAIN_SEED)
    test_part = embedded_part(dataset, args.data, "test", TEST_SEED)
    setup = build_setup(calibration_part, modality, split)
    held = setup.calibration_trials()
    sets = {"validation": (calibration_part, TrialList.of_people(calibration_part, validation_people(
                calibration_part, split, modality))),
            "test": (test_part, test_trials(test_part, modality))}
    scorer, shipped_files = shipped_scorer(modality)
    validation_scorer, left_out = cohort_without(scorer, calibration_part, set(split.validation))
    shipped_files["cohort_rows_of_validation_people_left_out"] = left_out
    decisions = {"validation": [shipped_decisions(validation_scorer, *sets["validation"])],
                 "test": [shipped_decisions(scorer, *sets["test"])]}
    methods: dict[str, dict] = {}
    for method in args.methods:
        path = checkpoint(args.runs, modality, method)
        if not path.is_file():
            methods[method] = {"not_available": f"no checkpoint {path}: run scripts/train_shift.py"}
            continue
        user_scorer = load_method(path, method)
        calibration = fit_method_calibration(setup.scores(user_scorer, held), held.labels,
                                             probe_measures(calibration_part, held), f"{modality}+{method}")
        for part, (samples, trials) in sets.items():
            scores = score_trials(user_scorer, samples, copy_table(samples), trials)
            decisions[part].append(calibrated_decisions(method, calibration, scores, probe_measures(samples, trials),
                                                        samples.flagged[trials.probe]))
        info = getattr(user_scorer, "info", None) or getattr(getattr(user_scorer, "adapter", None), "info", {})
        rows = np.unique(sets["test"][1].enroll)[:20]
        methods[method] = {"checkpoint": str(path), "train_seconds": info.get("train_seconds"),
                           "selected_step": info.get("selected_step"),
                           "enroll_ms": enroll_milliseconds(user_scorer, test_part, copy_table(test_part), rows)}
    results = {"shipped_files": shipped_files, "methods": methods,
               "people": {role: len(names) for role, names in setup.groups.items()}}
    for part, (samples, trials) in sets.items():
        results[part] = compare(decisions[part], trials.labels, samples.people[trials.enroll], "shipped",
                                args.replicates, args.curve_replicates, seed=0)
        results[part]["conditions"] = sorted(set(samples.conditions[trials.probe]))
    verdicts = {name: figures.get("beats_at_every_level", False)
                for name, figures in results["validation"]["paths"].items() if name != "shipped"}
    results["decision"] = {"beats_shipped_at_every_level_on_validation": verdicts,
                           "default": [name for name, beats in verdicts.items() if beats]}
    return results


def percent(estimate: dict, interval: bool = True) -> str:
    """``value %`` with its 95 % interval."""
    low, high = estimate["ci95"]
    text = f"{100 * estimate['value']:.2f}"
    return f"{text} [{100 * low:.2f}, {100 * high:.2f}]" if interval else text


def markdown(results: dict) -> str:
    """The comparison tables (validation decides, test reports) and the methods' costs."""
    lines = [f"# Per-user methods vs the shipped path under condition shift ({results['date']})", "",
             f"Command: `{results['command']}`; torch {results['torch']}, 1 CPU thread. Rates in %, "
             "[95 % person-bootstrap interval]. FRR counts every genuine trial not accepted (retry included); "
             "`FRR @ FAR 0.1 %` puts each path at its own threshold for the medium level's target FAR "
             "on these trials (threshold-free), Δ is the paired difference to the shipped path.", ""]
    for modality, result in results["modalities"].items():
        for part in ("validation", "test"):
            table = result[part]
            lines += [f"## {modality}, {part} people ({table['people']} people, {table['genuine']:,} genuine / "
                      f"{table['impostor']:,} impostor trials; probes: {', '.join(table['conditions'])})", "",
                      "| path | EER | FRR @ FAR 0.1 % | Δ vs shipped | "
                      + " | ".join(f"{level} FAR / FRR (retry)" for level in LEVELS)
                      + " | Cllr | beats shipped at every level |",
                      "|---|---|---|---|" + "---|" * len(LEVELS) + "---|---|"]
            for name, figures in table["paths"].items():
                cells = [f"{percent(figures['levels'][level]['far'], False)} / "
                         f"{percent(figures['levels'][level]['frr'])} ({percent(figures['levels'][level]['retry'], False)})"
                         for level in LEVELS]
                beats = "" if name == "shipped" else ("yes" if figures["beats_at_every_level"] else "no")
                delta = "" if name == "shipped" else percent(figures["frr_at_far_difference"])
                cllr = figures["cllr"]
                lines.append(f"| {name} | {percent(figures['eer'])} | {percent(figures['frr_at_far'])} | {delta} | "
                             + " | ".join(cells)
                             + f" | {cllr['value']:.3f} [{cllr['ci95'][0]:.3f}, {cllr['ci95'][1]:.3f}] | {beats} |")
            lines.append("")
        timing = {name: entry for name, entry in result["methods"].items() if "enroll_ms" in entry}
        lines += ["| method | training (s, 1 thread) | selected step | enrollment (ms per user) |", "|---|---|---|---|"]
        lines += [f"| {name} | {entry['train_seconds']} | {entry['selected_step']} | {entry['enroll_ms']:.1f} |"
                  for name, entry in timing.items()]
        lines += ["", f"Shipped scoring files: `{result['shipped_files']['calibration']}` "
                      f"(sha256 {result['shipped_files']['calibration_sha256'][:12]}).", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--modality", nargs="+", default=["face", "voice"], choices=sorted(DATASETS))
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "shift")
    parser.add_argument("--methods", nargs="+", default=list(SHIFT_METHODS), choices=SHIFT_METHODS)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--curve-replicates", type=int, default=200)
    parser.add_argument("--out-name", default="meta_shift")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {"date": datetime.date.today().isoformat(), "torch": torch.__version__,
               "command": " ".join(["python benchmarks/meta_shift.py", *sys.argv[1:]]),
               "modalities": {modality: modality_results(modality, args) for modality in args.modality}}
    for modality, result in results["modalities"].items():
        args.runs.mkdir(parents=True, exist_ok=True)
        (args.runs / f"{modality}-shift-shipping.json").write_text(json.dumps(result["decision"], indent=1) + "\n")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out_name}.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (RESULTS / f"{args.out_name}.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))


if __name__ == "__main__":
    main()
