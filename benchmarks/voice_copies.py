"""Voice enrollment copies under the shipped scoring: do condition copies of the one enrollment
sample answer better at each level?

Every clean enrollment also gets its three condition copies (``verify.voice.degrade.ENROLLMENT_COPIES``:
pink noise, a reverberant room, an 8 kHz band, through ``VoicePipeline.embed_condition_copies``).
Three rules use them, each through the shipped S-norm and calibration: *mean template* (the
renormalised mean of the sample's and the copies' embeddings, as enrolling several samples does),
*best of sample and copies* (the highest of the four LLRs against the sample and each copy) and
*band-matched* (a probe the front end finds band-limited, ``high_band_db`` under
``VoiceFrontEndConfig.min_high_band_db``, against the 8 kHz copy; any other against the sample).
*Band-matched, own thresholds* answers the other probes as shipped and holds the band-limited
ones at thresholds fitted on the band-limited calibration probes alone.
Each rule's LLR thresholds are set again on the calibration people, each level's FAR held in every
calibration condition as ``scripts/calibrate.py`` does (both people of a trial left out of the
cohort); the evaluation people are then answered at them, beside the shipped single-template
answers, with the trials, seeds and conditions of ``benchmarks/conditions.py`` (LibriSpeech).
Acceptance is what is compared (FAR and refused): quality-limited retries keep the shipped rules.

    python benchmarks/voice_copies.py [--root ../shared/data] [--out benchmarks/results/voice_copies.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

from calibrate import MAX_IMPOSTORS, cohort_codes, embedded_set  # noqa: E402
from conditions import CONDITIONS, evaluation_files  # noqa: E402

from verify.calibration_fit import thresholds_in_every_condition  # noqa: E402
from verify.conditions import CLEAN, EmbeddedSamples, condition_trials, embed_cached, score_trials  # noqa: E402
from verify.config import SECURITY_LEVELS, VoiceFrontEndConfig  # noqa: E402
from verify.metrics import equal_error_rate  # noqa: E402
from verify.models import load_pipeline, model_scorer  # noqa: E402
from verify.scoring import l2_normalize  # noqa: E402

DATASET = "librispeech"
CALIBRATION_SEED, EVALUATION_SEED = 0, 7  # as scripts/calibrate.py and benchmarks/conditions.py
COPIES_SEED = 0
BAND_COPY = 2  # ENROLLMENT_COPIES: pink noise, a room, the 8 kHz band


def with_copies(pipeline, root: Path, samples: EmbeddedSamples) -> tuple[EmbeddedSamples, np.ndarray]:
    """``samples`` with the condition copies of each clean sample appended (measures, people and
    flags of their sample), then the mean templates, and ``(copies + 1, M)``: the row of copy ``k``
    (last: the mean template) of each sample (-1: none)."""
    clean = np.nonzero(samples.conditions == CLEAN)[0]
    embedded = pipeline.embed_many([root / samples.files[row] for row in clean])
    vectors = np.stack([pipeline.embed_condition_copies(embedding.preview, COPIES_SEED) for embedding in embedded])
    mean = l2_normalize(np.concatenate([samples.vectors[clean][:, None], vectors], axis=1).mean(axis=1))
    vectors = np.concatenate([vectors, mean[:, None]], axis=1).astype(np.float32)
    count, size = vectors.shape[1], len(samples.vectors)
    rows = np.full((count, size), -1)
    for k in range(count):
        rows[k, clean] = size + k * len(clean) + np.arange(len(clean))
    extended = EmbeddedSamples(
        np.vstack([samples.vectors, *vectors.transpose(1, 0, 2)]),
        np.concatenate([samples.people] + [samples.people[clean]] * count),
        np.concatenate([samples.files] + [samples.files[clean]] * count),
        np.concatenate([samples.conditions] + [np.array([f"copy {k}"] * len(clean)) for k in range(count)]),
        {name: np.concatenate([values] + [values[clean]] * count) for name, values in samples.measures.items()},
        np.concatenate([samples.flagged] + [samples.flagged[clean]] * count),
    )
    return extended, rows


def rule_llrs(scorer, samples: EmbeddedSamples, copies: np.ndarray, enroll: np.ndarray, probe: np.ndarray,
              codes: dict[str, int] | None = None):
    """The shipped scores of the trials and each rule's LLRs (``{rule: (N,)}``)."""
    shipped = score_trials(scorer, samples, enroll, probe, cohort_codes=codes)
    llrs = [score_trials(scorer, samples, rows[enroll], probe, cohort_codes=codes).llr for rows in copies]
    band_limited = is_band_limited(samples, probe)
    return shipped, {"mean template": llrs[-1], "best of sample and copies": np.max([shipped.llr, *llrs[:-1]], axis=0),
                     "band-matched": np.where(band_limited, llrs[BAND_COPY], shipped.llr)}


def is_band_limited(samples: EmbeddedSamples, probe: np.ndarray) -> np.ndarray:
    """Whether each probe is one the front end flags as band-limited."""
    return samples.measures["high_band_db"][probe] < VoiceFrontEndConfig().min_high_band_db


def rates(labels: np.ndarray, accepted: np.ndarray) -> dict[str, float]:
    return {"far": round(float(accepted[~labels].mean()), 6), "refused": round(float(1 - accepted[labels].mean()), 6)}


def level_cells(levels: dict[str, dict[str, float]]) -> str:
    """``FAR / refused`` of each level, as Markdown table cells."""
    return " | ".join(f"{levels[level]['far']:.3%} / {levels[level]['refused']:.2%}" for level in SECURITY_LEVELS)


def arguments(description: str, results: str) -> argparse.Namespace:
    """The data root, both embedding caches and the output file (``results`` by default) of a
    benchmark of enrollment copies."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--calibration-cache", type=Path, default=REPO / ".cache" / "calibration")
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "conditions")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / results)
    return parser.parse_args()


def main() -> None:
    args = arguments(__doc__.splitlines()[0], "voice_copies.json")
    pipeline, scorer = load_pipeline("voice", "cpu"), model_scorer("voice")

    fitted, fitted_copies = with_copies(pipeline, args.root, embedded_set(
        pipeline, args.root, DATASET, CALIBRATION_SEED, args.calibration_cache))
    codes = cohort_codes(args.root, "voice")
    pairs = [condition_trials(fitted, name, MAX_IMPOSTORS, CALIBRATION_SEED, flagged_enroll=True)
             for name in np.unique(fitted.conditions) if not name.startswith("copy")]
    enroll, probe = np.concatenate([pair[0] for pair in pairs]), np.concatenate([pair[1] for pair in pairs])
    shipped, fitted_rules = rule_llrs(scorer, fitted, fitted_copies, enroll, probe, codes)
    thresholds = {}
    for rule, llrs in fitted_rules.items():
        by_far = thresholds_in_every_condition(llrs, shipped.labels, list(SECURITY_LEVELS.values()), fitted.conditions[probe])
        thresholds[rule] = {level: by_far[far] for level, far in SECURITY_LEVELS.items()}
    band = is_band_limited(fitted, probe)
    by_far = thresholds_in_every_condition(fitted_rules["band-matched"][band], shipped.labels[band],
                                           list(SECURITY_LEVELS.values()), fitted.conditions[probe][band])
    band_thresholds = {level: by_far[far] for level, far in SECURITY_LEVELS.items()}

    evaluated = embed_cached(pipeline, args.root, evaluation_files(args.root, DATASET, None), CONDITIONS["voice"],
                             EVALUATION_SEED, args.cache)
    evaluated, copies = with_copies(pipeline, args.root, evaluated)
    report = {"command": "python " + " ".join(sys.argv), "thresholds": {
        "shipped": {level: scorer.operating_point(level).threshold for level in SECURITY_LEVELS},
        **thresholds, "band-matched, own thresholds (band-limited probes)": band_thresholds}, "conditions": {}}
    print("| condition | rule | EER | " + " | ".join(f"{level}: FAR / refused" for level in SECURITY_LEVELS) + " |")
    print("|---|---|---|" + "---|" * len(SECURITY_LEVELS))
    for name in CONDITIONS["voice"]:
        enroll, probe = condition_trials(evaluated, name, 300_000, EVALUATION_SEED)
        shipped, answered = rule_llrs(scorer, evaluated, copies, enroll, probe)
        labels = shipped.labels
        rules = {"shipped": (shipped.llr, {level: rates(labels, shipped.outcomes[level] == "accepted")
                                           for level in SECURITY_LEVELS})}
        for rule, llrs in answered.items():
            rules[rule] = (llrs, {level: rates(labels, shipped.supported & (llrs >= threshold))
                                  for level, threshold in thresholds[rule].items()})
        band = is_band_limited(evaluated, probe)
        rules["band-matched, own thresholds"] = (answered["band-matched"], {level: rates(labels, np.where(
            band, shipped.supported & (answered["band-matched"] >= band_thresholds[level]),
            shipped.outcomes[level] == "accepted")) for level in SECURITY_LEVELS})
        report["conditions"][name] = {}
        for rule, (llrs, levels) in rules.items():
            eer = equal_error_rate(llrs, labels)[0]
            report["conditions"][name][rule] = {"eer": round(eer, 5), "levels": levels}
            print(f"| {name} | {rule} | {eer:.2%} | {level_cells(levels)} |", flush=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
