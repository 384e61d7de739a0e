"""One-shot verification: a template vector and a probe sample -> decision at a security level."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from verify.config import DEFAULT_SECURITY_LEVEL
from verify.embedding import Embedding, Pipeline
from verify.errors import ConfigError, VerifyError
from verify.normalization import CohortStats
from verify.scorer import Scorer
from verify.scoring import Decision, OperatingPoint, cosine_scores


class Verifier:
    """Scores probes of one modality against templates and decides at a security level."""

    def __init__(self, pipeline: Pipeline, scorer: Scorer, level: str = DEFAULT_SECURITY_LEVEL) -> None:
        self.pipeline = pipeline
        self.scorer = scorer
        self.level = level
        self.operating_point: OperatingPoint = scorer.operating_point(level)

    def at_level(self, level: str) -> Verifier:
        """The same pipeline and scorer at another security level."""
        return Verifier(self.pipeline, self.scorer, level)

    def template_stats(self, template: np.ndarray) -> CohortStats | None:
        """What the scorer needs stored with a ``(D,)`` template (computed once, at enrollment)."""
        return self.scorer.template_stats(template)

    def narrowband_copy(self, sample: Embedding) -> np.ndarray | None:
        """The ``(D,)`` embedding of an enrollment sample's narrowband copy, kept beside its template
        when the scorer routes band-limited probes to it; ``None`` when it does not, or when the
        sample is band-limited itself (its template already matches such probes).

        Raises:
            ConfigError: the scorer routes such probes but the pipeline makes no copies.
        """
        route = self.scorer.narrowband
        if route is None or route.takes(sample.measures):
            return None
        embed = getattr(self.pipeline, "embed_narrowband", None)
        if embed is None:
            raise ConfigError(f"the {self.pipeline.modality} pipeline makes no narrowband copies, which its scorer needs")
        return embed(sample.preview)

    def decide(self, template: np.ndarray, probe: Embedding, template_stats: CohortStats | None = None,
               narrowband: np.ndarray | None = None, narrowband_stats: CohortStats | None = None) -> Decision:
        """Decision for an already embedded probe against a ``(D,)`` template.

        ``template_stats``: the template's stored statistics; computed here when missing or stale.
        ``narrowband``, ``narrowband_stats``: the template's narrowband copy and its statistics, if
        it has one: a band-limited probe nearer the copy than the template is held against it
        (:mod:`verify.narrowband`). Any other probe is also scored with the template's and its own
        low-cut copies when the scorer weighs them (:mod:`verify.low_cut`). The probe is
        compensated for its conditions first (:meth:`Scorer.compensated`).
        """
        probe = self.scorer.compensated(probe)
        route = self.scorer.narrowband
        if narrowband is not None and route is not None and route.takes(probe.measures):
            template_cosine, copy_cosine = cosine_scores(np.stack([template, narrowband]), probe.vector)[:, 0]
            if route.chooses(probe.measures, float(template_cosine), float(copy_cosine)):
                stats = narrowband_stats if self.scorer.usable(narrowband_stats) else self.scorer.template_stats(narrowband)
                return self.scorer.decide_narrowband(float(copy_cosine), self.level, probe, stats)
        if self.scorer.low_cut is not None:
            return self.scorer.decide_with_copies(np.asarray(template), probe, self.level, template_stats)
        return self._decide_compensated(np.asarray(template)[None], probe, [template_stats])[0]

    def decide_many(self, templates: np.ndarray, probe: Embedding,
                    template_stats: Sequence[CohortStats | None]) -> list[Decision]:
        """Decisions for one probe against each of ``templates`` ``(N, D)`` (the probe compensated
        for its conditions first)."""
        return self._decide_compensated(templates, self.scorer.compensated(probe), template_stats)

    def _decide_compensated(self, templates: np.ndarray, probe: Embedding,
                            template_stats: Sequence[CohortStats | None]) -> list[Decision]:
        templates = np.atleast_2d(templates)
        stats = [found if self.scorer.usable(found) else self.scorer.template_stats(row)
                 for row, found in zip(templates, template_stats)]
        cosines = cosine_scores(templates, probe.vector)[:, 0]
        return self.scorer.decide_many(cosines, self.level, probe, stats)

    def check(self, template: np.ndarray, source: Any) -> Decision:
        """Embed one probe sample and decide; raises the sample's :class:`VerifyError`."""
        return self.decide(template, self.pipeline.embed(source))

    def check_many(self, template: np.ndarray, sources: Sequence[Any]) -> list[Decision | VerifyError]:
        """Embed probes in batches and decide each; failed samples yield their error."""
        stats = self.template_stats(template)
        return [
            result if isinstance(result, VerifyError) else self.decide(template, result, stats)
            for result in self.pipeline.embed_many(sources)
        ]
