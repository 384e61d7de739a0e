"""How a cosine between a template and a probe becomes a decision.

:class:`CalibratedScorer` is what the shipped models use: the cosine is S-normalised against an
impostor cohort (the template's statistics computed once at enrollment, the probe's at check
time), then mapped with the probe's quality measures to a calibrated log-likelihood ratio, which
is held against the security level's LLR thresholds (:mod:`verify.calibration`). When quality is
what stands between a sample and acceptance, the answer is "retry" with what to do about it. A
voice probe's embedding is first moved back along the shifts its noise and echo predict
(:mod:`verify.compensation`), when the model ships such a compensation. A 1:1 check of a voice
also weighs the template's and the probe's low-cut copies (:mod:`verify.low_cut`), when the model
ships their map.

:class:`CosineScorer` holds the raw cosine against cosine thresholds: for models without a
calibration (experiments, tests).

Both share one unit for ranking and margins, the *evidence* of a decision: its LLR when
calibrated, else its cosine; an :class:`OperatingPoint` is in the same unit.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, Sequence

import numpy as np

from verify.calibration import ScoreCalibration, Thresholds
from verify.compensation import ProbeCompensation
from verify.embedding import Embedding
from verify.errors import WeightsError
from verify.low_cut import LowCutCopy
from verify.narrowband import NarrowbandRoute
from verify.normalization import Cohort, CohortStats, s_norm_many
from verify.quality_measures import trial_measures
from verify.scoring import Decision, OperatingPoint, decide, decide_calibrated, l2_normalize


KEEP = object()
"""A part :meth:`CalibratedScorer.replaced` leaves as it is."""

COMPENSATION_KEY = "compensation"
"""Where a calibration's provenance names the :attr:`ProbeCompensation.compensation_id` its probes
were compensated with (absent: none)."""


def evidence(decision: Decision) -> float:
    """The value a decision was held against its level with: the LLR when calibrated, else the score."""
    return decision.score if decision.llr is None else decision.llr


class Scorer(Protocol):
    """Cosine scores of one model -> decisions at a security level."""

    narrowband: NarrowbandRoute | None
    """Band-limited probes against a template's narrowband copy (:mod:`verify.narrowband`), or ``None``."""

    compensation: ProbeCompensation | None
    """What moves noisy and echoing probes back before they are scored (:mod:`verify.compensation`), or ``None``."""

    low_cut: LowCutCopy | None
    """The map to the low-cut copies a 1:1 check also weighs (:mod:`verify.low_cut`), or ``None``."""

    def operating_point(self, level: str) -> OperatingPoint:
        """The level's thresholds, in evidence units."""

    def compensated(self, probe: Embedding) -> Embedding:
        """The probe as it is scored: its vector compensated for its conditions, where the model
        ships a compensation (every decision method expects a probe passed through it once)."""

    def template_stats(self, template: np.ndarray) -> CohortStats | None:
        """What must be stored with a ``(D,)`` template (``None``: nothing)."""

    def usable(self, stats: CohortStats | None) -> bool:
        """Whether stored template statistics are the ones this scorer needs."""

    def decide_many(self, cosines: np.ndarray, level: str, probe: Embedding,
                    template_stats: Sequence[CohortStats | None]) -> list[Decision]:
        """Decisions for one probe against many templates (``cosines``: ``(N,)``)."""

    def evidence_many(self, cosines: np.ndarray, probe: Embedding,
                      template_stats: Sequence[CohortStats | None]) -> np.ndarray:
        """The evidence ``(N,)`` of the decisions :meth:`decide_many` would make, computed at once
        (equal to theirs up to the last bits): for ranking many templates."""


class CosineScorer:
    """Raw cosine against cosine thresholds per level."""

    narrowband = None
    compensation = None
    low_cut = None

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds

    def operating_point(self, level: str) -> OperatingPoint:
        return self.thresholds.operating_point(level)

    def compensated(self, probe: Embedding) -> Embedding:
        return probe

    def template_stats(self, template: np.ndarray) -> None:
        return None

    def usable(self, stats: CohortStats | None) -> bool:
        return True

    def decide_many(self, cosines: np.ndarray, level: str, probe: Embedding,
                    template_stats: Sequence[CohortStats | None]) -> list[Decision]:
        point = self.operating_point(level)
        return [decide(float(cosine), point, probe.quality_issues) for cosine in np.atleast_1d(cosines)]

    def evidence_many(self, cosines: np.ndarray, probe: Embedding,
                      template_stats: Sequence[CohortStats | None]) -> np.ndarray:
        return np.atleast_1d(np.asarray(cosines, dtype=np.float64))


class CalibratedScorer:
    """S-norm against a cohort, then a quality-aware calibration to an LLR, held at LLR thresholds;
    band-limited probes against a template's narrowband copy take ``narrowband``'s route; probes
    are compensated for their conditions by ``compensation`` first; a 1:1 check also weighs the
    template's and the probe's ``low_cut`` copies (:meth:`decide_with_copies`).

    Raises (from the constructor):
        WeightsError: the cohort or the compensation is not the one the calibration was fitted with.
    """

    def __init__(self, calibration: ScoreCalibration, cohort: Cohort | None,
                 narrowband: NarrowbandRoute | None = None, compensation: ProbeCompensation | None = None,
                 low_cut: LowCutCopy | None = None) -> None:
        calibration.check_cohort(cohort)
        expected = calibration.provenance.get(COMPENSATION_KEY)
        found = None if compensation is None else compensation.compensation_id
        if found != expected:
            raise WeightsError(
                f"the calibration of {calibration.model_id} was fitted on probes compensated by {expected!r}, "
                f"not {found!r}. Recalibrate with: python scripts/calibrate.py"
            )
        self.calibration = calibration
        self.cohort = cohort
        self.narrowband = narrowband
        self.compensation = compensation
        self.low_cut = low_cut

    def replaced(self, *, narrowband: NarrowbandRoute | None | object = KEEP,
                 low_cut: LowCutCopy | None | object = KEEP) -> CalibratedScorer:
        """This scorer with another phone-line route or low-cut map (``None``: without it); the
        calibration, cohort and compensation stay, and so does any part left at :data:`KEEP`."""
        return CalibratedScorer(self.calibration, self.cohort,
                                self.narrowband if narrowband is KEEP else narrowband, self.compensation,
                                self.low_cut if low_cut is KEEP else low_cut)

    def operating_point(self, level: str) -> OperatingPoint:
        return self.calibration.operating_point(level)

    def compensated(self, probe: Embedding) -> Embedding:
        return probe if self.compensation is None else self.compensation.compensated(probe)

    def template_stats(self, template: np.ndarray) -> CohortStats | None:
        return None if self.cohort is None else self.cohort.stats(template)

    def usable(self, stats: CohortStats | None) -> bool:
        if self.cohort is None:
            return True
        return stats is not None and (stats.cohort_id, stats.top_k) == (self.cohort.cohort_id, self.cohort.effective_k)

    def decide_many(self, cosines: np.ndarray, level: str, probe: Embedding,
                    template_stats: Sequence[CohortStats | None]) -> list[Decision]:
        cosines = np.atleast_1d(np.asarray(cosines, dtype=np.float64))
        scores = self._input_scores(cosines, probe, template_stats)
        return [self.calibration.decide_input(float(score), level, trial_measures(probe.measures, float(cosine)),
                                              probe.quality_issues)
                for score, cosine in zip(scores, cosines)]

    def decide_narrowband(self, cosine: float, level: str, probe: Embedding, copy_stats: CohortStats | None) -> Decision:
        """Decision for a band-limited probe against a template's narrowband copy (``cosine``, and the
        copy's statistics), on the :attr:`narrowband` route."""
        if self.narrowband is None:
            raise ValueError("this scorer has no narrowband route")
        score = float(self._input_scores(np.array([cosine], dtype=np.float64), probe, [copy_stats])[0])
        result = self.narrowband.mapped(self.calibration.calibrated(score, trial_measures(probe.measures, float(cosine))))
        return decide_calibrated(result, self.narrowband.thresholds.operating_point(level), probe.quality_issues)

    def decide_with_copies(self, template: np.ndarray, probe: Embedding, level: str,
                           template_stats: CohortStats | None) -> Decision:
        """Decision for a probe (compensated already) against a ``(D,)`` template (its stored
        statistics; computed here when missing or stale) on the highest of three LLRs: the
        template's against the probe, its low-cut copy's against the probe and its against the
        probe's low-cut copy, each copy's lowered by :attr:`LowCutCopy.penalty`
        (:mod:`verify.low_cut`). The three are scored at once: one cohort product for the copies
        and the probe, one calibration call."""
        if self.low_cut is None:
            raise ValueError("this scorer has no low-cut copies")
        if not self.usable(template_stats):
            template_stats = self.template_stats(template)
        template_copy, probe_copy = self.low_cut.copies(np.stack([template, probe.vector]))
        templates = np.stack([template, template_copy, template])
        probes = np.stack([probe.vector, probe.vector, probe_copy])
        cosines = np.einsum("ij,ij->i", l2_normalize(templates), l2_normalize(probes)).astype(np.float64)
        scores = cosines
        if self.cohort is not None:
            means, stds = self.cohort.statistics(np.stack([template_copy, probe.vector, probe_copy]))
            scores = s_norm_many(cosines, np.array([template_stats.mean, means[0], template_stats.mean]),
                                 np.array([template_stats.std, stds[0], template_stats.std]),
                                 means[[1, 1, 2]], stds[[1, 1, 2]])
        penalties = np.array([0.0, self.low_cut.penalty, self.low_cut.penalty])
        best = int(np.argmax(self.calibration.llrs(scores, trial_measures(probe.measures, cosines)) - penalties))
        result = self.calibration.calibrated(float(scores[best]), trial_measures(probe.measures, float(cosines[best])))
        return decide_calibrated(dataclasses.replace(result, llr=result.llr - penalties[best]),
                                 self.operating_point(level), probe.quality_issues)

    def evidence_many(self, cosines: np.ndarray, probe: Embedding,
                      template_stats: Sequence[CohortStats | None]) -> np.ndarray:
        cosines = np.atleast_1d(np.asarray(cosines, dtype=np.float64))
        scores = self._input_scores(cosines, probe, template_stats)
        return self.calibration.llrs(scores, trial_measures(probe.measures, cosines)) if len(scores) else scores

    def _input_scores(self, cosines: np.ndarray, probe: Embedding,
                      template_stats: Sequence[CohortStats | None]) -> np.ndarray:
        """The calibration's input scores ``(N,)`` of ``(N,)`` float64 cosines: S-normalised, or the
        cosines themselves without a cohort."""
        if self.cohort is None:
            return cosines
        probe_stats = self.cohort.stats(probe.vector)
        means = np.array([stats.mean for stats in template_stats])
        stds = np.array([stats.std for stats in template_stats])
        return s_norm_many(cosines, means, stds, probe_stats.mean, probe_stats.std)
