"""Calibrate a shipped model on the calibration identities of ../shared/data.

Embeds every file of the calibration identities (see benchmarks/pairs/splits.json, written by
scripts/build_pairs.py) and writes, beside the model's weights in assets/models:

* ``<model_id>.thresholds.json``: one raw-cosine threshold per target FAR over all pairs within
  each data set (what the product reads today);
* ``<model_id>.cohort.npz`` + ``.cohort.json``: the impostor cohort for S-norm (the embeddings of
  the calibration people of the data sets the calibration is fitted on);
* ``<model_id>.calibration.json``: the score -> LLR calibration with LLR thresholds, fitted by
  :func:`calibrate_embeddings` on half of those people and measured on the other half and on
  the check sets (FSDD for voice: too few people to fit on).

Evaluation identities are never used.

    python scripts/calibrate.py --modality face|voice [--data ../shared/data] [--device auto]
        [--top-k 200] [--cache .cache/calibration]
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from verify.calibration import ScoreCalibration, Thresholds, calibrate, save_calibration, save_thresholds  # noqa: E402
from verify.calibration_fit import FitConfig  # noqa: E402
from verify.calibration_trials import Trials, all_pairs, calibrate_trials, evaluate_calibration, input_scores  # noqa: E402
from verify.errors import VerifyError  # noqa: E402
from verify.metrics import equal_error_rate  # noqa: E402
from verify.normalization import Cohort, save_cohort  # noqa: E402
from verify.quality_measures import default_features  # noqa: E402

CALIBRATION_SETS = {"face": ["lfw_gray"], "voice": ["librispeech", "fsdd"]}
# The LLR calibration is fitted (and its cohort drawn) only where a split by person leaves people
# on both sides; FSDD has 3 calibration speakers, so it is a check set: measured, never fitted on.
FIT_SETS = {"face": ["lfw_gray"], "voice": ["librispeech"]}
DEFAULT_TOP_K = 200
IDENTITIES_NOTE = "calibration halves of benchmarks/pairs/splits.json (disjoint from evaluation pairs)"


@dataclass(frozen=True)
class EmbeddedSet:
    """Embeddings of one data set's calibration files.

    Attributes:
        vectors: ``(M, D)`` embeddings of the files that embedded.
        people: ``(M,)`` identity name of each.
        measures: measure -> ``(M,)`` values, for measures every embedded file reported.
        files: files tried; failures: files that failed (no face, no speech).
    """

    vectors: np.ndarray
    people: np.ndarray
    measures: Mapping[str, np.ndarray]
    files: int
    failures: int


def embed_files(pipeline: Any, data: Path, people: list[str], folder: str) -> EmbeddedSet:
    """Embed every file of ``people`` under ``data / folder``, 64 at a time."""
    files = [(name, path) for name in people for path in sorted((data / folder / name).iterdir())]
    embeddings, names, failures = [], [], 0
    with tqdm(total=len(files), desc=folder, unit="file") as bar:
        for start in range(0, len(files), 64):
            chunk = files[start : start + 64]
            for (name, _), result in zip(chunk, pipeline.embed_many([path for _, path in chunk])):
                if isinstance(result, VerifyError):
                    failures += 1
                else:
                    embeddings.append(result)
                    names.append(name)
            bar.update(len(chunk))
    shared = set.intersection(*(set(embedding.measures) for embedding in embeddings)) if embeddings else set()
    measures = {key: np.array([float(e.measures[key]) for e in embeddings]) for key in sorted(shared)}
    return EmbeddedSet(
        np.stack([e.vector for e in embeddings]), np.array(names), measures, len(files), failures
    )


def cached_embeddings(
    pipeline: Any, data: Path, people: list[str], folder: str, cache: Path | None
) -> EmbeddedSet:
    """:func:`embed_files`, read from / written to ``cache`` when one is given."""
    path = (
        None
        if cache is None
        else cache / f"{pipeline.model_id}-{pipeline.model_version}-{Path(folder).name}.npz"
    )
    if path is not None and path.exists():
        with np.load(path, allow_pickle=False) as stored:
            measures = {
                key[len("measure_") :]: stored[key] for key in stored.files if key.startswith("measure_")
            }
            return EmbeddedSet(
                stored["vectors"], stored["people"], measures, int(stored["files"]), int(stored["failures"])
            )
    embedded = embed_files(pipeline, data, people, folder)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            vectors=embedded.vectors,
            people=embedded.people,
            files=embedded.files,
            failures=embedded.failures,
            **{f"measure_{k}": v for k, v in embedded.measures.items()},
        )
    return embedded


def calibrate_embeddings(
    trials: Trials,
    cohort: Cohort,
    model_id: str,
    model_version: str = "",
    provenance: Mapping[str, Any] | None = None,
    checks: Mapping[str, Trials] | None = None,
) -> tuple[ScoreCalibration, dict[str, Any]]:
    """Fit every variant, keep the one with the lowest held-out Cllr: ``(calibration, variants)``.

    Variants: raw cosine or S-norm against ``cohort``; with quality features (when the trials
    carry measures) without and with interaction terms. Every variant is fitted on the same
    people of ``trials`` and measured on the others, and on every trial of each ``checks`` set
    (conditions with too few people to fit on); ``variants`` holds their figures.
    Identities of ``trials``, ``checks`` and ``cohort`` share one label space.
    """
    features = default_features(trials.measures)
    candidates = {"cosine": (None, (), False), "s-norm": (cohort, (), False)}
    if features:
        candidates["s-norm+quality"] = (cohort, features, False)
        candidates["s-norm+quality+interactions"] = (cohort, features, True)
    fitted, variants = {}, {}
    for name, (used_cohort, used_features, interactions) in candidates.items():
        result = calibrate_trials(
            trials,
            used_cohort,
            model_id,
            used_features,
            FitConfig(interactions=interactions),
            model_version=model_version,
            provenance=provenance,
        )
        figures = dict(result.figures)
        for check, check_trials in (checks or {}).items():
            figures[f"check:{check}"] = evaluate_calibration(
                result.calibration,
                input_scores(check_trials, used_cohort),
                check_trials.labels,
                check_trials.probe_measures(),
            )
        fitted[name], variants[name] = result.calibration, figures
    best = min(variants, key=lambda name: variants[name]["held_out"]["cllr"])
    logging.info("lowest held-out Cllr: %s", best)
    chosen = fitted[best]
    selection = {"chosen": best, "rule": "lowest held-out Cllr", "variants": variants}
    return replace(
        chosen, provenance={**chosen.provenance, "figures": variants[best], "selection": selection}
    ), variants


def pair_trials(sets: Mapping[str, EmbeddedSet], codes: Mapping[str, int]) -> Trials:
    """All pairs within each data set of ``sets``; people coded ``codes["<data set>/<person>"]``."""
    vectors = np.concatenate([embedded.vectors for embedded in sets.values()])
    people = np.array(
        [codes[f"{dataset}/{person}"] for dataset, embedded in sets.items() for person in embedded.people]
    )
    groups = np.concatenate([np.full(len(embedded.people), dataset) for dataset, embedded in sets.items()])
    shared = set.intersection(*(set(embedded.measures) for embedded in sets.values()))
    measures = {
        key: np.concatenate([embedded.measures[key] for embedded in sets.values()]) for key in sorted(shared)
    }
    enroll, probe = all_pairs(people, groups)
    return Trials(vectors, people, enroll, probe, measures, groups)


def cosine_thresholds(
    sets: Mapping[str, EmbeddedSet], splits: Mapping[str, Any], model_id: str, date: str, modality: str
) -> Thresholds:
    """Raw-cosine thresholds per target FAR over all pairs within each data set (as before)."""
    all_scores, all_labels, provenance = [], [], {"datasets": {}}
    for dataset, embedded in sets.items():
        first, second = np.triu_indices(len(embedded.vectors), 1)
        scores = np.einsum("ij,ij->i", embedded.vectors[first], embedded.vectors[second])
        labels = embedded.people[first] == embedded.people[second]
        all_scores.append(scores)
        all_labels.append(labels)
        provenance["datasets"][dataset] = {
            "identities": len(splits[dataset]["calibration"]),
            "files": embedded.files,
            "failed_files": embedded.failures,
            "genuine_trials": int(labels.sum()),
            "impostor_trials": int((~labels).sum()),
            "eer": round(equal_error_rate(scores, labels)[0], 5),
        }
    scores, labels = np.concatenate(all_scores), np.concatenate(all_labels)
    provenance.update(
        command=f"python scripts/calibrate.py --modality {modality}",
        date=date,
        identities=IDENTITIES_NOTE,
        pooled_eer=round(equal_error_rate(scores, labels)[0], 5),
    )
    return Thresholds(model_id, calibrate(scores, labels), provenance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", choices=sorted(CALIBRATION_SETS), required=True)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--top-k", type=int, default=DEFAULT_TOP_K, help="cohort scores per side in adaptive S-norm"
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="folder to keep the embeddings in between runs"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from verify.models import load_pipeline, model_spec  # torch: only once the arguments are fine

    splits = json.loads((REPO / "benchmarks" / "pairs" / "splits.json").read_text())
    pipeline = load_pipeline(args.modality, args.device)
    sets = {
        dataset: cached_embeddings(
            pipeline, args.data, splits[dataset]["calibration"], splits[dataset]["folder"], args.cache
        )
        for dataset in CALIBRATION_SETS[args.modality]
    }
    date = datetime.date.today().isoformat()
    thresholds = cosine_thresholds(sets, splits, pipeline.model_id, date, args.modality)
    save_thresholds(model_spec(args.modality).calibration_path(), thresholds)

    command = f"python scripts/calibrate.py --modality {args.modality} --top-k {args.top_k}"
    names = sorted(
        f"{dataset}/{person}" for dataset, embedded in sets.items() for person in set(embedded.people)
    )
    codes = {name: code for code, name in enumerate(names)}
    fit_sets = {dataset: sets[dataset] for dataset in FIT_SETS[args.modality]}
    trials = pair_trials(fit_sets, codes)
    cohort = Cohort(
        trials.vectors,
        args.top_k,
        pipeline.model_id,
        trials.identities,
        {
            "data": list(fit_sets),
            "identities": IDENTITIES_NOTE,
            "people": int(np.unique(trials.identities).size),
            "command": command,
            "date": date,
        },
    )
    checks = {
        dataset: pair_trials({dataset: sets[dataset]}, codes)
        for dataset in CALIBRATION_SETS[args.modality]
        if dataset not in fit_sets
    }
    calibration, variants = calibrate_embeddings(
        trials,
        cohort,
        pipeline.model_id,
        pipeline.model_version,
        {
            "data": list(fit_sets),
            "identities": IDENTITIES_NOTE,
            "trials": "all pairs within each data set; fitted on half of each data set's people "
            "(data sets weigh the same), figures on the other half; check sets: every pair, never fitted on",
            "command": command,
            "date": date,
        },
        checks,
    )
    folder = model_spec(args.modality).calibration_path().parent
    if calibration.normalized:
        save_cohort(folder / f"{pipeline.model_id}.cohort.json", cohort)
    save_calibration(folder / f"{pipeline.model_id}.calibration.json", calibration)
    print(
        json.dumps(
            {
                "thresholds": thresholds.by_far,
                "chosen": calibration.provenance["selection"]["chosen"],
                "variants": variants,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
