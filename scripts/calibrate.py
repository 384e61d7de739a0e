"""Calibrate a shipped model on the calibration people of ../shared/data, in clean and degraded conditions.

Every file of the calibration people (benchmarks/pairs/splits.json, written by
scripts/build_pairs.py) is embedded clean and under broad random families of degradations
(verify/conditions.py: webcam-like faces; short, noisy, babbled, telephone, level-changed and
reverberant voices). Writes, beside the model's weights in assets/models:

* ``<model_id>.cohort.npz`` + ``.cohort.json``: the impostor cohort for S-norm, embeddings of
  those people in every condition (never raw samples);
* ``<model_id>.calibration.json``: the score -> LLR calibration with its LLR thresholds, chosen
  among raw cosine, S-norm, S-norm with the probes' quality measures (with and without
  interactions) and S-norm with the quality measures and the raw cosine, on halves of the people
  it was not fitted on, over six draws of the halves
  (:func:`verify.calibration_trials.choose_variant`: the lowest mean held-out Cllr, unless a
  variant within 2 % of it refuses fewer genuine trials at ``medium`` at no higher FAR); its
  figures on the first draw's held-out half and on the check set (FSDD voices: too few people to
  fit on). Where the model ships a probe compensation (``scripts/calibrate_compensation.py``, run
  before this script), every probe is compensated first, as the scorer compensates it at run time.

Trials enroll from a clean sample and probe with another file of anyone, clean or degraded, as a
person meets the product. Evaluation people are never used.

    python scripts/calibrate.py --modality face|voice [--data ../shared/data] [--device cpu]
        [--top-k 200] [--cohort-size 3000] [--cache .cache/calibration]
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from verify.calibration import ScoreCalibration, save_calibration  # noqa: E402
from verify.calibration_fit import FitConfig  # noqa: E402
from verify.calibration_trials import (  # noqa: E402
    SELECTION_RULE,
    Trials,
    calibrate_trials,
    calibration_features,
    calibration_measures,
    choose_variant,
    evaluate_calibration,
    input_scores,
    with_compensated_probes,
)
from verify.conditions import (  # noqa: E402
    CALIBRATION_CONDITIONS,
    EmbeddedSamples,
    condition_trials,
    embed_cached,
)
from verify.compensation import load_compensation  # noqa: E402
from verify.normalization import Cohort, save_cohort  # noqa: E402
from verify.scorer import COMPENSATION_KEY  # noqa: E402
from verify.quality_measures import COSINE_FEATURE  # noqa: E402

FIT_SETS = {"face": ["lfw_gray"], "voice": ["librispeech"]}
CHECK_SETS = {"face": [], "voice": ["fsdd"]}  # ORL has no calibration half: all 40 people evaluate
DEFAULT_TOP_K = 200
MAX_IMPOSTORS = 400_000  # impostor trials per condition (a seeded draw)
DEFAULT_SEED = 0  # of the degradations and draws the shipped files were fitted with
LEAST_QUALITY = {"face": {}, "voice": {"speech_seconds": 1.0}}
"""The worst quality any decision is made on, beyond the worst probe fitted on. A voice needs a
second of speech: sub-second FSDD digits of calibration people were otherwise accepted at up to
4.8 % FAR at the medium level (the same rule sends about 1.7 % fewer genuine photos to retry than
limits at the 0.5 % quantile of the fitted probes)."""

SPLITS = 6
"""Draws of the fit people into fitted and held-out halves over which the variants are compared
(the first draw's fit ships)."""

IDENTITIES_NOTE = "calibration halves of benchmarks/pairs/splits.json (disjoint from evaluation pairs)"


def calibration_files(data: Path, dataset: str) -> list[tuple[str, str]]:
    """``(person, relative path)`` of every file of the calibration people of ``dataset``."""
    split = json.loads((REPO / "benchmarks" / "pairs" / "splits.json").read_text())[dataset]
    return [(f"{dataset}/{person}", str(path.relative_to(data)))
            for person in sorted(split["calibration"])
            for path in sorted((data / split["folder"] / person).iterdir()) if path.is_file()]


def cohort_codes(data: Path, modality: str) -> dict[str, int]:
    """Person -> the anonymous label the cohort and the trials give them: every calibration person
    of the modality's fit and check sets, numbered in name order."""
    names = sorted({person for dataset in FIT_SETS[modality] + CHECK_SETS[modality]
                    for person, _ in calibration_files(data, dataset)})
    return {name: code for code, name in enumerate(names)}


def embedded_set(pipeline: Any, data: Path, dataset: str, seed: int, cache: Path | None) -> EmbeddedSamples:
    """The calibration files of ``dataset`` embedded under the calibration conditions (cached)."""
    conditions = CALIBRATION_CONDITIONS[pipeline.modality]
    files = calibration_files(data, dataset)
    with tqdm(total=len(files) * len(conditions), desc=dataset, unit="sample") as bar:
        return embed_cached(pipeline, data, files, conditions, seed, cache, progress=bar.update)


def voice_calibration_set(description: str) -> tuple[argparse.Namespace, Any, EmbeddedSamples]:
    """``--data`` and ``--cache`` read from the command line (the options of the voice scripts fitted
    after this one), the voice pipeline, and its fit set embedded as this script embeds it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "calibration")
    args = parser.parse_args()
    from verify.models import load_pipeline  # torch: only once the arguments are fine

    pipeline = load_pipeline("voice", "cpu")
    (dataset,) = FIT_SETS["voice"]
    return args, pipeline, embedded_set(pipeline, args.data, dataset, DEFAULT_SEED, args.cache)


def calibration_pairs(samples: EmbeddedSamples, seed: int = DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """``(enroll, probe)`` rows of the calibration trials: clean enrollments, flagged ones too
    (FSDD's digits are all under the 2 s an enrollment asks for), against probes of every
    condition (impostors capped per condition)."""
    pairs = [condition_trials(samples, name, MAX_IMPOSTORS, seed, flagged_enroll=True)
             for name in np.unique(samples.conditions)]
    return np.concatenate([pair[0] for pair in pairs]), np.concatenate([pair[1] for pair in pairs])


def trials_of(samples: EmbeddedSamples, codes: Mapping[str, int], seed: int) -> Trials:
    """The calibration trials (:func:`calibration_pairs`) with the people's cohort labels."""
    enroll, probe = calibration_pairs(samples, seed)
    identities = np.array([codes[person] for person in samples.people])
    return Trials(samples.vectors, identities, enroll, probe, dict(samples.measures), conditions=samples.conditions)


def cohort_of(samples: EmbeddedSamples, codes: Mapping[str, int], size: int, top_k: int, model_id: str,
              provenance: Mapping[str, Any], seed: int) -> Cohort:
    """At most ``size`` embeddings of the fit people, every condition alike (a seeded draw)."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(samples.vectors), min(size, len(samples.vectors)), replace=False))
    identities = np.array([codes[person] for person in samples.people[chosen]])
    return Cohort(samples.vectors[chosen], top_k, model_id, identities, dict(provenance))


def calibrate_embeddings(
    trials: Trials,
    cohort: Cohort,
    model_id: str,
    model_version: str = "",
    provenance: Mapping[str, Any] | None = None,
    checks: Mapping[str, Trials] | None = None,
    least_quality: Mapping[str, float] | None = None,
    splits: int = SPLITS,
) -> tuple[ScoreCalibration, dict[str, Any]]:
    """Fit every variant, ship the one :func:`choose_variant` picks: ``(calibration, variants)``.

    Variants: raw cosine or S-norm against ``cohort``; with quality features (when the trials
    carry measures) without and with interaction terms, and with the raw cosine as a second score
    input. Each variant is fitted on half of the people of ``trials`` and measured on the others,
    over ``splits`` draws of the halves; the first draw's fit ships, with its figures on the other
    half and on every trial of each ``checks`` set. Identities of ``trials``, ``checks`` and
    ``cohort`` share one label space.
    """
    features = calibration_features(trials)
    candidates = {"cosine": (None, (), False), "s-norm": (cohort, (), False)}
    if features:
        candidates["s-norm+quality"] = (cohort, features, False)
        candidates["s-norm+quality+interactions"] = (cohort, features, True)
        candidates["s-norm+cosine+quality"] = (cohort, (*features, COSINE_FEATURE), False)
    scores = {None: input_scores(trials, None), cohort: input_scores(trials, cohort)}  # shared by every fit
    fitted, variants, summaries = {}, {}, {}
    for name, (used_cohort, used_features, interactions) in candidates.items():
        held_out = []
        for split in range(splits):
            config = FitConfig(interactions=interactions, least_quality=dict(least_quality or {}), seed=split)
            result = calibrate_trials(trials, used_cohort, model_id, used_features, config, model_version=model_version,
                                      provenance=provenance, scores=scores[used_cohort])
            held_out.append(result.figures["held_out"])
            if split == 0:
                figures = dict(result.figures)
                for check, check_trials in (checks or {}).items():
                    figures[f"check:{check}"] = evaluate_calibration(
                        result.calibration, input_scores(check_trials, used_cohort), check_trials.labels,
                        calibration_measures(check_trials))
                fitted[name], variants[name] = result.calibration, figures
        summaries[name] = {"cllr": float(np.mean([found["cllr"] for found in held_out])),
                           **{rate: float(np.mean([found["levels"]["medium"][rate] for found in held_out]))
                              for rate in ("far", "frr")}}
        variants[name]["splits"] = {key: round(value, 6) for key, value in summaries[name].items()}
    best = choose_variant(summaries)
    logging.info("chosen: %s", best)
    chosen = fitted[best]
    selection = {"chosen": best, "splits": splits, "rule": SELECTION_RULE, "variants": variants}
    return replace(chosen, provenance={**chosen.provenance, "figures": variants[best], "selection": selection}), variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", choices=sorted(FIT_SETS), required=True)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help="cohort scores per side in adaptive S-norm")
    parser.add_argument("--cohort-size", type=int, default=3000, help="embeddings kept in the shipped cohort")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the degradations and draws")
    parser.add_argument("--cache", type=Path, default=None, help="folder to keep the embeddings in between runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from verify.models import load_pipeline, model_spec  # torch: only once the arguments are fine

    pipeline = load_pipeline(args.modality, args.device)
    sets = {dataset: embedded_set(pipeline, args.data, dataset, args.seed, args.cache)
            for dataset in FIT_SETS[args.modality] + CHECK_SETS[args.modality]}
    codes = cohort_codes(args.data, args.modality)
    date = datetime.date.today().isoformat()
    command = f"python scripts/calibrate.py --modality {args.modality} --top-k {args.top_k} --seed {args.seed}"
    (fit_name,) = FIT_SETS[args.modality]
    fit = sets[fit_name]
    conditions = sorted(CALIBRATION_CONDITIONS[args.modality])
    provenance = {"data": [fit_name], "identities": IDENTITIES_NOTE, "conditions": conditions,
                  "people": int(np.unique(fit.people).size), "command": command, "date": date}
    cohort = cohort_of(fit, codes, args.cohort_size, args.top_k, pipeline.model_id, provenance, args.seed)
    spec = model_spec(args.modality)
    compensation_path = spec.compensation_path()  # probes compensated as the scorer will: fitted first
    compensation = None if compensation_path is None else load_compensation(compensation_path, spec.model_id)
    if compensation is not None:
        provenance[COMPENSATION_KEY] = compensation.compensation_id
    checks = {dataset: with_compensated_probes(trials_of(sets[dataset], codes, args.seed), compensation)
              for dataset in CHECK_SETS[args.modality]}
    trials = with_compensated_probes(trials_of(fit, codes, args.seed), compensation)
    calibration, variants = calibrate_embeddings(
        trials, cohort, pipeline.model_id, pipeline.model_version,
        {**provenance, "failed_samples": {dataset: dict(s.failed) for dataset, s in sets.items()},
         "trials": "clean enrollments against probes of every condition, other files only; fitted on half of "
                   "the people, figures on the other half; check sets: every such trial, never fitted on"},
        checks, LEAST_QUALITY[args.modality])
    if calibration.normalized:
        save_cohort(spec.cohort_path(), cohort)
    save_calibration(spec.calibration_path(), calibration)
    print(json.dumps({"chosen": calibration.provenance["selection"]["chosen"], "variants": variants}, indent=1))


if __name__ == "__main__":
    main()
