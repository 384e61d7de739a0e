"""Fitting the phone-line route (:mod:`verify.narrowband`) on trials of samples enrolled with their copies."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from verify.calibration import CALIBRATED_FARS, Thresholds
from verify.calibration_fit import FitConfig, fit_weights, thresholds_in_every_condition
from verify.conditions import EmbeddedSamples, compensated_probes, route_trials, trial_terms
from verify.narrowband import NarrowbandRoute
from verify.scorer import CalibratedScorer


def fit_route(scorer: CalibratedScorer, samples: EmbeddedSamples, enroll: np.ndarray, probe: np.ndarray,
              max_high_band_db: float, cohort_codes: Mapping[str, int] | None = None) -> NarrowbandRoute:
    """The route of ``scorer``'s model, fitted on the trials among ``(enroll, probe)`` it takes.

    On those trials, scored against the copy with ``scorer``'s S-norm and calibration
    (``cohort_codes``: see :func:`verify.conditions.trial_terms`; probes compensated as ``scorer``
    compensates them), ``scale * llr + offset`` is
    fitted by minimising Cllr, then each calibrated FAR's threshold on the mapped LLR, held in every
    condition of the probes (``samples.conditions``).
    """
    model_id = scorer.calibration.model_id
    samples, probe = compensated_probes(scorer, samples, probe)
    taken = route_trials(NarrowbandRoute.unfitted(model_id, max_high_band_db), samples, enroll, probe)
    enroll, probe = enroll[taken], probe[taken]
    labels = samples.people[enroll] == samples.people[probe]
    llr = trial_terms(scorer, samples, enroll, probe, cohort_codes, np.ones(len(enroll), bool)).llr
    scale, offset, _, _ = fit_weights(llr, labels, np.zeros((len(labels), 0)), FitConfig())
    by_far = thresholds_in_every_condition(scale * llr + offset, labels, CALIBRATED_FARS, samples.conditions[probe])
    return NarrowbandRoute(model_id, max_high_band_db, scale, offset, Thresholds(model_id, by_far))
