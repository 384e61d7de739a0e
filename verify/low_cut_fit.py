"""Fitting the low-cut copies (:mod:`verify.low_cut`): the high-pass they stand for, the map from
plain to high-passed embeddings and the penalty. Used by ``scripts/fit_low_cut.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Mapping

import numpy as np
from scipy import signal

from verify.errors import ConfigError
from verify.low_cut import LowCutCopy

CORNER_HZ = 150.0
"""The high-pass corner of the copy: the middle of the 60-250 Hz over which headsets, phones and
laptop microphones roll their bass off (``python benchmarks/voice_low_cut.py``: 100, 150 and 200 Hz
took back about the same share of another microphone's cost, 150 Hz the most on the calibration
half)."""
ORDER = 4
RANK = 32
"""Rank of the map: the embedding's shift under a high-pass lies mostly in a few directions. On
calibration speakers left out of the fit (:func:`held_out_cosines`, in the fitted map's
provenance), the copies of rank 32 come within 0.0003 of the full map's (mean cosine to the true
copies 0.9826 against 0.9829; rank 8: 0.9802), with an eighth of its numbers."""
RANKS_COMPARED = (8, 16, 32, 64, 128, 256)
FOLDS = 5
RIDGE = 0.1
PENALTY_STEP = 0.1
LARGEST_PENALTY = 5.0


def high_pass(speech: np.ndarray, corner_hz: float = CORNER_HZ, rate: int = 16_000) -> np.ndarray:
    """``speech`` through an order-:data:`ORDER` Butterworth high-pass at ``corner_hz`` (float32)."""
    sections = signal.butter(ORDER, corner_hz, btype="highpass", fs=rate, output="sos")
    return signal.sosfilt(sections, np.asarray(speech, dtype=np.float64)).astype(np.float32)


def fit_copy(model_id: str, plain: np.ndarray, high_passed: np.ndarray, corner_hz: float = CORNER_HZ,
             rank: int = RANK, ridge: float = RIDGE, provenance: Mapping[str, Any] | None = None) -> LowCutCopy:
    """The map taking unit embeddings ``plain`` ``(N, D)`` near ``high_passed`` ``(N, D)``, the
    embeddings of the same samples high-passed (no penalty yet: :func:`choose_penalty`): a ridge
    regression of the shift ``high_passed - plain`` on ``plain``, reduced to its ``rank`` leading
    directions of fitted shift (reduced-rank regression).

    Raises:
        ConfigError: the arrays do not pair up, or fewer samples than the rank.
    """
    plain, high_passed = (np.asarray(values, dtype=np.float64) for values in (plain, high_passed))
    if plain.ndim != 2 or plain.shape != high_passed.shape or not 0 < rank <= min(plain.shape):
        raise ConfigError(f"need two (N, D) arrays of one shape with N, D >= rank {rank}, "
                          f"got {plain.shape} and {high_passed.shape}")
    dimension = plain.shape[1]
    full = np.linalg.solve(plain.T @ plain + ridge * np.eye(dimension), plain.T @ (high_passed - plain))
    _, _, directions = np.linalg.svd(plain @ full, full_matrices=False)
    up = directions[:rank]
    return LowCutCopy(model_id, corner_hz, full @ up.T, up, 0.0, dict(provenance or {}))


def held_out_cosines(model_id: str, plain: np.ndarray, high_passed: np.ndarray, groups: np.ndarray,
                     ranks: tuple[int, ...] = RANKS_COMPARED, folds: int = FOLDS) -> dict[int, float]:
    """Rank -> mean cosine of the copies mapped from ``plain`` to the true ``high_passed``
    embeddings, for samples whose group (person) the map was not fitted on: the groups are dealt
    into ``folds`` folds, each left out in turn."""
    names = np.unique(groups)
    fold_of = dict(zip(names, np.arange(len(names)) % folds))
    held = np.array([fold_of[group] for group in groups])
    found = {}
    for rank in ranks:
        cosines = []
        for fold in range(folds):
            test = held == fold
            copy = fit_copy(model_id, plain[~test], high_passed[~test], rank=rank)
            cosines.append(np.einsum("ij,ij->i", copy.copies(plain[test]), high_passed[test]))
        found[rank] = round(float(np.mean(np.concatenate(cosines))), 4)
    return found


def choose_penalty(far_at: Callable[[float], float], target: float, step: float = PENALTY_STEP,
                   largest: float = LARGEST_PENALTY) -> float:
    """The smallest penalty, in steps of ``step``, at which ``far_at(penalty)`` (a FAR that falls as
    the penalty grows) is at most ``target``.

    Raises:
        ConfigError: not even ``largest`` meets the target (the template alone must: a copy that
            never wins changes nothing).
    """
    for penalty in np.arange(0.0, largest + step / 2, step):
        if far_at(float(penalty)) <= target:
            return round(float(penalty), 6)
    raise ConfigError(f"no penalty up to {largest} keeps the FAR within {target}")
