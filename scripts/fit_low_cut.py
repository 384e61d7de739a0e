"""Fit voice low-cut copies (:mod:`verify.low_cut`) on the calibration people.

Every clean file of the calibration people (``benchmarks/pairs/splits.json``) is embedded as it
is and through the copy's high-pass (:func:`verify.low_cut_fit.high_pass`); the map from the first
to the second is fitted by reduced-rank ridge regression (:func:`verify.low_cut_fit.fit_copy`).
The copies' penalty is then the smallest at which the calibration trials of every calibration
condition together (as ``scripts/calibrate.py`` draws them, both people of a trial left out of the
cohort), scored as the product scores them, keep the default level's target FAR
(:func:`verify.low_cut_fit.choose_penalty`). Writes ``assets/models/<model_id>.low_cut.json`` with
its provenance: the mean cosine of the high-passed embeddings to the templates and to their
copies, the same for copies mapped by maps of several ranks fitted without the speaker
(:func:`verify.low_cut_fit.held_out_cosines`, five folds of the speakers), and FAR and refused at
each level on those trials with the template alone and with the copies. Evaluation people are
never used: their figures come from ``benchmarks/conditions.py``.

    python scripts/fit_low_cut.py [--data ../shared/data] [--cache .cache/calibration]
"""

from __future__ import annotations

import datetime
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from calibrate import (  # noqa: E402
    FIT_SETS,
    IDENTITIES_NOTE,
    calibration_files,
    calibration_pairs,
    cohort_codes,
    voice_calibration_set,
)
from calibrate_narrowband import rates  # noqa: E402

from verify.conditions import score_trials, with_narrowband_copies  # noqa: E402
from verify.config import DEFAULT_SECURITY_LEVEL, SECURITY_LEVELS, target_far  # noqa: E402
from verify.embedding import Embedding  # noqa: E402
from verify.io import decode_audio  # noqa: E402
from verify.low_cut import LowCutCopy, save_copy  # noqa: E402
from verify.low_cut_fit import CORNER_HZ, RANK, RIDGE, choose_penalty, fit_copy, held_out_cosines, high_pass  # noqa: E402
from verify.models import model_spec  # noqa: E402
from verify.weights import MODELS_DIR  # noqa: E402


def mean_cosine(first: np.ndarray, second: np.ndarray) -> float:
    """Mean cosine of paired unit rows."""
    return round(float(np.mean(np.einsum("ij,ij->i", first, second))), 4)


def main() -> None:
    args, pipeline, samples = voice_calibration_set(__doc__.splitlines()[0])
    (dataset,) = FIT_SETS["voice"]
    files = calibration_files(args.data, dataset)
    clips = [decode_audio(args.data / path) for _, path in files]
    plain, high_passed = (pipeline.embed_many(clip_set) for clip_set in (
        clips, [(high_pass(speech, CORNER_HZ, rate), rate) for speech, rate in clips]))
    kept = [index for index, pair in enumerate(zip(plain, high_passed))
            if all(isinstance(result, Embedding) for result in pair)]
    plain, high_passed = (np.stack([results[index].vector for index in kept]) for results in (plain, high_passed))
    spec = model_spec("voice")
    copy = fit_copy(spec.model_id, plain, high_passed)
    ranks = held_out_cosines(spec.model_id, plain, high_passed, np.array([files[index][0] for index in kept]))
    print(f"held-out mean cosine to the true copies by rank: {ranks}")

    shipped = spec.scorer
    samples = with_narrowband_copies(pipeline, shipped.narrowband, args.data, samples)
    enroll, probe = calibration_pairs(samples)
    codes = cohort_codes(args.data, "voice")

    def outcomes(low_cut: LowCutCopy | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        scorer = shipped.replaced(low_cut=low_cut)
        scored = score_trials(scorer, samples, enroll, probe, tuple(SECURITY_LEVELS), codes)
        return scored.labels, scored.outcomes

    def far_at(penalty: float) -> float:
        labels, answers = outcomes(replace(copy, penalty=penalty))
        return rates(labels, answers[DEFAULT_SECURITY_LEVEL])["far"]

    copy = replace(copy, penalty=choose_penalty(far_at, target_far(DEFAULT_SECURITY_LEVEL)))
    figures = {}
    for name, low_cut in (("template alone", None), ("with the copies", copy)):
        labels, answers = outcomes(low_cut)
        figures[name] = {level: rates(labels, answers[level]) for level in SECURITY_LEVELS}
    provenance = {
        "data": [dataset], "identities": IDENTITIES_NOTE, "model_version": pipeline.model_version,
        "samples": len(kept), "rank": RANK, "ridge": RIDGE,
        "held_out_cosine_by_rank": {str(rank): cosine for rank, cosine in ranks.items()},
        "mean_cosine_to_high_passed": {"template": mean_cosine(plain, high_passed),
                                       "copy": mean_cosine(copy.copies(plain), high_passed)},
        "trials": {"genuine": int(labels.sum()), "impostor": int((~labels).sum()),
                   "conditions": sorted(set(samples.conditions[probe].tolist()))},
        "figures_on_calibration_trials": figures,
        "command": "python scripts/fit_low_cut.py", "date": datetime.date.today().isoformat(),
    }
    print(f"penalty {copy.penalty}: {figures}")
    path = MODELS_DIR / f"{spec.model_id}.low_cut.json"
    save_copy(path, replace(copy, provenance=provenance))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
