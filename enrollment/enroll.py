"""Enroll an identity from one sample, and check a sample against an enrolled identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from enrollment.store import TemplateStore
from enrollment.template import Template
from verify.embedding import Embedding, Pipeline
from verify.errors import ModelMismatchError, QualityError, VerifyError
from verify.scoring import Decision
from verify.verifier import Verifier


@dataclass(frozen=True)
class Enrollment:
    """The stored template after enrollment and the sample's embedding (with its preview)."""

    template: Template
    sample: Embedding


def enroll(
    store: TemplateStore, pipeline: Pipeline, identity: str, source: Any, *, allow_low_quality: bool = False
) -> Enrollment:
    """Embed one sample and add it to ``identity``'s template (created on first use).

    Only the embedding is stored. A sample with quality issues (blur, darkness, clipping) is
    refused unless ``allow_low_quality``, since a poor template hurts every later check.

    Raises:
        VerifyError: the sample is unreadable, has no face or speech, or has quality issues;
            the identity name is invalid; the template was made by another model.
    """
    sample = pipeline.embed(source)
    if sample.quality_issues and not allow_low_quality:
        raise QualityError("cannot enroll from this sample: " + "; ".join(sample.quality_issues))
    template = store.add_sample(identity, pipeline.modality, sample.vector, pipeline.model_id, pipeline.model_version)
    return Enrollment(template, sample)


def enrolled_template(store: TemplateStore, pipeline: Pipeline, identity: str) -> Template:
    """The template of ``identity`` for the pipeline's modality, checked to match its model.

    Raises:
        UnknownIdentityError: nothing enrolled.
        ModelMismatchError: the template was made by another model or version.
    """
    template = store.get(identity, pipeline.modality)
    if (template.model_id, template.model_version) != (pipeline.model_id, pipeline.model_version):
        raise ModelMismatchError(
            f"{identity!r} was enrolled with {template.model_id} {template.model_version}, but the "
            f"current model is {pipeline.model_id} {pipeline.model_version}: re-enroll {identity!r}"
        )
    return template


def check(store: TemplateStore, verifier: Verifier, identity: str, source: Any) -> Decision:
    """Verify one sample against ``identity``; raises the sample's or the store's error."""
    template = enrolled_template(store, verifier.pipeline, identity)
    return verifier.check(template.embedding, source)


def check_many(
    store: TemplateStore, verifier: Verifier, identity: str, sources: Sequence[Any]
) -> list[Decision | VerifyError]:
    """Verify many samples against ``identity`` in batches; failed samples yield their error."""
    template = enrolled_template(store, verifier.pipeline, identity)
    return verifier.check_many(template.embedding, sources)
