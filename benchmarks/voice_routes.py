"""Would routes like the phone line's pay for noisy and echoing voices?

The shipped phone-line route (:mod:`verify.narrowband`) holds a band-limited probe nearer the
enrollment's telephone-band copy than its template against that copy, at LLR thresholds of its
own. The same idea for the two other flags a voice probe can raise: a *noisy* probe (``snr_db``
under ``VoiceFrontEndConfig.min_snr_db``) against the enrollment's pink-noise copy (every one, or
only those nearer it than the template) or against the mean template of the clip and its three
copies; an *echoing* one (``decay_db`` over ``max_decay_db``, not noisy) likewise against its room
copy or the mean template (copies as in ``benchmarks/voice_copies.py``, ``ENROLLMENT_COPIES``).
Each route's thresholds are fitted on the calibration probes it takes, each level's FAR held in
every calibration condition (both people of a trial left out of the cohort); every other probe is
answered on the plain path (the shipped S-norm and calibration; the phone-line route left out, so
that the rows show these routes alone). The evaluation people are then answered with the trials,
seeds and conditions of ``benchmarks/conditions.py`` (LibriSpeech), beside the plain answers.

    python benchmarks/voice_routes.py [--root ../shared/data] [--out benchmarks/results/voice_routes.json]
"""

from __future__ import annotations

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
from voice_copies import (  # noqa: E402
    CALIBRATION_SEED,
    DATASET,
    EVALUATION_SEED,
    arguments,
    level_cells,
    rates,
    with_copies,
)

from verify.calibration import load_calibration  # noqa: E402
from verify.calibration_fit import thresholds_in_every_condition  # noqa: E402
from verify.conditions import EmbeddedSamples, condition_trials, embed_cached, score_trials  # noqa: E402
from verify.config import SECURITY_LEVELS, VoiceFrontEndConfig  # noqa: E402
from verify.models import load_pipeline, model_spec  # noqa: E402
from verify.normalization import load_cohort  # noqa: E402
from verify.scorer import CalibratedScorer  # noqa: E402

ROUTES = {"noisy -> pink-noise copy": ("noisy", 0, False), "noisy and nearer it -> pink-noise copy": ("noisy", 0, True),
          "noisy -> mean template": ("noisy", 3, False), "echo -> room copy": ("echo", 1, False),
          "echo and nearer it -> room copy": ("echo", 1, True), "echo -> mean template": ("echo", 3, False)}
"""Route -> (the flag that takes it, the row of ``with_copies``: pink noise, room, 8 kHz band, mean,
and whether the probe must also be nearer that copy than the template, as the phone-line route asks)."""


def flags(samples: EmbeddedSamples, probe: np.ndarray) -> dict[str, np.ndarray]:
    """Which probes the front end flags noisy, and which echoing (and not noisy)."""
    config = VoiceFrontEndConfig()
    noisy = samples.measures["snr_db"][probe] < config.min_snr_db
    return {"noisy": noisy, "echo": (samples.measures["decay_db"][probe] > config.max_decay_db) & ~noisy}


def taken_by(route: str, flagged: dict[str, np.ndarray], samples: EmbeddedSamples, copies: np.ndarray,
             enroll: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """Which trials ``route`` takes."""
    flag, row, nearer = ROUTES[route]
    if not nearer:
        return flagged[flag]
    template, copy = (np.einsum("ij,ij->i", samples.vectors[rows], samples.vectors[probe])
                      for rows in (enroll, copies[row][enroll]))
    return flagged[flag] & (copy > template)


def copy_llrs(scorer: CalibratedScorer, samples: EmbeddedSamples, copies: np.ndarray, enroll: np.ndarray,
              probe: np.ndarray, codes: dict[str, int] | None = None) -> list[np.ndarray]:
    """The shipped LLR of every trial against each copy of its enrollment."""
    return [score_trials(scorer, samples, rows[enroll], probe, cohort_codes=codes).llr for rows in copies]


def main() -> None:
    args = arguments(__doc__.splitlines()[0], "voice_routes.json")
    spec, pipeline = model_spec("voice"), load_pipeline("voice", "cpu")
    scorer = CalibratedScorer(load_calibration(spec.calibration_path(), spec.model_id),  # no phone-line route:
                              load_cohort(spec.cohort_path(), spec.model_id))  # copies carry none of their own

    fitted, fitted_copies = with_copies(pipeline, args.root, embedded_set(
        pipeline, args.root, DATASET, CALIBRATION_SEED, args.calibration_cache))
    codes = cohort_codes(args.root, "voice")
    pairs = [condition_trials(fitted, name, MAX_IMPOSTORS, CALIBRATION_SEED, flagged_enroll=True)
             for name in np.unique(fitted.conditions) if not name.startswith("copy")]
    enroll, probe = (np.concatenate([pair[side] for pair in pairs]) for side in (0, 1))
    labels = fitted.people[enroll] == fitted.people[probe]
    llrs, flagged = copy_llrs(scorer, fitted, fitted_copies, enroll, probe, codes), flags(fitted, probe)
    thresholds, fitted_trials = {}, {}
    for route, (_, row, _) in ROUTES.items():
        taken = taken_by(route, flagged, fitted, fitted_copies, enroll, probe)
        by_far = thresholds_in_every_condition(llrs[row][taken], labels[taken], list(SECURITY_LEVELS.values()),
                                               fitted.conditions[probe][taken])
        thresholds[route] = {level: by_far[far] for level, far in SECURITY_LEVELS.items()}
        fitted_trials[route] = {"genuine": int(labels[taken].sum()), "impostor": int((~labels[taken]).sum())}

    evaluated = embed_cached(pipeline, args.root, evaluation_files(args.root, DATASET, None), CONDITIONS["voice"],
                             EVALUATION_SEED, args.cache)
    evaluated, copies = with_copies(pipeline, args.root, evaluated)
    report = {"command": "python " + " ".join(sys.argv), "thresholds": thresholds, "fitted_trials": fitted_trials,
              "conditions": {}}
    print("| condition | rule | share taking it | " + " | ".join(f"{level}: FAR / refused" for level in SECURITY_LEVELS)
          + " |")
    print("|---|---|---|" + "---|" * len(SECURITY_LEVELS))
    for name in CONDITIONS["voice"]:
        enroll, probe = condition_trials(evaluated, name, 300_000, EVALUATION_SEED)
        shipped = score_trials(scorer, evaluated, enroll, probe)
        llrs, flagged = copy_llrs(scorer, evaluated, copies, enroll, probe), flags(evaluated, probe)
        answers = {"plain path": (1.0, {level: shipped.outcomes[level] == "accepted" for level in SECURITY_LEVELS})}
        for route, (_, row, _) in ROUTES.items():
            taken = taken_by(route, flagged, evaluated, copies, enroll, probe)
            answers[route] = (float(taken.mean()), {
                level: np.where(taken, shipped.supported & (llrs[row] >= threshold), shipped.outcomes[level] == "accepted")
                for level, threshold in thresholds[route].items()})
        report["conditions"][name] = {}
        for rule, (share, accepted) in answers.items():
            levels = {level: rates(shipped.labels, accepted[level]) for level in SECURITY_LEVELS}
            report["conditions"][name][rule] = {"share": round(share, 4), "levels": levels}
            print(f"| {name} | {rule} | {share:.0%} | {level_cells(levels)} |", flush=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
