"""What the app's buttons do, free of gradio so they can be unit-tested.

Every function takes the app's :class:`~enrollment.Service` and plain values (file paths,
arrays, strings), calls one use case and turns its result into Markdown for a non-technical
reader (and a JSON-ready dict for the API). Bad input raises a :class:`~verify.errors.VerifyError`
subclass; the UI turns it into ``gr.Error``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from enrollment.errors import InvalidIdentityError
from enrollment.results import CheckResult, EnrollResult, IdentifyResult
from enrollment.service import Service
from enrollment.template import Template
from verify.config import MODALITIES, SECURITY_LEVELS
from verify.device import select_device
from verify.embedding import Embedding
from verify.models import model_spec
from verify.scoring import Decision

WHO_IS_THIS = "Who is this?"
ICONS = {"accepted": "✔", "rejected": "✘", "retry": "↻", "pending": "…"}  # in common fonts, unlike emoji
HEADLINES = {"accepted": "Accepted", "rejected": "Rejected", "retry": "Try again", "pending": "Checking"}
CSS_COLOURS = {"accepted": "#1a8f38", "rejected": "#c62828", "retry": "#b36b00", "pending": "#1f5fbf"}


def badge(outcome: str, text: str | None = None) -> str:
    """``text`` (default: the outcome's headline) after its icon, in the outcome's colour (HTML)."""
    return f'<span style="color:{CSS_COLOURS[outcome]}">{ICONS[outcome]} {text or HEADLINES[outcome]}</span>'


@dataclass(frozen=True)
class EnrollView:
    """An enrollment as the page shows it: message, what was embedded, and the stored templates."""

    message: str
    face_crop: np.ndarray | None = None
    speech: np.ndarray | None = None
    templates: tuple[Template, ...] = ()


@dataclass(frozen=True)
class VerifyView:
    """A verification or identification as the page shows it.

    Attributes:
        outcome: ``"accepted"``, ``"rejected"`` or ``"retry"``.
        identity: the verified or recognised person; ``None`` when nobody was recognised.
        message: Markdown for the page.
        details: JSON-ready per-modality scores, thresholds and reasons (the API's answer).
        face_crop: the aligned face that was compared, if a photo was given.
    """

    outcome: str
    identity: str | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    face_crop: np.ndarray | None = None


def _quality_lines(sample: Embedding) -> list[str]:
    lines = [f"- note: {note}" for note in sample.notes]
    return lines + [f"- {badge('retry', 'quality')}: {issue}" for issue in sample.quality_issues]


def _enroll_view(result: EnrollResult, headline: str) -> EnrollView:
    lines = [f"### {badge('accepted', headline)} **{result.identity}**"]
    for modality, enrolled in result.enrolled.items():
        lines.append(f"- {modality}: {enrolled.template.sample_count} sample(s) stored")
        lines += _quality_lines(enrolled.sample)
        lines += [f"- warning: {warning}" for warning in enrolled.warnings]
    lines += [f"- {badge('rejected', modality + ' not enrolled')}: {error}" for modality, error in result.failed.items()]
    face, voice = result.enrolled.get("face"), result.enrolled.get("voice")
    return EnrollView("\n".join(lines), face.sample.preview if face else None, voice.sample.preview if voice else None,
                      result.templates)


def enroll_samples(service: Service, name: str, face: Any = None, voice: Any = None,
                   allow_low_quality: bool = False) -> EnrollView:
    """Enroll ``name`` from a face photo and/or a voice clip (one sample each; adds to a template)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidIdentityError("type the person's name first")
    return _enroll_view(service.enroll(name, face=face, voice=voice, allow_low_quality=allow_low_quality), "Enrolled")


def reenroll(service: Service, name: str, face: Any = None, voice: Any = None,
             allow_low_quality: bool = False) -> EnrollView:
    """Replace ``name``'s template(s) by a fresh one from the new sample(s) (old samples dropped)."""
    result = service.reenroll(name, face=face, voice=voice, allow_low_quality=allow_low_quality)
    view = _enroll_view(result, "Re-enrolled")
    return EnrollView(view.message + "\n\nEarlier samples were replaced.", view.face_crop, view.speech, view.templates)


def _number(value: float | None) -> float | None:
    """A JSON-safe rounded number: ``None`` for a missing or infinite one."""
    return round(value, 4) if value is not None and math.isfinite(value) else None


def _decision_details(decision: Decision, sample: Embedding | None) -> dict[str, Any]:
    return {
        "outcome": decision.outcome, "score": _number(decision.score), "threshold": _number(decision.threshold),
        "llr": _number(decision.llr), "llr_threshold": _number(decision.llr_threshold),
        "reason": decision.reason, "quality_issues": list(sample.quality_issues) if sample else [],
        "notes": list(sample.notes) if sample else [],
    }


def decision_line(modality: str, decision: Decision) -> str:
    """One Markdown bullet: the modality's badge, score against threshold and reason."""
    needs = f"needs ≥ {decision.threshold:.3f}" if math.isfinite(decision.threshold) else "sample too poor to decide"
    line = f"- {badge(decision.outcome, modality)}: score {decision.score:.3f} ({needs})"
    return line + (f" — {decision.reason}" if decision.reason else "")


def verify_samples(service: Service, identity: str | None, face: Any = None, voice: Any = None,
                   level: str | None = None, caller: str | None = None) -> VerifyView:
    """Check samples against ``identity`` (AND of face and voice), or identify with ``WHO_IS_THIS``."""
    if not identity or identity == WHO_IS_THIS:
        return _identify_view(service.identify(face=face, voice=voice, level=level, caller=caller))
    return _check_view(service.check(identity, face=face, voice=voice, level=level, caller=caller))


def _check_view(result: CheckResult) -> VerifyView:
    verb = {"accepted": "this is", "rejected": "this is not", "retry": "cannot tell yet if this is"}[result.outcome]
    lines = [f"### {badge(result.outcome)}: {verb} **{result.identity}**"]
    if len(result.decisions) > 1:
        rule = ("Both face and voice must match." if result.rule == "and"
                else "Face and voice decide together (the sum of their evidence).")
        lines.append(rule + (f" ({result.reason})" if result.reason else ""))
    for modality, decision in result.decisions.items():
        lines.append(decision_line(modality, decision))
        lines += _quality_lines(result.samples[modality])
    details = {
        "outcome": result.outcome, "identity": result.identity, "claimed": result.identity, "level": result.level,
        "rule": result.rule,
        "modalities": {m: _decision_details(d, result.samples.get(m)) for m, d in result.decisions.items()},
    }
    crop = result.samples["face"].preview if "face" in result.samples else None
    return VerifyView(result.outcome, result.identity if result.accepted else None, "\n".join(lines), details, crop)


def _identify_view(result: IdentifyResult) -> VerifyView:
    headline = f"this is **{result.identity}**" if result.identity else "nobody enrolled could be recognised"
    lines = [f"### {badge(result.outcome)}: {headline}"]
    for modality, search in result.searches.items():
        lines.append(decision_line(modality, search.decision))
        lines += [f"- {search.reason}"] if search.reason else []
    details = {
        "outcome": result.outcome, "identity": result.identity, "claimed": None, "level": result.level, "rule": "and",
        "modalities": {
            m: {**_decision_details(s.decision, result.samples.get(m)), "identity": s.identity,
                "candidates": [[c.identity, round(c.score, 4)] for c in s.candidates[:5]]}
            for m, s in result.searches.items()
        },
    }
    crop = result.samples["face"].preview if "face" in result.samples else None
    return VerifyView(result.outcome, result.identity, "\n".join(lines), details, crop)


def _date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


GALLERY_HEADERS = ["identity", "modality", "samples", "enrolled", "updated", "model"]


def gallery_rows(service: Service) -> list[list[Any]]:
    """One row per template: identity, modality, sample count, dates, model id and version."""
    return [
        [t.identity, t.modality, t.sample_count, _date(t.created_at), _date(t.updated_at),
         f"{t.model_id} {t.model_version}"]
        for t in service.templates()
    ]


def delete_identity(service: Service, name: str, modality: str = "all") -> str:
    """Delete one modality's template of ``name``, or all of them (``"all"``)."""
    count = service.delete(name, modality)
    return f"### Deleted {count} template(s) of **{name.strip()}**"


def thresholds_summary(service: Service, level: str) -> str:
    """One line: the thresholds a security level applies."""
    face, voice = service.operating_point("face", level), service.operating_point("voice", level)
    return (f"**{level}**: accepts about 1 impostor in {round(1 / face.target_far):,}; a match needs a "
            f"calibrated log-likelihood ratio ≥ {face.threshold:.2f} (face), ≥ {voice.threshold:.2f} (voice)")


def settings_markdown(service: Service) -> str:
    """Device, models, thresholds per security level and the store in use."""
    loaded = service.loaded()
    sealed = " (templates sealed with the store key)" if service.store.encrypted else ""
    lines = [f"**Device:** `{select_device(service.settings.device)}`  ", f"**Enrollment store:** `{service.store.path}`{sealed}", ""]
    level_columns = " | ".join(f"{name} (FAR {far:g})" for name, far in SECURITY_LEVELS.items())
    lines += ["| modality | model | version | loaded | " + level_columns + " |",
              "|---|---|---|---|" + "---|" * len(SECURITY_LEVELS)]
    for modality in MODALITIES:
        spec = model_spec(modality)
        cells = [f"LLR ≥ {service.operating_point(modality, level).threshold:.2f}" for level in SECURITY_LEVELS]
        state = "yes" if modality in loaded else "on first use"
        lines.append(f"| {modality} | {spec.model_id} | {spec.version} | {state} | " + " | ".join(cells) + " |")
    lines += ["", "Each cosine similarity is normalised against a cohort of other people (S-norm) and "
              "calibrated, with the sample's quality, into a log-likelihood ratio (LLR); an LLR at or above "
              "the level's threshold is accepted. Just below it, or when the sample's quality is what "
              "stands in the way, the answer is to try again, with what to do."]
    return "\n".join(lines)
