"""Face + voice fusion: one decision from the decisions of several modalities.

Rule (AND, decision level): the person is accepted only when **every** modality accepts; any
rejection rejects; otherwise (some "retry", none rejected) the answer is "retry". Each modality
is still held to its own calibrated threshold, so the fused false accept rate is at most the
lower of the two (about their product when the modalities' errors are independent), while a
genuine user must pass both.

Score-level fusion is deliberately not offered: the face and voice thresholds were calibrated on
different people (LFW and LibriSpeech), and no data set with the same people in both modalities
is available to calibrate a threshold on a fused score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from verify.errors import ConfigError
from verify.scoring import Decision, Outcome


@dataclass(frozen=True)
class FusedDecision:
    """The combined answer and the per-modality decisions it came from.

    Attributes:
        outcome: ``"accepted"``, ``"rejected"`` or ``"retry"``.
        decisions: modality name -> its own decision.
        margin: the smallest ``score - threshold`` over the modalities (cosine units); it is
            ``>= 0`` exactly when every modality accepted.
        reason: which modality failed, empty when accepted.
    """

    outcome: Outcome
    decisions: Mapping[str, Decision]
    margin: float
    reason: str = ""

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
