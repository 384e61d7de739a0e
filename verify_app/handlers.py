"""What the app's buttons do, free of gradio so they can be unit-tested.

Every function takes the shared :class:`~verify_app.services.Services` and plain values (file
paths, arrays, strings) and returns a result dataclass whose ``message`` is Markdown for a
non-technical reader. Bad input raises a :class:`~verify.errors.VerifyError` subclass; the UI
turns it into ``gr.Error``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from enrollment.enroll import check_embedded, enroll, enrolled_template
from enrollment.errors import InvalidIdentityError, UnknownIdentityError
from enrollment.identify import identify
from enrollment.template import Template, validate_identity, validate_modality
from verify.config import SECURITY_LEVELS
from verify.embedding import Embedding
from verify.errors import InputError, QualityError, VerifyError
from verify.fusion import fuse_and
from verify.models import model_thresholds
from verify.scoring import Decision
from verify_app.services import Services

WHO_IS_THIS = "Who is this?"
ICONS = {"accepted": "✔", "rejected": "✘", "retry": "↻"}  # in common fonts, unlike emoji
HEADLINES = {"accepted": "Accepted", "rejected": "Rejected", "retry": "Try again"}
CSS_COLOURS = {"accepted": "#1a8f38", "rejected": "#c62828", "retry": "#b36b00"}


def badge(outcome: str, text: str | None = None) -> str:
    """``text`` (default: the outcome's headline) after its icon, in the outcome's colour (HTML)."""
    return f'<span style="color:{CSS_COLOURS[outcome]}">{ICONS[outcome]} {text or HEADLINES[outcome]}</span>'


class MissingSampleError(InputError):
    """Neither a photo nor a voice clip was given."""


@dataclass(frozen=True)
class EnrollResult:
    """Outcome of an enrollment: message, what was embedded, and the stored templates."""

    message: str
    face_crop: np.ndarray | None = None
    speech: np.ndarray | None = None
    templates: tuple[Template, ...] = ()


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a verification or identification.

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


def _sources(face: Any, voice: Any) -> dict[str, Any]:
    sources = {name: value for name, value in (("face", face), ("voice", voice)) if value is not None}
    if not sources:
        raise MissingSampleError("give a face photo, a voice clip, or both")
    return sources


def _quality_lines(sample: Embedding) -> list[str]:
    lines = [f"- note: {note}" for note in sample.notes]
    return lines + [f"- {badge('retry', 'quality')}: {issue}" for issue in sample.quality_issues]


def enroll_samples(
    services: Services, name: str, face: Any = None, voice: Any = None, allow_low_quality: bool = False
) -> EnrollResult:
    """Enroll ``name`` from a face photo and/or a voice clip (one sample each; adds to a template).

    A modality that fails is reported beside the one that succeeded; if all fail, the first
    error is raised.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidIdentityError("type the person's name first")
    identity = validate_identity(name)
    sources = _sources(face, voice)
    done: dict[str, Any] = {}
    failed: dict[str, VerifyError] = {}
    for modality, source in sources.items():
        try:
            done[modality] = enroll(services.store, services.pipeline(modality), identity, source,
                                    allow_low_quality=allow_low_quality)
        except VerifyError as error:
            failed[modality] = error
    if not done:
        raise next(iter(failed.values()))
    lines = [f"### {badge('accepted', 'Enrolled')} **{identity}**"]
    for modality, result in done.items():
        lines.append(f"- {modality}: {result.template.sample_count} sample(s) stored")
        lines += _quality_lines(result.sample)
    lines += [f"- {badge('rejected', modality + ' not enrolled')}: {error}" for modality, error in failed.items()]
    return EnrollResult(
        "\n".join(lines),
        done["face"].sample.preview if "face" in done else None,
        done["voice"].sample.preview if "voice" in done else None,
        tuple(result.template for result in done.values()),
    )


def _decision_details(decision: Decision, sample: Embedding) -> dict[str, Any]:
    return {
        "outcome": decision.outcome, "score": round(decision.score, 4), "threshold": round(decision.threshold, 4),
        "reason": decision.reason, "quality_issues": list(sample.quality_issues), "notes": list(sample.notes),
    }


def _decision_line(modality: str, decision: Decision) -> str:
    line = f"- {badge(decision.outcome, modality)}: score {decision.score:.3f} (needs ≥ {decision.threshold:.3f})"
    return line + (f" — {decision.reason}" if decision.reason else "")


def verify_samples(services: Services, identity: str | None, face: Any = None, voice: Any = None,
                   level: str = "medium") -> VerifyResult:
    """Check samples against ``identity`` (AND of face and voice), or identify with ``WHO_IS_THIS``."""
    sources = _sources(face, voice)
    if not identity or identity == WHO_IS_THIS:
        return identify_samples(services, sources, level)
    identity = validate_identity(identity)
    decisions, samples = {}, {}
    for modality, source in sources.items():
        verifier = services.verifier(modality, level)
        enrolled_template(services.store, verifier.pipeline, identity)  # unknown identity: fail before embedding
        samples[modality] = verifier.pipeline.embed(source)
        decisions[modality] = check_embedded(services.store, verifier, identity, samples[modality])
    fused = fuse_and(decisions)
    verb = {"accepted": "this is", "rejected": "this is not", "retry": "cannot tell yet if this is"}[fused.outcome]
    lines = [f"### {badge(fused.outcome)}: {verb} **{identity}**"]
    if len(decisions) > 1:
        lines.append("Both face and voice must match." + (f" ({fused.reason})" if fused.reason else ""))
    for modality, decision in decisions.items():
        lines.append(_decision_line(modality, decision))
        lines += _quality_lines(samples[modality])
    details = {
        "outcome": fused.outcome, "identity": identity, "claimed": identity, "level": level, "rule": "and",
        "modalities": {m: _decision_details(d, samples[m]) for m, d in decisions.items()},
    }
    crop = samples["face"].preview if "face" in samples else None
    return VerifyResult(fused.outcome, identity if fused.accepted else None, "\n".join(lines), details, crop)


def identify_samples(services: Services, sources: dict[str, Any], level: str = "medium") -> VerifyResult:
    """1:N: name the enrolled person, if every given modality names the same one clearly."""
    results, samples = {}, {}
    for modality, source in sources.items():
        verifier = services.verifier(modality, level)
        samples[modality] = verifier.pipeline.embed(source)
        results[modality] = identify(services.store, verifier, samples[modality])
    names = {result.identity for result in results.values()}
    fused = fuse_and({modality: result.decision for modality, result in results.items()})
    found = names.pop() if len(names) == 1 and fused.accepted else None
    outcome = "accepted" if found else ("retry" if fused.outcome == "retry" else "rejected")
    headline = f"this is **{found}**" if found else "nobody enrolled could be recognised"
    lines = [f"### {badge(outcome)}: {headline}"]
    for modality, result in results.items():
        best = result.candidates[0]
        lines.append(_decision_line(f"{modality} (closest: {best.identity})", result.decision))
        lines += [f"- {result.reason}"] if result.reason else []
    details = {
        "outcome": outcome, "identity": found, "claimed": None, "level": level, "rule": "and",
        "modalities": {
            m: {**_decision_details(r.decision, samples[m]), "identity": r.identity,
                "candidates": [[c.identity, round(c.score, 4)] for c in r.candidates[:5]]}
            for m, r in results.items()
        },
    }
    crop = samples["face"].preview if "face" in samples else None
    return VerifyResult(outcome, found, "\n".join(lines), details, crop)


def identities(services: Services) -> list[str]:
    """Enrolled identity names, sorted."""
    return sorted({template.identity for template in services.store.list_templates()})


def _date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


GALLERY_HEADERS = ["identity", "modality", "samples", "enrolled", "updated", "model"]


def gallery_rows(services: Services) -> list[list[Any]]:
    """One row per template: identity, modality, sample count, dates, model id and version."""
    return [
        [t.identity, t.modality, t.sample_count, _date(t.created_at), _date(t.updated_at),
         f"{t.model_id} {t.model_version}"]
        for t in services.store.list_templates()
    ]


def delete_identity(services: Services, name: str, modality: str = "all") -> str:
    """Delete one modality's template of ``name``, or all of them (``"all"``)."""
    identity = validate_identity(name)
    which = None if modality in (None, "", "all") else validate_modality(modality)
    count = services.store.delete(identity, which)
    return f"### Deleted {count} template(s) of **{identity}**"


def reenroll(services: Services, name: str, face: Any = None, voice: Any = None,
             allow_low_quality: bool = False) -> EnrollResult:
    """Replace ``name``'s template(s) by a fresh one from the new sample(s) (old samples dropped)."""
    identity = validate_identity(name)
    if not services.store.find(identity):
        raise UnknownIdentityError(f"{identity!r} is not enrolled; use the Enroll tab")
    embedded = {m: (services.pipeline(m), services.pipeline(m).embed(s)) for m, s in _sources(face, voice).items()}
    for modality, (_, sample) in embedded.items():
        if sample.quality_issues and not allow_low_quality:
            raise QualityError(f"cannot re-enroll {modality} from this sample: " + "; ".join(sample.quality_issues))
    templates = []
    for modality, (pipeline, sample) in embedded.items():
        template = Template.from_sample(identity, modality, sample.vector, pipeline.model_id,
                                        pipeline.model_version, time.time())
        services.store.replace(template)
        templates.append(template)
    face_sample = embedded.get("face", (None, None))[1]
    voice_sample = embedded.get("voice", (None, None))[1]
    return EnrollResult(
        f"### {badge('accepted', 'Re-enrolled')} **{identity}** ({', '.join(embedded)}): earlier samples replaced",
        face_sample.preview if face_sample else None, voice_sample.preview if voice_sample else None,
        tuple(templates),
    )


def thresholds_summary(level: str) -> str:
    """One line: the thresholds a security level applies."""
    from verify.face.pipeline import FACE_MODEL_ID
    from verify.voice.pipeline import VOICE_MODEL_ID

    face = model_thresholds(FACE_MODEL_ID).operating_point(level)
    voice = model_thresholds(VOICE_MODEL_ID).operating_point(level)
    return (f"**{level}**: accepts about 1 impostor in {round(1 / face.target_far):,}; "
            f"face needs a score ≥ {face.threshold:.3f}, voice ≥ {voice.threshold:.3f}")


def settings_markdown(services: Services) -> str:
    """Device, models, thresholds per security level and the store in use."""
    from verify.face.pipeline import FACE_MODEL_ID, FacePipeline
    from verify.voice.pipeline import VOICE_MODEL_ID, VoicePipeline

    loaded = services.loaded()
    lines = [f"**Device:** `{services.device}`  ", f"**Enrollment store:** `{services.store_path}`", ""]
    level_columns = " | ".join(f"{name} (FAR {far:g})" for name, far in SECURITY_LEVELS.items())
    lines += ["| modality | model | version | loaded | " + level_columns + " |",
              "|---|---|---|---|" + "---|" * len(SECURITY_LEVELS)]
    for modality, model_id, cls in (("face", FACE_MODEL_ID, FacePipeline), ("voice", VOICE_MODEL_ID, VoicePipeline)):
        thresholds = model_thresholds(model_id)
        cells = [f"≥ {thresholds.operating_point(level).threshold:.3f}" for level in SECURITY_LEVELS]
        state = "yes" if modality in loaded else "on first use"
        lines.append(f"| {modality} | {model_id} | {cls.model_version} | {state} | "
                     + " | ".join(cells) + " |")
    lines += ["", "Scores are cosine similarities; a score at or above the level's threshold is accepted. "
              "A score just below it, or a poor sample, asks to try again."]
    return "\n".join(lines)


__all__ = [
    "WHO_IS_THIS", "EnrollResult", "MissingSampleError", "VerifyResult", "delete_identity",
    "enroll_samples", "gallery_rows", "identify_samples", "identities", "reenroll", "settings_markdown",
    "thresholds_summary", "verify_samples",
]
