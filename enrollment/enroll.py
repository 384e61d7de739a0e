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

Review = Callable[[int, Embedding, Decision], Decision]
"""``review(index, probe, decision) -> decision``: a rule applied to each decision before it is logged."""

LOOKALIKE_LEVEL = "high"  # a sample another template would accept at this level warns


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
    verifier: Verifier,
    identity: str,
    source: Any,
    *,
    allow_low_quality: bool = False,
    adapter: Adapter | None = None,
    replace: bool = False,
    gallery: Gallery | None = None,
) -> Enrollment:
    """Embed one sample with ``verifier.pipeline`` and add it to ``identity``'s template (created on
    first use); with ``replace`` (re-enrollment) it replaces the template and its earlier samples.

    Only the embedding is stored, with the template's cohort statistics when the verifier's
    scorer normalises scores. A sample with quality issues (blur, darkness, clipping) is refused
    unless ``allow_low_quality``, since a poor template hurts every later check. A sample that
    another identity's template of the same modality would accept at the high security level
    adds a warning. With an ``adapter`` (:class:`verify.adaptation.Adapter`), the user's scorer
    is adapted to the new template and stored beside it (with the guard's keep / fall-back record). With a ``gallery`` (the up-to-date gallery of the
    pipeline's modality and model) lookalikes are looked for among its shortlist instead of every
    stored template.

    Raises:
        VerifyError: the sample is unreadable, has no face or speech, or has quality issues;
            the identity name is invalid; the template was made by another model.
    """
    identity = validate_identity(identity)
    pipeline = verifier.pipeline
    sample = pipeline.embed(source)
    if sample.quality_issues and not allow_low_quality:
        raise QualityError("cannot enroll from this sample: " + "; ".join(sample.quality_issues))
    warnings = lookalikes(store, verifier.at_level(LOOKALIKE_LEVEL), identity, sample, gallery)
    narrowband = verifier.narrowband_copy(sample)
    if replace:
        template = Template.from_sample(identity, pipeline.modality, sample.vector, pipeline.model_id,
                                        pipeline.model_version, time.time(), narrowband)
        store.replace(template)
    else:
        template = store.add_sample(identity, pipeline.modality, sample.vector, pipeline.model_id,
                                    pipeline.model_version, narrowband)
    template = with_cohort_stats(store, verifier, template)
    if adapter is not None:
        adapt_template(store, adapter, template)
    return Enrollment(template, sample, warnings)


def with_cohort_stats(store: TemplateStore, verifier: Verifier, template: Template) -> Template:
    """``template`` with the statistics its scorer needs (its narrowband copy's too), computed and
    stored when missing or stale."""
    usable = verifier.scorer.usable
    if usable(template.cohort_stats) and (template.narrowband is None or usable(template.narrowband_stats)):
        return template
    stats = verifier.template_stats(template.embedding)
    if stats is None:
        return template
    copy_stats = None if template.narrowband is None else verifier.template_stats(template.narrowband)
    return store.set_cohort_stats(template, stats, copy_stats)


def decide_template(verifier: Verifier, template: Template, probe: Embedding) -> Decision:
    """``verifier``'s decision on ``probe`` against a stored template: a band-limited voice against its
    narrowband copy when it has one (:mod:`verify.narrowband`)."""
    return verifier.decide(template.embedding, probe, template.cohort_stats, template.narrowband,
                           template.narrowband_stats)


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
        template = with_cohort_stats(store, verifier, template)
        return lambda probe: decide_template(verifier, template, probe)
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


def lookalikes(store: TemplateStore, verifier: Verifier, identity: str, sample: Embedding,
               gallery: Gallery | None = None) -> tuple[str, ...]:
    """Warnings for other identities of the same model whose template ``verifier`` (at its level)
    would accept ``sample`` for.

    With a ``gallery`` only its shortlist for the sample is decided: every template while it is
    searched exactly (the same warnings), the nearest ones by PQ scan and exact re-ranking above that size.
    """
    pipeline = verifier.pipeline
    if gallery is not None:
        shortlist = gallery.shortlist(sample.vector)
        others = [row for row, name in enumerate(shortlist.identities) if name != identity]
        names = [shortlist.identities[row] for row in others]
        vectors, stats = shortlist.vectors[others], [shortlist.stats[row] for row in others]
    else:
        templates = [other for other in store.list_templates()
                     if other.identity != identity and other.modality == pipeline.modality
                     and (other.model_id, other.model_version) == (pipeline.model_id, pipeline.model_version)]
        names = [other.identity for other in templates]
        vectors = np.stack([other.embedding for other in templates]) if templates else None
        stats = [other.cohort_stats for other in templates]
    if not names:
        return ()
    decisions = verifier.decide_many(vectors, sample, stats)
    return tuple(
        f"{identity!r} looks like the already enrolled {other!r} ({pipeline.modality}: it would be"
        f" accepted at the {verifier.level} security level): check this is not one person under two names,"
        " or an impostor"
        for other, decision in zip(names, decisions) if decision.accepted
    )


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
    review: Review | None = None,
) -> Decision:
    """Decide a probe against ``identity``, logged and subject to ``policy``.

    ``probe`` is an embedding, or a function embedding the sample once the identity is known and
    not locked out (its :class:`VerifyError` is logged, then raised). ``review`` may turn the
    decision into another before it is logged (the replay guard: ``review(0, probe, decision)``).

    Raises:
        LockedOutError: too many recent failed checks against ``identity`` (this modality).
    """
    modality = verifier.pipeline.modality
    template, decider = checked_decider(store, verifier, identity, policy=policy, now=now, adapter=adapter,
                                        caller=caller)
    try:
        embedded = probe() if callable(probe) else probe
        result: Decision | VerifyError = decider(embedded)
        if review is not None:
            result = review(0, embedded, result)
    except VerifyError as error:
        result = error
    (answer,) = record_results(store, template.identity, modality, [result], policy, now, caller)
    if isinstance(answer, VerifyError):
        raise answer
    return answer


def checked_decider(
    store: TemplateStore,
    verifier: Verifier,
    identity: str,
    *,
    policy: LockoutPolicy = DEFAULT_POLICY,
    now: float | None = None,
    adapter: Adapter | None = None,
    caller: str = "",
) -> tuple[Template, Callable[[Embedding], Decision]]:
    """``identity``'s template and an ``Embedding -> Decision`` against it, once it is known and not
    locked out (the caller logs the decisions it makes with :func:`~enrollment.ratelimit.record_results`).

    Raises:
        UnknownIdentityError, ModelMismatchError: as :func:`enrolled_template`.
        LockedOutError: too many recent failed checks against ``identity`` (this modality).
    """
    template = enrolled_template(store, verifier.pipeline, identity)
    ensure_not_locked(store, template.identity, verifier.pipeline.modality, policy, now, caller)
    return template, _adapted_decider(store, verifier, template, adapter)


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
    review: Review | None = None,
) -> list[Decision | VerifyError]:
    """Verify many samples against ``identity`` in batches; failed samples yield their error.

    Every sample is logged and counts towards the lockout ``policy``: once it locks ``identity``
    out, the remaining samples yield :class:`LockedOutError` instead of a decision. ``review``
    (``review(index, probe, decision)``) may turn a decision into another before it is logged.

    Raises:
        LockedOutError: ``identity`` is locked out before the batch starts.
    """
    return check_embedded_many(store, verifier, identity, lambda: verifier.pipeline.embed_many(sources),
                               policy=policy, now=now, adapter=adapter, caller=caller, review=review)


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
    review: Review | None = None,
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
    results: list[Decision | VerifyError] = []
    for index, result in enumerate(probes() if callable(probes) else probes):
        if isinstance(result, VerifyError) or review is None:
            results.append(result if isinstance(result, VerifyError) else decider(result))
        else:
            results.append(review(index, result, decider(result)))
    return record_results(store, template.identity, modality, results, policy, now, caller)
