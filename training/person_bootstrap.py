"""95 % confidence intervals by resampling people: rates, EER and Cllr of trials, and paired differences.

Trials of one person are not independent (one enrollment meets many probes), so intervals come
from a bootstrap over the people who enroll: each replicate draws as many people as there are,
with replacement, and weighs every trial by how often its enrolling person was drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from verify.errors import ConfigError


@dataclass(frozen=True)
class PersonResampler:
    """Bootstrap replicates over the enrolling person of each trial.

    Attributes:
        person: ``(N,)`` index ``0..G-1`` of each trial's enrolling person.
        counts: ``(B, G)`` how often each person is drawn in each replicate.
    """

    person: np.ndarray
    counts: np.ndarray

    @classmethod
    def draw(cls, people: np.ndarray, replicates: int = 1000, seed: int = 0) -> PersonResampler:
        """Replicates for trials whose enrolling people are ``people`` ``(N,)`` (any labels)."""
        if replicates < 2:
            raise ConfigError(f"need >= 2 bootstrap replicates, got {replicates}")
        _, person = np.unique(np.asarray(people), return_inverse=True)
        groups = int(person.max()) + 1
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(groups, np.full(groups, 1.0 / groups), size=replicates).astype(np.float64)
        return cls(person, counts)

    @property
    def groups(self) -> int:
        """Number of people."""
        return self.counts.shape[1]

    def per_person(self, values: np.ndarray) -> np.ndarray:
        """``(G,)`` sums of ``(N,)`` trial values per person."""
        return np.bincount(self.person, weights=np.asarray(values, dtype=np.float64), minlength=self.groups)

    def ratio(self, numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
        """``(B,)`` replicate values of ``sum(numerator) / sum(denominator)`` (``(N,)`` trial values)."""
        top, bottom = self.counts @ self.per_person(numerator), self.counts @ self.per_person(denominator)
        return np.divide(top, bottom, out=np.full_like(top, np.nan), where=bottom > 0)

    def trial_weights(self, replicate: int) -> np.ndarray:
        """``(N,)`` weight of each trial in one replicate."""
        return self.counts[replicate][self.person]


def interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicate values (NaNs left out)."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


class Curve:
    """Trials sorted once by score, for FAR/FRR curves under many weightings (accept ``score >= t``;
    trials with equal scores are accepted or refused together)."""

    def __init__(self, scores: np.ndarray, labels: np.ndarray) -> None:
        self.order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
        self.labels = np.asarray(labels, bool)[self.order]
        sorted_scores = np.asarray(scores, dtype=np.float64)[self.order]
        self.last = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]

    def rates(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """FAR and FRR at every threshold (from accepting none), or None when a class weighs nothing."""
        weights = np.asarray(weights, np.float64)[self.order]
        genuine, impostor = np.sum(weights * self.labels), np.sum(weights * ~self.labels)
        if genuine <= 0 or impostor <= 0:
            return None
        far = np.r_[0.0, np.cumsum(weights * ~self.labels)[self.last] / impostor]
        frr = np.r_[1.0, 1.0 - np.cumsum(weights * self.labels)[self.last] / genuine]
        return far, frr

    def eer(self, weights: np.ndarray) -> float:
        """EER, FAR and FRR interpolated at the crossing."""
        rates = self.rates(weights)
        if rates is None:
            return float("nan")
        far, frr = rates
        difference = far - frr
        index = int(np.argmax(difference >= 0))
        if index == 0:
            return float((far[-1] + frr[-1]) / 2)
        span = difference[index] - difference[index - 1]
        weight = 0.0 if span == 0 else -difference[index - 1] / span
        return float(((far[index - 1] + weight * (far[index] - far[index - 1]))
                      + (frr[index - 1] + weight * (frr[index] - frr[index - 1]))) / 2)

    def frr_at_far(self, weights: np.ndarray, target: float) -> float:
        """FRR at the lowest threshold whose FAR is at most ``target``."""
        rates = self.rates(weights)
        if rates is None:
            return float("nan")
        far, frr = rates
        return float(frr[np.nonzero(far <= target)[0][-1]])


def weighted_eer(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """EER of trials weighted by ``weights`` (see :class:`Curve`)."""
    return Curve(scores, labels).eer(weights)


def weighted_cllr(llrs: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """Cllr (bits, prior 0.5) of trials weighted by ``weights``."""
    labels, weights = np.asarray(labels, bool), np.asarray(weights, np.float64)
    genuine, impostor = np.sum(weights * labels), np.sum(weights * ~labels)
    if genuine <= 0 or impostor <= 0:
        return float("nan")
    miss = np.sum(weights[labels] * np.logaddexp(0.0, -llrs[labels])) / genuine
    false_alarm = np.sum(weights[~labels] * np.logaddexp(0.0, llrs[~labels])) / impostor
    return float((miss + false_alarm) / (2 * np.log(2)))


def weighted_frr_at_far(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray, far: float) -> float:
    """FRR of trials weighted by ``weights`` at the lowest threshold whose FAR is at most ``far``."""
    return Curve(scores, labels).frr_at_far(weights, far)
