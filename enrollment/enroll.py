"""Enroll an identity from one sample, and check a sample against an enrolled identity.

Checks go through the lockout policy and the audit log of :mod:`enrollment.ratelimit`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from enrollment.ratelimit import DEFAULT_POLICY, LockoutPolicy, ensure_not_locked, record_results
from enrollment.adapted import AdaptedParams, load_adapted, save_adapted
from enrollment.gallery import Gallery
from enrollment.store import TemplateStore
from enrollment.template import Template, validate_identity
from verify.embedding import Embedding, Pipeline
from verify.errors import ConfigError, ModelMismatchError, QualityError, VerifyError
from verify.scoring import Decision, decide
from verify.verifier import Verifier

if TYPE_CHECKING:  # the adapter (torch) is built by the caller; enrollment never imports it
    from verify.adaptation import Adapter

LOOKALIKE_LEVEL = "high"  # a new identity scoring above this level's threshold against another warns


@dataclass(frozen=True)
class Enrollment:
    """The stored template after enrollment, the sample's embedding (with its preview) and warnings.

    Attributes:
        warnings: e.g. the sample looks like another enrolled identity (same person enrolled
            twice under two names, twins, or an impostor); the enrollment was still stored.
    """

    template: Template
    sample: Embedding
    warnings: tuple[str, ...] = ()


def enroll(
    store: TemplateStore,
    pipeline: Pipeline,
    identity: str,
    source: Any,
    *,
    allow_low_quality: bool = False,
    lookalike_threshold: float | None = None,
    adapter: Adapter | None = None,
    replace: bool = False,
    gallery: Gallery | None = None,
) -> Enrollment:
    """Embed one sample and add it to ``identity``'s template (created on first use).

    With ``replace`` (re-enrollment) the sample replaces the template and its earlier samples.

    Only the embedding is stored. A sample with quality issues (blur, darkness, clipping) is
    refused unless ``allow_low_quality``, since a poor template hurts every later check. A sample
    scoring at or above ``lookalike_threshold`` (default: the model's high-security threshold)
    against another identity's template of the same modality adds a warning. With an
    ``adapter`` (:class:`verify.adaptation.Adapter`), the user's scorer is adapted to the new
    template and stored beside it (with the guard's keep / fall-back record). With a ``gallery`` (the
    up-to-date gallery of the pipeline's modality and model) lookalikes are looked for among its
    shortlist instead of every stored template.

    Raises:
        VerifyError: the sample is unreadable, has no face or speech, or has quality issues;
            the identity name is invalid; the template was made by another model.
    """
    identity = validate_identity(identity)
    sample = pipeline.embed(source)
    if sample.quality_issues and not allow_low_quality:
        raise QualityError("cannot enroll from this sample: " + "; ".join(sample.quality_issues))
    if lookalike_threshold is None:
        lookalike_threshold = _high_security_threshold(pipeline)
    warnings = lookalikes(store, pipeline, identity, sample.vector, lookalike_threshold, gallery)
    if replace:
        template = Template.from_sample(identity, pipeline.modality, sample.vector, pipeline.model_id,
                                        pipeline.model_version, time.time())
        store.replace(template)
    else:
        template = store.add_sample(identity, pipeline.modality, sample.vector, pipeline.model_id,
                                    pipeline.model_version)
    if adapter is not None:
        adapt_template(store, adapter, template)
    return Enrollment(template, sample, warnings)


def adapt_template(store: TemplateStore, adapter: Adapter, template: Template) -> AdaptedParams:
    """Adapt ``adapter``'s scorer to ``template`` and store the parameters with the guard's record.

    Raises:
        ModelMismatchError: the adapter was trained on another backbone's embeddings.
    """
    if (adapter.model_id, adapter.model_version, adapter.modality) != (
        template.model_id, template.model_version, template.modality
    ):
        raise ModelMismatchError(
            f"the {adapter.method} adaptation was trained on {adapter.modality} embeddings of {adapter.model_id}"
            f" {adapter.model_version}; {template.identity!r} was enrolled with {template.model_id}"
            f" {template.model_version} ({template.modality})"
        )
    params, record = adapter.adapt(template.embedding)
    adapted = AdaptedParams(template.identity, template.modality, adapter.method, adapter.checkpoint_id,
                            params, record.to_json(), template.updated_at, time.time())
    save_adapted(store, adapted)
    return adapted


def _adapted_decider(store: TemplateStore, verifier: Verifier, template: Template, adapter: Adapter | None):
    """``Embedding -> Decision``: the adapted scorer and its thresholds, or the verifier's cosine.

    Stored parameters made from an older template or another checkpoint are re-adapted first.
    """
    if adapter is None:
        return lambda probe: verifier.decide(template.embedding, probe)
    if adapter.thresholds is None:
        raise ConfigError(f"the {adapter.method} adaptation checkpoint has no calibrated thresholds; retrain it")
    adapted = load_adapted(store, template.identity, template.modality)
    if adapted is None or (adapted.checkpoint, adapted.template_updated_at) != (
        adapter.checkpoint_id, template.updated_at
    ):
        adapted = adapt_template(store, adapter, template)
    point = adapter.thresholds.operating_point(verifier.operating_point.level)

    def decide_adapted(probe: Embedding) -> Decision:
        score = float(adapter.score(adapted.params, template.embedding, probe.vector[None])[0])
        return decide(score, point, probe.quality_issues)

    return decide_adapted


def _high_security_threshold(pipeline: Pipeline) -> float | None:
    """The shipped high-security threshold of the pipeline's model; ``None`` for a model that is not
    shipped (tests, experiments): no lookalike check."""
    from verify.models import model_spec

    spec = model_spec(pipeline.modality)
    if spec.model_id != pipeline.model_id:
        return None
    return spec.thresholds().operating_point(LOOKALIKE_LEVEL).threshold


def lookalikes(
    store: TemplateStore, pipeline: Pipeline, identity: str, vector: np.ndarray, threshold: float | None,
    gallery: Gallery | None = None,
) -> tuple[str, ...]:
    """Warnings for other identities whose template scores ``>= threshold`` against ``vector`` ``(D,)``.

    With a ``gallery`` only its shortlist for ``vector`` is scored: every template while it is
    searched exactly (the same warnings), the nearest ones by HNSW above that size.
    """
    if threshold is None:
        return ()
    if gallery is not None:
        shortlist = gallery.shortlist(vector)
        others = [(name, template) for name, template in zip(shortlist.identities, shortlist.vectors)
                  if len(template) == len(vector)]
    else:
        others = [(other.identity, other.embedding) for other in store.list_templates()
                  if other.modality == pipeline.modality and other.dim == len(vector)
                  and (other.model_id, other.model_version) == (pipeline.model_id, pipeline.model_version)]
    warnings = []
    for other, template in others:
        if other == identity:
            continue
        score = float(np.dot(template, vector) / np.linalg.norm(vector))
        if score >= threshold:
            warnings.append(
                f"{identity!r} looks like the already enrolled {other!r} ({pipeline.modality},"
                f" score {score:.3f} >= {threshold:.3f}, the {LOOKALIKE_LEVEL}-security threshold):"
                " check this is not one person under two names, or an impostor"
            )
    return tuple(warnings)


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


def check(
    store: TemplateStore,
    verifier: Verifier,
    identity: str,
    source: Any,
    *,
    policy: LockoutPolicy = DEFAULT_POLICY,
    now: float | None = None,
    adapter: Adapter | None = None,
    caller: str = "",
) -> Decision:
    """Verify one sample against ``identity``, logged and subject to the lockout ``policy``.

    With an ``adapter`` the identity's stored adapted scorer and the adapter's calibrated
    thresholds decide instead of the cosine score. The identity is looked up (and its lockout
    checked) before the sample is embedded.

    Raises:
        LockedOutError: too many recent failed checks against ``identity`` (this modality).
        VerifyError: the sample's or the store's error.
    """
    return check_embedded(store, verifier, identity, lambda: verifier.pipeline.embed(source), policy=policy,
                          now=now, adapter=adapter, caller=caller)


def check_embedded(
    store: TemplateStore,
    verifier: Verifier,
    identity: str,
    probe: Embedding | Callable[[], Embedding],
    *,
    policy: LockoutPolicy = DEFAULT_POLICY,
    now: float | None = None,
    adapter: Adapter | None = None,
    caller: str = "",
) -> Decision:
    """Decide a probe against ``identity``, logged and subject to ``policy``.

    ``probe`` is an embedding, or a function embedding the sample once the identity is known and
    not locked out (its :class:`VerifyError` is logged, then raised).

    Raises:
        LockedOutError: too many recent failed checks against ``identity`` (this modality).
    """
    template = enrolled_template(store, verifier.pipeline, identity)
    modality = verifier.pipeline.modality
    ensure_not_locked(store, template.identity, modality, policy, now, caller)
    decider = _adapted_decider(store, verifier, template, adapter)
    try:
        result: Decision | VerifyError = decider(probe() if callable(probe) else probe)
    except VerifyError as error:
        result = error
    (answer,) = record_results(store, template.identity, modality, [result], policy, now, caller)
    if isinstance(answer, VerifyError):
        raise answer
    return answer


def check_many(
    store: TemplateStore,
    verifier: Verifier,
    identity: str,
    sources: Sequence[Any],
    *,
    policy: LockoutPolicy = DEFAULT_POLICY,
    now: float | None = None,
    adapter: Adapter | None = None,
    caller: str = "",
) -> list[Decision | VerifyError]:
    """Verify many samples against ``identity`` in batches; failed samples yield their error.

    Every sample is logged and counts towards the lockout ``policy``: once it locks ``identity``
    out, the remaining samples yield :class:`LockedOutError` instead of a decision.

    Raises:
        LockedOutError: ``identity`` is locked out before the batch starts.
    """
    return check_embedded_many(store, verifier, identity, lambda: verifier.pipeline.embed_many(sources),
                               policy=policy, now=now, adapter=adapter, caller=caller)


def check_embedded_many(
    store: TemplateStore,
    verifier: Verifier,
    identity: str,
    probes: Sequence[Embedding | VerifyError] | Callable[[], Sequence[Embedding | VerifyError]],
    *,
    policy: LockoutPolicy = DEFAULT_POLICY,
    now: float | None = None,
    adapter: Adapter | None = None,
    caller: str = "",
) -> list[Decision | VerifyError]:
    """:func:`check_many` of probes embedded elsewhere (another process, a cluster), in their order.

    ``probes`` holds each sample's embedding or its error, or is a function returning them once
    the identity is known and not locked out. With no probes it only checks both.

    Raises:
        LockedOutError: ``identity`` is locked out before the first probe.
    """
    template = enrolled_template(store, verifier.pipeline, identity)
    modality = verifier.pipeline.modality
    ensure_not_locked(store, template.identity, modality, policy, now, caller)
    decider = _adapted_decider(store, verifier, template, adapter)
    results = [
        result if isinstance(result, VerifyError) else decider(result)
        for result in (probes() if callable(probes) else probes)
    ]
    return record_results(store, template.identity, modality, results, policy, now, caller)
