"""Face + voice fusion: one decision from several modalities.

Two rules:

* **LLR sum** (:func:`fuse_llr`): with each modality calibrated to a log-likelihood ratio
  (:mod:`verify.calibration`) and the modalities independent given the claim, the fused LLR is
  their sum. It is held against its own thresholds per level, set on chimeric trials
  (:func:`chimeric_trials`, :func:`fusion_thresholds`): each face person is paired with one voice
  person, since no data set holds the same people's faces and voices.
* **AND** (:func:`fuse_and`, decision level): accepted only when every modality accepts; any
  rejection rejects; otherwise (some "retry", none rejected) "retry". Each modality is held to
  its own threshold, so the fused FAR is at most the lower of the two, while a genuine user
  must pass both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from verify.calibration import CALIBRATED_FARS, Thresholds, calibrate
from verify.errors import CalibrationError, ConfigError
from verify.scoring import CalibratedScore, Decision, OperatingPoint, Outcome, decide_calibrated


FUSION_RULES = ("and", "sum")
DEFAULT_FUSION_RULE = "and"
"""AND, not the LLR sum, by default: the sum refuses fewer genuine people at the same zero-effort
FAR, but lets a strong face carry an impostor's voice (``benchmarks/fusion.py``, spoof table)."""


@dataclass(frozen=True)
class FusedDecision:
    """The combined answer and the per-modality decisions it came from.

    Attributes:
        outcome: ``"accepted"``, ``"rejected"`` or ``"retry"``.
        decisions: modality name -> its own decision (AND rule; for the LLR sum, whatever the
            caller passed along, possibly none).
        margin: AND rule: the smallest ``score - threshold`` over the modalities; it is ``>= 0``
            exactly when every modality accepted. LLR sum: fused LLR minus its threshold.
        reason: what failed or what to do, empty when accepted.
        llr: the fused LLR (LLR sum only).
    """

    outcome: Outcome
    decisions: Mapping[str, Decision]
    margin: float
    reason: str = ""
    llr: float | None = None

    @property
    def accepted(self) -> bool:
        """True only when every modality accepted."""
        return self.outcome == "accepted"


def fuse_and(decisions: Mapping[str, Decision]) -> FusedDecision:
    """AND-rule fusion of per-modality decisions (see the module docstring).

    Raises:
        ConfigError: ``decisions`` is empty.
    """
    if not decisions:
        raise ConfigError("fusion needs at least one modality's decision, got none")
    margin = min(decision.score - decision.threshold for decision in decisions.values())
    rejected = [name for name, decision in decisions.items() if decision.outcome == "rejected"]
    retry = [name for name, decision in decisions.items() if decision.outcome == "retry"]
    if rejected:
        return FusedDecision("rejected", dict(decisions), margin, f"{' and '.join(rejected)} rejected")
    if retry:
        return FusedDecision("retry", dict(decisions), margin, f"{' and '.join(retry)} needs another sample")
    return FusedDecision("accepted", dict(decisions), margin)


def fuse_llr(
    scores: Mapping[str, CalibratedScore],
    point: OperatingPoint,
    quality_issues: Mapping[str, Sequence[str]] | None = None,
    decisions: Mapping[str, Decision] | None = None,
    floors: Mapping[str, float] | None = None,
) -> FusedDecision:
    """Decide on the sum of the modalities' calibrated LLRs at fused LLR thresholds ``point``.

    Retry advice (quality) comes from the modality whose quality costs the most LLR, prefixed
    with its name; front-end quality issues likewise. A modality whose quality is worse than its
    calibration saw blocks acceptance (its LLR is a guess) and asks for a better sample.

    ``floors`` (modality -> LLR, e.g. its ``low`` level's retry threshold, FAR 10 %) give each
    modality a veto: one below its floor rejects, however strong the other. Without it, a photo of
    the enrolled person with the attacker's own voice passes the sum most of the time
    (``benchmarks/fusion.py``, spoof table).

    Raises:
        ConfigError: ``scores`` is empty.
    """
    if not scores:
        raise ConfigError("fusion needs at least one modality's calibrated score, got none")
    llr = sum(result.llr for result in scores.values())
    vetoed = [name for name, result in scores.items() if result.llr < (floors or {}).get(name, -np.inf)]
    if vetoed:
        reason = f"{' and '.join(vetoed)} rejected: not the enrolled person"
        return FusedDecision("rejected", dict(decisions or {}), llr - point.threshold, reason, llr)
    worst = max(scores, key=lambda name: scores[name].quality_gain)
    advice = f"{worst}: {scores[worst].advice}" if scores[worst].advice else ""
    unsupported = "; ".join(f"{name}: {result.unsupported}" for name, result in scores.items()
                            if result.unsupported)
    gain = sum(result.quality_gain for result in scores.values())
    fused = CalibratedScore(llr, llr, 1.0, gain, advice, unsupported)
    issues = [f"{name}: {issue}" for name, found in (quality_issues or {}).items() for issue in found]
    decision = decide_calibrated(fused, point, issues)
    return FusedDecision(decision.outcome, dict(decisions or {}), llr - point.threshold, decision.reason, llr)


@dataclass(frozen=True)
class ModalityTrials:
    """Calibrated LLRs of one modality's trials and the people they compare.

    Attributes:
        llrs: ``(N,)`` calibrated LLRs.
        enroll_identity: ``(N,)`` integer person of each trial's template.
        probe_identity: ``(N,)`` integer person of each trial's probe.
    """

    llrs: np.ndarray
    enroll_identity: np.ndarray
    probe_identity: np.ndarray

    def __post_init__(self) -> None:
        shapes = {np.shape(self.llrs), np.shape(self.enroll_identity), np.shape(self.probe_identity)}
        if len(shapes) != 1 or len(np.shape(self.llrs)) != 1:
            raise CalibrationError(
                f"llrs and identities must be (N,) arrays of one length, got shapes {shapes}"
            )


def chimeric_pairs(
    first: ModalityTrials, second: ModalityTrials, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Trials of chimeric people: ``(first_rows, second_rows)``, ``(M,)`` indices into each side.

    The people of ``first`` and ``second`` are paired one to one at random (as many pairs as the
    smaller side has people). Every ``first`` trial between paired people is matched with a
    random ``second`` trial between the partners (in either order); a chimeric trial is
    genuine when its ``first`` trial is.

    Raises:
        CalibrationError: no trial could be matched.
    """
    rng = np.random.default_rng(seed)
    first_people = np.unique(np.r_[first.enroll_identity, first.probe_identity])
    second_people = np.unique(np.r_[second.enroll_identity, second.probe_identity])
    pairs = min(first_people.size, second_people.size)
    partner = np.full(first_people.size, -1)  # first person's index -> partner's index in second_people
    partner[rng.permutation(first_people.size)[:pairs]] = rng.permutation(second_people.size)[:pairs]
    width = second_people.size

    def keys(enroll: np.ndarray, probe: np.ndarray) -> np.ndarray:
        return np.minimum(enroll, probe) * width + np.maximum(enroll, probe)

    second_keys = keys(np.searchsorted(second_people, second.enroll_identity),
                       np.searchsorted(second_people, second.probe_identity))
    order = np.argsort(second_keys, kind="stable")
    sorted_keys = second_keys[order]
    mapped_enroll = partner[np.searchsorted(first_people, first.enroll_identity)]
    mapped_probe = partner[np.searchsorted(first_people, first.probe_identity)]
    wanted = keys(mapped_enroll, mapped_probe)
    start = np.searchsorted(sorted_keys, wanted, side="left")
    count = np.searchsorted(sorted_keys, wanted, side="right") - start
    usable = (mapped_enroll >= 0) & (mapped_probe >= 0) & (count > 0)
    if not usable.any():
        raise CalibrationError("no trial of the first modality has a partner trial in the second")
    pick = order[start[usable] + (rng.random(usable.sum()) * count[usable]).astype(np.int64)]
    return np.nonzero(usable)[0], pick


def chimeric_trials(
    first: ModalityTrials, second: ModalityTrials, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Fused LLRs and labels of chimeric people (:func:`chimeric_pairs`): ``(M,)`` float and bool.

    Raises:
        CalibrationError: no trial could be matched.
    """
    rows, pick = chimeric_pairs(first, second, seed)
    llrs = np.asarray(first.llrs, dtype=np.float64)[rows] + np.asarray(second.llrs, dtype=np.float64)[pick]
    labels = np.asarray(first.enroll_identity)[rows] == np.asarray(first.probe_identity)[rows]
    return llrs, labels


def fusion_thresholds(
    fused_llrs: np.ndarray, labels: np.ndarray, model_id: str, fars: Sequence[float] = CALIBRATED_FARS,
    provenance: Mapping[str, object] | None = None,
) -> Thresholds:
    """Fused-LLR threshold per target FAR, e.g. on :func:`chimeric_trials`.

    ``model_id`` names the pair, e.g. ``"<face model>+<voice model>"``; save it with
    :func:`verify.calibration.save_thresholds`.

    Raises:
        CalibrationError: too few impostor trials for a target FAR.
    """
    try:
        by_far = calibrate(fused_llrs, labels, fars)
    except ValueError as error:
        raise CalibrationError(f"cannot set fusion thresholds: {error}") from error
    return Thresholds(model_id, by_far, dict(provenance or {}))
