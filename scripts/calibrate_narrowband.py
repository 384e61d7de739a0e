"""Fit the phone-line voice route (:mod:`verify.narrowband`) on the calibration people of ../shared/data.

Every clean calibration sample enrolls with its narrowband copy, as the product enrolls. A probe
the front end finds band-limited (``high_band_db`` under ``VoiceFrontEndConfig.min_high_band_db``)
and nearer the copy than the template (raw cosine), in every calibration condition, is scored
against the copy with the shipped S-norm and calibration (both people of a trial left out of the
cohort, as ``scripts/calibrate.py`` does). On those trials it fits ``scale * llr + offset`` by
minimising Cllr, then the LLR threshold of each target FAR, held in every calibration condition.
Writes ``assets/models/<model_id>.narrowband.json`` with its provenance and figures (FAR and
refused at each level on these trials, before and after). Evaluation people are never used:
their figures come from ``benchmarks/conditions.py``.

    python scripts/calibrate_narrowband.py [--data ../shared/data] [--cache .cache/calibration]
"""

from __future__ import annotations

import datetime
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from calibrate import FIT_SETS, IDENTITIES_NOTE, calibration_pairs, cohort_codes, voice_calibration_set  # noqa: E402

from verify.conditions import (  # noqa: E402
    compensated_probes,
    route_trials,
    score_trials,
    with_narrowband_copies,
)
from verify.config import SECURITY_LEVELS, VoiceFrontEndConfig  # noqa: E402
from verify.models import model_spec  # noqa: E402
from verify.narrowband import NarrowbandRoute, save_route  # noqa: E402
from verify.narrowband_fit import fit_route  # noqa: E402
from verify.weights import MODELS_DIR  # noqa: E402


def rates(labels: np.ndarray, outcomes: np.ndarray) -> dict[str, float]:
    """FAR and share of genuine trials refused (rejected or retry) of one level's outcomes."""
    accepted = outcomes == "accepted"
    return {"far": round(float(accepted[~labels].mean()), 6), "refused": round(float(1 - accepted[labels].mean()), 6)}


def main() -> None:
    args, pipeline, samples = voice_calibration_set(__doc__.splitlines()[0])
    spec = model_spec("voice")
    shipped = spec.scorer
    scorer = shipped.replaced(narrowband=None, low_cut=None)  # as shipped, no route yet (nor low-cut copies)
    (dataset,) = FIT_SETS["voice"]
    high = VoiceFrontEndConfig().min_high_band_db
    samples = with_narrowband_copies(pipeline, NarrowbandRoute.unfitted(spec.model_id, high), args.data, samples)
    enroll, probe = calibration_pairs(samples)
    codes = cohort_codes(args.data, "voice")
    route = fit_route(scorer, samples, enroll, probe, high, codes)
    scored, scored_probe = compensated_probes(scorer, samples, probe)  # as score_trials takes them
    taken = route_trials(route, scored, enroll, scored_probe)
    enroll, probe = enroll[taken], probe[taken]
    labels = samples.people[enroll] == samples.people[probe]
    routed = scorer.replaced(narrowband=route)
    before, after = (score_trials(scoring, samples, enroll, probe, tuple(SECURITY_LEVELS), codes).outcomes
                     for scoring in (scorer, routed))
    figures = {}
    for level in SECURITY_LEVELS:
        figures[level] = {"shipped": rates(labels, before[level]), "narrowband": rates(labels, after[level])}
        print(f"{level}: shipped {figures[level]['shipped']}, narrowband {figures[level]['narrowband']}")
    provenance = {
        "data": [dataset], "identities": IDENTITIES_NOTE, "model_version": pipeline.model_version,
        "trials": {"genuine": int(labels.sum()), "impostor": int((~labels).sum()),
                   "conditions": sorted(set(samples.conditions[probe].tolist()))},
        "figures_on_fitted_trials": figures,
        "command": "python scripts/calibrate_narrowband.py", "date": datetime.date.today().isoformat(),
    }
    path = MODELS_DIR / f"{spec.model_id}.narrowband.json"
    save_route(path, replace(route, provenance=provenance))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
