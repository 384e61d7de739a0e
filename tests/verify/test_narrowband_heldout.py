"""The phone-line route, fitted as scripts/calibrate_narrowband.py fits it, holds its FAR on people
it was not fitted on and refuses fewer of them than the plain path (LibriSpeech calibration
speakers of ../shared/data, split in two; skipped without the data)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from verify.conditions import CLEAN, condition_trials, embed_under_conditions, route_trials, score_trials
from verify.conditions import with_narrowband_copies
from verify.config import target_far
from verify.models import model_scorer
from verify.narrowband_fit import fit_route
from tests.conftest import load_script
from verify.voice import degrade

PHONE = "telephone"


@pytest.fixture(scope="module")
def calibrate():
    return load_script("calibrate")


@pytest.fixture(scope="module")
def halves(shared_data, voice_pipeline, calibrate):
    """The calibration speakers' clips, clean and through a telephone channel, enrolled with their
    copies: ``(fitted half, held-out half, cohort codes)``."""
    files = calibrate.calibration_files(shared_data, "librispeech")
    conditions = {CLEAN: None, PHONE: lambda speech, rng, others: degrade.telephone(speech, rng)}
    samples = embed_under_conditions(voice_pipeline, shared_data, files, conditions, seed=3)
    samples = with_narrowband_copies(voice_pipeline, model_scorer("voice").narrowband, shared_data, samples)
    people = np.unique(samples.people)
    fitted = np.isin(samples.people, people[::2])
    return samples.select(fitted), samples.select(~fitted), calibrate.cohort_codes(shared_data, "voice")


def binomial_slack(far: float, trials: int) -> float:
    return 3 * math.sqrt(far * (1 - far) / trials)


def test_the_phone_line_route_holds_its_far_on_people_it_was_not_fitted_on(halves):
    fitted, held_out, codes = halves
    shipped = model_scorer("voice")
    plain = shipped.replaced(narrowband=None, low_cut=None)
    fitted_trials = condition_trials(fitted, PHONE)
    route = fit_route(plain, fitted, *fitted_trials, shipped.narrowband.max_high_band_db, codes)
    routed = plain.replaced(narrowband=route)
    enroll, probe = condition_trials(held_out, PHONE)
    taken = route_trials(route, held_out, enroll, probe)
    fitted_impostors = int((~(fitted.people[fitted_trials[0]] == fitted.people[fitted_trials[1]])
                            & route_trials(route, fitted, *fitted_trials)).sum())

    answered = score_trials(routed, held_out, enroll, probe, ("low", "medium"), codes)
    as_before = score_trials(plain, held_out, enroll, probe, ("low", "medium"), codes)

    impostors, genuine = taken & ~answered.labels, taken & answered.labels
    assert impostors.sum() > 1000 and genuine.sum() > 50  # most telephone probes take the route
    for level in ("low", "medium"):
        far = target_far(level)
        measured = float(np.mean(answered.outcomes[level][impostors] == "accepted"))
        assert measured <= far + binomial_slack(far, int(impostors.sum())) + binomial_slack(far, fitted_impostors)
        refused = np.mean(answered.outcomes[level][genuine] != "accepted")
        refused_before = np.mean(as_before.outcomes[level][genuine] != "accepted")
        assert refused < refused_before - 0.2, (level, refused, refused_before)
