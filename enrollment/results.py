"""What the service's use cases return: plain, frozen results every front end formats its own way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from enrollment.enroll import Enrollment
from enrollment.identify import Identification
from enrollment.template import Template
from verify.embedding import Embedding
from verify.errors import VerifyError
from verify.scoring import Decision, Outcome


@dataclass(frozen=True)
class EnrollResult:
    """An enrollment of one person from one sample per modality.

    Attributes:
        identity: the enrolled name (stripped, NFC).
        enrolled: modality -> the stored template, the sample's embedding and warnings.
        failed: modality -> why that modality was not enrolled (the others were).
    """

    identity: str
    enrolled: Mapping[str, Enrollment]
    failed: Mapping[str, VerifyError] = field(default_factory=dict)

    @property
    def templates(self) -> tuple[Template, ...]:
        """The stored templates, one per enrolled modality."""
        return tuple(result.template for result in self.enrolled.values())

    @property
    def warnings(self) -> tuple[str, ...]:
        """Warnings of every modality (e.g. a lookalike of another enrolled person)."""
        return tuple(warning for result in self.enrolled.values() for warning in result.warnings)


@dataclass(frozen=True)
class CheckResult:
    """A 1:1 check of samples against a claimed identity.

    Attributes:
        identity: the claimed identity.
        outcome: by the AND rule, ``"accepted"`` only when every modality given accepted; any
            rejection rejects; otherwise ``"retry"``. By the sum rule, the fused decision's.
        level: the security level decided at.
        decisions: modality -> its own decision.
        samples: modality -> the probe's embedding (with the aligned face or trimmed speech).
        reason: why it was not accepted; empty when accepted.
        rule: how face and voice were combined: ``"and"`` (both accepted) or ``"sum"`` (their
            LLRs summed, :data:`enrollment.settings.Settings.fusion`); ``"and"`` for one modality.
    """

    identity: str
    outcome: Outcome
    level: str
    decisions: Mapping[str, Decision]
    samples: Mapping[str, Embedding]
    reason: str = ""
    rule: str = "and"

    @property
    def accepted(self) -> bool:
        """True only for an ``"accepted"`` outcome."""
        return self.outcome == "accepted"

    @property
    def deciding(self) -> Decision:
        """The decision of the modality closest to failing (the only one when one was given)."""
        return min(self.decisions.values(), key=lambda decision: decision.score - decision.threshold)

    @property
    def score(self) -> float:
        """The deciding modality's score."""
        return self.deciding.score

    @property
    def threshold(self) -> float:
        """The threshold the deciding modality's score was held against."""
        return self.deciding.threshold


@dataclass(frozen=True)
class IdentifyResult:
    """A 1:N search: who among the enrolled people is this?

    Attributes:
        identity: the person named, or ``None`` when nobody is (no match, or an ambiguous one).
        outcome: ``"accepted"`` when someone is named, ``"retry"`` when the best match is
            borderline or ambiguous, else ``"rejected"``.
        level: the security level decided at.
        searches: modality -> its identification (candidates above the retry threshold only).
        samples: modality -> the probe's embedding.
        reason: why nobody was named; empty when someone was.
    """

    identity: str | None
    outcome: Outcome
    level: str
    searches: Mapping[str, Identification]
    samples: Mapping[str, Embedding]
    reason: str = ""
